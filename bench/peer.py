"""The peer: Quix Streams on the same records (make bench; quixstreams is a bench extra).

Two jobs, each one Quix Streams application with its defaults (RocksDB state with a
changelog topic, at-least-once, commit every 5 s):

- ``count``: a stateful count per pair key, on one interaction per record keyed by its pair;
  a record is produced when a pair reaches 3;
- ``pairs``: on either layout the matcher reads (one interaction per record keyed by its
  pair, or arrays of a partition's interactions keyed by the partition), the project's own
  pure pair logic (``services.matcher.pairs.receive``, each record decoded by
  ``services.common.records.decode`` as the matcher does) as a stateful function; the state
  is one encoded pair state per pair (``PairState.encode``, stored as bytes under the pair's
  key), and the suggestions it makes are produced. The faust matcher also applies buffered
  events when its partition's watermark passes them; Quix runs ``receive`` alone, which is
  less work, not more.

Each job runs in a process of its own (confluent-kafka is synchronous) and prints one JSON
line: events, seconds from the first record processed to the last, events/s.

Run: ``python -m bench.peer pairs --topic T --out O --group G --events N``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import orjson

from schemas.events import Interaction
from services.common import records
from services.common.settings import Settings
from services.matcher.handlers import policy_from
from services.matcher.pairs import PairState, receive

__all__ = ["main"]


def _identity(value: Any) -> Any:
    return value


def run(job: str, topic: str, out: str, group: str, n: int) -> dict[str, float]:
    from quixstreams import Application
    from quixstreams.state.rocksdb import RocksDBOptions

    settings = Settings()
    policy = policy_from(settings.matcher)
    seen = 0  # events, not records: an array holds many
    first: tuple[float, int] | None = None  # when the first record was done, events by then
    last = 0.0
    app: Any = None

    def processed(_topic: str, _partition: int, _offset: int) -> None:
        nonlocal first, last
        last = time.perf_counter()
        if first is None:
            first = (last, seen)
        if seen >= n:
            app.stop()

    options = RocksDBOptions(dumps=_identity, loads=_identity) if job == "pairs" else None
    with tempfile.TemporaryDirectory(prefix="bench-quix-") as state_dir:
        app = Application(
            broker_address=settings.kafka.bootstrap_servers,
            consumer_group=group,
            auto_offset_reset="earliest",
            state_dir=state_dir,
            rocksdb_options=options,
            on_message_processed=processed,
            loglevel="WARNING",
        )
        source = app.topic(topic, key_deserializer="bytes", value_deserializer="bytes")
        sink = app.topic(out, key_serializer="bytes", value_serializer="bytes")
        sdf = app.dataframe(source)
        if job == "count":

            def count(value: bytes, state: Any) -> bytes | None:
                nonlocal seen
                seen += 1
                e = orjson.loads(value)
                c = state.get("n", 0) + 1
                state.set("n", c)
                return orjson.dumps({"k": e["kind"], "n": c}) if c == 3 else None

            sdf = sdf.apply(count, stateful=True)
        else:

            def pair(value: bytes, state: Any) -> bytes | None:
                # one interaction keyed by its pair, or an array of a partition's
                # interactions keyed by the partition: either way, a state per pair
                nonlocal seen
                decoded = records.decode(value)
                seen += len(decoded.interactions)
                by_pair: dict[str, list[Interaction]] = {}
                for interaction in decoded.interactions:
                    by_pair.setdefault(interaction.key, []).append(interaction)
                made_all = []
                for key, items in by_pair.items():
                    name = key.encode()
                    raw = state.get(name)
                    before = s = None if raw is None else PairState.decode(raw)
                    for interaction in items:
                        s, made = receive(s, interaction, policy)
                        made_all.extend(made)
                    if s is not None and s is not before:
                        state.set(name, s.encode())
                if not made_all:
                    return None
                return orjson.dumps([m.model_dump(mode="json") for m in made_all])

            sdf = sdf.apply(pair, stateful=True)
        sdf = sdf.filter(lambda v: v is not None)
        sdf.to_topic(sink)
        app.run()
    assert first is not None, "no record was processed"
    seconds = last - first[0]
    return {"events": seen, "seconds": seconds, "events_per_s": (seen - first[1]) / seconds}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("job", choices=["count", "pairs"])
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--events", type=int, required=True)
    args = ap.parse_args()
    print(json.dumps(run(args.job, args.topic, args.out, args.group, args.events)), flush=True)


if __name__ == "__main__":
    main()
