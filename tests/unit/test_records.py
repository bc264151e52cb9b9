"""The two layouts of the ``interactions`` topic (services/common/records.py)."""

from __future__ import annotations

from itertools import pairwise

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common import records
from tests.factories import interaction


def test_partition_for_matches_kafkas_default_partitioner() -> None:
    # reference values of murmur2 (Kafka's Java DefaultPartitioner / Utils.murmur2)
    from aiokafka.partitioner import DefaultPartitioner

    keys = [b"alice|bob", b"x", b"higgs:1|higgs:2", "ann|zoë".encode()]
    for key in keys:
        expected = DefaultPartitioner()(key, list(range(12)), list(range(12)))
        assert records.partition_for(key, 12) == expected


@settings(max_examples=500, deadline=None)
@given(key=st.binary(max_size=200), partitions=st.integers(1, 64))
def test_the_c_murmur2_partitions_exactly_as_aiokafkas_pure_python_one(
    key: bytes, partitions: int
) -> None:
    from aiokafka.partitioner import DefaultPartitioner

    every = list(range(partitions))
    expected = DefaultPartitioner()(key, every, every)
    assert records.partition_for(key, partitions) == expected
    assert records.KafkaPartitioner()(key, every, every) == expected


def test_single_layout_is_one_keyed_record_per_interaction() -> None:
    events = [interaction("bob", "alice"), interaction("cat", "dan")]
    out = records.encode(events, 12, 1)
    assert [(r.key, r.partition, r.count) for r in out] == [
        (b"alice|bob", None, 1),
        (b"cat|dan", None, 1),
    ]
    assert records.decode(out[0].value).interactions == [events[0]]
    assert not records.decode(out[0].value).batch


@settings(max_examples=50, deadline=None)
@given(
    people=st.lists(st.integers(0, 40), min_size=2, max_size=300),
    per_record=st.integers(2, 50),
    partitions=st.integers(1, 16),
)
def test_arrays_keep_every_interaction_once_in_its_pairs_partition_and_order(
    people: list[int], per_record: int, partitions: int
) -> None:
    events = [interaction(f"p{a}", f"p{b}") for a, b in pairwise(people) if a != b]
    out = records.encode(events, partitions, per_record)
    seen = []
    for r in out:
        assert r.key is None and r.partition is not None
        d = records.decode(r.value)
        assert d.batch and not d.invalid and len(d.interactions) == r.count <= per_record
        for i in d.interactions:
            assert records.partition_for(i.key.encode(), partitions) == r.partition
        seen += d.interactions
    assert sorted(seen, key=lambda i: i.event_id) == sorted(events, key=lambda i: i.event_id)
    # within a partition (hence within a pair), the input order is kept
    for p in range(partitions):
        mine = [i for i in events if records.partition_for(i.key.encode(), partitions) == p]
        assert [i for i in seen if i in mine] == mine


def test_arrays_stay_under_the_byte_bound_and_a_huge_one_travels_alone() -> None:
    events = [interaction("a", "b", text="x" * 3000) for _ in range(20)]
    out = records.encode(events, 1, 500, max_bytes=10_000)
    assert all(len(r.value) <= 10_000 for r in out)
    assert sum(r.count for r in out) == 20
    alone = records.encode([interaction("a", "b", text="y" * 9000)], 1, 500, max_bytes=1000)
    assert [r.count for r in alone] == [1]


def test_a_poison_element_is_isolated_and_its_neighbours_kept() -> None:
    good = [interaction("a", "b"), interaction("c", "d")]
    items = [orjson.loads(good[0].model_dump_json()), {"kind": "hug"}, 7]
    items.append(orjson.loads(good[1].model_dump_json()))
    d = records.decode(orjson.dumps(items))
    assert d.batch and d.interactions == good
    assert [orjson.loads(v) for v, _ in d.invalid] == [{"kind": "hug"}, 7]
    assert all("validation error" in e for _, e in d.invalid)


def test_undecodable_records_are_reported_never_raised() -> None:
    for value in (None, b"", b"not json", b"[1, 2", b'{"source": 1}', b"\xff\xfe"):
        d = records.decode(value)
        assert d.interactions == [] and len(d.invalid) == 1
