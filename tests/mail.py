"""The Maildir that the test SMTP server (aiosmtpd, started by ``deploy/stack.sh up infra``)
delivers to, read back as a mail client would."""

from __future__ import annotations

import asyncio
import mailbox
import os
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from services.common.settings import Settings

ROOT = Path(__file__).parents[1]
MAILDIR = Path(os.environ.get("REALCONNECT_MAILDIR", ROOT / ".run" / "mail"))


_parsed: dict[str, tuple[str, EmailMessage]] = {}  # Maildir key -> (To, message)


def everything() -> dict[str, list[EmailMessage]]:
    """Every message the SMTP server delivered, by recipient (duplicates included). Each file
    is parsed once per test session (a delivered message never changes)."""
    out: dict[str, list[EmailMessage]] = {}
    if not (MAILDIR / "new").is_dir():
        return out
    box = mailbox.Maildir(MAILDIR, factory=None, create=False)
    for key in box.iterkeys():
        if key not in _parsed:
            try:
                raw = box.get_bytes(key)
            except KeyError:  # moved or removed meanwhile
                continue
            msg = message_from_bytes(raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            _parsed[key] = (str(msg["To"]), msg)
        to, msg = _parsed[key]
        out.setdefault(to, []).append(msg)
    return out


def delivered(to: str) -> list[EmailMessage]:
    """Every message the SMTP server delivered to ``to`` (duplicates included)."""
    return everything().get(to, [])


def wait_for_mail(to: str, count: int = 1, timeout: float = 60) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while True:
        got = delivered(to)
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


async def smtp_problem(settings: Settings | None = None) -> str | None:
    """None if the SMTP server answers (a greeting), else why not."""
    cfg = (settings or Settings()).email
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(cfg.host, cfg.port), timeout=5
        )
        greeting = await asyncio.wait_for(reader.readline(), timeout=5)
        writer.close()
        if not greeting.startswith(b"220"):
            return f"SMTP at {cfg.host}:{cfg.port} greeted with {greeting!r}"
    except (OSError, TimeoutError) as exc:
        return f"SMTP at {cfg.host}:{cfg.port} is unreachable: {exc!r}"
    return None
