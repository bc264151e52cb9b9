"""Copenhagen Networks Study calls + SMS -> canonical interactions, in event-time order.

The study publishes timestamps as seconds from the start of the study, without the date;
``STUDY_START`` anchors them (an arbitrary, documented choice: every decision uses
relative event time, so the anchor changes no result). Missed calls (duration -1) become
calls of duration 0: they are attempts, not conversations.
Person ids are namespaced as ``cns:<id>``, since ids are per dataset.
"""

from __future__ import annotations

import csv
import heapq
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from schemas.events import Interaction

STUDY_START: Final = datetime(2013, 9, 2, tzinfo=UTC)
SOURCE: Final = "phone"


def _calls(path: Path) -> Iterator[tuple[int, int, Interaction]]:
    with path.open(newline="") as f:
        for row_no, row in enumerate(csv.DictReader(f)):
            if row["caller"] == row["callee"]:
                continue
            ts, duration = int(row["timestamp"]), int(row["duration"])
            yield (
                ts,
                0,
                Interaction(
                    source=SOURCE,
                    event_id=f"cns-call-{row_no}",
                    kind="call",
                    actor=f"cns:{row['caller']}",
                    target=f"cns:{row['callee']}",
                    occurred_at=STUDY_START + timedelta(seconds=ts),
                    duration_s=max(duration, 0),
                ),
            )


def _sms(path: Path) -> Iterator[tuple[int, int, Interaction]]:
    with path.open(newline="") as f:
        for row_no, row in enumerate(csv.DictReader(f)):
            if row["sender"] == row["recipient"]:
                continue
            ts = int(row["timestamp"])
            yield (
                ts,
                1,
                Interaction(
                    source=SOURCE,
                    event_id=f"cns-sms-{row_no}",
                    kind="message",
                    actor=f"cns:{row['sender']}",
                    target=f"cns:{row['recipient']}",
                    occurred_at=STUDY_START + timedelta(seconds=ts),
                ),
            )


def interactions(data_dir: Path) -> Iterator[Interaction]:
    """Every call and SMS of the study, merged in time order (ties: calls first, file order).

    Rows whose caller and callee are the same person are skipped: they are not an exchange.
    """
    folder = data_dir / "copenhagen_cns"
    calls = sorted(_calls(folder / "calls.csv"), key=lambda r: r[0])
    sms = sorted(_sms(folder / "sms.csv"), key=lambda r: r[0])
    for _, _, interaction in heapq.merge(calls, sms, key=lambda r: (r[0], r[1])):
        yield interaction


def write_jsonl(data_dir: Path, out: Path) -> int:
    """Write the converted stream to ``out``; returns the number of interactions."""
    n = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f:
        for interaction in interactions(data_dir):
            f.write(interaction.model_dump_json(exclude_none=False).encode() + b"\n")
            n += 1
    return n
