"""What the matcher's lateness costs in throughput (a side measurement, not part of make bench).

The matcher holds each event until its partition's watermark is ``MATCHER__LATENESS_S`` past
it, so that events arriving out of order within that time are applied in event-time order.
A held event's pair state is written twice: when it is buffered and when it is applied. This
runs the same faust matcher job as ``bench.throughput`` (200,000 Higgs events in the array
records the project writes, one worker, its own namespace) at several lateness settings,
interleaved in rounds, and prints each setting's events/s per round and the median.

Run with Kafka and Redis up: ``python -m bench.lateness --lateness 3600 600 0 --rounds 3``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from pathlib import Path

from bench import throughput
from services.common import records
from services.common.records import Record
from services.common.settings import Settings
from services.datasets import higgs


async def run(args: argparse.Namespace) -> dict[float, list[float]]:
    base = Settings()
    events = list(higgs.interactions(args.data_dir, limit=args.events))
    arrays = [
        Record(f"p{r.partition}".encode(), r.value, r.partition, r.count)
        for r in records.encode(events, base.kafka.partitions, base.kafka.interactions_per_record)
    ]
    rates: dict[float, list[float]] = {s: [] for s in args.lateness}
    for i in range(args.rounds):
        for seconds in args.lateness:
            throughput.WORKER_ENV["REALCONNECT_MATCHER__LATENESS_S"] = str(seconds)
            tag = f"late{i}-{int(seconds)}"
            rate = await throughput.matcher_on(base, tag, arrays, len(events), args.timeout)
            rates[seconds].append(rate)
            print(f"round {i + 1}, lateness {seconds:g} s: {rate:,.0f} events/s", flush=True)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lateness", type=float, nargs="+", default=[3600.0, 600.0, 0.0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    rates = asyncio.run(run(args))
    first = statistics.median(rates[args.lateness[0]])
    for seconds, values in rates.items():
        median = statistics.median(values)
        print(
            f"lateness={seconds:g}s median={median:,.0f}/s "
            f"(x{median / first:.2f} of {args.lateness[0]:g}s) rounds="
            + ",".join(f"{v:.0f}" for v in values)
        )


if __name__ == "__main__":
    main()
