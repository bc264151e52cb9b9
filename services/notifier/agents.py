"""Thin faust I/O: a suggestion -> delivery policy (pure) -> feed records on Kafka -> Redis.

Every feed item is first produced to the compacted ``feeds`` topic (the source of truth that
``realconnect rebuild-feeds`` replays) and then written to Redis by one idempotent Lua script.
A crash anywhere in between repeats both steps, which changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final, NotRequired, TypeVar, cast

import faust
import httpx
import orjson
import structlog
from prometheus_client import Counter, Histogram
from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict

from schemas.events import pair_key
from schemas.feedback import FeedbackGiven
from schemas.people import FeedItem
from schemas.suggestions import GROUP_ADAPTER, SUGGESTION_ADAPTER, GroupSuggestion, Suggestion
from services.common import i18n, records
from services.common.backoff import Backoff
from services.common.dlq import send_dead_letter
from services.common.kafka import Topics
from services.common.settings import Settings
from services.common.worker import owned_partitions, survives
from services.notifier import chatting, email, mail, webhooks
from services.notifier.chatting import ChatPoster
from services.notifier.feeds import (
    decide,
    decide_group,
    group_items,
    items_for,
    parse_held,
    week_of,
)
from services.notifier.store import FeedStore, until_stored

log = structlog.get_logger(__name__)


class _Item(TypedDict):
    item_id: str


class WebhookJob(TypedDict):
    """What the notifier writes to ``notifications.webhooks`` for each item to post (and to
    ``notifications.webhooks.retry``, with the attempt and its earliest time)."""

    person_id: str
    url: str
    item: dict[str, Any]
    attempt: NotRequired[int]
    not_before: NotRequired[float]


WEBHOOK_JOB: Final = TypeAdapter(WebhookJob)
_ITEM: Final = TypeAdapter(_Item)
DECISIONS = Counter("realconnect_deliveries_total", "Delivery decisions.", ["action", "reason"])
LATENCY = Histogram(
    "realconnect_ingest_to_feed_seconds",
    "From the triggering interaction reaching Kafka to its suggestion in both feeds.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
GROUPS = Counter(
    "realconnect_group_deliveries_total", "Group meetup delivery decisions.", ["action", "reason"]
)
EMAILS = Counter("realconnect_emails_total", "Emails sent or dead-lettered.", ["outcome"])
T = TypeVar("T")
M = TypeVar("M")


class Mailer:
    """Sends one email job: skipped for a forgotten person or a message already sent; else
    composed with a fresh sign-in link, sent with retries, marked sent, or dead-lettered."""

    def __init__(self, settings: Settings, store: FeedStore, dlq: Any) -> None:
        self.settings, self.store, self.dlq = settings, store, dlq

    async def send(self, job: email.EmailJob, item: FeedItem, message: Any) -> None:
        settings, store = self.settings, self.store
        mid = mail.message_id(item.person_id, item.item_id)
        if await until_stored("forgotten", lambda: store.is_forgotten(item.person_id)):
            return
        if await until_stored("mail_sent", lambda: store.mail_was_sent(mid)):
            log.info("email_already_sent", item_id=item.item_id)
            return
        token = await until_stored(
            "signin", lambda: store.mint_signin(item.person_id, settings.email.link_ttl_s)
        )
        base = settings.feeds.public_url
        people = (item.person_id, *item.others)
        names = await until_stored("names", lambda: store.names(people))
        prefs = await until_stored("preferences", lambda: store.preferences(item.person_id))
        words = i18n.words_for(prefs)
        try:
            composed = mail.compose(
                item,
                to=job["to"],
                sender=settings.email.sender,
                page_link=mail.signin_url(base, token),
                unsubscribe=mail.unsubscribe_url(
                    base, settings.notifier.webhook_key.get_secret_value(), item.person_id
                ),
                attendees=job["attendees"],
                names=names,
                words=words,
            )
        except Exception as exc:  # poison: dead-lettered, and the next person's goes on
            log.warning("email_not_composed", error=repr(exc)[:300])
            EMAILS.labels("dead_letter").inc()
            await send_dead_letter(
                self.dlq, message, reason="email_compose", service="notifier", error=repr(exc)
            )
            return
        try:
            outcome = await email.send(composed.message, composed.to, settings.email)
        except Exception as exc:  # one bad message never stops everyone's email
            log.exception("email_failed")
            outcome = email.Outcome(False, 0, f"error: {exc!r}"[:500])
        if outcome.ok:
            await until_stored("mail_sent", lambda: store.mark_mail_sent(mid))
            EMAILS.labels("sent").inc()
            log.info("email_sent", item_id=item.item_id, attempts=outcome.attempts)
        else:
            EMAILS.labels("dead_letter").inc()
            await send_dead_letter(
                self.dlq,
                message,
                reason="email",
                service="notifier",
                error=f"{outcome.reason} after {outcome.attempts} attempts",
            )


class Deliveries:
    """One suggestion through the delivery policy: delivered to both feeds (Kafka first,
    then Redis), held until its time, or not delivered."""

    def __init__(
        self,
        store: FeedStore,
        *,
        feeds: faust.TopicT,
        emails: faust.TopicT,
        hooks: faust.TopicT,
        held: tuple[Any, str],
        answers: faust.TopicT | None = None,
        chats: tuple[Settings, faust.TopicT] | None = None,
    ) -> None:
        self.store, self.feeds, self.emails, self.hooks = store, feeds, emails, hooks
        self.chats = chats  # notifications.chat: a DM with answer buttons
        self.producer, self.held_topic = held  # notifications.held, written with tombstones
        self.answers = answers  # meetup.feedback: "undelivered", for the matcher

    async def handle(
        self,
        s: Suggestion,
        raw: bytes,
        now: datetime,
        ingested_at: float = 0.0,
        *,
        partition: int,
        held_until: float | None = None,
    ) -> str:
        """Decide and act; returns the action ("deliver", "hold" or "drop"). ``partition``
        is the suggestion's ``meetup.suggestions`` partition (a held delivery is kept with
        it), ``held_until`` the release time of a held delivery decided again."""
        store = self.store
        if await until_stored("forgotten", lambda: store.is_forgotten(*s.pair)):
            DECISIONS.labels("drop", "forgotten").inc()
            return "drop"
        prefs, weeks, sent = await self.context(s.pair, now)
        decision = decide(s, prefs, now, sent)
        DECISIONS.labels(decision.action, decision.reason).inc()
        record = {"suggestion_id": s.suggestion_id, **decision.record(now)}
        key = pair_key(*s.pair)
        await until_stored("delivery record", lambda: store.record_delivery(key, s.pair, record))
        if decision.action == "deliver":
            await self.deliver(s, now, prefs, weeks, ingested_at)
        elif decision.action == "hold":
            assert decision.until is not None
            if decision.until.timestamp() != held_until:  # a new hold, or a new release time
                await self.hold(partition, s.suggestion_id, raw, decision.until.timestamp())
                log.info(
                    "suggestion_held",
                    suggestion_id=s.suggestion_id,
                    reason=decision.reason,
                    until=decision.until.isoformat(),
                )
        else:  # the reason stays in metrics and logs only: an exclusion is confidential
            log.info(
                "suggestion_not_delivered", suggestion_id=s.suggestion_id, reason=decision.reason
            )
            if decision.reason == "consent":
                await self.undelivered(s, prefs, now)
        return decision.action

    async def undelivered(self, s: Suggestion, prefs: dict[str, Any], now: datetime) -> None:
        """Tell the matcher the suggestion was not delivered for want of consent (outcome
        ``undelivered`` on ``meetup.feedback``, keyed by the pair): it holds the pair back a
        day, not the whole cooldown, so a later opt-in is not kept waiting a month. Nobody
        is told; the record names the first person not opted in, and goes to the matcher
        alone."""
        if self.answers is None:
            return
        person = next(p for p in s.pair if prefs.get(p) is None or not prefs[p].opted_in)
        fb = FeedbackGiven(
            suggestion_id=s.suggestion_id,
            pair=s.pair,
            person_id=person,
            outcome="undelivered",
            at=s.suggested_at,  # the matcher's clock is the events' (its cooldowns too)
        )
        await self.answers.send(key=pair_key(*s.pair).encode(), value=fb.model_dump_json().encode())

    async def context(
        self, people: tuple[str, ...], now: datetime
    ) -> tuple[dict[str, Any], dict[str, str], dict[str, int]]:
        """Each person's preferences, current week (in their zone) and items sent in it."""
        store = self.store
        prefs: dict[str, Any] = {}
        weeks: dict[str, str] = {}
        sent: dict[str, int] = {}
        for person in people:
            pref = await until_stored("prefs", functools.partial(store.preferences, person))
            prefs[person] = pref
            weeks[person] = week_of(now, pref.time_zone if pref is not None else "UTC")
            sent[person] = await until_stored(
                "sent", functools.partial(store.sent_this_week, person, weeks[person])
            )
        return prefs, weeks, sent

    async def handle_group(
        self,
        g: GroupSuggestion,
        raw: bytes,
        now: datetime,
        *,
        partition: int,
        held_until: float | None = None,
    ) -> str:
        """A group meetup through the same policy, over every member (``decide_group``):
        delivered to every member's feed, held, or not delivered."""
        store = self.store
        if await until_stored("forgotten", lambda: store.is_forgotten(*g.members)):
            GROUPS.labels("drop", "forgotten").inc()
            return "drop"
        prefs, weeks, sent = await self.context(g.members, now)
        decision = decide_group(g, prefs, now, sent)
        GROUPS.labels(decision.action, decision.reason).inc()
        record = {"group_id": g.group_id, **decision.record(now)}
        key = f"group:{g.group_id}"
        await until_stored("delivery record", lambda: store.record_delivery(key, g.members, record))
        if decision.action == "deliver":
            zones = sorted({p.time_zone for p in prefs.values() if p is not None})
            items = group_items(g, now, zones)
            await self.record(items)
            for item in items:
                await self.jobs(item, prefs[item.person_id])
            new = await until_stored("deliver", lambda: store.deliver_group(items, weeks))
            log.info("group_delivered" if new else "group_already_delivered", group_id=g.group_id)
        elif decision.action == "hold":
            assert decision.until is not None
            if decision.until.timestamp() != held_until:
                await self.hold(partition, g.group_id, raw, decision.until.timestamp())
                log.info("group_held", group_id=g.group_id, reason=decision.reason)
        else:  # the reason stays in metrics and logs only: an exclusion is confidential
            log.info("group_not_delivered", group_id=g.group_id, reason=decision.reason)
        return decision.action

    async def deliver(
        self,
        s: Suggestion,
        now: datetime,
        prefs: dict[str, Any],
        weeks: dict[str, str],
        ingested_at: float,
    ) -> None:
        """Feed records, then email and webhook jobs, on Kafka; then the feeds in Redis."""
        items = items_for(s, now)
        await self.record(items)
        for item in items:  # before Redis too: a crash repeats the job, never loses it
            await self.jobs(item, prefs[item.person_id])
        new = await until_stored("deliver", lambda: self.store.deliver(items, weeks))
        if new and ingested_at > 0:
            LATENCY.observe(max(0.0, datetime.now(UTC).timestamp() - ingested_at))
        log.info(
            "suggestion_delivered" if new else "suggestion_already_delivered",
            suggestion_id=s.suggestion_id,
        )

    async def hold(self, partition: int, key_id: str, raw: bytes, until: float) -> None:
        """Keep a delivery for later: on ``notifications.held`` (in the suggestion's
        partition) before Redis, so that a Redis that lost it is rebuilt with it."""
        value = {"partition": partition, "until": until, "suggestion": orjson.Fragment(raw)}
        key = key_id.encode()
        await self._held_record(key, orjson.dumps(value), partition)
        await until_stored("hold", lambda: self.store.hold(partition, raw, until))

    async def release(self, partition: int, key_id: str, raw: bytes) -> None:
        """A held delivery was delivered or dropped: a tombstone, then out of Redis."""
        await self._held_record(key_id.encode(), None, partition)
        await until_stored("release", lambda: self.store.release(partition, raw))

    async def _held_record(self, key: bytes, value: bytes | None, partition: int) -> None:
        sent = await self.producer.send(self.held_topic, key, value, partition, None, None)
        await sent

    async def release_due(self, partitions: list[int]) -> None:
        """Decide the held deliveries of these partitions again: their time may have come,
        or preferences changed. Only the owner of a partition releases its deliveries."""
        for p in partitions:
            for raw, until in await until_stored("held", functools.partial(self.store.held, p)):
                m = parse_held(raw)
                now = datetime.now(UTC)
                if isinstance(m, GroupSuggestion):
                    action = await self.handle_group(m, raw, now, partition=p, held_until=until)
                    key_id = m.group_id
                else:
                    action = await self.handle(m, raw, now, partition=p, held_until=until)
                    key_id = m.suggestion_id
                if action != "hold":
                    await self.release(p, key_id, raw)

    async def move_unpartitioned(self, partitions: int) -> None:
        """Held deliveries of a version that kept them in one set: to their partition's set
        and ``notifications.held`` (the partition their pair key maps to)."""
        for raw in await self.store.held_before_partitions():
            s = SUGGESTION_ADAPTER.validate_json(raw)
            p = records.partition_for(pair_key(*s.pair).encode(), partitions)
            await self.handle(s, raw, datetime.now(UTC), partition=p)
            await self.store.drop_held_before_partitions(raw)

    async def record(self, items: tuple[FeedItem, ...]) -> None:
        futures = [
            await self.feeds.send(
                key=f"{i.person_id}|{i.item_id}".encode(), value=i.model_dump_json().encode()
            )
            for i in items
        ]
        for f in futures:
            await f  # on Kafka before Redis: the rebuild source is never behind the view

    async def jobs(self, item: FeedItem, pref: Any) -> None:
        """The email and webhook jobs of one person's item, as their preferences ask."""
        if pref is None:
            return
        key = item.person_id.encode()
        if pref.wants("email") and pref.email:
            await (await self.emails.send(key=key, value=email.job(item, pref.email)))
        if pref.wants("webhook") and pref.webhook_url:
            job = {
                "person_id": item.person_id,
                "url": pref.webhook_url,
                "item": item.model_dump(mode="json"),
            }
            await (await self.hooks.send(key=key, value=orjson.dumps(job)))
        if self.chats is not None:
            settings, topic = self.chats
            for raw in await chatting.jobs(settings, self.store, item, pref):
                await (await topic.send(key=key, value=raw))


class WebhookPoster:
    """Posts webhook jobs, one attempt each, signed with the person's secret. A failed
    attempt worth retrying goes to ``notifications.webhooks.retry`` with the time it may be
    tried again; the last failure is dead-lettered. Jobs run concurrently (see the agents),
    so a dead receiver holds one slot for one timeout, not everybody's webhooks."""

    def __init__(self, settings: Settings, dlq: Any, retry: faust.TopicT) -> None:
        self.cfg, self.dlq, self.retry = settings.notifier, dlq, retry
        self._client: httpx.AsyncClient | None = None  # made on first use, inside the loop

    def delay(self, attempt_no: int, asked: float | None) -> float:
        """How long before the next attempt: full-jitter backoff, or the receiver's
        Retry-After if it asked for longer, at most ``webhook_max_delay_s``."""
        cfg = self.cfg
        backoff = Backoff(base=cfg.webhook_backoff_s, cap=cfg.webhook_max_delay_s)
        backoff.attempt = attempt_no - 1
        return min(cfg.webhook_max_delay_s, max(backoff.next(), asked or 0.0))

    async def post(self, event: faust.EventT[bytes]) -> None:
        cfg = self.cfg
        try:
            job = WEBHOOK_JOB.validate_json(event.value or b"")
            _ITEM.validate_python(job["item"])
        except ValidationError as exc:
            # the notifier writes these jobs itself: anything else is poison
            await send_dead_letter(
                self.dlq, event.message, reason="webhook_job", error=str(exc), service="notifier"
            )
            return
        attempt_no = job.get("attempt", 1)
        if (wait := job.get("not_before", 0.0) - time.time()) > 0:  # a retry, not yet due
            await asyncio.sleep(min(wait, cfg.webhook_max_delay_s))
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=cfg.webhook_timeout_s)
        try:
            outcome = await webhooks.attempt(
                self._client,
                job["url"],
                orjson.dumps(job["item"]),
                secret=webhooks.secret_for(cfg.webhook_key.get_secret_value(), job["person_id"]),
                delivery_id=job["item"]["item_id"],
                attempt_no=attempt_no,
                allow_private=cfg.webhook_allow_private,
            )
        except Exception as exc:  # one person's bad target never stops everyone's webhooks
            log.exception("webhook_failed")
            outcome = webhooks.Outcome(False, attempt_no, f"error: {exc!r}"[:500])
        if outcome.ok:
            log.info("webhook_delivered", attempts=outcome.attempts)
        elif outcome.retry and attempt_no < cfg.webhook_attempts:
            delay = self.delay(attempt_no, outcome.retry_after)
            again: WebhookJob = {
                **job,
                "attempt": attempt_no + 1,
                "not_before": time.time() + delay,
            }
            await (await self.retry.send(key=event.key, value=orjson.dumps(again)))
            log.info(
                "webhook_retry_scheduled", attempt=attempt_no, reason=outcome.reason, in_s=delay
            )
        else:
            await send_dead_letter(
                self.dlq,
                event.message,
                reason="webhook",
                service="notifier",
                error=f"{outcome.reason} after {outcome.attempts} attempts",
            )


def ingested_at(event: faust.EventT[bytes]) -> float:
    """The ``ingested_at`` header the matcher set (when the trigger reached Kafka), or 0."""
    raw_headers: Any = event.message.headers or []
    header_items = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    return float(dict(header_items).get("ingested_at", b"0") or 0)


def in_batches(
    post: Callable[[faust.EventT[bytes]], Awaitable[None]], size: int
) -> Callable[[faust.StreamT[bytes]], Awaitable[None]]:
    """An agent that takes jobs in batches of ``size`` and posts each batch at once: a dead
    receiver holds its batch for one timeout, never a partition for all its retries. Run it
    as one actor per topic (faust-streaming #606: with concurrency > 1 an offset can be
    committed past a job still in flight); a batch is acknowledged once all of it is done."""

    async def post_all(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).take_events(size, within=0.05)
        async for events in batches:
            await asyncio.gather(*(post(e) for e in events))

    return post_all


def register(app: faust.App, settings: Settings, store: FeedStore) -> None:
    t = Topics(settings)
    n = settings.kafka.partitions

    def raw_topic(name: str, partitions: int | None = n) -> faust.TopicT:
        return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=partitions)

    suggestions = raw_topic(t.suggestions)
    dlq = raw_topic(t.suggestions_dlq, None)
    hooks = raw_topic(t.webhooks)
    emails = raw_topic(t.emails)
    deliveries = Deliveries(
        store,
        feeds=raw_topic(t.feeds),
        emails=emails,
        hooks=hooks,
        held=(app.producer, t.held),
        answers=raw_topic(t.feedback),
        chats=(settings, raw_topic(t.chat)),
    )
    poster = WebhookPoster(settings, dlq, raw_topic(t.webhooks_retry))
    mailer = Mailer(settings, store, dlq)

    async def valid(event: faust.EventT[bytes], adapter: TypeAdapter[M]) -> M | None:
        """The record as ``adapter`` reads it; a record that is not is dead-lettered."""
        try:
            return adapter.validate_json(event.value or b"")
        except ValidationError as exc:
            await send_dead_letter(
                dlq, event.message, reason="schema", error=str(exc), service="notifier"
            )
            return None

    @app.agent(suggestions, concurrency=1)
    async def notify(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if (s := await valid(event, SUGGESTION_ADAPTER)) is None:
                continue
            raw = SUGGESTION_ADAPTER.dump_json(s)
            p = event.message.partition
            await deliveries.handle(s, raw, datetime.now(UTC), ingested_at(event), partition=p)

    @app.agent(raw_topic(t.groups), concurrency=1)
    async def notify_groups(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if (g := await valid(event, GROUP_ADAPTER)) is None:
                continue
            raw = GROUP_ADAPTER.dump_json(g)
            # held with the meetup.suggestions partition its id maps to (released by its owner)
            p = records.partition_for(g.group_id.encode(), n)
            await deliveries.handle_group(g, raw, datetime.now(UTC), partition=p)

    # webhook and chat jobs: batches posted at once (see `in_batches`), one actor per topic
    post_all = in_batches(poster.post, settings.notifier.webhook_concurrency)
    app.agent(hooks, name="post_webhooks", concurrency=1)(post_all)
    app.agent(poster.retry, name="retry_webhooks", concurrency=1)(post_all)
    chats = ChatPoster(settings, store, dlq, raw_topic(t.chat_retry))
    send_all = in_batches(chats.post, settings.notifier.webhook_concurrency)
    app.agent(raw_topic(t.chat), name="send_chats", concurrency=1)(send_all)
    app.agent(chats.retry, name="retry_chats", concurrency=1)(send_all)

    @app.agent(emails, concurrency=1)
    async def send_emails(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                job = email.EMAIL_JOB.validate_json(event.value or b"")
                item = FeedItem.model_validate(job["item"])
            except ValidationError as exc:
                await send_dead_letter(
                    dlq, event.message, reason="email_job", error=str(exc), service="notifier"
                )
                continue
            try:
                await mailer.send(job, item, event.message)
            except Exception as exc:  # whatever raised it: never the agent's end
                log.exception("email_job_failed")
                await send_dead_letter(
                    dlq, event.message, reason="email", error=repr(exc), service="notifier"
                )

    @app.timer(interval=settings.notifier.release_interval_s)  # type: ignore[untyped-decorator]
    @survives
    async def release_held() -> None:
        """Re-decide held deliveries of the partitions this worker owns."""
        partitions = owned_partitions(app, t.suggestions)
        await deliveries.release_due(partitions)
        if 0 in partitions:  # one worker moves what an older version held
            await deliveries.move_unpartitioned(n)
