"""Dead letters: the original record with its message text redacted, the reason in headers.

A record that a worker cannot process is never dropped and never crashes the worker: it is
produced to a dead-letter topic with the same key and its value, plus headers saying why and
where it came from (topic, partition, offset), so an operator can inspect, fix and replay it.

Message text is redacted (`redacted`): dead letters are kept as long as the topic's retention
and must not keep what people wrote longer than the raw topics do (24 hours by default). The
headers point at the original record on its raw topic, which holds it whole until then: a
replay within that time uses the original (docs/operations.md).
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson
import structlog

log = structlog.get_logger(__name__)

#: Error text is truncated so one pathological record cannot make a huge header.
MAX_ERROR_CHARS: Final = 2000
#: JSON keys whose string values are what people wrote, in the payloads of every source
#: (Slack ``text``, Mastodon ``content``/``spoiler_text``, Discord ``content``, Reddit
#: ``body``/``selftext``/``title``, GitHub ``body``/``title``, Bluesky ``text``, phone
#: ``text``) and in interactions (``text``)
TEXT_KEYS: Final = frozenset(
    {"text", "content", "spoiler_text", "body", "selftext", "title", "message", "description"}
)
#: pydantic quotes the input of a failed field in its error text
_INPUT: Final = re.compile(r"input_value=.*?(?=, input_type=)", re.DOTALL)


def _scrub(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                f"[redacted: {len(v)} characters]"
                if k in TEXT_KEYS and isinstance(v, str)
                else _scrub(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_scrub(v) for v in node]
    return node


def redacted(value: bytes | None) -> bytes | None:
    """``value`` with the message text taken out: in JSON, every string under a key of
    `TEXT_KEYS` replaced by its length; a value that is not JSON is replaced whole (it may be
    anything, text included), its size kept."""
    if value is None:
        return None
    try:
        return orjson.dumps(_scrub(orjson.loads(value)))
    except orjson.JSONDecodeError:
        return f"[redacted: {len(value)} bytes, not JSON]".encode()


def redacted_error(error: str) -> str:
    """A validation error without the input it quotes (which may be message text)."""
    return _INPUT.sub("input_value=[redacted]", error)


def dead_letter_headers(
    *, reason: str, error: str, topic: str, partition: int, offset: int, service: str
) -> list[tuple[str, bytes]]:
    return [
        ("dlq.reason", reason.encode()),
        ("dlq.error", redacted_error(error)[:MAX_ERROR_CHARS].encode("utf-8", "replace")),
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
    with the reason, its message text redacted (`redacted`).

    ``value`` replaces the record's value when only part of it is dead (one invalid element
    of an array of interactions); the headers still point at the original record. Returns
    the send's future (awaited: the record is on Kafka), for callers that commit offsets
    themselves; faust agents' commits wait for the producer anyway."""
    sent = await dlq.send(
        key=msg.key,
        value=redacted(msg.value if value is None else value),
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
