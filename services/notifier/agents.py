"""Thin faust I/O: decode a suggestion, build the feed items (pure), write them (Redis)."""

from __future__ import annotations

from typing import Any

import faust
import structlog
from pydantic import ValidationError

from schemas.suggestions import SUGGESTION_ADAPTER
from services.common.dlq import dead_letter_headers
from services.common.kafka import Topics
from services.common.settings import Settings
from services.notifier.feeds import items_for
from services.notifier.store import FeedStore

log = structlog.get_logger(__name__)


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
                await _dead_letter(dlq, event, "schema", str(exc))
                continue
            # A Redis error propagates: the offset is not committed and faust stops the
            # worker, so the supervisor restarts it and the suggestion is retried, not lost.
            new = await store.deliver(items_for(suggestion))
            log.info(
                "suggestion_delivered" if new else "suggestion_already_delivered",
                suggestion_id=suggestion.suggestion_id,
            )


async def _dead_letter(dlq: Any, event: faust.EventT[Any], reason: str, error: str) -> None:
    msg = event.message
    await dlq.send(
        key=msg.key,
        value=msg.value,
        headers=dead_letter_headers(
            reason=reason,
            error=error,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            service="notifier",
        ),
    )
    log.warning("suggestion_dead_lettered", reason=reason, offset=msg.offset)
