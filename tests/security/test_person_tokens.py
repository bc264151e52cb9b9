"""Person tokens expire (180 days unless asked otherwise) and can be revoked one by one; the
expiry survives a rebuild from Kafka."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import httpx
import orjson

from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.notifier.rebuild import token_record
from services.notifier.store import _hash
from tests.people import ADMIN
from tests.stack import ServiceStack


def test_token_records_of_both_formats() -> None:
    assert token_record(b"cns:1") == ("cns:1", None)  # written before tokens expired
    assert token_record(b"123") == ("123", None)
    assert token_record(orjson.dumps({"person_id": "a", "expires_at": 17.5})) == ("a", 17.5)
    assert token_record(orjson.dumps({"person_id": "a", "expires_at": None})) == ("a", None)


def test_person_tokens_expire(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(settings, tmp_path, ("feeds",))
    stack_factory.append(stack)
    stack.start()
    feeds = stack.url("feeds")
    default = httpx.post(f"{feeds}/v1/people/t:ann/tokens", headers=ADMIN).json()
    short = httpx.post(
        f"{feeds}/v1/people/t:ann/tokens", params={"expires_days": 1}, headers=ADMIN
    ).json()
    now = time.time()
    assert abs(datetime.fromisoformat(default["expires_at"]).timestamp() - now - 180 * 86400) < 60
    assert abs(datetime.fromisoformat(short["expires_at"]).timestamp() - now - 86400) < 60

    async def ttl(token: str) -> int:
        r = new_redis(settings)
        try:
            return int(await r.ttl(Keys(settings).token(_hash(token))))
        finally:
            await r.aclose()

    assert 86400 - 60 < asyncio.run(ttl(short["token"])) <= 86400
    assert asyncio.run(ttl(default["token"])) > 179 * 86400
    me = {"authorization": f"Bearer {short['token']}"}
    assert httpx.get(f"{feeds}/v1/me/feed", headers=me).status_code == 200
