"""How interactions travel on the ``interactions`` topic (pure: no I/O).

Two layouts, both read by the matcher:

- **one per record**, keyed by the unordered pair (``alice|bob``): the simple layout, what
  any Kafka client can produce;
- **several per record**: a JSON array of interactions that all belong to the record's
  partition (the partition of each pair key under Kafka's default partitioner, murmur2), sent
  to that partition explicitly, with no key. Faust's per-record cost (consumer fetch, stream
  machinery, acks, offsets) is then paid once per array instead of once per interaction;
  the pair states still live in the partition that owns the pair, exactly as in the simple
  layout, so both layouts give identical results.

Producers group by partition with :func:`encode`; the matcher decodes with :func:`decode`,
which keeps the valid interactions of a partly-invalid array and returns the invalid
elements on their own (each is dead-lettered alone: nothing valid is held back by a poison
neighbour).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from murmurhash2 import murmurhash2
from pydantic import ValidationError

from schemas.events import INTERACTION_ADAPTER, INTERACTION_LIST_ADAPTER, Interaction

#: the seed of Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2)
KAFKA_SEED = 0x9747B28C


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java and aiokafka alike) picks for ``key``.
    The C murmur2 gives the same hash as aiokafka's pure-Python one at 1/40 of the cost
    (6 us a key here; it ran twice per event)."""
    return (murmurhash2(key, KAFKA_SEED) & 0x7FFFFFFF) % partitions


class KafkaPartitioner:
    """aiokafka's ``DefaultPartitioner`` on the C murmur2 (the same partitions): keyed
    records land where the Java client and :func:`partition_for` put them."""

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[partition_for(key, len(all_partitions))]


@dataclass(frozen=True)
class Record:
    """One Kafka record to produce: ``partition`` is None for keyed single records."""

    key: bytes | None
    value: bytes
    partition: int | None
    count: int


#: Upper bound of one array record's value: well under the broker's default
#: ``message.max.bytes`` (1 MiB), whatever the texts' lengths.
MAX_RECORD_BYTES = 512 * 1024


def encode(
    interactions: Iterable[Interaction],
    partitions: int,
    per_record: int,
    max_bytes: int = MAX_RECORD_BYTES,
) -> list[Record]:
    """Records for ``interactions``, in input order within each partition.

    ``per_record`` <= 1 gives the simple keyed layout; otherwise interactions are grouped by
    partition and packed into JSON arrays of at most ``per_record`` interactions and about
    ``max_bytes`` (an interaction larger than that travels alone).
    """
    if per_record <= 1:
        return [Record(i.key.encode(), i.model_dump_json().encode(), None, 1) for i in interactions]
    groups: dict[int, list[bytes]] = {}
    for i in interactions:
        groups.setdefault(partition_for(i.key.encode(), partitions), []).append(
            i.model_dump_json().encode()
        )
    out = []
    for p, items in groups.items():
        chunk: list[bytes] = []
        size = 0
        for item in items:
            if chunk and (len(chunk) >= per_record or size + len(item) > max_bytes):
                out.append(Record(None, b"[" + b",".join(chunk) + b"]", p, len(chunk)))
                chunk, size = [], 0
            chunk.append(item)
            size += len(item) + 1
        if chunk:
            out.append(Record(None, b"[" + b",".join(chunk) + b"]", p, len(chunk)))
    return out


@dataclass(frozen=True)
class Decoded:
    interactions: list[Interaction] = field(default_factory=list)
    #: (the offending bytes, the error) for each element that is not a valid interaction
    invalid: list[tuple[bytes, str]] = field(default_factory=list)
    #: whether the record was an array (several interactions, no key)
    batch: bool = False


def decode(value: bytes | None) -> Decoded:
    """The interactions in one record of either layout; never raises."""
    if not value:
        return Decoded(invalid=[(value or b"", "empty record")])
    batch = value.lstrip()[:1] == b"["
    try:
        if batch:
            return Decoded(INTERACTION_LIST_ADAPTER.validate_json(value), batch=True)
        return Decoded([INTERACTION_ADAPTER.validate_json(value)])
    except ValidationError as exc:
        if not batch:
            return Decoded(invalid=[(value, str(exc))])
        whole_error = str(exc)
    # An array with some invalid elements: keep the valid ones, isolate the others.
    try:
        items = orjson.loads(value)
    except orjson.JSONDecodeError:
        return Decoded(invalid=[(value, whole_error)], batch=True)
    if not isinstance(items, list):  # pragma: no cover - an array by its first byte
        return Decoded(invalid=[(value, whole_error)], batch=True)
    good: list[Interaction] = []
    bad: list[tuple[bytes, str]] = []
    for item in items:
        raw = orjson.dumps(item)  # JSON mode: the schema is strict about Python types
        try:
            good.append(INTERACTION_ADAPTER.validate_json(raw))
        except ValidationError as exc:
            bad.append((raw, str(exc)))
    return Decoded(good, bad, batch=True)
