"""Merge the calls of concurrent requests into one round trip (group commit).

Every single-event ingest request asks Redis twice: is this id new (MGET), and, once Kafka
has it, mark it and count it (a pipeline). At thousands of requests a second, each a round
trip of its own, Redis's client code was a quarter of an ingest process's CPU. A
``Coalescer`` gathers the items of every call made while the previous round trip is in
flight (or in the same event-loop turn) and sends them as one; each caller gets its own
results, or the round trip's exception, exactly as if it had called alone. Nothing waits for
a timer: an idle service sends each call at once, a busy one sends bigger batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """``await coalescer(items)`` returns ``run(items)``'s results for those items, where
    ``run`` receives the items of every caller of the same batch, in call order, and must
    return one result per item."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]]) -> None:
        self._run = run
        self._queue: list[tuple[Sequence[T], asyncio.Future[list[R]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, items: Sequence[T]) -> list[R]:
        if not items:
            return []
        fut: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._queue.append((items, fut))
        if self._flusher is None:
            # started on the next loop turn: the callers already scheduled join this batch
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                flat = [item for items, _ in batch for item in items]
                try:
                    results = await self._run(flat)
                    if len(results) != len(flat):
                        raise RuntimeError(f"{len(results)} results for {len(flat)} items")
                except asyncio.CancelledError:
                    for _, fut in batch:
                        fut.cancel()
                    raise
                except Exception as exc:  # each caller gets the round trip's error
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                start = 0
                for items, fut in batch:
                    if not fut.done():  # a caller cancelled meanwhile
                        fut.set_result(results[start : start + len(items)])
                    start += len(items)
        finally:
            self._flusher = None
            for _, fut in self._queue:  # only left over when cancelled (shutdown)
                if not fut.done():
                    fut.cancel()
            self._queue = []
