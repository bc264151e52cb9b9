from __future__ import annotations

from datetime import UTC, datetime

from schemas.suggestions import Suggestion
from services.notifier.feeds import items_for


def test_each_person_gets_one_item_naming_the_other() -> None:
    s = Suggestion(
        suggestion_id="abc",
        pair=("ann", "ben"),
        score=2.0,
        suggested_at=datetime(2026, 3, 1, tzinfo=UTC),
        evidence={"k": 1},
        explanation="x",
    )
    a, b = items_for(s)
    assert (a.person_id, a.other_person_id) == ("ann", "ben")
    assert (b.person_id, b.other_person_id) == ("ben", "ann")
    assert a.item_id == b.item_id == "abc"  # deterministic: a redelivery writes the same ids
