"""A delivery is its signature: the same signed bytes resent under a new delivery id, or with
an extra ``v1=`` value, are a replay (409), for the generic scheme and for GitHub (which signs
no timestamp); refused replays do not drain the platform's rate limit; a Unicode digit in the
signed timestamp is a 401, not a 500."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.settings import Settings
from services.ingest import auth
from tests.integration.test_sources import fx
from tests.stack import ServiceStack
from tests.webhooks import signed_headers

GENERIC = {
    "source": "generic",
    "event_id": "rp-1",
    "kind": "reply",
    "actor": "generic:ann",
    "target": "generic:ben",
    "occurred_at": "2026-03-01T09:30:00+00:00",
    "text": "See you at the rehearsal on Thursday?",
}


@pytest.fixture
def ingest(settings: Settings, tmp_path: Path) -> Iterator[ServiceStack]:
    stack = ServiceStack(
        settings,
        tmp_path,
        ("ingest",),
        # two deliveries' worth of tokens, refilled only every 100 s
        REALCONNECT_SOURCES__GENERIC__RATE_PER_S="0.01",
        REALCONNECT_SOURCES__GENERIC__BURST="2",
    )
    try:
        yield stack.start()
    finally:
        stack.stop()


def send(stack: ServiceStack, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{stack.url('ingest')}/v1/sources/{source}/events",
        content=body,
        headers=headers,
        timeout=10,
    )


def test_a_signed_delivery_resent_under_another_id_is_a_replay(ingest: ServiceStack) -> None:
    body = json.dumps(GENERIC).encode()
    headers = signed_headers("generic", body)
    assert send(ingest, "generic", body, headers).status_code == 202
    # same signed bytes, a new delivery id: refused
    again = {**headers, "X-Realconnect-Delivery": str(uuid.uuid4())}
    assert send(ingest, "generic", body, again).status_code == 409
    # same signed bytes, an extra v1= value (a different "signature" string): refused
    extra = {**headers, "X-Realconnect-Signature": headers["X-Realconnect-Signature"] + ",v1=00ff"}
    extra["X-Realconnect-Delivery"] = str(uuid.uuid4())
    assert send(ingest, "generic", body, extra).status_code == 409
    # without any delivery header (the id is then the signature): still the same delivery
    bare = {k: v for k, v in headers.items() if k != "X-Realconnect-Delivery"}
    assert send(ingest, "generic", body, bare).status_code == 409
    # the replays took no rate-limit token: a genuinely new delivery still gets through
    other = json.dumps({**GENERIC, "event_id": "rp-2"}).encode()
    assert send(ingest, "generic", other, signed_headers("generic", other)).status_code == 202


def test_a_github_delivery_resent_under_a_new_delivery_id_is_a_replay(
    ingest: ServiceStack,
) -> None:
    body = json.dumps(fx("github/issue_comment.created.json")).encode()
    headers = signed_headers("github", body)
    assert send(ingest, "github", body, headers).status_code == 202
    again = {**headers, "X-GitHub-Delivery": str(uuid.uuid4())}
    assert send(ingest, "github", body, again).status_code == 409


@pytest.mark.parametrize("t", ["²", "١٢٣", "12a", "", "9" * 13])
def test_a_malformed_timestamp_is_a_401(ingest: ServiceStack, t: str) -> None:
    body = json.dumps(GENERIC).encode()
    mac = auth.sign(body, "dev-generic-secret", int(time.time())).split("v1=")[1]
    value = f"t={t},v1={mac}"
    try:  # as a server reads header bytes (latin-1): b"\xb2" is "²", which isdigit() accepts
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raw = value.encode()
    r = httpx.post(
        f"{ingest.url('ingest')}/v1/sources/generic/events",
        content=body,
        headers=[(b"content-type", b"application/json"), (b"x-realconnect-signature", raw)],
        timeout=10,
    )
    assert r.status_code == 401, r.text
    assert "timestamp" in r.json()["detail"]
