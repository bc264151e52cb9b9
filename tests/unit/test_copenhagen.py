from __future__ import annotations

from pathlib import Path

from services.datasets import copenhagen


def test_every_call_and_sms_is_converted_in_time_order(data_dir: Path) -> None:
    events = list(copenhagen.interactions(data_dir))
    assert len(events) == 3600 + 24333  # the study has no self-calls or self-texts
    times = [e.occurred_at for e in events]
    assert times == sorted(times)
    calls = [e for e in events if e.kind == "call"]
    assert len(calls) == 3600
    assert sum(1 for c in calls if c.duration_s == 0) >= 366  # missed calls (-1) -> 0 s
    assert all(e.actor.startswith("cns:") and e.source == "phone" for e in events)
    assert len({e.event_id for e in events}) == len(events)
