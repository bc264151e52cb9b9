"""Nobody can post canonical interactions without a producer token: forged exchanges between
an attacker and a victim are refused before they are parsed, reach no topic and write no
dedupe marker; tokens are issued, listed, revoked and expire through the admin API; each
producer is rate-limited; in prod the dev token is refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from services.common.kafka import Topics, end_offsets
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.ingest.producers import token_hash
from tests.factories import interaction
from tests.people import ADMIN, PRODUCER
from tests.stack import ServiceStack

JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}


@pytest.fixture
def ingest(settings: Settings, tmp_path: Path) -> Iterator[ServiceStack]:
    stack = ServiceStack(settings, tmp_path, ("ingest",))
    try:
        yield stack.start()
    finally:
        stack.stop()


def forged(event_id: str = "real-event-1") -> bytes:
    """An attacker's invented reply to a victim, with a guessed real event id."""
    return (
        interaction(
            "mallory", "victim", kind="reply", text="Lovely talking to you!", event_id=event_id
        )
        .model_dump_json()
        .encode()
    )


def records(settings: Settings) -> int:
    ends = asyncio.run(end_offsets(settings.kafka.bootstrap_servers, Topics(settings).interactions))
    return sum(ends.values())


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"authorization": "Bearer guessed"},
        {"authorization": "Basic dev-producer-token"},
        ADMIN,
        {"authorization": "Bearer " + "x" * 300},
    ],
    ids=["none", "wrong", "basic", "admin-token", "huge"],
)
def test_forged_interactions_are_refused_and_leave_no_trace(
    ingest: ServiceStack, auth: dict[str, str]
) -> None:
    url = ingest.url("ingest")
    one = httpx.post(f"{url}/v1/interactions", content=forged(), headers={**auth, **JSON})
    batch = httpx.post(
        f"{url}/v1/interactions:batch",
        content=forged() + b"\n" + forged("x2"),
        headers={**auth, **NDJSON},
    )
    for r in (one, batch):
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert len(r.content) < 1024
    assert records(ingest.settings) == 0
    # no dedupe marker either: the genuine event with that id is still accepted
    genuine = httpx.post(f"{url}/v1/interactions", content=forged(), headers={**PRODUCER, **JSON})
    assert genuine.status_code == 202 and genuine.json()["duplicates"] == 0


def test_an_issued_token_works_until_it_is_revoked(ingest: ServiceStack) -> None:
    url = ingest.url("ingest")
    r = httpx.post(f"{url}/v1/producers", json={"name": "mastodon-connector"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    issued = r.json()
    token = {"authorization": f"Bearer {issued['token']}"}
    assert issued["scope"] == "produce" and issued["token"].startswith("rcp_")
    # stored as a hash only; listed without it
    listed = httpx.get(f"{url}/v1/producers", headers=ADMIN).json()
    assert [p["id"] for p in listed] == [issued["id"]] and "token" not in listed[0]

    async def stored() -> list[bytes]:
        r = new_redis(ingest.settings)
        try:
            return list((await r.hgetall(Keys(ingest.settings).producers)).keys())
        finally:
            await r.aclose()

    assert asyncio.run(stored()) == [token_hash(issued["token"]).encode()]
    ok = httpx.post(f"{url}/v1/interactions", content=forged("t1"), headers={**token, **JSON})
    assert ok.status_code == 202
    # only an admin issues and revokes
    assert httpx.post(f"{url}/v1/producers", json={"name": "x"}, headers=token).status_code == 401
    assert httpx.delete(f"{url}/v1/producers/{issued['id']}", headers=token).status_code == 401
    assert httpx.delete(f"{url}/v1/producers/{issued['id']}", headers=ADMIN).status_code == 204
    deadline = time.monotonic() + 15  # each process trusts its last look-up for 5 s
    while True:
        r = httpx.post(f"{url}/v1/interactions", content=forged("t2"), headers={**token, **JSON})
        if r.status_code == 401:
            break
        assert r.status_code == 202 and time.monotonic() < deadline, "revocation never took"
        time.sleep(0.5)
    assert httpx.delete(f"{url}/v1/producers/{issued['id']}", headers=ADMIN).status_code == 404


def test_an_expired_token_is_refused(ingest: ServiceStack) -> None:
    url = ingest.url("ingest")
    issued = httpx.post(
        f"{url}/v1/producers", json={"name": "import", "expires_days": 1}, headers=ADMIN
    ).json()
    assert issued["expires_at"] is not None

    async def expire() -> None:
        r = new_redis(ingest.settings)
        keys = Keys(ingest.settings)
        try:
            h = token_hash(issued["token"])
            record = orjson.loads(await r.hget(keys.producers, h))
            record["expires_at"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
            await r.hset(keys.producers, h, orjson.dumps(record))
        finally:
            await r.aclose()

    asyncio.run(expire())  # as if a day had passed (nothing was cached yet)
    r = httpx.post(
        f"{url}/v1/interactions",
        content=forged("e1"),
        headers={"authorization": f"Bearer {issued['token']}", **JSON},
    )
    assert r.status_code == 401


def test_each_producer_is_rate_limited(settings: Settings, tmp_path: Path) -> None:
    stack = ServiceStack(
        settings,
        tmp_path,
        ("ingest",),
        REALCONNECT_INGEST__PRODUCER_RATE_PER_S="0.5",
        REALCONNECT_INGEST__PRODUCER_BURST="3",
    )
    try:
        stack.start()
        url = stack.url("ingest")
        codes = [
            httpx.post(
                f"{url}/v1/interactions", content=forged(f"r{i}"), headers={**PRODUCER, **JSON}
            )
            for i in range(5)
        ]
        assert [c.status_code for c in codes] == [202, 202, 202, 429, 429]
        assert int(codes[-1].headers["retry-after"]) >= 1
        # refused before anything was produced
        assert records(settings) == 3
    finally:
        stack.stop()


def test_prod_refuses_the_dev_producer_token(settings: Settings, tmp_path: Path) -> None:
    stack = ServiceStack(
        settings,
        tmp_path,
        ("ingest",),
        REALCONNECT_ENV="prod",
        REALCONNECT_ADMIN_TOKEN="a-real-admin-token-of-enough-length-0123",
        REALCONNECT_NOTIFIER__WEBHOOK_KEY="a-real-webhook-key-of-enough-length-0123",
    )
    try:
        stack.start()
        r = httpx.post(
            f"{stack.url('ingest')}/v1/interactions", content=forged(), headers={**PRODUCER, **JSON}
        )
        assert r.status_code == 401
    finally:
        stack.stop()
