"""Sending the emails of ``notifications.email`` through SMTP (aiosmtplib).

A job is written to Kafka before anything is sent (by the notifier for a new item, by the
feeds service for a mutual meetup), so a crash loses none. Sending is at least once with a
marker per ``Message-ID`` in Redis: a job whose message already reached the SMTP server is
skipped, so a redelivered job (the notifier restarted before committing its offset) sends
nothing again. The one window left is between the server's "250 OK" and the marker (a
millisecond): a crash exactly there sends the message a second time, with the same
``Message-ID``, which mail clients and providers show once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

import aiosmtplib
import structlog
from pydantic import TypeAdapter
from typing_extensions import TypedDict

from schemas.people import FeedItem
from services.common.settings import EmailSettings

log = structlog.get_logger(__name__)


class EmailJob(TypedDict):
    """What ``notifications.email`` carries: one item for one person, and the addresses
    (the invite of a mutual item names both people)."""

    person_id: str
    to: str
    item: dict[str, Any]
    attendees: dict[str, str | None]


EMAIL_JOB: Final = TypeAdapter(EmailJob)


def job(item: FeedItem, to: str, attendees: dict[str, str | None] | None = None) -> bytes:
    return EMAIL_JOB.dump_json(
        {
            "person_id": item.person_id,
            "to": to,
            "item": item.model_dump(mode="json"),
            "attendees": attendees or {item.person_id: to},
        }
    )


@dataclass(frozen=True)
class Outcome:
    ok: bool
    attempts: int
    reason: str = ""


async def send(message: Any, recipient: str, cfg: EmailSettings) -> Outcome:
    """Send one message, retrying with doubling waits; a permanent refusal (5xx) is not
    retried."""
    delay = cfg.backoff_s
    reason = ""
    for attempt in range(1, cfg.attempts + 1):
        try:
            await aiosmtplib.send(
                message,
                recipients=[recipient],
                hostname=cfg.host,
                port=cfg.port,
                # empty (compose passes "" when unset): no login
                username=cfg.username or None,
                password=(cfg.password.get_secret_value() or None) if cfg.password else None,
                use_tls=cfg.security == "tls",
                start_tls=cfg.security == "starttls",
                timeout=cfg.timeout_s,
            )
            return Outcome(True, attempt)
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.code}: {exc.message}"[:500]
            if 500 <= exc.code < 600:
                return Outcome(False, attempt, reason)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("email_retry", attempt=attempt, reason=reason, retry_in_s=delay)
        if attempt < cfg.attempts:
            await asyncio.sleep(delay)
            delay *= 2
    return Outcome(False, cfg.attempts, reason)
