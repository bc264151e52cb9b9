from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas.events import INTERACTION_ADAPTER, Interaction, pair_key
from schemas.suggestions import Suggestion

VALID = (
    b'{"source":"mastodon","event_id":"1","kind":"reply","actor":"bob","target":"alice",'
    b'"occurred_at":"2026-03-01T09:30:00+01:00","text":"How did it go?","duration_s":null,'
    b'"thread_id":"t","in_reply_to":"0"}'
)


def test_canonical_interaction_parses_and_keys_by_sorted_pair() -> None:
    i = INTERACTION_ADAPTER.validate_json(VALID)
    assert i.pair == ("alice", "bob")
    assert i.key == "alice|bob" == pair_key("bob", "alice")
    assert i.occurred_at.utcoffset() is not None


def test_unknown_fields_are_ignored_by_the_tolerant_reader() -> None:
    i = INTERACTION_ADAPTER.validate_json(VALID[:-1] + b',"extra":1}')
    assert not hasattr(i, "extra")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"occurred_at": "2026-03-01T09:30:00"}, "occurred_at"),  # no offset
        ({"kind": "hug"}, "kind"),
        ({"actor": "a|b"}, "actor"),
        ({"actor": ""}, "actor"),
        ({"duration_s": -1}, "duration_s"),
        ({"source": "Has Spaces"}, "source"),
    ],
)
def test_invalid_fields_are_reported_by_path(patch: dict[str, object], field: str) -> None:
    base = Interaction.model_validate_json(VALID).model_dump(mode="json")
    with pytest.raises(ValidationError) as exc:
        Interaction.model_validate_json(json.dumps({**base, **patch}))
    assert field in {str(e["loc"][0]) for e in exc.value.errors()}


def test_an_interaction_needs_two_different_people() -> None:
    base = Interaction.model_validate_json(VALID).model_dump(mode="json")
    with pytest.raises(ValidationError, match="two different people"):
        Interaction.model_validate_json(json.dumps({**base, "target": base["actor"]}))


def test_interactions_are_frozen() -> None:
    i = INTERACTION_ADAPTER.validate_json(VALID)
    with pytest.raises(ValidationError):
        i.actor = "mallory"  # type: ignore[misc]


def test_suggestion_pair_must_be_sorted() -> None:
    kw = dict(
        suggestion_id="s",
        score=1.0,
        suggested_at=datetime(2026, 1, 1, tzinfo=UTC),
        evidence={},
        explanation="x",
    )
    assert Suggestion(pair=("a", "b"), **kw).pair == ("a", "b")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Suggestion(pair=("b", "a"), **kw)  # type: ignore[arg-type]
