"""Client-side pipeline operations used by the CLI and tests: replay, drain, read suggestions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import orjson
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError

from schemas.events import INTERACTION_ADAPTER, Interaction
from schemas.suggestions import GROUP_ADAPTER, SUGGESTION_ADAPTER, GroupSuggestion, Suggestion
from services.common.backoff import Backoff, retry_after
from services.common.kafka import (
    Topics,
    end_offsets,
    ensure_topics,
    group_lag,
    new_producer,
    produce_interactions,
    topic_partitions,
)
from services.common.redis import Keys, new_redis
from services.common.settings import Settings

log = structlog.get_logger(__name__)
Progress = Callable[[int], None]
T = TypeVar("T")
M = TypeVar("M")


def read_jsonl(path: Path) -> Iterator[tuple[int, bytes]]:
    """Non-empty lines of ``path`` with their 1-based line numbers."""
    with path.open("rb") as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if line:
                yield n, line


def chunks(lines: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in lines:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class ReplayError(RuntimeError):
    pass


#: bad lines listed one by one at most (the rest are counted)
MAX_LISTED = 100


@dataclass
class BadLines:
    """Lines of a replay file that are not valid interactions: each with its reason."""

    lines: list[tuple[int, str]] = field(default_factory=list)
    count: int = 0

    def add(self, n: int, reason: str) -> None:
        self.count += 1
        if len(self.lines) < MAX_LISTED:
            self.lines.append((n, reason))


def _reason(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()
        )[:500]
    return str(exc)[:500]


def valid_lines(
    lines: Iterable[tuple[int, bytes]], bad: BadLines
) -> Iterator[tuple[int, bytes, Interaction]]:
    """The lines that are valid interactions (parsed); the others go to ``bad`` with their
    line number and reason, and the replay goes on."""
    for n, line in lines:
        try:
            yield n, line, INTERACTION_ADAPTER.validate_json(line)
        except ValueError as exc:
            bad.add(n, _reason(exc))


def check_file(path: Path) -> BadLines:
    """Every bad line of ``path`` (``replay --strict`` sends nothing if there is one)."""
    bad = BadLines()
    for _ in valid_lines(read_jsonl(path), bad):
        pass
    return bad


#: answers that mean "not now": the batch is sent again after a pause
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


async def replay_http(
    path: Path,
    base_url: str,
    *,
    batch_size: int = 2000,
    progress: Progress | None = None,
    bad: BadLines | None = None,
    token: str = "dev-producer-token",  # noqa: S107 - the documented dev token
    from_line: int = 1,
    retry_for_s: float = 300.0,
    request_timeout_s: float = 60.0,
) -> int:
    """POST the file's valid lines from ``from_line`` on as NDJSON batches, in order (bad
    lines go to ``bad``). A batch that meets a timeout, a refused connection, a 429 or a
    5xx-for-now is sent again (Retry-After, else backoff with jitter) for up to
    ``retry_for_s``; the replay then goes on with the next batch. A batch the server
    rejects, or one still not accepted after that, stops with a ReplayError that names the
    line to resume from (every line before it was accepted)."""
    sent = counted = 0
    bad = bad if bad is not None else BadLines()
    lines = ((n, line) for n, line in read_jsonl(path) if n >= from_line)
    async with httpx.AsyncClient(
        base_url=base_url,
        timeout=request_timeout_s,
        headers={"authorization": f"Bearer {token}"},
    ) as client:
        for batch in chunks(valid_lines(lines, bad), batch_size):
            body = b"\n".join(line for _, line, _ in batch)
            r = await _post_batch(client, body, batch[0][0], retry_for_s)
            if r.status_code != 202:
                raise ReplayError(
                    f"batch starting at line {batch[0][0]} rejected: "
                    f"HTTP {r.status_code} {r.text[:2000]}"
                    f" (the lines before it were accepted: --from-line {batch[0][0]} resumes)"
                )
            sent += len(batch)
            if progress:
                progress(len(batch) + bad.count - counted)
            counted = bad.count
    return sent


async def _post_batch(
    client: httpx.AsyncClient, body: bytes, first_line: int, retry_for_s: float
) -> httpx.Response:
    """POST one batch, again and again while the answer means "not now"."""
    backoff = Backoff(base=0.5, cap=30.0)
    give_up = time.monotonic() + retry_for_s
    while True:
        try:
            r = await client.post(
                "/v1/interactions:batch",
                content=body,
                headers={"content-type": "application/x-ndjson"},
            )
        except httpx.TransportError as exc:  # timeouts, refused and dropped connections
            wait, why = backoff.next(), f"{type(exc).__name__} {exc}".strip()
        else:
            if r.status_code not in RETRYABLE_STATUS:
                return r
            wait, why = retry_after(r.headers) or backoff.next(), f"HTTP {r.status_code}"
        if time.monotonic() + wait > give_up:
            raise ReplayError(
                f"batch starting at line {first_line} not accepted within {retry_for_s:g} s "
                f"({why}); the lines before it were accepted: --from-line {first_line} resumes"
            )
        log.warning("replay_batch_retried", line=first_line, reason=why, retry_in_s=round(wait, 2))
        await asyncio.sleep(wait)


async def replay_direct(
    path: Path,
    settings: Settings,
    *,
    progress: Progress | None = None,
    bad: BadLines | None = None,
) -> int:
    """Produce the file's valid lines straight to Kafka (keyed by pair), bypassing HTTP;
    bad lines go to ``bad``."""
    await ensure_topics(settings)
    topic = Topics(settings).interactions
    producer = new_producer(settings, client_id="realconnect-replay")
    redis, keys = new_redis(settings), Keys(settings)
    await producer.start()
    sent = 0
    try:
        bad = bad if bad is not None else BadLines()
        counted = 0
        for batch in chunks(valid_lines(read_jsonl(path), bad), 2000):
            parsed = [i for _, _, i in batch]
            per_record = settings.kafka.interactions_per_record
            await produce_interactions(producer, topic, parsed, per_record)
            await redis.hincrby(keys.stats, "interactions_in", len(parsed))  # console's funnel
            sent += len(parsed)
            if progress:
                progress(len(parsed) + bad.count - counted)
            counted = bad.count
    finally:
        await producer.stop()
        await redis.aclose()
    return sent


async def answered(call: Callable[[], Awaitable[T]], deadline: float, what: str) -> T:
    """``call()``, asked again while Kafka cannot answer (a broker restarting, a leader
    moving) until ``deadline``; then a TimeoutError that says what was being asked."""
    backoff = Backoff(base=0.2, cap=5.0)
    while True:
        try:
            return await call()
        except (KafkaError, OSError) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kafka did not answer ({what}): {exc!r}") from exc
            log.warning("kafka_unavailable_retrying", what=what, error=repr(exc))
            await asyncio.sleep(backoff.next())


async def wait_caught_up(
    settings: Settings, topic: str, group: str, deadline: float, poll: float
) -> None:
    """Return once ``group`` has committed the end offsets ``topic`` has now."""
    bootstrap = settings.kafka.bootstrap_servers
    target = await answered(lambda: end_offsets(bootstrap, topic), deadline, f"{topic} ends")
    while True:
        lag = await answered(
            lambda: group_lag(bootstrap, topic, group), deadline, f"{group} offsets"
        )
        behind = {p: e for p, e in target.items() if lag.committed.get(p, 0) < e}
        if not behind:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group} still behind on {topic}: {behind}")
        await asyncio.sleep(poll)


async def drain_matcher(settings: Settings, *, timeout: float = 300.0, poll: float = 0.3) -> None:
    """Return once the matcher has processed every interaction now on its topic *and* has
    applied everything it buffered for late arrivals.

    The matcher holds events back for the allowed lateness and flushes them with ticks on
    ``matcher.ticks``; after ``idle_flush_s`` quiet seconds it flushes every buffer, and it
    sends ticks only while some buffer is non-empty. So: interactions consumed, then the
    ticks topic consumed and silent for a few tick intervals.
    """
    t = Topics(settings)
    deadline = time.monotonic() + timeout
    group = t.app_id("matcher")
    await wait_caught_up(settings, t.interactions, group, deadline, poll)
    await asyncio.sleep(settings.matcher.idle_flush_s)
    quiet_for = 3 * settings.matcher.tick_interval_s
    bootstrap = settings.kafka.bootstrap_servers

    def ticks_end() -> Awaitable[dict[int, int]]:
        return end_offsets(bootstrap, t.ticks)

    before = await answered(ticks_end, deadline, f"{t.ticks} ends")
    while True:
        await asyncio.sleep(quiet_for)
        await wait_caught_up(settings, t.ticks, group, deadline, poll)
        after = await answered(ticks_end, deadline, f"{t.ticks} ends")
        if after == before:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group} still flushing buffered events")
        before = after


async def drain(settings: Settings, *, timeout: float = 300.0, poll: float = 0.3) -> None:
    """Return once the matcher has decided on every interaction and the notifier has
    delivered every suggestion that those produced (committed offsets reach the ends)."""
    t = Topics(settings)
    start = time.monotonic()
    # Faust flushes its producer before committing, so once the matcher's commits are at the
    # end of its inputs, every suggestion it made is already on `meetup.suggestions`.
    await drain_matcher(settings, timeout=timeout, poll=poll)
    remaining = max(1.0, timeout - (time.monotonic() - start))
    await wait_caught_up(
        settings, t.suggestions, t.app_id("notifier"), time.monotonic() + remaining, poll
    )


async def read_suggestions(
    settings: Settings, *, from_beginning: bool = True, idle_s: float = 5.0, unique: bool = False
) -> list[Suggestion]:
    """Every suggestion on the topic, until none has arrived for ``idle_s`` seconds; each
    record, a suggestion emitted twice included (``unique``: the first of each id only)."""
    out = await _read_all(
        Topics(settings).suggestions,
        SUGGESTION_ADAPTER,
        lambda s: s.suggestion_id,
        settings,
        from_beginning=from_beginning,
        idle_s=idle_s,
        unique=unique,
    )
    out.sort(key=lambda s: (s.suggested_at, s.suggestion_id))
    return out


async def read_groups(
    settings: Settings, *, idle_s: float = 5.0, unique: bool = False
) -> list[GroupSuggestion]:
    """Every group suggestion on ``meetup.groups``, as `read_suggestions` reads pairs'."""
    out = await _read_all(
        Topics(settings).groups,
        GROUP_ADAPTER,
        lambda g: g.group_id,
        settings,
        from_beginning=True,
        idle_s=idle_s,
        unique=unique,
    )
    out.sort(key=lambda g: (g.suggested_at, g.group_id))
    return out


async def _read_all(
    topic: str,
    adapter: TypeAdapter[M],
    id_of: Callable[[M], str],
    settings: Settings,
    *,
    from_beginning: bool,
    idle_s: float,
    unique: bool,
) -> list[M]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        isolation_level="read_committed",  # the matcher writes in transactions
    )
    await consumer.start()
    out: list[M] = []
    seen: set[str] = set()
    try:
        tps = await topic_partitions(consumer, topic)
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                for rec in records:
                    s = adapter.validate_json(rec.value)
                    last = time.monotonic()
                    if unique and id_of(s) in seen:
                        continue
                    seen.add(id_of(s))
                    out.append(s)
    finally:
        await consumer.stop()
    return out


def dumps_line(s: Suggestion) -> str:
    return orjson.dumps(s.model_dump(mode="json")).decode()
