"""Live streams are bounded: a few per token and a total per process (each holds a Redis
connection), and a stream ends when its token is revoked (sign-out)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from services.common.settings import Settings
from tests.people import token_for
from tests.stack import ServiceStack


def test_streams_are_capped_and_end_with_their_token(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(
        settings,
        tmp_path,
        ("feeds",),
        REALCONNECT_FEEDS__SSE_MAX_PER_TOKEN="2",
        REALCONNECT_FEEDS__SSE_MAX_TOTAL="3",
        REALCONNECT_FEEDS__SSE_KEEPALIVE_S="0.5",
    )
    stack_factory.append(stack)
    stack.start()
    feeds = stack.url("feeds")
    ann, ben = token_for(feeds, "s:ann"), token_for(feeds, "s:ben")
    url = f"{feeds}/v1/me/feed/stream"
    client = httpx.Client(timeout=httpx.Timeout(10.0, read=20.0))
    opened: list[httpx.Response] = []
    try:
        for _ in range(2):
            r = client.send(client.build_request("GET", url, headers=ann), stream=True)
            assert r.status_code == 200
            opened.append(r)
        third = client.get(url, headers=ann)
        assert third.status_code == 429 and "Retry-After" in third.headers  # per token
        r = client.send(client.build_request("GET", url, headers=ben), stream=True)
        assert r.status_code == 200
        opened.append(r)
        other = token_for(feeds, "s:cyd")
        assert client.get(url, headers=other).status_code == 429  # in total

        # sign-out: ann's streams end on their own within a keep-alive
        ended: list[float] = []

        def drain(resp: httpx.Response) -> None:
            for _ in resp.iter_raw():
                pass
            ended.append(time.monotonic())

        threads = [threading.Thread(target=drain, args=(r,), daemon=True) for r in opened[:2]]
        for t in threads:
            t.start()
        revoked_at = time.monotonic()
        assert client.delete(f"{feeds}/v1/me/token", headers=ann).status_code == 204
        for t in threads:
            t.join(timeout=10)
        assert len(ended) == 2 and max(ended) - revoked_at < 5
        assert client.get(f"{feeds}/v1/me/feed", headers=ann).status_code == 401
        # their slots are free again: ben can open a second stream
        again = client.send(client.build_request("GET", url, headers=ben), stream=True)
        assert again.status_code == 200
        again.close()
    finally:
        for r in opened:
            r.close()
        client.close()
