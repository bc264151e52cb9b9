"""The matcher's record handlers: what each topic's records do to the pair states.

``agents.py`` declares the topics, tables, agents and timers and hands each record here. The
parts this module puts together:

- ``store.PairStore``: the pair states, staged per record and written per batch;
- ``schedule.DueIndex``: which pairs have buffered events and when they fall due;
- ``forgetting.Forgotten``: the people who asked to be forgotten;
- ``answers.answer`` and ``learning``: what an answer changes and teaches;
- ``pairs``: the pure decisions (receive, flush, suggest).

Every handler runs under one lock (see `Matcher.guarded`): the agents share the pair states,
and writing one (staging, pending index, changelog) awaits the producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import os
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, Final, Literal, cast

import faust
import orjson
import structlog
from aiokafka.errors import KafkaError
from faust.streams import _current_event
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError
from typing_extensions import TypedDict

from schemas.events import Interaction, pair_key
from schemas.feedback import FEEDBACK_ADAPTER
from schemas.people import person_hash
from schemas.suggestions import GROUP_ADAPTER, SUGGESTION_ADAPTER, Suggestion
from services.common import records
from services.common.dlq import send_dead_letter
from services.common.redis import Keys
from services.common.rocksdb_store import partition_databases
from services.common.settings import MatcherSettings, Settings
from services.common.transactions import Transactions
from services.matcher import learning, metrics, scoring
from services.matcher import models as model_files
from services.matcher import pairs as logic
from services.matcher.answers import answer
from services.matcher.circle_stage import BadActivity, CircleStage, Entry, activity_of, parse
from services.matcher.circles import Circle
from services.matcher.forgetting import Forgotten, pair_involves
from services.matcher.groups import REMEMBERED, same_table
from services.matcher.schedule import DueIndex, FlushTick
from services.matcher.store import WRITE_OUT_BYTES, PairStore, is_pair

log = structlog.get_logger(__name__)
#: this task is handling a batch under the lock (its sends join the batch's transaction).
#: Per task, not per matcher: the profiles agent takes no lock and dead-letters outside any
#: transaction while another agent's batch is open; a shared flag sent its dead letter into
#: that transaction from a second task (aiokafka "Invalid state transition IN_TRANSACTION ->
#: IN_TRANSACTION", the producer fatal, the worker stopped: CI, test_hostile_records)
_in_batch: contextvars.ContextVar[bool] = contextvars.ContextVar("in_batch", default=False)


@contextlib.contextmanager
def _handling(event: faust.EventT[bytes]) -> Iterator[None]:
    """faust's current event is ``event`` meanwhile: a table write goes to its partition."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class ForgetTick(TypedDict):
    """Drop this partition's pairs of the person with this hash."""

    forget: str


Handler = Callable[[faust.EventT[bytes]], Awaitable[None]]
#: suggestions of one record: (pair key, suggestion, when its trigger reached Kafka)
Made = list[tuple[bytes, Suggestion, float]]

#: the fields of a ``people.profiles`` value the matcher reads
PROFILE_ADAPTER: Final = TypeAdapter(dict[str, Any])
#: what the matcher writes to its own ``matcher.ticks``
TICK_ADAPTER: Final = TypeAdapter(ForgetTick | FlushTick)

#: how long a person's place (city, time zone) is remembered, and how many are
PLACE_TTL_S: Final = 30.0
PLACE_CACHE: Final = 200_000


def policy_from(m: MatcherSettings) -> logic.Policy:
    return logic.Policy(
        lateness_s=m.lateness_s,
        half_life_days=m.half_life_days,
        window_days=m.window_days,
        min_exchanges_per_direction=m.min_exchanges_per_direction,
        min_distinct_days=m.min_distinct_days,
        min_decayed_per_direction=m.min_decayed_per_direction,
        max_silence_days=m.max_silence_days,
        cooldown_days=m.cooldown_days,
        undelivered_retry_days=m.undelivered_retry_days,
        decline_cooldown_days=m.decline_cooldown_days,
        source_bonus=m.source_bonus,
        suggest_early=m.suggest_early,
        apply_in_order=m.apply_in_order,
        model=model_files.load(m.model_path),
        min_probability=m.min_probability,
        closest_top=m.closest_top if m.circles else 0,
        closest_min_probability=m.closest_min_probability,
    )


def learn_config(m: MatcherSettings) -> learning.LearnConfig:
    return learning.LearnConfig(
        min_labels=m.learn_min_labels,
        min_people=m.learn_min_people,
        prior_strength=m.learn_prior_strength,
        max_per_person=m.learn_max_per_person,
    )


def _stop_if_failed(agent: str, committing: asyncio.Future[None]) -> None:
    """A batch's commit failed (or was cancelled): its records must never be acknowledged;
    stop the worker, and they are processed again by the next owner."""
    if committing.cancelled() or committing.exception() is not None:
        error = "cancelled" if committing.cancelled() else repr(committing.exception())
        log.critical("transaction_commit_failed", agent=agent, error=error)
        os._exit(70)


class Delivered:
    """A message handed over by the consumer, in the shape of a faust event (what the
    handlers read: ``message``, ``key``, ``value``)."""

    __slots__ = ("key", "message", "value")

    def __init__(self, message: Any) -> None:
        self.message = message
        self.key = message.key
        self.value = message.value


@dataclasses.dataclass(frozen=True)
class Outputs:
    """Where the matcher writes: faust topics, or for suggestions and dead letters the same
    topics through the open transaction (``services.common.transactions``). Ticks are sent
    by timers, outside any batch."""

    suggestions: Any
    dead_letters: Any
    ticks: faust.TopicT
    #: dead letters of a record handled outside any transaction (a profile): the same topic
    #: through faust's producer (None: ``dead_letters`` is not transactional)
    dead_letters_outside: faust.TopicT | None = None
    #: ``person.activity``, for the circle stage (None: no circles are kept)
    activity: Any = None
    #: ``meetup.groups``, group meetup suggestions (None: no groups are looked for)
    groups: Any = None


class Matcher:
    def __init__(
        self,
        settings: Settings,
        redis: Any,
        *,
        pairs: PairStore,
        table: Any,
        profiles: Any,
        labels: Any,
        topics: Outputs,
        transactions: Transactions | None = None,
        circles: CircleStage | None = None,
        group_marks: Any = None,
    ) -> None:
        self.settings = settings
        self.n = settings.kafka.partitions
        self.keys = Keys(settings)
        self.redis = redis
        self.policy = policy_from(settings.matcher)
        self.prior = self.policy.model  # the shipped model: answers adapt it (see `refit`)
        self.learn = learn_config(settings.matcher)
        self.pairs = pairs
        self.table = table  # faust's table (iterated through faust)
        self.profiles = profiles  # global table: person -> profile JSON
        self.labels = labels  # global table: answers as labelled examples
        self.topics = topics
        #: None: outputs and offsets are not atomic (at least once, deduplicated by id)
        self.transactions = transactions
        self.circles = circles  # each person's circle (services/matcher/circle_stage.py)
        #: the person-relative decision's look-up (None: no circles, the global bar alone)
        self.closest = circles.closest if circles is not None else None
        #: global table: group id -> [partition, offset] of the record that suggested it
        self.group_marks = group_marks
        self.due = DueIndex()
        self.forgotten = Forgotten(redis, self.keys.forgotten)
        # the console's funnel counters of the record being handled, by partition: kept in
        # the table with the record's pair states (PairStore.add_counts), published each second
        self._counting: dict[int, Counter[str]] = {}
        self.lock = asyncio.Lock()
        self._places: dict[str, tuple[float, logic.Place | None]] = {}
        # the profiles' rocksdb database by partition (None: not looked up yet; False: a
        # store without one, the memory store of tests)
        self._profile_db: Callable[[int], Any] | Literal[False] | None = None
        self._fitted_on = 0  # how many labels the current model was fitted on

    # places

    def places(self, person: str) -> logic.Place | None:
        """Where a person is (city, time zone). Every event asks, and a global table look-up
        reads every partition's store: each answer is remembered for PLACE_TTL_S (a changed
        time zone counts from then on), in a bounded dict."""
        now = time.monotonic()
        hit = self._places.get(person)
        if hit is not None and hit[0] > now:
            return hit[1]
        raw = self._profile(person.encode())
        place = None
        if raw is not None:
            p = orjson.loads(raw)
            place = logic.Place(city=p.get("city"), time_zone=p.get("time_zone"))
        if len(self._places) >= PLACE_CACHE:
            self._places.clear()
        self._places[person] = (now + PLACE_TTL_S, place)
        return place

    def _profile(self, key: bytes) -> bytes | None:
        """A person's profile: one rocksdb get in the partition Kafka's partitioner put it
        in (``people.profiles`` is keyed by person), not faust's global table look-up, which
        tries the database of every partition (a tenth of the matcher's time on new people)."""
        if self._profile_db is None:
            self._profile_db = partition_databases(getattr(self.profiles, "data", None)) or False
        db_for = self._profile_db
        if db_for is False or db_for is None:
            return cast(bytes | None, self.profiles.get(key))
        return cast(bytes | None, db_for(records.partition_for(key, self.n)).get(key))

    async def on_profile(self, event: faust.EventT[bytes]) -> None:
        """A ``people.profiles`` record (keyed by person) into the profiles table."""
        assert event.key is not None
        self._places.pop(event.key.decode(errors="replace"), None)
        if event.value is None:
            self.profiles.pop(event.key, None)
            return
        try:
            PROFILE_ADAPTER.validate_json(event.value)
        except ValidationError as exc:  # never stored: a lookup must not fail later
            await self._dead_letter(event, reason="profile", error=str(exc))
            return
        self.profiles[event.key] = event.value

    # batches

    async def guarded(
        self, events: Sequence[faust.EventT[bytes]], handle: Handler, agent: str
    ) -> None:
        """Handle a batch of records, then apply their table writes together. faust
        acknowledges the records once this returns, and would also acknowledge one whose
        agent raised (the stream's ``finally``), so an error must never escape:

        - a Kafka error (a send that failed) stops the worker before anything of the batch
          is acknowledged: it is processed again after the restart;
        - so does any error outside a record's handler (a failed table write, a failed
          dead letter), which is no record's fault;
        - any other error dead-letters its record, whole, for a replay once the cause is
          fixed: its writes are dropped, and the batch's other records are kept.

        With transactions (the default), the batch's outputs, pair states and input offsets
        are committed in one Kafka transaction (`_under_lock`)."""
        await self._under_lock(
            functools.partial(self._one_by_one, events, handle, agent), agent, events
        )

    async def fold_circles(self, events: Sequence[faust.EventT[bytes]]) -> None:
        """The circles agent's batch (`on_activities`), errors as in `guarded`: if folding
        the batch raises, it is handled again one record at a time (a fold skips what a
        circle has already), so that only the record at fault is dead-lettered."""

        async def body() -> None:
            try:
                await self.on_activities(events)
            except KafkaError:
                raise
            except Exception:
                log.exception("circle_batch_failed", records=len(events))
                await self._one_by_one(events, self.on_activity, "circles")

        await self._under_lock(body, "circles", events)

    async def match(self, batch: Sequence[Any]) -> asyncio.Future[None] | None:
        """The interactions agent's batch, the hot path: every record's interactions grouped
        by pair, the pure core called once per pair over its events in arrival order, and
        each pair state written once (`_match_batch`). Errors as in `guarded`: if the core
        raises for some pair, the batch is handled again one record at a time, so that only
        the record at fault is dead-lettered. ``batch``: faust events, or the messages the
        consumer hands over directly (``services.common.faust_direct``). With transactions,
        returns the batch's commit, under way: the records are to be acknowledged once it is
        done (the consumer's direct path does so)."""
        events: list[Any] = [m if hasattr(m, "message") else Delivered(m) for m in batch]
        started = time.perf_counter()

        async def body() -> None:
            if not await self._match_batch(events):
                metrics.FALLBACKS.inc()
                self._drop_batch()
                self._counting.clear()
                await self._one_by_one(events, self.on_interactions, "match")

        committing = await self._under_lock(body, "match", events, background=True)
        metrics.BATCHES.inc()
        metrics.RECORDS.inc(len(events))
        metrics.BATCH_RECORDS.observe(len(events))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return committing

    async def _under_lock(
        self,
        body: Callable[[], Awaitable[None]],
        agent: str,
        events: Sequence[Any],
        *,
        background: bool = False,
    ) -> asyncio.Future[None] | None:
        """``body`` under the lock, then the batch's writes; with transactions, all of it
        and the records' offsets in one transaction (``services.common.transactions``): a
        worker killed anywhere in it leaves nothing a ``read_committed`` reader sees.
        ``background``: the commit is returned under way (a failed one stops the worker),
        not awaited."""
        txn = self.transactions
        committing: asyncio.Task[None] | None = None
        try:
            async with self.lock:
                batching = _in_batch.set(True)
                try:
                    await body()
                except BaseException:
                    self._drop_batch()  # cancelled or stopping: nothing is applied
                    raise
                finally:
                    _in_batch.reset(batching)
                await self.pairs.write_out()
                if self.circles is not None:
                    await self.circles.store.write_out()
                if txn is not None:
                    txn.consumed(e.message for e in events)
                    committing = txn.commit_soon()
                    if background:
                        committing.add_done_callback(functools.partial(_stop_if_failed, agent))
                        return committing
            # awaited without the lock: the commit (and the one before it, which it waits
            # for) is the broker's time, in which the hot path may decide its next batch
            if committing is not None:
                await committing
            return None
        except KafkaError as exc:
            log.critical("kafka_send_failed", agent=agent, error=repr(exc))
            os._exit(70)
        except Exception as exc:
            log.critical("batch_failed", agent=agent, error=repr(exc))
            os._exit(70)

    def _drop_batch(self) -> None:
        self.pairs.drop_batch()
        if self.circles is not None:
            self.circles.store.drop_batch()

    async def _one_by_one(
        self, events: Sequence[faust.EventT[bytes]], handle: Handler, agent: str
    ) -> None:
        for event in events:
            await self._handle_one(event, handle, agent)
            if self.pairs.full():  # see store.WRITE_OUT_BYTES
                await self.pairs.write_out()

    async def _handle_one(self, event: faust.EventT[bytes], handle: Handler, agent: str) -> None:
        try:
            await handle(event)
        except KafkaError:
            raise
        except Exception as exc:
            self._counting.clear()
            self.pairs.drop_record()  # a record's writes are applied whole or not at all
            if self.circles is not None:
                self.circles.store.drop_record()
            log.exception("record_failed", agent=agent)
            await send_dead_letter(
                self.topics.dead_letters,
                event.message,
                reason="processing_error",
                error=repr(exc),
                service="matcher",
            )
            return
        for partition, counted in self._counting.items():
            self.pairs.add_counts(partition, counted)
        self._counting.clear()
        self.pairs.keep_record()

    def _count(self, partition: int, name: str, n: int = 1) -> None:
        if n:
            self._counting.setdefault(partition, Counter())[name] += n

    async def _dead_letter(self, event: faust.EventT[bytes], **why: Any) -> None:
        topic = self.topics.dead_letters
        outside = self.topics.dead_letters_outside
        if outside is not None and not _in_batch.get():  # a profile: no transaction
            topic = outside
        await send_dead_letter(topic, event.message, service="matcher", **why)

    # interactions

    async def on_interactions(self, event: faust.EventT[bytes]) -> None:
        """One record holds one interaction (keyed by its pair) or an array of interactions
        of this partition (services.common.records). Either way the work is grouped by pair:
        each pair state is read, decoded, updated and written once per record."""
        p = event.message.partition
        self.due.next_offset[p] = event.message.offset + 1  # even if nothing in it is kept
        # the first record after a start waits for the forgotten list (Redis down: tried
        # again every few seconds, and by the timer)
        await self.forgotten.ensure_loaded(time.monotonic())
        by_pair: dict[bytes, list[Interaction]] = {}
        dead: list[dict[str, Any]] = []
        for key, interaction in self._sorted(event, dead):
            by_pair.setdefault(key, []).append(interaction)
        for why in dead:
            await self._dead_letter(event, **why)
        if not by_pair:
            return
        fresh: list[tuple[Interaction, float]] = []
        changed, out, newest, processed = self._receive(p, by_pair, event.message.timestamp, fresh)
        await self.emit(p, out)  # acknowledged first: see emit
        await self.send_activity(fresh)
        new_pairs = 0
        for key, before, state in changed:
            new_pairs += before is None
            self._save(key, p, before, state)
        self.due.saw(p, newest, time.monotonic())
        self._count(p, "interactions_processed", processed)
        if new_pairs:
            self.pairs.count_pairs(p, new_pairs)
        if self.due.built and (until := self._watermark(p)) is not None:
            # the partition's watermark moved: apply what is now due, with this record's
            # writes (a tick through Kafka would do the same a timer interval later)
            await self.apply_due(p, until)

    def _sorted(
        self, event: faust.EventT[bytes], dead: list[dict[str, Any]]
    ) -> list[tuple[bytes, Interaction]]:
        """The record's interactions with their pair keys; why each invalid or misplaced one
        is to be dead-lettered is appended to ``dead`` (sent by the caller), and those of
        forgotten people are dropped. No I/O: a batch that is handled again one record at a
        time has sent nothing yet."""
        p = event.message.partition
        decoded = records.decode(event.value)
        for value, error in decoded.invalid:
            dead.append(
                {"reason": "schema", "error": error, "value": value if decoded.batch else None}
            )
        kept: list[tuple[bytes, Interaction]] = []
        for interaction in decoded.interactions:
            if self.forgotten.involves(interaction):
                continue  # a forgotten person is never tracked again
            key = interaction.key.encode()
            # an array's pairs must hash to its partition; a single record is keyed by its pair
            if records.partition_for(key, self.n) != p if decoded.batch else event.key != key:
                # Elsewhere, the pair's state would live in the wrong partition.
                home = records.partition_for(key, self.n)
                dead.append(
                    {
                        "reason": "partition" if decoded.batch else "key",
                        "error": f"pair {key!r} belongs to partition {home}, keyed by the pair",
                        "value": interaction.model_dump_json().encode() if decoded.batch else None,
                    }
                )
                continue
            kept.append((key, interaction))
        return kept

    async def _match_batch(self, events: Sequence[faust.EventT[bytes]]) -> bool:
        """A batch of interactions records, grouped by pair across the records: each pair's
        state is loaded once, the pure core takes all its events of the batch in arrival
        order (`pairs.receive_many`), the suggestions of the whole batch are sent and awaited
        together, and then each changed state is written once. False, with nothing sent or
        written, if the core raised (the caller handles the batch one record at a time)."""
        await self.forgotten.ensure_loaded(time.monotonic())
        groups: dict[int, dict[bytes, list[tuple[Interaction, float]]]] = {}
        dead: list[tuple[faust.EventT[bytes], dict[str, Any]]] = []
        for event in events:
            p = event.message.partition
            self.due.next_offset[p] = event.message.offset + 1  # even if nothing is kept
            why: list[dict[str, Any]] = []
            by_pair = groups.setdefault(p, {})
            ingested_at = event.message.timestamp
            for key, interaction in self._sorted(event, why):
                by_pair.setdefault(key, []).append((interaction, ingested_at))
            dead.extend((event, w) for w in why)
        taken = sum(len(items) for by_pair in groups.values() for items in by_pair.values())
        metrics.EVENTS.inc(taken)
        metrics.BATCH_EVENTS.observe(taken)
        decided: list[tuple[int, list[tuple[bytes, logic.PairState | None, logic.PairState]]]]
        decided = []
        out_of: dict[int, Made] = {}
        processed: dict[int, int] = {}
        fresh: list[tuple[Interaction, float]] = []
        try:
            for p, by_pair in groups.items():
                newest = self.due.newest.get(p)
                for items in by_pair.values():
                    for interaction, _ in items:
                        ts = interaction.occurred_at.timestamp()
                        newest = ts if newest is None or ts > newest else newest
                # by default a pair's events wait only while they are its partition's newest
                # instant: what is older is applied within this batch, in the same write
                until = (
                    logic.newest_instant(newest)
                    if self.policy.apply_in_order and newest is not None
                    else None
                )
                changed: list[tuple[bytes, logic.PairState | None, logic.PairState]] = []
                out: Made = []
                new = 0
                for key, items in by_pair.items():
                    before = self.pairs.load(key, p)
                    after, made, n = logic.receive_many(
                        before, items, self.policy, self.places, until, fresh, self.closest
                    )
                    new += n
                    out.extend((key, s, at) for s, at in made)
                    if after is not None and after is not before:
                        changed.append((key, before, after))
                decided.append((p, changed))
                out_of[p] = out
                processed[p] = new
                self.due.saw(p, newest, time.monotonic())
        except Exception:
            log.exception("batch_decision_failed", records=len(events))
            return False
        for event, why_ in dead:
            await self._dead_letter(event, **why_)
        await self.emit_many(out_of)  # acknowledged before any state that records them
        await self.send_activity(fresh)
        for p, changed in decided:
            metrics.STATE_WRITES.inc(len(changed))
            self._count(p, "interactions_processed", processed[p])
            new_pairs = 0
            for key, before, state in changed:
                new_pairs += before is None
                self._save(key, p, before, state)
                if self.pairs.staged_bytes(p) >= WRITE_OUT_BYTES:  # see store.WRITE_OUT_BYTES
                    self.pairs.count_pairs(p, new_pairs)
                    new_pairs = 0
                    self._keep(p)
                    await self.pairs.write_out()
            if new_pairs:
                self.pairs.count_pairs(p, new_pairs)
            self._keep(p)
            if self.due.built and (until := self._watermark(p)) is not None:
                await self.apply_due(p, until)  # buffered events (apply_in_order off)
                self._keep(p)
        return True

    def _watermark(self, p: int) -> float | None:
        """Up to when partition ``p``'s buffered events are due, if some may be: its newest
        event time less the lateness, or by default just before its newest instant."""
        if self.policy.apply_in_order:
            return self.due.due_until(p, 0.0, strict=True)
        return self.due.due_until(p, self.policy.lateness_s)

    def _keep(self, p: int) -> None:
        """The partition's staged writes and counts join the batch's (see `PairStore`)."""
        counted = self._counting.pop(p, None)
        if counted:
            self.pairs.add_counts(p, counted)
        self.pairs.keep_record()

    def _receive(
        self,
        p: int,
        by_pair: dict[bytes, list[Interaction]],
        ingested_at: float,
        fresh: list[tuple[Interaction, float]],
    ) -> tuple[
        list[tuple[bytes, logic.PairState | None, logic.PairState]], Made, float | None, int
    ]:
        """Each pair's interactions into its state: the changed states, the suggestions made,
        the newest event time of the partition and how many interactions were new (one
        already in its pair's state, redelivered, changes nothing and is not counted)."""
        newest = self.due.newest.get(p)
        processed = 0
        changed: list[tuple[bytes, logic.PairState | None, logic.PairState]] = []
        out: Made = []
        for key, items in by_pair.items():
            before = state = self.pairs.load(key, p)
            for interaction in items:
                ts = interaction.occurred_at.timestamp()
                newest = ts if newest is None or ts > newest else newest
                new, made = logic.receive(
                    state,
                    interaction,
                    self.policy,
                    self.places,
                    ingested_at=ingested_at,
                    closest=self.closest,
                )
                if new is not state:
                    processed += 1
                    fresh.append((interaction, scoring.weight(interaction)))
                state = new
                if made:
                    out.extend((key, s, state.trigger_ingested_at) for s in made)
            assert state is not None
            if state is before:  # redelivered events, already in the state and counted
                continue
            changed.append((key, before, state))
        return changed, out, newest, processed

    async def apply_due(self, p: int, until: float | None) -> None:
        """Apply the buffered events of partition ``p`` up to ``until`` (None: all of them)
        in every pair that has some due."""
        changed: list[tuple[bytes, logic.PairState, logic.PairState]] = []
        out: Made = []
        for key in self.due.take_due(p, until):
            before = self.pairs.load(key, p)
            if before is None:
                self.due.discard(p, key)
                continue
            after, made = logic.flush(before, until, self.policy, self.places, self.closest)
            if after is not before:
                out.extend((key, s, after.trigger_ingested_at) for s in made)
                changed.append((key, before, after))
            elif not before.pending:  # a stale index entry: nothing is buffered any more
                self.due.discard(p, key)
        await self.emit(p, out)  # acknowledged first: see emit
        for key, before, after in changed:
            self._save(key, p, before, after)

    async def emit_many(self, out_of: dict[int, Made]) -> None:
        """`emit` for several partitions: every send first, then one wait for them all."""
        sent = []
        for p, out in out_of.items():
            for key, s, trigger_ingested_at in out:
                if self.circles is not None:
                    s = self.circles.around(s)  # the suggestion as sent
                headers = [("ingested_at", str(trigger_ingested_at).encode())]
                value = SUGGESTION_ADAPTER.dump_json(s)
                sent.append(
                    await self.topics.suggestions.send(key=key, value=value, headers=headers)
                )
            self._count(p, "suggestions_emitted", len(out))
        if sent:
            await asyncio.gather(*sent)
        for out in out_of.values():
            for _, s, _ in out:
                log.info("suggestion_emitted", suggestion_id=s.suggestion_id, score=s.score)

    async def emit(self, p: int, out: Made) -> None:
        """Produce suggestions and wait until Kafka has them all, *before* the pair states
        that record them are written: a worker killed in between has not stored the states,
        so the events are processed again after the restart and the same suggestions (same
        ids, deduplicated by the notifier) are made again. Written first, a state would mark
        its events as seen and its suggestion would be lost. One wait per batch, not one
        per suggestion: the sends share the producer's batches."""
        await self.emit_many({p: out})

    async def send_activity(self, fresh: list[tuple[Interaction, float]]) -> None:
        """The new interactions' activity entries for the circle stage, one record per
        partition of person (with the batch's transaction, if any)."""
        topic = self.topics.activity
        if topic is None or not fresh:
            return
        for p, entries in activity_of(fresh, self.n).items():
            await topic.send(key=b"activity", value=orjson.dumps(entries), partition=p)

    async def on_activity(self, event: faust.EventT[bytes]) -> None:
        """A ``person.activity`` record into its people's circles (circle_stage.py): the
        fallback of `on_activities`, one record at a time."""
        await self.on_activities((event,))

    async def on_activities(self, events: Sequence[faust.EventT[bytes]]) -> None:
        """A batch of ``person.activity`` records into their people's circles
        (circle_stage.py): each circle folded once over its entries of the batch, then the
        groups each record's people are now in. A record that does not parse is
        dead-lettered; the others are folded."""
        if self.circles is None:
            return
        parsed: dict[int, list[tuple[faust.EventT[bytes], list[Entry]]]] = {}
        for event in events:
            try:
                entries = parse(event.value)
            except BadActivity as exc:
                await self._dead_letter(event, reason="activity", error=str(exc))
                continue
            parsed.setdefault(event.message.partition, []).append((event, entries))
        if not parsed:
            return
        await self.forgotten.ensure_loaded(time.monotonic())
        folded: dict[str, Circle] = {}
        for items in parsed.values():
            # the circles and group_marks tables are faust's: a write goes to the changelog
            # partition of the record being handled, which faust reads from its current
            # event (the agent takes records by batch, and sets none for the batch's body)
            with _handling(items[-1][0]):
                self.circles.fold_many(
                    [(entries, e.message.offset) for e, entries in items], self.forgotten.hashes
                )
            folded.update(self.circles.folded)
        self.circles.folded = folded
        if self.group_marks is None or self.topics.groups is None:
            return
        for items in parsed.values():
            for event, entries in items:
                if entries:
                    with _handling(event):
                        await self.find_groups(
                            entries, event.message.partition, event.message.offset
                        )

    async def find_groups(self, entries: list[Entry], partition: int, offset: int) -> None:
        """Suggest the groups the people of a folded activity record are now in, each once.

        A group's mark (the record that suggested it) is written with its suggestion. A
        record handled again after a crash finds its own mark and suggests the group again:
        the first attempt's transaction may have been aborted, and the notifier keeps one
        item per group id. A mark from any other record means the group was suggested.

        A group that shares three members with one suggested before is the same table, grown
        or shrunk (groups form one tie at a time): it is not suggested again. Each member's
        recent groups are kept under the hash of their id, as hashes (no id is kept)."""
        assert self.circles is not None
        m = self.settings.matcher
        hashes = self.forgotten.hashes
        people = {e[0] for e in entries if not hashes or person_hash(e[0]) not in hashes}
        at = max(e[3] for e in entries)
        here = [partition, offset]
        for g in self.circles.groups(people, at, top=m.group_top, min_weight=m.group_min_weight):
            member_hashes = [person_hash(p) for p in g.members]
            if hashes and not hashes.isdisjoint(member_hashes):
                continue
            key = g.group_id.encode()
            mark = self.group_marks.get(key)
            if mark is not None and orjson.loads(mark) != here:
                continue
            if mark is None:
                earlier = [self._groups_of(h) for h in member_hashes]
                if same_table(member_hashes, [e for es in earlier for e in es]):
                    continue
                for h, es in zip(member_hashes, earlier, strict=True):
                    kept = [*(e for e in es if e != member_hashes), member_hashes]
                    kept = kept[-REMEMBERED:]
                    self.group_marks[b"p|" + h.encode()] = orjson.dumps(kept)
            self.group_marks[key] = orjson.dumps(here)
            await self.topics.groups.send(key=key, value=GROUP_ADAPTER.dump_json(g))
            self._count(partition, "group_suggestions")
            log.info("group_suggested", group_id=g.group_id, size=len(g.members))

    def _groups_of(self, hashed: str) -> list[list[str]]:
        raw = self.group_marks.get(b"p|" + hashed.encode())
        return [] if raw is None else list(orjson.loads(raw))

    def _save(
        self, key: bytes, p: int, before: logic.PairState | None, after: logic.PairState
    ) -> None:
        self.pairs.save(key, p, after)
        b_n = 0 if before is None else before.n_ab + before.n_ba
        self._count(p, "meaningful_interactions", after.n_ab + after.n_ba - b_n)
        was = before is not None and before.n_ab > 0 and before.n_ba > 0
        if not was and after.n_ab > 0 and after.n_ba > 0:
            self._count(p, "candidate_pairs")
        self.due.note(p, key, after.pending[0][0] if after.pending else None)

    # ticks

    async def on_tick(self, event: faust.EventT[bytes]) -> None:
        p = event.message.partition
        try:
            command = TICK_ADAPTER.validate_json(event.value or b"")
        except ValidationError as exc:  # the matcher writes ticks itself: anything else is poison
            await self._dead_letter(event, reason="tick", error=str(exc))
            return
        if "forget" in command:
            await self.drop_person(p, cast(ForgetTick, command)["forget"])
            return
        await self.apply_due(p, command["until"])

    async def ticks_due(
        self, partitions: Iterable[int], behind: Callable[[int], bool]
    ) -> list[tuple[int, FlushTick]]:
        """The ticks to send to the partitions this worker holds (see `DueIndex.tick`)."""
        if not self.due.built:
            # After a (re)start or a rebalance, find the pairs whose buffers are in the table.
            # Under the lock and settled: a batch being handled or written out has states not
            # in the table yet, and an index rebuilt without them would never apply their
            # buffered events.
            async with self.lock:
                await self.pairs.settle()
                self.due.rebuild(
                    (records.partition_for(key, self.n), key, earliest)
                    for key, raw in self.table.items()
                    if is_pair(key) and (earliest := logic.earliest_pending(raw)) is not None
                )
        now = time.monotonic()
        due = []
        for p in partitions:
            tick = self.due.tick(
                p,
                now=now,
                idle_flush_s=self.settings.matcher.idle_flush_s,
                lateness_s=0.0 if self.policy.apply_in_order else self.policy.lateness_s,
                behind=functools.partial(behind, p),
                strict=self.policy.apply_in_order,
            )
            if tick is not None:
                due.append((p, tick))
        return due

    def partitions_moved(self) -> None:
        """Partitions moved (and their tables were restored): rebuild the index, reread counts."""
        self.due.built = False
        self.pairs.partitions_moved()

    # answers

    async def on_feedback(self, event: faust.EventT[bytes]) -> None:
        try:
            fb = FEEDBACK_ADAPTER.validate_json(event.value or b"")
        except ValidationError as exc:
            await self._dead_letter(event, reason="feedback_schema", error=str(exc))
            return
        key = pair_key(*fb.pair).encode()
        p = event.message.partition
        before = self.pairs.load(key, p)
        if before is None:
            log.warning("feedback_for_unknown_pair", suggestion_id=fb.suggestion_id)
            return
        answered = answer(before, fb, self.policy)
        if answered.after is not before:
            self._save(key, p, before, answered.after)
        if answered.example is not None:
            label_key, label = learning.encode_example(answered.example)
            self.labels[label_key] = label
        if answered.counted:
            # labels for evaluating the algorithm: outcomes counted per explanation signal
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for signal in before.signals:
                        pipe.hincrby(self.keys.labels(fb.outcome), signal, 1)
                    await pipe.execute()
            except RedisError as exc:
                log.warning("labels_not_counted", error=str(exc))
        log.info("feedback_recorded", outcome=fb.outcome, suggestion_id=fb.suggestion_id)

    async def refit(self) -> None:
        """Refit the model from every labelled answer (the newest ``learn_max_labels``);
        each worker holds them all and fits the same model from the same answers."""
        if self.prior is None:
            return
        examples = [
            e for raw in self.labels.values() if (e := learning.decode_example(raw)) is not None
        ]
        if len(examples) == self._fitted_on:
            return
        examples.sort(key=lambda e: (e.at, e.suggestion_id, e.person))
        keep = self.settings.matcher.learn_max_labels
        if len(examples) > 2 * keep:  # forget the oldest answers (tombstones on the changelog)
            for e in examples[:-keep]:
                self.labels.pop(learning.example_key(e.suggestion_id, e.person), None)
        examples = examples[-keep:]
        # ~1 s of pure Python for the 2,000 newest answers: in a thread, so that the event
        # loop (and faust's heartbeats) keep going
        model = await asyncio.to_thread(learning.refit, self.prior, examples, self.learn)
        async with self.lock:  # decisions in flight finish with the model they started with
            self.policy = dataclasses.replace(self.policy, model=model)
        self._fitted_on = len(examples)
        log.info(
            "model_refitted",
            version=model.version,
            answers=len(examples),
            intercept=model.intercept,
            adapted=model is not self.prior,
        )
        try:
            await self.redis.hset(
                self.keys.model, mapping={"version": model.version, "answers": len(examples)}
            )
        except RedisError as exc:
            log.warning("model_not_published", error=str(exc))

    # forgetting

    async def forget(self, hashed: str) -> None:
        """A person asked to be forgotten: never track them again, and let each partition
        drop its own pairs of theirs (pair states live in every partition)."""
        self.forgotten.add(hashed)
        value = orjson.dumps({"forget": hashed})
        for p in range(self.n):
            await self.topics.ticks.send(key=b"forget", value=value, partition=p)

    async def drop_person(self, partition: int, hashed: str) -> None:
        """Delete every pair state of this partition that involves the forgotten person."""
        dropped = 0
        await self.pairs.settle()  # every pair written out is in the table faust scans
        for key in list(self.table.keys()):
            if not is_pair(key) or records.partition_for(key, self.n) != partition:
                continue
            if pair_involves(key, hashed):
                self.pairs.delete(key, partition)  # a tombstone on the changelog too
                self.due.discard(partition, key)
                dropped += 1
        if dropped:
            self.pairs.count_pairs(partition, -dropped)
        circles = 0
        if self.circles is not None:
            await self.circles.store.settle()  # every circle written out is in rocksdb
            circles = self.circles.forget(partition, hashed)
        log.info("person_forgotten", partition=partition, pairs_dropped=dropped, circles=circles)

    # the console

    async def publish(self, assigned: list[int]) -> None:
        """Publish the pairs tracked and buffered and the funnel counters of each assigned
        partition, as absolute values, for the console."""
        if not assigned:
            return
        counts = {str(p): c for p in assigned if (c := self.pairs.pair_count(p)) is not None}
        buffered = {str(p): self.due.buffered(p) for p in assigned}
        funnel = {
            f"{name}:{p}": value
            for p in assigned
            for name, value in (self.pairs.counts(p) or {}).items()
        }
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                if counts:
                    pipe.hset(self.keys.pairs_tracked, mapping=counts)
                if funnel:
                    pipe.hset(self.keys.matcher_counts, mapping=funnel)
                pipe.hset(self.keys.pairs_pending, mapping=buffered)
                await pipe.execute()
        except RedisError as exc:  # console figures: published again with the next tick
            log.warning("pair_counts_not_published", error=str(exc))
