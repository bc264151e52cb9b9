"""Coalescer: concurrent calls share one round trip; each caller gets its own results or the
round trip's error, as if it had called alone."""

from __future__ import annotations

import asyncio

import pytest

from services.common.coalesce import Coalescer


class Backend:
    """Records each round trip; answers each item with its double, slowly."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[list[int]] = []
        self.fail = fail
        self.gate = asyncio.Event()
        self.gate.set()

    async def run(self, items: list[int]) -> list[int]:
        self.calls.append(items)
        await self.gate.wait()
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        return [2 * i for i in items]


async def test_concurrent_calls_share_one_round_trip() -> None:
    backend = Backend()
    c: Coalescer[int, int] = Coalescer(backend.run)
    results = await asyncio.gather(*(c([i, i + 100]) for i in range(50)))
    assert results == [[2 * i, 2 * (i + 100)] for i in range(50)]
    assert len(backend.calls) == 1
    assert backend.calls[0] == [x for i in range(50) for x in (i, i + 100)]


async def test_calls_made_during_a_round_trip_go_in_the_next_one() -> None:
    backend = Backend()
    backend.gate.clear()
    c: Coalescer[int, int] = Coalescer(backend.run)
    first = asyncio.ensure_future(c([1]))
    await asyncio.sleep(0.01)  # the first round trip is in flight, held at the gate
    later = [asyncio.ensure_future(c([i])) for i in (2, 3, 4)]
    await asyncio.sleep(0.01)
    assert backend.calls == [[1]]
    backend.gate.set()
    assert await first == [2]
    assert [await f for f in later] == [[4], [6], [8]]
    assert backend.calls == [[1], [2, 3, 4]]


async def test_an_idle_coalescer_sends_a_lone_call_at_once() -> None:
    backend = Backend()
    c: Coalescer[int, int] = Coalescer(backend.run)
    assert await asyncio.wait_for(c([7]), timeout=1) == [14]
    assert await c([]) == []
    assert backend.calls == [[7]]


async def test_every_caller_of_a_failed_round_trip_gets_its_error_and_the_next_works() -> None:
    backend = Backend(fail=ConnectionError("redis down"))
    c: Coalescer[int, int] = Coalescer(backend.run)
    outcomes = await asyncio.gather(c([1]), c([2]), c([3]), return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    backend.fail = None
    assert await c([5]) == [10]


async def test_a_backend_answering_the_wrong_number_of_results_is_an_error() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    c: Coalescer[int, int] = Coalescer(short)
    with pytest.raises(RuntimeError, match="2 results for 3 items"):
        await asyncio.gather(c([1, 2]), c([3]))


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    backend = Backend()
    backend.gate.clear()
    c: Coalescer[int, int] = Coalescer(backend.run)
    gone = asyncio.ensure_future(c([1]))
    stays = asyncio.ensure_future(c([2]))
    await asyncio.sleep(0.01)
    gone.cancel()
    backend.gate.set()
    assert await stays == [4]
    assert gone.cancelled()
