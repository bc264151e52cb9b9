"""The circle stage's record handling (services.matcher.circle_stage) over a dict standing in
for faust's global table (the real table, topics and worker are in
tests/integration/test_circles_pipeline.py)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.people import person_hash
from services.common import records
from services.matcher import circles, scoring
from services.matcher.circle_stage import BadActivity, CircleStage, activity_of, parse
from tests.factories import circle_stage, interaction, write_circles

N = 12


def stage(k: int = 150) -> tuple[CircleStage, dict[bytes, bytes]]:
    return circle_stage(partitions=N, k=k)


def test_meaningful_interactions_become_two_entries_in_their_people_s_partitions() -> None:
    reply = interaction("ann", "ben", kind="reply", text="how was the trip to Porto last week?")
    like = interaction("ann", "ben", kind="like")
    out = activity_of([(i, scoring.weight(i)) for i in (reply, like)], N)
    entries = [e for es in out.values() for e in es]
    assert sorted((p, q) for p, q, _, _ in entries) == [("ann", "ben"), ("ben", "ann")]
    for p, es in out.items():
        assert all(records.partition_for(e[0].encode(), N) == p for e in es)
    assert all(e[3] == reply.occurred_at.timestamp() for e in entries)


def test_a_redelivered_record_is_folded_once() -> None:
    s, table = stage()
    entries = parse(orjson.dumps([["ann", "ben", 1.0, 1.7e9], ["ben", "ann", 1.0, 1.7e9]]))
    assert s.fold(entries, offset=5, forgotten=set()) == 2
    again = s.fold(entries, offset=5, forgotten=set())  # the same record after a crash
    assert again == 0
    ann = s.get("ann")
    assert ann is not None and ann.exchanges == 1 and ann.applied == 5
    assert s.fold(entries, offset=6, forgotten=set()) == 2  # the next record counts
    assert table == {}  # staged: in the store once written out and acknowledged
    write_circles(s)
    assert circles.Circle.decode(table[b"ann"]).exchanges == 2


PEOPLE = ["ann", "ben", "cat", "dan", "eve"]
ENTRY = st.tuples(
    st.sampled_from(PEOPLE),
    st.sampled_from(PEOPLE),
    st.floats(0.1, 1.0),
    st.floats(1.7e9, 1.7e9 + 90 * 86_400),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(ENTRY, min_size=1, max_size=6), min_size=1, max_size=8),
    st.integers(0, 7),
    st.integers(1, 8),
)
def test_a_batch_folds_as_its_records_one_at_a_time(
    batch: list[list[tuple[str, str, float, float]]], crash_after: int, k: int
) -> None:
    """`fold_many` over a batch equals `fold` of each record in offset order, also when the
    batch is redelivered after part of it was folded (the circles skip what they have)."""
    one, one_table = stage(k=k)
    for offset, entries in enumerate(batch):
        one.fold(entries, offset, set())
    many, many_table = stage(k=k)
    for offset, entries in enumerate(batch[:crash_after]):  # folded before a crash
        many.fold(entries, offset, set())
    many.fold_many([(entries, offset) for offset, entries in enumerate(batch)], set())
    write_circles(one)
    write_circles(many)
    assert many_table == one_table
    assert many.fold_many([(e, o) for o, e in enumerate(batch)], set()) == 0  # all folded


def test_a_circle_at_its_bound_keeps_its_size() -> None:
    s, _ = stage(k=3)
    s.fold([("star", f"fan{i}", 0.5, 1.7e9 + i) for i in range(1000)], 0, set())
    star = s.get("star")
    assert star is not None and len(star.entries) == 3 and star.partners_seen == 1000


def test_forgetting_deletes_the_circle_and_removes_the_person_from_others() -> None:
    s, table = stage()
    s.fold([("ann", "ben", 1.0, 1.7e9), ("ben", "ann", 1.0, 1.7e9)], 0, set())
    s.fold([("cat", "ben", 1.0, 1.7e9), ("cat", "dan", 1.0, 1.7e9)], 1, set())
    write_circles(s)  # forgetting scans what is written out (after the store settles)
    gone = person_hash("ben")
    changed = sum(s.forget(p, gone) for p in range(N))
    assert changed == 3  # ben's own, and ann's and cat's circles
    write_circles(s)
    assert b"ben" not in table
    ann, cat = s.get("ann"), s.get("cat")
    assert ann is not None and "ben" not in ann.entries
    assert cat is not None and set(cat.entries) == {"dan"}
    # and a later record naming ben is dropped, whoever it is for
    assert s.fold([("ann", "ben", 1.0, 1.8e9)], 2, {gone}) == 0


def test_the_suggestion_gets_the_pair_s_circles_around_it() -> None:
    from tests.unit.test_pairs import POLICY, conversation, fold

    s, _ = stage()
    s.fold(
        [
            ("ann", "ben", 1.0, 1.7e9),
            ("ann", "cat", 1.0, 1.7e9),
            ("ben", "ann", 1.0, 1.7e9),
            ("ben", "cat", 1.0, 1.7e9),
        ],
        0,
        set(),
    )
    _, made = fold(conversation("ann", "ben", per_direction=4, days=3), POLICY)
    assert made
    got = s.around(made[0]).around
    assert got is not None
    assert got.shared_contacts == 1 and got.rank == (1, 1)
    assert got.attention == pytest.approx(0.5) and got.closest == 1.0


@pytest.mark.parametrize(
    "value",
    [None, b"not json", b"{}", b'[["ann", "ben", 2.0, 1]]', b'[["ann", 3, 0.5, 1]]', b"[[1]]"],
)
def test_bad_activity_records_are_refused_clearly(value: bytes | None) -> None:
    with pytest.raises(BadActivity):
        parse(value)
