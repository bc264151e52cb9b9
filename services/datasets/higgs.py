"""SNAP Higgs Twitter activity (1-7 July 2012) -> canonical interactions, in file order.

"userA userB timestamp type": A retweeted (RT), mentioned (MT) or replied to (RE) B. RT is a
share, MT a mention, RE a reply; ids become ``higgs:<id>``. Self-interactions are skipped.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from schemas.events import Interaction

KINDS: Final = {"RT": "share", "MT": "mention", "RE": "reply"}


def interactions(data_dir: Path, limit: int | None = None) -> Iterator[Interaction]:
    path = data_dir / "higgs_twitter" / "higgs-activity_time.txt.gz"
    n = 0
    with gzip.open(path, "rt") as f:
        for row, line in enumerate(f):
            a, b, ts, kind = line.split()
            if a == b:
                continue
            yield Interaction(
                source="twitter",
                event_id=f"higgs-{row}",
                kind=KINDS[kind],
                actor=f"higgs:{a}",
                target=f"higgs:{b}",
                occurred_at=datetime.fromtimestamp(int(ts), UTC),
            )
            n += 1
            if limit is not None and n >= limit:
                return
