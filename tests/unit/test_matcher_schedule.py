"""The matcher's event-time schedule alone (``services.matcher.schedule``): which buffered
pairs are due, the partitions' watermarks, and which partitions need a tick. Expected values
are worked by hand from the times given."""

from __future__ import annotations

from services.matcher.schedule import DueIndex

LATE = 100.0  # lateness in these tests


def test_only_pairs_whose_earliest_buffered_event_is_due_are_taken_in_time_order() -> None:
    due = DueIndex()
    due.note(0, b"c", 30.0)
    due.note(0, b"a", 10.0)
    due.note(0, b"b", 20.0)
    due.note(1, b"x", 5.0)  # another partition
    assert due.take_due(0, 20.0) == [b"a", b"b"]
    assert due.take_due(0, 20.0) == []  # taken off the heap
    assert due.pending[0] == {b"a": 10.0, b"b": 20.0, b"c": 30.0}  # still buffered until saved
    assert due.take_due(1, 4.0) == []
    assert due.take_due(1, 5.0) == [b"x"]


def test_a_pair_whose_earliest_time_moved_is_due_by_its_new_time_only() -> None:
    due = DueIndex()
    due.note(0, b"a", 10.0)
    due.note(0, b"a", 50.0)  # its early events were applied; a later one is buffered
    assert due.take_due(0, 20.0) == []  # the entry for 10.0 is stale
    assert due.take_due(0, 50.0) == [b"a"]
    due.note(0, b"b", 5.0)
    due.note(0, b"b", None)  # nothing buffered any more
    assert due.take_due(0, 100.0) == []
    assert due.buffered(0) == 1  # a


def test_flushing_everything_takes_every_buffered_pair() -> None:
    due = DueIndex()
    due.note(2, b"a", 10.0)
    due.note(2, b"b", 1e12)
    assert sorted(due.take_due(2, None)) == [b"a", b"b"]


def test_the_watermark_is_the_newest_event_time_less_the_lateness() -> None:
    due = DueIndex()
    assert due.due_until(0, LATE) is None  # no record seen
    due.note(0, b"a", 1_000.0)
    due.saw(0, 1_050.0, now=1.0)
    assert due.due_until(0, LATE) is None  # watermark 950: nothing due yet
    due.saw(0, 1_100.0, now=2.0)
    assert due.due_until(0, LATE) == 1_000.0
    due.saw(0, None, now=3.0)  # a record with nothing kept: the watermark stays
    assert due.newest[0] == 1_100.0 and due.last_event[0] == 3.0


def test_a_rebuilt_index_holds_exactly_the_stored_buffers() -> None:
    due = DueIndex()
    due.note(0, b"gone", 1.0)
    assert not due.built
    due.rebuild([(0, b"a", 7.0), (3, b"b", 2.0), (3, b"c", 9.0)])
    assert due.built
    assert due.pending == {0: {b"a": 7.0}, 3: {b"b": 2.0, b"c": 9.0}}
    assert due.take_due(3, 8.0) == [b"b"]
    assert due.take_due(0, 100.0) == [b"a"]


def ticker(due: DueIndex, p: int, now: float, behind: bool = False) -> object:
    asked: list[int] = []

    def waiting() -> bool:
        asked.append(p)
        return behind

    tick = due.tick(p, now=now, idle_flush_s=5.0, lateness_s=LATE, behind=waiting)
    return tick, bool(asked)


def test_ticks_flush_quiet_partitions_whole_and_busy_ones_to_their_watermark() -> None:
    due = DueIndex()
    assert ticker(due, 0, now=100.0) == (None, False)  # nothing buffered: no tick
    due.note(0, b"a", 1_000.0)
    # buffered before this worker saw a record of the partition: flushed whole
    assert ticker(due, 0, now=100.0) == ({"until": None}, False)
    due.saw(0, 1_200.0, now=100.0)
    # busy (a record 1 s ago): to the watermark 1,100, without asking about a backlog
    assert ticker(due, 0, now=101.0) == ({"until": 1_100.0}, False)
    due.note(1, b"b", 1_000.0)
    due.saw(1, 1_060.0, now=101.0)
    assert ticker(due, 1, now=102.0) == (None, False)  # watermark 960: nothing due
    # quiet for 5 s, nothing waiting: flushed whole
    assert ticker(due, 0, now=106.0) == ({"until": None}, True)
    # quiet but with records waiting in a backlog: only to the watermark
    assert ticker(due, 0, now=106.0, behind=True) == ({"until": 1_100.0}, True)
    # ... and nothing at all while nothing is due by it
    assert ticker(due, 1, now=106.0, behind=True) == (None, True)
