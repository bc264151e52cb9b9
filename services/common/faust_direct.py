"""Batches straight from faust's fetcher: the seam the matcher's hot path goes through.

faust delivers each record through its conductor, a channel queue and a stream iterator,
awaiting a two-task ``wait_first`` per record; profiled under ``make bench`` on one event per
record, that machinery (not the matcher's work) took most of the worker's CPU, and the
matcher ran at about a third of Quix Streams doing the same work (docs/benchmarks.md).

A topic registered with :func:`deliver_in_batches` skips it: the consumer's fetch loop (faust's
own ``_drain_messages``, copied from faust-streaming 0.15, whose behaviour for every other
topic is unchanged) collects the topic's records over one or more fetches, until a batch is
full or as old as its wait (the matcher: ``MATCHER__BATCH_RECORDS``, ``__BATCH_WAIT_MS``;
a batch is one Kafka transaction, so a live trickle must not make one per record), awaits
the handler once with all of them, then acknowledges them. Everything else faust does for a
record stays:

- the topic is still subscribed through its agent, so partitions are assigned with the tables
  that are co-partitioned with it (the matcher's pairs), and recovered before delivery;
- offsets: a record is acknowledged only after the handler returned, or once the commit it
  returned is done (the matcher's transaction), and faust commits acknowledged offsets as for
  any stream (read offsets and gaps are kept the same way);
- rebalances: the batch is tracked as unacknowledged while it is handled, so faust's
  ``wait_empty`` before a revocation waits for it; records collected when a rebalance begins,
  or across one (another generation of the group), are never delivered nor acknowledged:
  the seek that ends the rebalance fetches them again, for whoever holds them then.

Every faust worker of the project runs this loop (with no batch topics it delivers as faust
does), for one more thing: offsets skipped after a partition's last record (transaction
markers) are booked as done, so that the committed offset reaches the end (`_past_markers`).

The handler must not raise (the matcher's dead-letters what it cannot handle and stops the
worker on a Kafka error, see ``services.matcher.handlers.Matcher.match``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.types import Message
from mode import Service

#: a batch handler returns None (done: the records are acknowledged), or a future that
#: completes when its outputs are committed (the records are acknowledged then)
BatchHandler = Callable[[Sequence[Message]], Awaitable["asyncio.Future[None] | None"]]

_ATTR = "_realconnect_direct_batches"


@dataclass(frozen=True)
class Direct:
    handler: BatchHandler
    #: a batch closes at this many records, or ``max_wait_s`` after its first record
    max_records: int
    max_wait_s: float


def deliver_in_batches(
    app: faust.App,
    topic: str,
    handler: BatchHandler,
    max_records: int = 5000,
    max_wait_s: float = 0.1,
) -> None:
    """Hand ``topic``'s records to ``handler`` in batches (the records of one or more fetches,
    at most ``max_records``, closed ``max_wait_s`` after the first), instead of to its agent."""
    handlers: dict[str, Direct] = getattr(app, _ATTR, None) or {}
    handlers[topic] = Direct(handler, max_records, max_wait_s)
    setattr(app, _ATTR, handlers)


def batch_handlers(app: Any) -> dict[str, Direct]:
    return cast(dict[str, Direct], getattr(app, _ATTR, None) or {})


class DirectBatches:
    """The fetch loop of a faust consumer with direct batch topics (a mixin of the
    transport's Consumer: ``services.common.faust_fixes.Consumer``)."""

    async def _drain_messages(self, fetcher: Any) -> None:
        this = cast(Any, self)
        handlers = batch_handlers(this.app)
        callback = this.callback
        getmany = this.getmany
        consumer_should_stop = cast(Service, this)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = this._read_offset.__getitem__
        set_read_offset = this._read_offset.__setitem__
        set_flag = this.diag.set_flag
        unset_flag = this.diag.unset_flag
        commit_every = this._commit_every
        acks_enabled_for = this.app.topics.acks_enabled_for

        yield_every = 100
        num_since_yield = 0
        # records collected for the batch topics, not delivered yet: since when, and in which
        # generation of the group (a batch that spans a rebalance is never delivered)
        batches: dict[str, list[Message]] = {}
        since = 0.0
        generation = None
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                timeout = 1.0
                if batches:
                    wait = min(handlers[topic].max_wait_s for topic in batches)
                    timeout = max(0.0, since + wait - time.monotonic())
                ait = getmany(timeout=timeout)
                await this.sleep(0)
                if not this.should_stop:
                    async for tp, message in ait:
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is not None and offset < r_offset:
                            continue  # faust's "DROPPED MESSAGE": read already
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await this._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and this._n_acked >= commit_every:
                            this._n_acked = 0
                            await this.commit()
                        batch = batches.get(tp.topic)
                        if batch is not None or tp.topic in handlers:
                            if batch is None:
                                if not batches:
                                    since = time.monotonic()
                                    generation = this.app.consumer_generation_id
                                batch = batches[tp.topic] = []
                            batch.append(message)
                            set_read_offset(tp, offset)
                            continue
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await asyncio.sleep(0)
                            num_since_yield = 0
                        await this.wait_first(callback(message), this.suspend_flow.wait())
                        set_read_offset(tp, offset)
                    if batches and self._due(batches, handlers, since):
                        ready, batches = batches, {}
                        for topic, batch in ready.items():
                            direct = handlers[topic]
                            for start in range(0, len(batch), direct.max_records):
                                chunk = batch[start : start + direct.max_records]
                                await self._deliver(direct.handler, chunk, generation)
                    await self._past_markers()
                unset_flag(CONSUMER_FETCHING)
        except this.consumer_stopped_errors:
            if this.transport.app.should_stop:
                this.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if this.transport.app.should_stop:
                this.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            this.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    def _due(
        self, batches: dict[str, list[Message]], handlers: dict[str, Direct], since: float
    ) -> bool:
        """Whether the collected records are to be delivered now: a batch is full, one is as
        old as its wait, or a rebalance began (then `_deliver` drops them)."""
        this = cast(Any, self)
        if this.suspend_flow.is_set():
            return True
        age = time.monotonic() - since
        return any(
            len(batch) >= handlers[t].max_records or age >= handlers[t].max_wait_s
            for t, batch in batches.items()
        )

    async def _deliver(self, handler: BatchHandler, batch: list[Message], generation: Any) -> None:
        this = cast(Any, self)
        if this.suspend_flow.is_set() or this.app.consumer_generation_id != generation:
            # a rebalance began, or happened while the records were collected: not delivered
            # and never acknowledged (the commit stops before them); the seek that ends the
            # rebalance fetches them again, for whoever holds their partitions now
            return
        this._unacked_messages.update(batch)  # wait_empty waits for the batch
        try:
            committing = await handler(batch)
        except BaseException:
            this._unacked_messages.difference_update(batch)
            raise
        if committing is None:
            for message in batch:
                this.ack(message)
            return

        def acknowledge(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:
                for message in batch:
                    this.ack(message)

        committing.add_done_callback(acknowledge)

    async def _past_markers(self) -> None:
        """Offsets the consumer moved past without delivering a record: on a topic written
        in transactions, read ``read_committed``, the commit and abort markers and an aborted
        transaction's records. Between two records faust books them as a gap (done); after
        the last record nothing would, and the group's committed offset would stay short of
        the partition's end for good (a lag of one per transaction that never drains). Here,
        once everything fetched so far has been delivered and acknowledged (the end of an
        iteration of this loop, no record of the partition unacknowledged), a partition whose
        position is past its read offset gets that span booked as done."""
        this = cast(Any, self)
        if this.suspend_flow.is_set():
            return  # a rebalance: records may have been fetched and not delivered
        thread = getattr(this, "_thread", None)
        consumer = getattr(thread, "_consumer", None)
        if consumer is None:
            return
        subscription = consumer._subscription
        read = this._read_offset
        unacked = {m.tp for m in this._unacked_messages} if this._unacked_messages else set()
        for tp, r_offset in list(read.items()):
            if r_offset is None or tp in unacked or not this.app.topics.acks_enabled_for(tp.topic):
                continue
            try:
                if not subscription.is_assigned(tp):
                    continue
                state = subscription.subscription.assignment.state_value(tp)
                position = state.position if state.has_valid_position else None
            except (KeyError, AttributeError, AssertionError):  # moved away: nothing to book
                continue
            if position is not None and position > r_offset + 1:
                # booked as acknowledged (a gap is only folded in with a later ack, and after
                # the last record there is none)
                acked, index = this._acked[tp], this._acked_index[tp]
                for offset in range(r_offset + 1, position):
                    if offset not in index:
                        index.add(offset)
                        acked.append(offset)
                read[tp] = position - 1
