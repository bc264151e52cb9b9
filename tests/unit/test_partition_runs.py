"""PartitionRuns: the order in which a fetch's records reach the streams."""

from __future__ import annotations

from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from services.common.faust_transport import PartitionRuns


def fetch(sizes: dict[tuple[str, int], int]) -> dict[TP, list[tuple[str, int, int]]]:
    return {
        TP(topic, p): [(topic, p, offset) for offset in range(n)] for (topic, p), n in sizes.items()
    }


def test_a_topic_comes_a_run_of_one_partition_at_a_time() -> None:
    records = fetch({("interactions", 0): 20, ("interactions", 1): 3, ("interactions", 2): 16})
    order = [(tp.partition, m[2]) for tp, m in PartitionRuns().iterate(records)]
    assert order == (
        [(0, o) for o in range(16)]
        + [(1, o) for o in range(3)]
        + [(2, o) for o in range(16)]
        + [(0, o) for o in range(16, 20)]
    )


def test_topics_alternate_record_by_record() -> None:
    records = fetch({("interactions", 0): 3, ("ticks", 0): 2})
    topics = [tp.topic for tp, _ in PartitionRuns().iterate(records)]
    assert topics == ["interactions", "ticks", "interactions", "ticks", "interactions"]


@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 5)),
        st.integers(0, 40),
        max_size=10,
    )
)
def test_every_record_once_and_each_partition_in_order(sizes: dict[tuple[str, int], int]) -> None:
    records = fetch(sizes)
    out = [m for _, m in PartitionRuns().iterate(records)]
    assert sorted(out) == sorted(m for ms in records.values() for m in ms)
    for tp, messages in records.items():
        assert [m for m in out if (m[0], m[1]) == (tp.topic, tp.partition)] == messages
