"""Thin faust I/O around the pure pair logic: decode, ``pairs.step``, write state, send.

``interactions`` is keyed by the unordered pair at production time, so the ``pairs`` table
is co-partitioned with its input and no ``group_by`` repartition hop is needed.
"""

from __future__ import annotations

from typing import Any

import faust
import structlog
from pydantic import ValidationError
from redis.exceptions import RedisError

from schemas.events import INTERACTION_ADAPTER
from schemas.suggestions import SUGGESTION_ADAPTER
from services.common.dlq import send_dead_letter
from services.common.kafka import Topics
from services.common.redis import Keys
from services.common.settings import Settings
from services.matcher import pairs as pair_logic

log = structlog.get_logger(__name__)

#: Per-partition count of pairs, kept in the pairs table itself so that it is restored from
#: the same changelog as the pair states (and so always agrees with them).
PAIR_COUNT_PREFIX = b"\x00meta:pairs:"


def register(app: faust.App, settings: Settings, redis: Any) -> None:
    """Declare the matcher's topics, table, agent and timers on ``app``."""
    t = Topics(settings)
    rule = pair_logic.Rule(
        min_exchanges_per_direction=settings.matcher.min_exchanges_per_direction,
        min_distinct_days=settings.matcher.min_distinct_days,
    )
    interactions = app.topic(
        t.interactions,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.kafka.partitions,
    )
    suggestions = app.topic(t.suggestions, key_serializer="raw", value_serializer="raw")
    dlq = app.topic(t.interactions_dlq, key_serializer="raw", value_serializer="raw")
    table = app.Table(
        "pairs",
        key_type=bytes,  # bytes -> the "raw" codec: we encode pair states ourselves
        value_type=bytes,
        partitions=settings.kafka.partitions,
    )

    @app.agent(interactions, concurrency=1)
    async def match(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            raw = event.value
            try:
                interaction = INTERACTION_ADAPTER.validate_json(raw)
            except ValidationError as exc:
                await send_dead_letter(
                    dlq, event, reason="schema", error=str(exc), service="matcher"
                )
                continue
            key = interaction.key.encode()
            if event.key != key:
                # Keyed elsewhere, the pair's state would live in the wrong partition.
                await send_dead_letter(
                    dlq,
                    event,
                    reason="key",
                    error=f"record key must be the pair {key!r}",
                    service="matcher",
                )
                continue
            previous_raw = table.get(key)
            previous = None if previous_raw is None else pair_logic.PairState.decode(previous_raw)
            state, suggestion = pair_logic.step(previous, interaction, rule)
            if state is previous:
                continue  # a redelivered event: already counted
            table[key] = state.encode()
            if previous is None:
                count_key = PAIR_COUNT_PREFIX + str(event.message.partition).encode()
                table[count_key] = str(int(table.get(count_key) or b"0") + 1).encode()
            if suggestion is not None:
                await suggestions.send(key=key, value=SUGGESTION_ADAPTER.dump_json(suggestion))
                log.info(
                    "suggestion_emitted",
                    suggestion_id=suggestion.suggestion_id,
                    score=suggestion.score,
                )

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def publish_pair_counts() -> None:
        """Publish the pairs tracked per assigned partition for the console."""
        assigned = [
            tp.partition for tp in app.assignor.assigned_actives() if tp.topic == t.interactions
        ]
        if not assigned:
            return
        counts = {
            str(p): int(table.get(PAIR_COUNT_PREFIX + str(p).encode()) or b"0") for p in assigned
        }
        try:
            await redis.hset(Keys(settings).pairs_tracked, mapping=counts)
        except RedisError as exc:  # a console figure: the next tick publishes it again
            log.warning("pair_counts_not_published", error=str(exc))
