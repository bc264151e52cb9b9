"""State a running release left behind is read by this one (issue 42, part 2).

``tests/compat/samples`` holds what each release wrote (Kafka records, matcher table values,
Redis values), written once by ``tests/compat/write_samples.py`` and never rewritten, with
the facts each means. Every sample of every release is read here with today's code: a change
that would strand existing state (a field renamed or made required, a format not decoded
any more) fails here, and must bring a migration (as ``PairState.decode`` reads format 1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.events import INTERACTION_ADAPTER
from schemas.feedback import FEEDBACK_ADAPTER
from schemas.people import FEED_ITEM_ADAPTER, PREFERENCES_ADAPTER
from schemas.suggestions import GROUP_ADAPTER, SUGGESTION_ADAPTER
from services.common import i18n
from services.common.words import LANGUAGES
from services.matcher import sentences
from services.matcher.circles import Circle
from services.matcher.pairs import PairState

SAMPLES = Path(__file__).parents[1] / "compat" / "samples"


def _pair_state(raw: bytes) -> dict[str, Any]:
    s = PairState.decode(raw)
    assert PairState.decode(s.encode()) == s  # and today's code writes what it reads
    return {
        "a": s.a, "b": s.b, "n_ab": s.n_ab, "n_ba": s.n_ba,
        "suggestion_id": s.suggestion_id, "weeks_total": s.weeks_total,
    }  # fmt: skip


def _circle(raw: bytes) -> dict[str, Any]:
    c = Circle.decode(raw)
    assert Circle.decode(c.encode()) == c
    return {"partners": sorted(c.entries), "exchanges": c.exchanges}


def _interaction(raw: bytes) -> dict[str, Any]:
    e = INTERACTION_ADAPTER.validate_json(raw)
    return {"event_id": e.event_id, "actor": e.actor, "kind": e.kind}


def _suggestion(raw: bytes) -> dict[str, Any]:
    s = SUGGESTION_ADAPTER.validate_json(raw)
    # the sentence is written from the evidence when read: an old suggestion reads the same
    assert sentences.pair(s.evidence) == s.explanation
    return {
        "suggestion_id": s.suggestion_id, "pair": list(s.pair), "explanation": s.explanation,
        "decided_by": s.decision.decided_by if s.decision else "?",
    }  # fmt: skip


def _feed_item(raw: bytes) -> dict[str, Any]:
    item = FEED_ITEM_ADAPTER.validate_json(raw)
    for lang in LANGUAGES:  # every language can say an old item
        said = sentences.item(item.type, item.evidence, item.meetup, len(item.members),
                              i18n.words(lang))  # fmt: skip
        assert said, (item.type, lang)
    facts: dict[str, Any] = {"item_id": item.item_id, "type": item.type}
    if item.is_group:
        facts["members"] = list(item.members)
    else:
        facts["other"] = item.other_person_id
    return facts


def _group(raw: bytes) -> dict[str, Any]:
    g = GROUP_ADAPTER.validate_json(raw)
    return {"group_id": g.group_id, "members": list(g.members)}


def _preferences(raw: bytes) -> dict[str, Any]:
    p = PREFERENCES_ADAPTER.validate_json(raw)
    return {"language": p.language, "time_zone": p.time_zone, "never_with": p.never_with}


def _feedback(raw: bytes) -> dict[str, Any]:
    f = FEEDBACK_ADAPTER.validate_json(raw)
    return {"outcome": f.outcome, "suggestion_id": f.suggestion_id}


READERS: dict[str, Callable[[bytes], dict[str, Any]]] = {
    "pair_state": _pair_state,
    "circle": _circle,
    "interaction": _interaction,
    "suggestion": _suggestion,
    "feed_item": _feed_item,
    "group_feed_item": _feed_item,
    "group_suggestion": _group,
    "preferences": _preferences,
    "feedback": _feedback,
}
SAMPLE_FILES = sorted(p for p in SAMPLES.glob("*.json") if not p.name.endswith(".facts.json"))


def test_every_persisted_format_has_a_sample() -> None:
    kinds = {p.name.split(".")[-2] for p in SAMPLE_FILES}
    assert kinds == set(READERS)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_today_s_code_reads_every_release_s_state(path: Path) -> None:
    kind = path.name.split(".")[-2]
    facts = json.loads(path.with_name(path.name + ".facts.json").read_text())
    assert READERS[kind](path.read_bytes()) == facts


#: how today's code writes each format again, from what it read
WRITERS: dict[str, Callable[[bytes], bytes]] = {
    "pair_state": lambda raw: PairState.decode(raw).encode(),
    "circle": lambda raw: Circle.decode(raw).encode(),
    "interaction": lambda raw: INTERACTION_ADAPTER.dump_json(
        INTERACTION_ADAPTER.validate_json(raw)
    ),
    "suggestion": lambda raw: SUGGESTION_ADAPTER.dump_json(SUGGESTION_ADAPTER.validate_json(raw)),
    "feed_item": lambda raw: FEED_ITEM_ADAPTER.dump_json(FEED_ITEM_ADAPTER.validate_json(raw)),
    "group_feed_item": lambda raw: FEED_ITEM_ADAPTER.dump_json(
        FEED_ITEM_ADAPTER.validate_json(raw)
    ),
    "group_suggestion": lambda raw: GROUP_ADAPTER.dump_json(GROUP_ADAPTER.validate_json(raw)),
    "preferences": lambda raw: PREFERENCES_ADAPTER.dump_json(
        PREFERENCES_ADAPTER.validate_json(raw)
    ),
    "feedback": lambda raw: FEEDBACK_ADAPTER.dump_json(FEEDBACK_ADAPTER.validate_json(raw)),
}
#: the version each format is written in today: the first value of the matcher's arrays,
#: ``v`` of every JSON record
VERSIONS: dict[str, int] = {"pair_state": 2, "circle": 1} | {
    kind: 1 for kind in READERS if kind not in ("pair_state", "circle")
}


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_every_format_today_s_code_writes_carries_its_version(path: Path) -> None:
    """Whatever release wrote a sample (0.1.0's JSON records carried no version; they read
    as 1), today's code writes it again with its version."""
    kind = path.name.split(".")[-2]
    written = json.loads(WRITERS[kind](path.read_bytes()))
    version = written[0] if isinstance(written, list) else written["v"]
    assert version == VERSIONS[kind], kind
    # and today's samples were written so: a release's samples carry their versions
    if not path.name.startswith("0.1.0."):
        raw = json.loads(path.read_bytes())
        assert (raw[0] if isinstance(raw, list) else raw["v"]) == VERSIONS[kind]


def test_a_change_that_strands_state_fails() -> None:
    """The check can fail: a pair state of a format nobody reads, a preference value no
    longer allowed, and a record of a version this release does not know, are refused."""
    raw = json.loads((SAMPLES / "0.1.0.pair_state.json").read_text())
    with pytest.raises(ValueError, match="not a pair state of format 2"):
        PairState.decode(json.dumps([99, *raw[1:]]).encode())
    prefs = json.loads((SAMPLES / "0.1.0.preferences.json").read_text())
    with pytest.raises(ValueError, match="language"):
        _preferences(json.dumps({**prefs, "language": "tlh"}).encode())
    with pytest.raises(ValueError, match="v"):
        _preferences(json.dumps({**prefs, "v": 2}).encode())
