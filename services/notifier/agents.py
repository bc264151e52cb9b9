"""Thin faust I/O: decode a suggestion, build the feed items (pure), write them (Redis)."""

from __future__ import annotations

import asyncio
from typing import Final

import faust
import structlog
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.suggestions import SUGGESTION_ADAPTER, Suggestion
from services.common.dlq import send_dead_letter
from services.common.kafka import Topics
from services.common.settings import Settings
from services.notifier.feeds import items_for
from services.notifier.store import FeedStore

log = structlog.get_logger(__name__)

MAX_RETRY_DELAY_S: Final = 5.0


def register(app: faust.App, settings: Settings, store: FeedStore) -> None:
    t = Topics(settings)
    suggestions = app.topic(
        t.suggestions,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.kafka.partitions,
    )
    dlq = app.topic(t.suggestions_dlq, key_serializer="raw", value_serializer="raw")

    @app.agent(suggestions, concurrency=1)
    async def notify(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                suggestion = SUGGESTION_ADAPTER.validate_json(event.value)
            except ValidationError as exc:
                await send_dead_letter(
                    dlq, event, reason="schema", error=str(exc), service="notifier"
                )
                continue
            new = await _deliver_until_stored(store, suggestion)
            log.info(
                "suggestion_delivered" if new else "suggestion_already_delivered",
                suggestion_id=suggestion.suggestion_id,
            )


async def _deliver_until_stored(store: FeedStore, suggestion: Suggestion) -> bool:
    """Write the suggestion's items, retrying with backoff while Redis is unreachable.

    The partition waits instead of skipping: its offset is not committed past a suggestion
    that is not stored, so nothing is lost, and the Lua write is idempotent, so a retry of
    a write that did land changes nothing. (An exception escaping a faust agent would stop
    the agent for good while the worker kept running.)
    """
    delay = 0.1
    while True:
        try:
            return await store.deliver(items_for(suggestion))
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning(
                "feed_write_retry",
                error=str(exc),
                retry_in_s=delay,
                suggestion_id=suggestion.suggestion_id,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_S)
