"""How much one interaction counts (pure: no I/O imports).

The foundation rule counts every non-like interaction as one exchange; the matcher issue
replaces this with a graded meaningfulness weight in [0, 1].
"""

from __future__ import annotations

from schemas.events import Interaction


def counts_as_exchange(interaction: Interaction) -> bool:
    """A like is one click, not an exchange; every other kind is."""
    return interaction.kind != "like"
