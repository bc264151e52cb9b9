"""Every route is bounded before it parses: the routes whose bodies FastAPI parses refuse a
body over ``HTTP_MAX_BODY_BYTES`` (declared or streamed) with a 413; each HTTP process serves a
bounded number of connections (``HTTP_LIMIT_CONCURRENCY``) and answers 503 past it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx

from services.common.settings import Settings
from tests.people import ADMIN, token_for
from tests.stack import ServiceStack

BIG = b'{"display_name": "' + b"x" * (2 * 1024 * 1024) + b'"}'


def chunked(body: bytes) -> Iterator[bytes]:
    for i in range(0, len(body), 65536):
        yield body[i : i + 65536]


def test_parsed_bodies_are_bounded(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(settings, tmp_path, ("ingest", "feeds"))
    stack_factory.append(stack)
    stack.start()
    ingest, feeds = stack.url("ingest"), stack.url("feeds")
    me = token_for(feeds, "l:ann")
    json = {"content-type": "application/json"}
    cases = [
        ("PUT", f"{ingest}/v1/people/l:ann", ADMIN),
        ("POST", f"{ingest}/v1/producers", ADMIN),
        ("PUT", f"{feeds}/v1/me/preferences", me),
    ]
    for method, url, auth in cases:
        for body in (BIG, chunked(BIG)):  # declared length, then streamed without one
            r = httpx.request(method, url, content=body, headers={**auth, **json}, timeout=30)
            assert r.status_code == 413, (method, url, r.status_code, r.text[:200])
            assert len(r.content) < 512
    # a normal body still goes through
    ok = httpx.put(f"{feeds}/v1/me/preferences", json={"opted_in": True}, headers=me)
    assert ok.status_code == 200


def test_connections_are_bounded(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    # uvicorn refuses a new connection once the open ones (itself included) reach the limit
    stack = ServiceStack(settings, tmp_path, ("feeds",), REALCONNECT_HTTP_LIMIT_CONCURRENCY="3")
    stack_factory.append(stack)
    stack.start()
    feeds = stack.url("feeds")
    tokens = [token_for(feeds, f"c:{i}") for i in range(2)]
    client = httpx.Client(timeout=httpx.Timeout(10.0, read=20.0))
    streams = []
    try:
        for auth in tokens:
            r = client.send(
                client.build_request("GET", f"{feeds}/v1/me/feed/stream", headers=auth), stream=True
            )
            assert r.status_code == 200
            streams.append(r)
        with httpx.Client(timeout=10) as other:
            assert other.get(f"{feeds}/v1/me/feed", headers=tokens[0]).status_code == 503
    finally:
        for r in streams:
            r.close()
        client.close()


def test_each_caller_is_rate_limited(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(
        settings,
        tmp_path,
        ("ingest", "feeds"),
        REALCONNECT_HTTP_RATE_PER_S="0.2",
        REALCONNECT_HTTP_BURST="3",
    )
    stack_factory.append(stack)
    stack.start()
    feeds, ingest = stack.url("feeds"), stack.url("ingest")
    ann = token_for(feeds, "r:ann")  # the admin's 1st request on feeds
    codes = [httpx.get(f"{feeds}/v1/me/feed", headers=ann).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    # another caller has a bucket of its own; probes are not limited
    ben = token_for(feeds, "r:ben")  # the admin's 2nd
    assert httpx.get(f"{feeds}/v1/me/feed", headers=ben).status_code == 200
    assert all(httpx.get(f"{feeds}/healthz").status_code == 200 for _ in range(6))
    # the admin routes too (the people API on ingest)
    admin = [
        httpx.put(f"{ingest}/v1/people/r:cyd", json={"city": "Porto"}, headers=ADMIN).status_code
        for _ in range(4)
    ]
    assert admin == [200, 200, 200, 429]


def test_made_up_credentials_escape_no_limit_and_flush_no_bucket(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    """Attack 3 of the second round: the limit was keyed on the Authorization header as
    sent, so a new made-up bearer value per request escaped it, and enough of them cleared
    every bucket. Now a caller is what the server verified (a person's live token, an admin
    token), else its address; a full table refuses newcomers instead of dropping buckets."""
    stack = ServiceStack(
        settings,
        tmp_path,
        ("feeds",),
        REALCONNECT_HTTP_RATE_PER_S="0.2",
        REALCONNECT_HTTP_BURST="3",
        REALCONNECT_HTTP_RATE_MAX_CALLERS="20",
    )
    stack_factory.append(stack)
    stack.start()
    feeds = stack.url("feeds")
    ann = token_for(feeds, "r:ann")  # the admin's first request
    # a new made-up token per request, from one address: limited like one caller
    codes = [
        httpx.get(f"{feeds}/v1/me/feed", headers={"authorization": f"Bearer fake-{i}"}).status_code
        for i in range(6)
    ]
    assert codes[:3] == [401, 401, 401] and set(codes[3:]) == {429}, codes
    # a real person has a bucket of their own, and spends it
    assert [httpx.get(f"{feeds}/v1/me/feed", headers=ann).status_code for _ in range(4)] == [
        200,
        200,
        200,
        429,
    ]
    # a flood from 40 other addresses (and made-up tokens) fills the table...
    refused = 0
    for i in range(40):
        transport = httpx.HTTPTransport(local_address=f"127.0.0.{10 + i}")
        with httpx.Client(transport=transport) as c:
            r = c.get(f"{feeds}/v1/me/feed", headers={"authorization": f"Bearer flood-{i}"})
        assert r.status_code in (401, 429)
        refused += r.status_code == 429
    assert refused >= 40 - 20, refused  # newcomers past the table's size are refused
    # ...and flushed nothing: ann's bucket is still spent
    assert httpx.get(f"{feeds}/v1/me/feed", headers=ann).status_code == 429
