"""Secrets and tokens never appear in logs: the real ingest and feed services, at debug level,
handle signed deliveries (good and forged), admin calls and person tokens (good and wrong);
then neither their log files nor the structlog events of the in-process code contain any
secret, the admin token or any person's token."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from structlog.testing import capture_logs

from services.common.kafka import ensure_topics
from services.common.settings import Settings
from services.ingest import auth
from tests.stack import ServiceStack
from tests.webhooks import post, signed_headers

SLACK_SECRET = "slack-signing-secret-4f1e9c"
MASTODON_SECRET = "mastodon-secret-77aa01"
ADMIN_TOKEN = "admin-token-c0ffee-9911"


async def test_no_secret_or_token_is_ever_logged(
    settings: Settings, stack_factory: list[ServiceStack], tmp_path: Path
) -> None:
    await ensure_topics(settings)
    stack = ServiceStack(
        settings,
        tmp_path,
        ("ingest", "feeds"),
        REALCONNECT_LOG_LEVEL="debug",
        REALCONNECT_ADMIN_TOKEN=ADMIN_TOKEN,
        REALCONNECT_SOURCES__SLACK__SECRETS=f'["{SLACK_SECRET}"]',
        REALCONNECT_SOURCES__MASTODON__SECRETS=f'["{MASTODON_SECRET}"]',
    )
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    ingest, feeds = stack.url("ingest"), stack.url("feeds")
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}

    tokens = []
    with capture_logs() as logs:
        # deliveries: valid, forged with a guessed secret, stale
        body = {"type": "url_verification", "challenge": "c", "token": "t"}
        post(ingest, "slack", body, secret=SLACK_SECRET)
        post(ingest, "slack", body, secret="guess")
        post(ingest, "mastodon", {"id": "1"}, secret=MASTODON_SECRET, t=1)
        # the signature helper itself, in-process, refusing a forged delivery
        try:
            forged = signed_headers("mastodon", b"{}", secret="guess")
            auth.verify_signed(
                {k.lower(): v for k, v in forged.items()},
                b"{}",
                [MASTODON_SECRET],
                now=time.time(),
                tolerance=300,
            )
        except auth.AuthError:
            pass
        # person tokens: issued, used, and a wrong one
        for person in ("sec:ann", "sec:ben"):
            auth_header = await asyncio.to_thread(_opt_in, feeds, person, admin)
            tokens.append(auth_header["authorization"].removeprefix("Bearer "))
            httpx.get(f"{feeds}/v1/me/feed", headers=auth_header, timeout=10)
        httpx.get(f"{feeds}/v1/me/feed", headers={"authorization": "Bearer nope"}, timeout=10)
        httpx.get(f"{feeds}/v1/people/sec:ann/feed", headers=admin, timeout=10)
        httpx.get(
            f"{feeds}/v1/people/sec:ann/feed", headers={"authorization": "Bearer x"}, timeout=10
        )

    secrets = [SLACK_SECRET, MASTODON_SECRET, ADMIN_TOKEN, *tokens]
    assert all(len(s) >= 16 for s in tokens)
    written = "".join(stack.log(name).read_text(errors="replace") for name in ("ingest", "feeds"))
    assert "debug" in written  # the services really logged at debug level
    for secret in secrets:
        assert secret not in written
        assert secret not in repr(logs)


def _opt_in(feeds: str, person: str, admin: dict[str, str]) -> dict[str, str]:
    r = httpx.post(f"{feeds}/v1/people/{person}/tokens", headers=admin, timeout=10)
    assert r.status_code == 201, r.text
    return {"authorization": f"Bearer {r.json()['token']}"}
