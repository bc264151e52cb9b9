"""Chat delivery: a person who chose Slack or Discord, and linked an account there, gets each
new item as a DM from the bot with answer buttons.

A job is written to ``notifications.chat`` before anything is sent (by the notifier for a new
item, by the feeds service for a meetup that is on), so a crash loses none. Posting is at
least once with a marker per person, item and platform in Redis (the message's place, kept to
update it after an answer): a redelivered job whose message was posted sends nothing again.
A failed attempt worth retrying (429, 5xx, a timeout) goes to ``notifications.chat.retry``
with the time it may be tried again: the platform's ``Retry-After`` when it gave one, else
full-jitter backoff. The last failure, and a refusal retrying cannot change, is
dead-lettered to ``notifications.dlq``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Final

import faust
import orjson
import structlog
from prometheus_client import Counter
from pydantic import TypeAdapter, ValidationError

from schemas.people import FeedItem, Preferences
from services.common import i18n
from services.common.backoff import Backoff
from services.common.dlq import send_dead_letter
from services.common.settings import Settings
from services.notifier import chat, dm
from services.notifier.store import FeedStore, until_stored

log = structlog.get_logger(__name__)
CHAT_JOB: Final = TypeAdapter(dm.ChatJob)
PLATFORMS: Final[tuple[chat.Platform, ...]] = ("slack", "discord")
CHATS = Counter(
    "realconnect_chat_messages_total",
    "Chat messages sent, retried, skipped or dead-lettered.",
    ["platform", "outcome"],
)


async def jobs(
    settings: Settings, store: FeedStore, item: FeedItem, pref: Preferences | None
) -> list[bytes]:
    """The chat jobs of one person's item, as their preferences ask: one per chosen,
    configured platform on which they have a linked account."""
    if pref is None:
        return []
    out = []
    for platform in PLATFORMS:
        if not (pref.wants(platform) and settings.chat.enabled(platform)):
            continue
        handle = await until_stored(
            "linked", functools.partial(store.linked, item.person_id, platform)
        )
        if handle is None:
            continue
        job: dm.ChatJob = {
            "person_id": item.person_id,
            "platform": platform,
            "handle": handle,
            "item": item.model_dump(mode="json"),
        }
        out.append(orjson.dumps(job))
    return out


async def compose(
    store: FeedStore, item: FeedItem, platform: chat.Platform, *, meetup_on: bool
) -> dict[str, Any]:
    """The message of ``item`` for ``platform``, in its person's language, naming people by
    their names."""
    names = await until_stored("names", lambda: store.names((item.person_id, *item.others)))
    prefs = await until_stored("preferences", lambda: store.preferences(item.person_id))
    build = chat.slack if platform == "slack" else chat.discord
    return build(item, names=names, w=i18n.words_for(prefs), meetup_on=meetup_on)


class ChatPoster:
    """Sends chat jobs, one attempt each (see the module's text)."""

    def __init__(self, settings: Settings, store: FeedStore, dlq: Any, retry: faust.TopicT) -> None:
        self.cfg, self.store, self.dlq, self.retry = settings.chat, store, dlq, retry
        self.clients = dm.Clients(settings.chat)

    def delay(self, attempt_no: int, asked: float | None) -> float:
        backoff = Backoff(base=self.cfg.backoff_s, cap=self.cfg.max_delay_s)
        backoff.attempt = attempt_no - 1
        return min(self.cfg.max_delay_s, max(backoff.next(), asked or 0.0))

    async def _dead(self, event: faust.EventT[bytes], reason: str, error: str) -> None:
        await send_dead_letter(
            self.dlq, event.message, reason=reason, error=error, service="notifier"
        )

    async def post(self, event: faust.EventT[bytes]) -> None:
        try:
            job = CHAT_JOB.validate_json(event.value or b"")
            item = FeedItem.model_validate(job["item"])
            platform, handle, person = job["platform"], job["handle"], job["person_id"]
            dm.user_of(handle, platform)
        except (ValidationError, KeyError, ValueError) as exc:  # the notifier writes these
            await self._dead(event, "chat_job", str(exc)[:500])
            return
        if (wait := job.get("not_before", 0.0) - time.time()) > 0:  # a retry, not yet due
            await asyncio.sleep(min(wait, self.cfg.max_delay_s))
        store = self.store
        if await until_stored("forgotten", lambda: store.is_forgotten(person)):
            return
        if await until_stored(
            "chat_sent", lambda: store.chat_message(platform, person, item.item_id)
        ):
            CHATS.labels(platform, "already_sent").inc()
            log.info("chat_already_sent", platform=platform, item_id=item.item_id)
            return
        if await until_stored("owner", lambda: store.owner(handle)) not in (person, None):
            CHATS.labels(platform, "unlinked").inc()
            log.info("chat_not_sent_unlinked", platform=platform, item_id=item.item_id)
            return
        attempt_no = job.get("attempt", 1)
        try:
            message = await compose(
                store, item, platform, meetup_on=item.type in ("mutual", "group_on")
            )
            outcome = await self.clients(platform).send(handle, message)
        except Exception as exc:  # one person's bad message never stops everyone's
            log.exception("chat_failed", platform=platform)
            outcome = dm.Outcome(False, False, None, f"error: {exc!r}"[:500])
        if outcome.ok:
            await until_stored(
                "chat_sent",
                lambda: store.mark_chat_sent(platform, person, item.item_id, outcome.ref),
            )
            CHATS.labels(platform, "sent").inc()
            log.info("chat_sent", platform=platform, item_id=item.item_id, attempt=attempt_no)
        elif outcome.retry and attempt_no < self.cfg.attempts:
            delay = self.delay(attempt_no, outcome.retry_after)
            again: dm.ChatJob = {
                **job,
                "attempt": attempt_no + 1,
                "not_before": time.time() + delay,
            }
            await (await self.retry.send(key=event.key, value=orjson.dumps(again)))
            CHATS.labels(platform, "retry").inc()
            log.info("chat_retry_scheduled", platform=platform, reason=outcome.reason, in_s=delay)
        else:
            CHATS.labels(platform, "dead_letter").inc()
            await self._dead(event, "chat", f"{outcome.reason} after {attempt_no} attempts")
