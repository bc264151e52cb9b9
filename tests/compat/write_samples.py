"""Writes the frozen samples of realconnect's persisted formats (issue 42): run **once per
new format**, by hand (``python -m tests.compat.write_samples NAME``), never by the suite.

Each sample is what a release wrote to Kafka, a matcher table or Redis, with a sidecar of
the facts it means (``*.facts.json``, taken from the object that was written, before any
reading). ``tests/unit/test_compat.py`` reads every sample with today's code and checks those
facts: a change that could not read state a running release left behind fails there. A
sample is never rewritten; a new format adds a new file beside the old ones.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.events import INTERACTION_ADAPTER
from schemas.feedback import FEEDBACK_ADAPTER, FeedbackGiven
from schemas.people import FEED_ITEM_ADAPTER, PREFERENCES_ADAPTER, Preferences, QuietHours
from schemas.suggestions import GROUP_ADAPTER, SUGGESTION_ADAPTER
from services.matcher import models
from services.matcher.circles import Circle
from services.matcher.pairs import Policy, flush, receive
from services.notifier.feeds import group_items, items_for
from tests.factories import weeks_of_talk
from tests.unit.test_group_meetups import DAY, T0, exchanges, stage

SAMPLES = Path(__file__).parent / "samples"


def _write(name: str, raw: bytes, facts: dict[str, Any]) -> None:
    path = SAMPLES / name
    if path.exists():
        raise SystemExit(f"{path} exists: a sample is never rewritten (add a new one)")
    path.write_bytes(raw)
    (SAMPLES / f"{name}.facts.json").write_text(json.dumps(facts, indent=2, sort_keys=True))


def main(release: str) -> None:
    policy = Policy(model=models.load())
    events = weeks_of_talk("compat:ann", "compat:ben", kind="reply", source="mastodon")
    state, made = None, []
    for e in events:
        state, out = receive(state, e, policy)
        made += out
    assert state is not None
    state, _ = flush(state, None, policy)
    [s] = made
    _write(
        f"{release}.interaction.json",
        INTERACTION_ADAPTER.dump_json(events[0]),
        {"event_id": events[0].event_id, "actor": events[0].actor, "kind": events[0].kind},
    )
    _write(
        f"{release}.pair_state.json",
        state.encode(),
        {"a": state.a, "b": state.b, "n_ab": state.n_ab, "n_ba": state.n_ba,
         "suggestion_id": state.suggestion_id, "weeks_total": state.weeks_total},
    )  # fmt: skip
    _write(
        f"{release}.suggestion.json",
        SUGGESTION_ADAPTER.dump_json(s),
        {"suggestion_id": s.suggestion_id, "pair": list(s.pair), "explanation": s.explanation,
         "decided_by": s.decision.decided_by if s.decision else "?"},
    )  # fmt: skip
    item, _ = items_for(s, datetime(2026, 12, 5, 12, tzinfo=UTC))
    _write(
        f"{release}.feed_item.json",
        FEED_ITEM_ADAPTER.dump_json(item),
        {"item_id": item.item_id, "type": item.type, "other": item.other_person_id},
    )
    g = stage()
    g.fold(exchanges([("ann", "bo"), ("bo", "cy"), ("ann", "cy")], rounds=6), 0, set())
    [group] = g.groups({"ann", "bo", "cy"}, T0 + 6 * DAY, top=5, min_weight=3.0)
    _write(
        f"{release}.group_suggestion.json",
        GROUP_ADAPTER.dump_json(group),
        {"group_id": group.group_id, "members": list(group.members)},
    )
    [gitem, *_] = group_items(group, datetime(2026, 12, 5, 12, tzinfo=UTC), ["Europe/Lisbon"])
    _write(
        f"{release}.group_feed_item.json",
        FEED_ITEM_ADAPTER.dump_json(gitem),
        {"item_id": gitem.item_id, "type": gitem.type, "members": list(gitem.members)},
    )
    circle = Circle(
        landmark=T0, total=9.6, exchanges=12, partners_seen=2,
        entries={"bo": (4.8, 0.0), "cy": (4.8, 0.0)}, applied=11,
    )  # fmt: skip
    _write(
        f"{release}.circle.json",
        circle.encode(),
        {"partners": sorted(circle.entries), "exchanges": circle.exchanges},
    )
    prefs = Preferences(
        opted_in=True, time_zone="Europe/Berlin",
        quiet_hours=QuietHours(start="22:00", end="07:00"),
        max_per_week=2, never_with=["compat:cy"], channels=["page", "email"],
        email="ann@example.org", language="de",
    )  # fmt: skip
    _write(
        f"{release}.preferences.json",
        PREFERENCES_ADAPTER.dump_json(prefs),
        {"language": "de", "time_zone": "Europe/Berlin", "never_with": ["compat:cy"]},
    )
    answer = FeedbackGiven(
        suggestion_id=s.suggestion_id, pair=s.pair, person_id="compat:ann", outcome="accepted",
        at=datetime(2026, 12, 5, 12, tzinfo=UTC),
    )  # fmt: skip
    _write(
        f"{release}.feedback.json",
        FEEDBACK_ADAPTER.dump_json(answer),
        {"outcome": "accepted", "suggestion_id": s.suggestion_id},
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "0.1.0")
