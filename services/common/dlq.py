"""Dead letters: the original bytes, untouched, with the reason in headers.

A record that a worker cannot process is never dropped and never crashes the worker: it is
produced to a dead-letter topic with the same key and value, plus headers saying why and
where it came from, so an operator can inspect, fix and replay it.
"""

from __future__ import annotations

from typing import Any, Final

import structlog

log = structlog.get_logger(__name__)

#: Error text is truncated so one pathological record cannot make a huge header.
MAX_ERROR_CHARS: Final = 2000


def dead_letter_headers(
    *, reason: str, error: str, topic: str, partition: int, offset: int, service: str
) -> list[tuple[str, bytes]]:
    return [
        ("dlq.reason", reason.encode()),
        ("dlq.error", error[:MAX_ERROR_CHARS].encode("utf-8", "replace")),
        ("dlq.topic", topic.encode()),
        ("dlq.partition", str(partition).encode()),
        ("dlq.offset", str(offset).encode()),
        ("dlq.service", service.encode()),
    ]


async def send_dead_letter(
    dlq: Any,
    msg: Any,
    *,
    reason: str,
    error: str,
    service: str,
    value: bytes | None = None,
) -> Any:
    """Produce the original key and value of ``msg`` (a faust agent's ``event.message`` or an
    aiokafka ``ConsumerRecord``: key, value, topic, partition, offset) to the ``dlq`` topic
    with the reason.

    ``value`` replaces the record's value when only part of it is dead (one invalid element
    of an array of interactions); the headers still point at the original record. Returns
    the send's future (awaited: the record is on Kafka), for callers that commit offsets
    themselves; faust agents' commits wait for the producer anyway."""
    sent = await dlq.send(
        key=msg.key,
        value=msg.value if value is None else value,
        headers=dead_letter_headers(
            reason=reason,
            error=error,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            service=service,
        ),
    )
    log.warning(
        "dead_lettered",
        service=service,
        reason=reason,
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
    )
    return sent
