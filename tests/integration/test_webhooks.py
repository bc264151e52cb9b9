"""Outbound webhooks to real receivers on loopback: signed, retried, dead-lettered."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from schemas.suggestions import SUGGESTION_ADAPTER, Suggestion
from schemas.webhook_targets import is_public
from services.common.kafka import Topics, ensure_topics, new_producer
from services.common.settings import Settings
from services.ingest import auth
from tests.integration.test_notifier_feeds import send
from tests.people import opt_in, token_for
from tests.stack import ServiceStack
from tests.webhooks import read_topic


class Receiver:
    """An HTTP server that fails the first ``failures`` requests (503, with ``Retry-After``
    if given), then answers 204. Each request is kept with the time it came."""

    def __init__(self, failures: int, retry_after: str | None = None) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.times: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                outer.times.append(time.monotonic())
                ok = len(outer.requests) > outer.failures
                self.send_response(204 if ok else 503)
                if not ok and retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def attempts(receiver: Receiver) -> list[int]:
    """The attempt number of each request, in the order they came."""
    return [int(h["x-realconnect-attempt"]) for h, _ in receiver.requests]


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.server.shutdown()


async def webhook_stack(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack], *, attempts: int
) -> ServiceStack:
    """Feeds and a notifier that post to local receivers, with quick retries."""
    await ensure_topics(settings)
    stack = ServiceStack(
        settings,
        tmp_path,
        ("feeds", "notifier"),
        REALCONNECT_NOTIFIER__WEBHOOK_ALLOW_PRIVATE="true",
        REALCONNECT_NOTIFIER__WEBHOOK_ATTEMPTS=str(attempts),
        REALCONNECT_NOTIFIER__WEBHOOK_BACKOFF_S="0.1",
    )
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    return stack


async def test_webhooks_are_signed_retried_and_dead_lettered(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack], receivers: list[Receiver]
) -> None:
    flaky, dead = Receiver(failures=2), Receiver(failures=10_000)
    receivers += [flaky, dead]
    stack = await webhook_stack(settings, tmp_path, stack_factory, attempts=4)
    feeds = stack.url("feeds")
    ann = opt_in(feeds, "h:ann", webhook_url=flaky.url)
    opt_in(feeds, "h:ben", webhook_url=dead.url)
    s = Suggestion(
        suggestion_id="ab" * 16,
        pair=("h:ann", "h:ben"),
        score=1.0,
        suggested_at=datetime.now(UTC),
        evidence={},
        explanation="x",
    )
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        await producer.send_and_wait(
            Topics(settings).suggestions, key=b"h:ann|h:ben", value=SUGGESTION_ADAPTER.dump_json(s)
        )
    finally:
        await producer.stop()

    for _ in range(300):  # up to 30 s
        if len(flaky.requests) >= 3:
            break
        await asyncio.sleep(0.1)

    # Delivery is at least once: a consumer rebalance under CI load can post one attempt
    # again (CI saw five posts for four attempts), so the attempts are counted, not the posts.
    seen = attempts(flaky)
    assert sorted(set(seen)) == list(range(1, max(seen) + 1)) and max(seen) <= 3
    headers, body = flaky.requests[2]  # two failures, then the first answered 204
    assert json.loads(body)["other_person_id"] == "h:ben"
    assert headers["x-realconnect-delivery"] == s.suggestion_id
    secret = httpx.get(f"{feeds}/v1/me/webhook", headers=ann).json()["secret"]
    auth.verify_signed(headers, body, [secret], now=time.time(), tolerance=300)  # raises if bad

    dlq = await read_topic(settings, Topics(settings).suggestions_dlq, expected=1, timeout=30)
    await asyncio.sleep(1)  # an attempt past the last would come within the backoff (0.1 s)
    assert sorted(set(attempts(dead))) == [1, 2, 3, 4]  # and never a fifth
    assert {h["x-realconnect-delivery"] for h, _ in dead.requests} == {s.suggestion_id}
    h = dict(dlq[0].headers)
    assert h["dlq.reason"] == b"webhook" and b"http_503 after 4 attempts" in h["dlq.error"]
    assert json.loads(dlq[0].value)["person_id"] == "h:ben"


async def test_private_targets_are_refused_by_default(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack], receivers: list[Receiver]
) -> None:
    target = Receiver(failures=0)
    receivers.append(target)
    await ensure_topics(settings)
    stack = ServiceStack(settings, tmp_path, ("feeds", "notifier"))
    stack_factory.append(stack)
    await asyncio.to_thread(stack.start)
    # a literal loopback address is refused when it is saved...
    auth = token_for(stack.url("feeds"), "p:ann")
    r = httpx.put(
        f"{stack.url('feeds')}/v1/me/preferences",
        json={"opted_in": True, "webhook_url": target.url},
        headers=auth,
    )
    assert r.status_code == 422 and "not a public address" in r.text
    # ...and a name that resolves to it (this machine's own name, in /etc/hosts) is refused
    # when the webhook is delivered: resolved once, every address checked
    host = socket.gethostname()
    assert not is_public(ipaddress.ip_address(socket.gethostbyname(host)))
    opt_in(stack.url("feeds"), "p:ann", webhook_url=target.url.replace("127.0.0.1", host))
    opt_in(stack.url("feeds"), "p:ben")
    s = Suggestion(
        suggestion_id="cd" * 16,
        pair=("p:ann", "p:ben"),
        score=1.0,
        suggested_at=datetime.now(UTC),
        evidence={},
        explanation="x",
    )
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        await producer.send_and_wait(
            Topics(settings).suggestions, key=b"p:ann|p:ben", value=SUGGESTION_ADAPTER.dump_json(s)
        )
    finally:
        await producer.stop()
    dlq = await read_topic(settings, Topics(settings).suggestions_dlq, expected=1, timeout=30)
    assert b"forbidden_target" in dict(dlq[0].headers)["dlq.error"]
    assert b"resolves to a non-public address" in dict(dlq[0].headers)["dlq.error"]
    assert target.requests == []


async def test_a_dead_receiver_holds_up_nobody_and_its_retry_after_is_honoured(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack], receivers: list[Receiver]
) -> None:
    """Before, one agent posted every webhook and retried in place: each person behind a
    dead receiver waited for all its attempts. Now a failed attempt is retried later from
    the retry topic, after the receiver's Retry-After."""
    dead = Receiver(failures=10_000, retry_after="2")
    healthy = [Receiver(failures=0) for _ in range(6)]
    receivers += [dead, *healthy]
    stack = await webhook_stack(settings, tmp_path, stack_factory, attempts=3)
    feeds = stack.url("feeds")
    opt_in(feeds, "r:dead", webhook_url=dead.url)
    for i, r in enumerate(healthy):
        opt_in(feeds, f"r:ok{i}", webhook_url=r.url)
    # the dead receiver's suggestion first: everything else is queued behind it
    pairs = [("r:dead", "r:zz"), *((f"r:ok{i}", f"r:zz{i}") for i in range(6))]
    for person in {b for _, b in pairs}:
        opt_in(feeds, person)
    await send(
        settings,
        *(
            Suggestion(
                suggestion_id=f"{n:032x}",
                pair=tuple(sorted(pair)),  # type: ignore[arg-type]
                score=1.0,
                suggested_at=datetime.now(UTC),
                evidence={},
                explanation="x",
            )
            for n, pair in enumerate(pairs)
        ),
    )
    for _ in range(300):  # up to 30 s
        if all(r.requests for r in healthy) and len(dead.requests) >= 3:
            break
        await asyncio.sleep(0.1)
    assert len(dead.requests) == 3  # three attempts, then a dead letter
    # everybody else was served while the dead receiver waited for its second attempt
    assert max(r.times[0] for r in healthy) < dead.times[1]
    gaps = [b - a for a, b in zip(dead.times, dead.times[1:], strict=False)]
    assert min(gaps) >= 1.9  # its Retry-After: 2, not the 0.1 s backoff
