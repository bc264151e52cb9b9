"""Topic names. Agents and routes use these constants, never string literals.

Every name is prefixed with ``REALCONNECT_NAMESPACE`` at runtime by
``services.common.kafka.Topics`` so that test runs never see each other's data.
"""

from typing import Final

INTERACTIONS: Final = "interactions"
INTERACTIONS_DLQ: Final = "interactions.dlq"
SUGGESTIONS: Final = "meetup.suggestions"
SUGGESTIONS_DLQ: Final = "notifications.dlq"

#: Topics the stack creates up front (faust creates its own changelog topics).
ALL: Final = (INTERACTIONS, INTERACTIONS_DLQ, SUGGESTIONS, SUGGESTIONS_DLQ)
