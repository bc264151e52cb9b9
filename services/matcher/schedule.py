"""When buffered events become due: the matcher's event-time schedule, per partition.

A pair's events are buffered for ``lateness_s`` of event time (``pairs.receive``) so that the
order they arrive in does not change the result. A partition's watermark is its newest event
time less the lateness; a buffered event at or before it is due. This module keeps the pairs
that have something buffered (``pending``: pair key -> its earliest buffered event time), the
same as a min-heap so that a flush touches only what is due, the watermarks, and decides when
a partition needs a tick: a quiet partition's watermark does not move by itself.

No I/O: the matcher's agents feed it and act on its answers.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Iterable

from typing_extensions import TypedDict


class FlushTick(TypedDict):
    """Apply buffered events up to ``until`` (None: all of them)."""

    until: float | None


class DueIndex:
    """The buffered pairs of each partition and the partitions' watermarks."""

    def __init__(self) -> None:
        # pair key -> its earliest buffered event time, by partition
        self.pending: dict[int, dict[bytes, float]] = defaultdict(dict)
        # the same as a min-heap per partition of (earliest time, pair key), possibly with
        # stale entries (a pair's earliest time changed): a flush pops only what is due
        self._heap: dict[int, list[tuple[float, bytes]]] = defaultdict(list)
        self.newest: dict[int, float] = {}  # newest event time seen per partition
        self.last_event: dict[int, float] = {}  # clock time of the last record per partition
        self.next_offset: dict[int, int] = {}  # offset after the last record handled
        #: False after a (re)start or a rebalance, until `rebuild` (see the matcher's ticks)
        self.built = False

    def note(self, partition: int, key: bytes, earliest: float | None) -> None:
        """A pair was written with ``earliest`` as its earliest buffered event (None: none)."""
        index = self.pending[partition]
        if earliest is None:
            index.pop(key, None)
        elif index.get(key) != earliest:
            index[key] = earliest
            heapq.heappush(self._heap[partition], (earliest, key))

    def discard(self, partition: int, key: bytes) -> None:
        """The pair is gone, or has nothing buffered any more (its heap entry goes stale)."""
        self.pending[partition].pop(key, None)

    def buffered(self, partition: int) -> int:
        """How many pairs of the partition have buffered events."""
        return len(self.pending[partition])

    def saw(self, partition: int, newest: float | None, now: float) -> None:
        """A record of the partition was handled at clock time ``now``; ``newest`` is the
        newest event time seen in the partition so far."""
        if newest is not None:
            self.newest[partition] = newest
        self.last_event[partition] = now

    def take_due(self, partition: int, until: float | None) -> list[bytes]:
        """The pairs of ``partition`` whose earliest buffered event is at or before ``until``
        (all, for None), taken off the heap; entries made stale by later writes are skipped."""
        heap, index = self._heap[partition], self.pending[partition]
        if until is None:
            heap.clear()
            return list(index)
        due: dict[bytes, None] = {}  # once each, in order (the heap can hold a pair twice)
        while heap and heap[0][0] <= until:
            ts, key = heapq.heappop(heap)
            if index.get(key) == ts:
                due[key] = None
        return list(due)

    def due_until(self, partition: int, lateness_s: float, *, strict: bool = False) -> float | None:
        """The partition's watermark (its newest event time less the lateness; ``strict``:
        just before it, so that its newest instant keeps waiting) if some buffered pair may
        be due by it; None if none is."""
        if partition not in self.newest:
            return None
        until = self.newest[partition] - lateness_s
        if strict:
            until = math.nextafter(until, -math.inf)
        heap = self._heap[partition]  # may hold stale entries: then a flush finds nothing
        return until if heap and heap[0][0] <= until else None

    def rebuild(self, buffered: Iterable[tuple[int, bytes, float]]) -> None:
        """Start again from ``(partition, pair key, earliest buffered time)`` of every stored
        pair with buffered events: after a start or a rebalance a partition may come back
        holding buffers another worker wrote."""
        self.pending.clear()
        self._heap.clear()
        for partition, key, earliest in buffered:
            self.pending[partition][key] = earliest
        for partition, index in self.pending.items():
            self._heap[partition] = [(ts, key) for key, ts in index.items()]
            heapq.heapify(self._heap[partition])
        self.built = True

    def tick(
        self,
        partition: int,
        *,
        now: float,
        idle_flush_s: float,
        lateness_s: float,
        behind: Callable[[], bool],
        strict: bool = False,
    ) -> FlushTick | None:
        """The tick to send to a partition, or None when it needs none.

        A partition's watermark moves with its records, and each record applies what its
        watermark made due: only a quiet partition (no record for ``idle_flush_s`` *and* none
        waiting, ``behind``: in a backlog a partition can wait its turn longer than that) is
        flushed whole, and one whose pairs were buffered before this worker saw any of its
        records is flushed whole too."""
        if not self.pending[partition]:
            return None
        quiet = now - self.last_event.get(partition, 0.0) >= idle_flush_s
        if partition in self.newest and (not quiet or behind()):
            until = self.due_until(partition, lateness_s, strict=strict)
            return None if until is None else {"until": until}
        return {"until": None}
