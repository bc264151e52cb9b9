"""Thin faust I/O around the pure pair logic (``services.matcher.pairs``).

``interactions`` is keyed by the unordered pair at production time, so the ``pairs`` table is
co-partitioned with its input and no ``group_by`` repartition hop is needed. The same holds
for ``meetup.feedback`` (keyed by pair) and the matcher's own ``matcher.ticks`` (sent to an
explicit partition): every table write happens in the partition that owns the pair.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import heapq
import os
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, cast

import faust
import orjson
import rocksdict
import structlog
from aiokafka.errors import KafkaError
from faust.types import TP
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError
from typing_extensions import TypedDict

from schemas.events import Interaction, pair_key
from schemas.feedback import FEEDBACK_ADAPTER
from schemas.people import person_hash
from schemas.suggestions import SUGGESTION_ADAPTER, Suggestion
from services.common import records
from services.common.dlq import send_dead_letter
from services.common.faust_transport import IdempotentProducer
from services.common.kafka import Topics
from services.common.redis import Keys
from services.common.rocksdb_store import partition_databases
from services.common.settings import MatcherSettings, Settings
from services.matcher import learning
from services.matcher import models as model_files
from services.matcher import pairs as logic

log = structlog.get_logger(__name__)


class FlushTick(TypedDict):
    """Apply buffered events up to ``until`` (None: all of them)."""

    until: float | None


class ForgetTick(TypedDict):
    """Drop this partition's pairs of the person with this hash."""

    forget: str


Handler = Callable[[faust.EventT[bytes]], Awaitable[None]]

#: what the matcher writes to its own ``matcher.ticks``
TICK_ADAPTER: Final = TypeAdapter(ForgetTick | FlushTick)
#: the fields of a ``people.profiles`` value the matcher reads
PROFILE_ADAPTER: Final = TypeAdapter(dict[str, Any])

#: how long a person's place (city, time zone) is remembered, and how many are
PLACE_TTL_S: Final = 30.0
PLACE_CACHE: Final = 200_000

#: Per-partition count of pairs, kept in the pairs table itself so that it is restored from
#: the same changelog as the pair states (and so always agrees with them).
PAIR_COUNT_PREFIX = b"\x00meta:pairs:"


def survives(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """A timer body whose error is logged, not raised: an exception escaping a faust timer
    ends that timer for good (no more ticks, no more published counts)."""

    @functools.wraps(fn)
    async def run() -> None:
        try:
            await fn()
        except Exception:
            log.exception("timer_failed", timer=fn.__name__)

    return run


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
        decline_cooldown_days=m.decline_cooldown_days,
        source_bonus=m.source_bonus,
        model=model_files.load(m.model_path),
        min_probability=m.min_probability,
    )


def learn_config(m: MatcherSettings) -> learning.LearnConfig:
    return learning.LearnConfig(
        min_labels=m.learn_min_labels,
        min_people=m.learn_min_people,
        prior_strength=m.learn_prior_strength,
        max_per_person=m.learn_max_per_person,
    )


def example_from(raw: bytes) -> learning.Example | None:
    try:
        d = orjson.loads(raw)
        return learning.Example(
            suggestion_id=str(d["suggestion_id"]),
            person=str(d["person"]),
            x=tuple(float(v) for v in d["x"]),
            label=int(d["label"]),
            at=float(d["at"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def register(app: faust.App, settings: Settings, redis: Any) -> None:
    """Declare the matcher's topics, tables, agents and timers on ``app``."""
    t = Topics(settings)
    keys = Keys(settings)
    policy = policy_from(settings.matcher)
    prior = policy.model  # the shipped model: answers adapt it (see `refit_model`)
    learn = learn_config(settings.matcher)
    n = settings.kafka.partitions

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=n)

    interactions = raw_topic(t.interactions)
    ticks = raw_topic(t.ticks)
    feedback = raw_topic(t.feedback)
    profiles_in = raw_topic(t.profiles)
    forgotten_in = raw_topic(t.forgotten)
    suggestions = raw_topic(t.suggestions)
    dlq = raw_topic(t.interactions_dlq)
    table = app.Table(
        "pairs",
        key_type=bytes,
        value_type=bytes,
        partitions=n,
        options={  # memory bounded for all partitions together (see MatcherSettings)
            "memory_mb": settings.matcher.rocksdb_memory_mb,
            "write_buffer_size": settings.matcher.rocksdb_write_buffer_mb * 2**20,
            "max_write_buffer_number": 2,
        },
    )
    # every worker holds every profile (small); copied from the compacted people.profiles
    profiles = app.GlobalTable("profiles", key_type=bytes, value_type=bytes, partitions=n)
    # answers as labelled examples (suggestion|person hash -> features, label): written by
    # the worker that owns the pair, read by every worker to refit the same model
    labels = app.GlobalTable("labels", key_type=bytes, value_type=bytes, partitions=n)
    fitted_on: list[int] = [0]  # how many labels the current model was fitted on

    # pairs with buffered events, by partition: pair key -> its earliest buffered event time,
    # so that a tick touches only the pairs that have something due
    pending: dict[int, dict[bytes, float]] = defaultdict(dict)
    # the same as a min-heap per partition of (earliest time, pair key), possibly with stale
    # entries (a pair's earliest time changed): a tick pops only what is due
    due_heap: dict[int, list[tuple[float, bytes]]] = defaultdict(list)
    newest: dict[int, float] = {}  # newest event time seen per partition
    last_event: dict[int, float] = {}  # wall-clock time of the last event per partition
    next_offset: dict[int, int] = {}  # offset after the last record handled, per partition
    index_built: list[bool] = [False]
    # hashes of people (and their handles) who asked to be forgotten: the durable list is
    # Redis's (written by the feeds service before people.forgotten), read before the first
    # record after a start (`on_interactions`) and every few seconds (`load_forgotten`), so
    # that every worker knows every name whichever partition its record went to, and a
    # restart forgets nobody's wish
    forgotten: set[str] = set()
    forgotten_loaded: list[bool] = [False]
    forgotten_tried: list[float] = [-1e9]
    # operational counters for the console's funnel: summed here, added to Redis each second
    deltas: Counter[str] = Counter()
    # pairs tracked per partition as last written by this worker (read back after rebalances)
    pair_counts: dict[int, int] = {}

    # Every event asks where its actor is (local days and weeks), and a global table look-up
    # reads every partition's store: remember each answer for PLACE_TTL_S (a changed time
    # zone counts from then on), in a bounded dict
    place_cache: dict[str, tuple[float, logic.Place | None]] = {}

    def places(person: str) -> logic.Place | None:
        now = time.monotonic()
        hit = place_cache.get(person)
        if hit is not None and hit[0] > now:
            return hit[1]
        raw = profiles.get(person.encode())
        place = None
        if raw is not None:
            p = orjson.loads(raw)
            place = logic.Place(city=p.get("city"), time_zone=p.get("time_zone"))
        if len(place_cache) >= PLACE_CACHE:
            place_cache.clear()
        place_cache[person] = (now + PLACE_TTL_S, place)
        return place

    # Decoding a pair state costs far more than reading it: keep the decoded form of recently
    # used pairs, valid while the stored bytes are the same (a changelog replay after a
    # rebalance changes them, and the entry is simply decoded again).
    decoded: OrderedDict[bytes, tuple[bytes, logic.PairState]] = OrderedDict()

    # The agents below share the pair states, and writing one (rocksdb, changelog, pending
    # index) awaits the producer: without this lock a tick could flush a pair between an
    # agent's rocksdb write and its index update, leaving the three out of step.
    lock = asyncio.Lock()
    store: Any = table.data  # one rocksdb read per look-up (the dict API costs two)
    changelog = table.changelog_topic.get_topic_name()
    producer = cast(IdempotentProducer, app.producer)
    # highest acknowledged changelog offset per partition, stored in rocksdb as the table's
    # persisted offset with the next record of that partition (lagging it is safe: recovery
    # then re-applies a few writes it already has)
    acked: dict[int, int] = {}

    def on_acked(fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            # The offsets of the records behind this write must never be committed: stop
            # the worker now; its partitions are re-processed from the last commit.
            log.critical("changelog_write_failed", error=repr(fut.exception()))
            asyncio.get_running_loop().call_soon(os._exit, 70)
            return
        md = fut.result()
        if md.offset > acked.get(md.partition, -1):
            acked[md.partition] = md.offset

    # The table writes of the record being handled, by partition; once it is done, they
    # join those of the batch's records handled before it, and `write_out` applies them all
    # when the batch is done (see `guarded`).
    staged: dict[int, dict[bytes, bytes]] = defaultdict(dict)
    batched: dict[int, dict[bytes, bytes]] = defaultdict(dict)
    # rocksdb (not the memory store of tests): each partition's database, read and written
    # directly (services/common/rocksdb_store.py)
    db_for = partition_databases(store)

    def put(key: bytes, raw: bytes, partition: int) -> None:
        """``table[key] = raw``, staged: see `write_out`."""
        staged[partition][key] = raw

    def stored(key: bytes, partition: int) -> bytes | None:
        """The value of ``key`` in ``partition``, with the batch's writes not applied yet."""
        writes = staged.get(partition)
        if writes is not None and (raw := writes.get(key)) is not None:
            return raw
        writes = batched.get(partition)
        if writes is not None and (raw := writes.get(key)) is not None:
            return raw
        if db_for is not None:  # that partition's database: one rocksdb get, no faust dispatch
            return cast(bytes | None, db_for(partition).get(key))
        return cast(bytes | None, store.get(key))

    def keep_staged() -> None:
        """The record's handler is done: its writes join the batch's."""
        for partition, items in staged.items():
            batched[partition].update(items)
        staged.clear()

    async def write_out() -> None:
        """Apply the batch's writes the way faust writes a table, without its
        one-message-at-a-time producer buffer: rocksdb first (one WriteBatch per
        partition), then the changelog records appended to producer batches of that
        partition (faust flushes the producer before every offset commit, as for its own
        writes). Per batch, not per pair: one rocksdb write and a producer batch or two
        per partition, and a pair that several records changed is written once."""
        if not batched:
            return
        writes = dict(batched)
        batched.clear()
        for partition, items in writes.items():
            if db_for is not None:
                batch = rocksdict.WriteBatch(raw_mode=True)
                for key, raw in items.items():
                    batch.put(key, raw)
                db_for(partition).write(batch)
            else:
                for key, raw in items.items():
                    store[key] = raw
            for fut in await producer.send_many(changelog, partition, items.items()):
                fut.add_done_callback(on_acked)

    def persist_offset(partition: int) -> None:
        if (offset := acked.pop(partition, None)) is not None:
            store.set_persisted_offset(TP(changelog, partition), offset)

    def load(key: bytes, partition: int) -> logic.PairState | None:
        raw = stored(key, partition)
        if raw is None:
            return None
        hit = decoded.get(key)
        if hit is not None and hit[0] == raw:
            decoded.move_to_end(key)
            return hit[1]
        state = logic.PairState.decode(raw)
        remember(key, raw, state)
        return state

    def remember(key: bytes, raw: bytes, state: logic.PairState) -> None:
        decoded[key] = (raw, state)
        decoded.move_to_end(key)
        if len(decoded) > settings.matcher.decoded_cache:
            decoded.popitem(last=False)

    async def save(
        key: bytes, partition: int, before: logic.PairState | None, after: logic.PairState
    ) -> None:
        raw = after.encode()
        put(key, raw, partition)
        remember(key, raw, after)
        b_n = 0 if before is None else before.n_ab + before.n_ba
        deltas["meaningful_interactions"] += after.n_ab + after.n_ba - b_n
        was = before is not None and before.n_ab > 0 and before.n_ba > 0
        if not was and after.n_ab > 0 and after.n_ba > 0:
            deltas["candidate_pairs"] += 1
        if after.pending:
            earliest = after.pending[0][0]
            if pending[partition].get(key) != earliest:
                pending[partition][key] = earliest
                heapq.heappush(due_heap[partition], (earliest, key))
        else:
            pending[partition].pop(key, None)

    async def count_pairs(partition: int, delta: int) -> None:
        count_key = PAIR_COUNT_PREFIX + str(partition).encode()
        count = max(0, int(stored(count_key, partition) or b"0") + delta)
        put(count_key, str(count).encode(), partition)
        pair_counts[partition] = count

    async def emit(out: list[tuple[bytes, Suggestion, float]]) -> None:
        """Produce suggestions and wait until Kafka has them all, *before* the pair states
        that record them are written: a worker killed in between has not stored the states,
        so the events are processed again after the restart and the same suggestions (same
        ids, deduplicated by the notifier) are made again. Written first, a state would mark
        its events as seen and its suggestion would be lost. One wait per record, not one
        per suggestion: the sends share the producer's batches."""
        sent = []
        for key, s, trigger_ingested_at in out:
            # when the trigger reached Kafka: the notifier measures ingest-to-feed latency
            headers = [("ingested_at", str(trigger_ingested_at).encode())]
            sent.append(
                await suggestions.send(
                    key=key, value=SUGGESTION_ADAPTER.dump_json(s), headers=headers
                )
            )
        if sent:
            await asyncio.gather(*sent)
        for _, s, _ in out:
            deltas["suggestions_emitted"] += 1
            log.info("suggestion_emitted", suggestion_id=s.suggestion_id, score=s.score)

    async def on_interactions(event: faust.EventT[bytes]) -> None:
        # One record holds one interaction (keyed by its pair) or an array of interactions
        # of this partition (services.common.records). Either way the work is grouped by
        # pair: each pair state is read, decoded, updated and written once per record.
        p = event.message.partition
        next_offset[p] = event.message.offset + 1  # even if nothing in it is kept
        decoded = records.decode(event.value)
        for value, error in decoded.invalid:
            await send_dead_letter(
                dlq,
                event.message,
                reason="schema",
                error=error,
                service="matcher",
                value=value if decoded.batch else None,
            )
        if not forgotten_loaded[0] and time.monotonic() - forgotten_tried[0] > 5.0:
            # the first record after a start waits for the list (Redis down: tried again
            # every 5 s, and by the timer)
            forgotten_tried[0] = time.monotonic()
            await read_forgotten()
        by_pair: dict[bytes, list[Interaction]] = {}
        for interaction in decoded.interactions:
            if (
                forgotten
                and {person_hash(interaction.actor), person_hash(interaction.target)} & forgotten
            ):
                continue  # a forgotten person is never tracked again
            key = interaction.key.encode()
            # an array's pairs must hash to its partition; a single record is keyed by its pair
            misplaced = records.partition_for(key, n) != p if decoded.batch else event.key != key
            if misplaced:
                # Elsewhere, the pair's state would live in the wrong partition.
                await send_dead_letter(
                    dlq,
                    event.message,
                    reason="partition" if decoded.batch else "key",
                    service="matcher",
                    error=f"pair {key!r} belongs to partition "
                    f"{records.partition_for(key, n)}, keyed by the pair",
                    value=interaction.model_dump_json().encode() if decoded.batch else None,
                )
                continue
            by_pair.setdefault(key, []).append(interaction)
        if not by_pair:
            return
        ingested_at = event.message.timestamp  # seconds (faust converts from ms)
        newest_ts = newest.get(p)
        new_pairs = 0
        changed: list[tuple[bytes, logic.PairState | None, logic.PairState]] = []
        out: list[tuple[bytes, Suggestion, float]] = []
        for key, items in by_pair.items():
            before = state = load(key, p)
            for interaction in items:
                ts = interaction.occurred_at.timestamp()
                newest_ts = ts if newest_ts is None or ts > newest_ts else newest_ts
                state, made = logic.receive(
                    state, interaction, policy, places, ingested_at=ingested_at
                )
                if made:
                    out.extend((key, s, state.trigger_ingested_at) for s in made)
            assert state is not None
            if state is before:
                # Redelivered events, already counted. After a crash the local store can be
                # ahead of the changelog (written, not yet acknowledged): write the state
                # again so that the changelog, which a failover restores from, has it too.
                if before is not None and (raw := stored(key, p)) is not None:
                    put(key, raw, p)
                continue
            new_pairs += before is None
            changed.append((key, before, state))
        await emit(out)  # acknowledged first: see emit
        for key, before, state in changed:
            await save(key, p, before, state)
        if newest_ts is not None:
            newest[p] = newest_ts
        last_event[p] = time.monotonic()
        deltas["interactions_processed"] += sum(len(items) for items in by_pair.values())
        if new_pairs:
            await count_pairs(p, new_pairs)
        if index_built[0] and (until := due_until(p)) is not None:
            # the partition's watermark moved: apply what is now due, with this record's
            # writes (a tick through Kafka would do the same a timer interval later)
            await apply_due(p, until)
        persist_offset(p)

    def due_until(p: int) -> float | None:
        """Partition ``p``'s watermark (its newest event time less the lateness) if some
        buffered pair is due by it; None if none is."""
        if p not in newest:
            return None
        until = newest[p] - policy.lateness_s
        heap = due_heap[p]  # may hold stale entries: then a flush finds nothing to do
        return until if heap and heap[0][0] <= until else None

    async def guarded(events: Sequence[faust.EventT[bytes]], handle: Handler, agent: str) -> None:
        """Handle a batch of records, then apply their table writes together. faust
        acknowledges the records once this returns, and would also acknowledge one whose
        agent raised (the stream's ``finally``), so an error must never escape:

        - a Kafka error (a send that failed) stops the worker before anything of the batch
          is acknowledged: it is processed again after the restart;
        - so does any error outside a record's handler (a failed table write, a failed
          dead letter), which is no record's fault;
        - any other error dead-letters its record, whole, for a replay once the cause is
          fixed: its writes are dropped, and the batch's other records are kept."""
        try:
            async with lock:  # one agent at a time: see `lock`
                try:
                    for event in events:
                        try:
                            await handle(event)
                        except KafkaError:
                            raise
                        except Exception as exc:
                            staged.clear()  # a record's writes are applied whole or not at all
                            log.exception("record_failed", agent=agent)
                            await send_dead_letter(
                                dlq,
                                event.message,
                                reason="processing_error",
                                error=repr(exc),
                                service="matcher",
                            )
                            continue
                        keep_staged()
                except BaseException:
                    staged.clear()  # cancelled or stopping: nothing of the batch is applied
                    batched.clear()
                    raise
                await write_out()
        except KafkaError as exc:
            log.critical("kafka_send_failed", agent=agent, error=repr(exc))
            os._exit(70)
        except Exception as exc:
            log.critical("batch_failed", agent=agent, error=repr(exc))
            os._exit(70)

    @app.agent(interactions, concurrency=1)
    async def match(stream: faust.StreamT[bytes]) -> None:
        # several records at a time (a pair buffered by one record and applied by the next
        # is then written once); acknowledged by faust when the batch is handled
        async for events in cast(faust.Stream[bytes], stream).take_events(
            settings.matcher.batch_records, within=settings.matcher.batch_wait_ms / 1000
        ):
            await guarded(events, on_interactions, "match")

    async def on_tick(event: faust.EventT[bytes]) -> None:
        p = event.message.partition
        try:
            command = TICK_ADAPTER.validate_json(event.value or b"")
        except ValidationError as exc:  # the matcher writes ticks itself: anything else is poison
            await send_dead_letter(
                dlq, event.message, reason="tick", error=str(exc), service="matcher"
            )
            return
        if "forget" in command:
            await drop_person(p, cast(ForgetTick, command)["forget"])
            return
        await apply_due(p, command["until"])
        persist_offset(p)

    async def apply_due(p: int, until: float | None) -> None:
        """Apply the buffered events of partition ``p`` up to ``until`` (None: all of them)
        in every pair that has some due, taken off the due heap."""
        changed: list[tuple[bytes, logic.PairState, logic.PairState]] = []
        out: list[tuple[bytes, Suggestion, float]] = []
        for key in take_due(p, until):
            before = load(key, p)
            if before is None:
                pending[p].pop(key, None)
                continue
            after, made = logic.flush(before, until, policy, places)
            if after is not before:
                out.extend((key, s, after.trigger_ingested_at) for s in made)
                changed.append((key, before, after))
            elif not before.pending:  # a stale index entry: nothing is buffered any more
                pending[p].pop(key, None)
        await emit(out)  # acknowledged first: see emit
        for key, before, after in changed:
            await save(key, p, before, after)

    @app.agent(ticks, concurrency=1)
    async def tick(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await guarded((event,), on_tick, "tick")

    async def on_feedback(event: faust.EventT[bytes]) -> None:
        try:
            fb = FEEDBACK_ADAPTER.validate_json(event.value or b"")
        except ValidationError as exc:
            await send_dead_letter(
                dlq, event.message, reason="feedback_schema", error=str(exc), service="matcher"
            )
            return
        key = pair_key(*fb.pair).encode()
        before = load(key, event.message.partition)
        if before is None:
            log.warning("feedback_for_unknown_pair", suggestion_id=fb.suggestion_id)
            return
        after = logic.record_outcome(before, fb.outcome, fb.at.timestamp(), fb.person_id)
        await save(key, event.message.partition, before, after)
        label = learning.label_of(fb.outcome)
        if label is not None and fb.suggestion_id == before.suggestion_id and before.x:
            # a labelled example for learning (the person as a hash: no id is kept)
            who = person_hash(fb.person_id)
            labels[f"{fb.suggestion_id}|{who}".encode()] = orjson.dumps(
                {
                    "suggestion_id": fb.suggestion_id,
                    "person": who,
                    "x": before.x,
                    "label": label,
                    "at": fb.at.timestamp(),
                }
            )
        counted = fb.outcome == "accepted" or (fb.outcome == "met" and after.outcome == "met")
        if counted and fb.suggestion_id == before.suggestion_id:
            # a "met" is counted once both people said so
            # labels for evaluating the algorithm: outcomes counted per explanation signal
            try:
                async with redis.pipeline(transaction=False) as pipe:
                    for signal in before.signals:
                        pipe.hincrby(keys.labels(fb.outcome), signal, 1)
                    await pipe.execute()
            except RedisError as exc:
                log.warning("labels_not_counted", error=str(exc))
        log.info("feedback_recorded", outcome=fb.outcome, suggestion_id=fb.suggestion_id)

    @app.agent(feedback, concurrency=1)
    async def answers(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await guarded((event,), on_feedback, "answers")

    def take_due(partition: int, until: float | None) -> list[bytes]:
        """The pairs of ``partition`` whose earliest buffered event is at or before ``until``
        (all, for None), taken off the heap; entries made stale by later saves are skipped."""
        heap, index = due_heap[partition], pending[partition]
        if until is None:
            heap.clear()
            return list(index)
        due: dict[bytes, None] = {}  # once each, in order (the heap can hold a pair twice)
        while heap and heap[0][0] <= until:
            ts, key = heapq.heappop(heap)
            if index.get(key) == ts:
                due[key] = None
        return list(due)

    async def drop_person(partition: int, hashed: str) -> None:
        """Delete every pair state of this partition that involves the forgotten person."""
        dropped = 0
        for key in list(table.keys()):
            if key.startswith(b"\x00") or records.partition_for(key, n) != partition:
                continue
            a, _, b = key.decode().partition("|")
            if hashed in (person_hash(a), person_hash(b)):
                del table[key]  # a tombstone on the changelog too
                decoded.pop(key, None)
                pending[partition].pop(key, None)
                dropped += 1
        if dropped:
            await count_pairs(partition, -dropped)
        log.info("person_forgotten", partition=partition, pairs_dropped=dropped)

    @app.agent(forgotten_in, concurrency=1)
    async def forget(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if event.key is None or event.value is None:
                continue
            hashed = event.key.decode()
            forgotten.add(hashed)
            # pair states live in every partition: let each partition drop its own
            for p in range(n):
                await ticks.send(key=b"forget", value=orjson.dumps({"forget": hashed}), partition=p)

    @app.agent(profiles_in, concurrency=1)
    async def copy_profiles(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if event.key is None:
                continue
            place_cache.pop(event.key.decode(errors="replace"), None)
            if event.value is None:
                profiles.pop(event.key, None)
                continue
            try:
                PROFILE_ADAPTER.validate_json(event.value)
            except ValidationError as exc:  # never stored: a lookup must not fail later
                await send_dead_letter(
                    dlq, event.message, reason="profile", error=str(exc), service="matcher"
                )
                continue
            profiles[event.key] = event.value

    def owned() -> list[Any]:
        """The ``interactions`` partitions this worker's consumer holds right now (the
        consumer's own assignment: the assignor's bookkeeping has lagged behind it)."""
        return sorted(
            (tp for tp in app.consumer.assignment() if tp.topic == t.interactions),
            key=lambda tp: tp.partition,
        )

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def reindex(sender: Any, **_: Any) -> None:
        """Partitions moved (and their tables were restored): rebuild the pending index."""
        index_built[0] = False
        pair_counts.clear()

    @app.timer(interval=settings.matcher.tick_interval_s)  # type: ignore[untyped-decorator]
    @survives
    async def send_ticks() -> None:
        """Tell each owned partition how far its buffered events may be applied."""
        if not index_built[0]:
            # After a (re)start or a rebalance, find the pairs whose buffers are in the
            # table: a partition may come back holding buffers another worker wrote. Under
            # the lock: a batch in flight has states not in the table yet, and the index
            # rebuilt without them would never apply their buffered events.
            async with lock:
                pending.clear()
                due_heap.clear()
                for key, raw in table.items():
                    if (
                        not key.startswith(b"\x00")
                        and (earliest := logic.earliest_pending(raw)) is not None
                    ):
                        pending[records.partition_for(key, n)][key] = earliest
                for p, index in pending.items():
                    due_heap[p] = [(ts, key) for key, ts in index.items()]
                    heapq.heapify(due_heap[p])
                index_built[0] = True
        now = time.monotonic()
        for tp in owned():
            if tp.topic != t.interactions or not pending[tp.partition]:
                continue
            p = tp.partition
            quiet = now - last_event.get(p, 0.0) >= settings.matcher.idle_flush_s
            if p in newest and (not quiet or behind(tp)):
                # A partition's watermark moves with its records, and each record applies
                # what its watermark made due (on_interactions): only a quiet partition,
                # or one whose pairs were buffered before this worker started, is ticked.
                # Quiet means no record for a while *and* none waiting: in a backlog, a
                # partition can wait its turn longer than that.
                until = due_until(p)
                if until is None:
                    continue
            else:
                until = None
            await ticks.send(key=b"tick", value=orjson.dumps({"until": until}), partition=p)

    def behind(tp: Any) -> bool:
        """Whether records of this partition are waiting (as of the consumer's last fetch)."""
        try:
            highwater = app.consumer.highwater(tp)
        except Exception:  # not assigned (any more), or not fetched yet: not known to wait
            return False
        return highwater is not None and next_offset.get(tp.partition, 0) < highwater

    async def read_forgotten() -> None:
        """The durable forgotten list from Redis, into this worker's set."""
        try:
            hashes = await redis.smembers(keys.forgotten)
        except RedisError as exc:
            log.warning("forgotten_not_loaded", error=str(exc))
            return
        forgotten.update(h.decode() if isinstance(h, bytes) else h for h in hashes)
        forgotten_loaded[0] = True

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    @survives
    async def load_forgotten() -> None:
        await read_forgotten()

    @app.timer(interval=settings.matcher.learn_refit_s)  # type: ignore[untyped-decorator]
    @survives
    async def refit_model() -> None:
        """Refit the model from every labelled answer (the newest ``learn_max_labels``);
        each worker holds them all and fits the same model from the same answers."""
        nonlocal policy
        if prior is None:
            return
        examples = [e for raw in labels.values() if (e := example_from(raw)) is not None]
        if len(examples) == fitted_on[0]:
            return
        examples.sort(key=lambda e: (e.at, e.suggestion_id, e.person))
        keep = settings.matcher.learn_max_labels
        if len(examples) > 2 * keep:  # forget the oldest answers (tombstones on the changelog)
            for e in examples[:-keep]:
                labels.pop(f"{e.suggestion_id}|{e.person}".encode(), None)
        examples = examples[-keep:]
        # ~1 s of pure Python for the 2,000 newest answers: in a thread, so that the event
        # loop (and faust's heartbeats) keep going
        model = await asyncio.to_thread(learning.refit, prior, examples, learn)
        async with lock:  # decisions in flight finish with the model they started with
            policy = dataclasses.replace(policy, model=model)
        fitted_on[0] = len(examples)
        log.info(
            "model_refitted",
            version=model.version,
            answers=len(examples),
            intercept=model.intercept,
            adapted=model is not prior,
        )
        try:
            await redis.hset(
                keys.model,
                mapping={"version": model.version, "answers": len(examples)},
            )
        except RedisError as exc:
            log.warning("model_not_published", error=str(exc))

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    @survives
    async def publish_pair_counts() -> None:
        """Publish the pairs tracked per assigned partition for the console."""
        assigned = [tp.partition for tp in owned()]
        if not assigned:
            return
        counts = {}
        for p in assigned:
            if p not in pair_counts:  # not written since this worker got it: read it once
                raw = table.get(PAIR_COUNT_PREFIX + str(p).encode())
                if raw is None:
                    continue  # maybe still being restored: asked again next second
                pair_counts[p] = int(raw)
            counts[str(p)] = pair_counts[p]
        buffered = {str(p): len(pending[p]) for p in assigned}
        pending_deltas = dict(deltas)
        deltas.clear()
        try:
            async with redis.pipeline(transaction=False) as pipe:
                if counts:
                    pipe.hset(keys.pairs_tracked, mapping=counts)
                pipe.hset(keys.pairs_pending, mapping=buffered)
                for name, value in pending_deltas.items():
                    if value:
                        pipe.hincrby(keys.stats, name, value)
                await pipe.execute()
        except RedisError as exc:  # console figures: kept and published with the next tick
            deltas.update(pending_deltas)
            log.warning("pair_counts_not_published", error=str(exc))
