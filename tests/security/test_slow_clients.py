"""Slow and abandoned connections (attacks 4 and 5 of the second round), against the real
services as processes.

4. About a thousand connections that each send a header line every few seconds, or a body a
   byte at a time, made ingest, feeds and console answer 503 on their health checks for as
   long as they were held. Now one address holds a bounded number of connections, and a head
   or body that takes too long is cut off (services.common.http_server).
5. Two live-stream requests pipelined on one connection that is then closed held a stream
   slot for good (uvicorn told only the second request that the connection was gone): three
   locked a person out. Every request of a closed connection now sees it closed.

The attacker connects from 127.0.0.2 (loopback), the health checks from 127.0.0.1, so that the
per-address bound is what is tested, not a bound that shuts everyone out.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import httpx

from services.common.settings import Settings
from tests.people import token_for
from tests.stack import ServiceStack

ATTACKER = "127.0.0.2"
SERVICES = ("ingest", "feeds", "console")


def connect_from(source: str, port: int) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def closed_by_server(s: socket.socket, within: float) -> tuple[bool, bytes]:
    """Whether the server closes ``s`` within ``within`` seconds, and what it sent first."""
    s.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def healthy(stack: ServiceStack) -> None:
    for name in SERVICES:
        r = httpx.get(stack.url(name) + "/healthz", timeout=5)
        assert r.status_code == 200, (name, r.status_code, r.text[:200])


def test_a_thousand_slow_connections_do_not_starve_the_health_checks(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(
        settings,
        tmp_path,
        SERVICES,
        # shorter than the defaults (10 s and 60 s) so that the test does not wait long
        REALCONNECT_HTTP_HEADERS_TIMEOUT_S="3",
        REALCONNECT_HTTP_BODY_TIMEOUT_S="3",
    )
    stack_factory.append(stack)
    stack.start()
    held: list[socket.socket] = []
    try:
        for name in SERVICES:
            port = stack.ports[name]
            for _ in range(1000 // len(SERVICES)):
                s = connect_from(ATTACKER, port)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the end
                held.append(s)
        # past the per-address bound (100 by default) a connection is refused at once
        refused = 0
        for s in held:
            done, first = closed_by_server(s, 0.01)
            if done:  # a 503, or a reset that discarded it (the request was left unread)
                assert first == b"" or first.startswith(b"HTTP/1.1 503"), first[:100]
                refused += 1
        assert refused >= len(held) - 100 * len(SERVICES), refused
        # the attacker keeps trickling header lines; everyone else is served all along
        survivors = [s for s in held if s.fileno() != -1]
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            for s in survivors:
                with contextlib.suppress(OSError):
                    s.sendall(b"X-Slow: 1\r\n")
            healthy(stack)
            time.sleep(0.5)
        # and a head that takes too long is cut off: every held connection is closed
        for s in survivors:
            done, _ = closed_by_server(s, 5.0)
            assert done, "a slow head was not cut off"
        healthy(stack)
    finally:
        for s in held:
            s.close()


def test_a_slow_body_is_cut_off(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(
        settings,
        tmp_path,
        ("ingest",),
        REALCONNECT_HTTP_HEADERS_TIMEOUT_S="3",
        REALCONNECT_HTTP_BODY_TIMEOUT_S="2",
    )
    stack_factory.append(stack)
    stack.start()
    s = connect_from(ATTACKER, stack.ports["ingest"])
    try:
        s.sendall(
            b"POST /v1/interactions HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer dev-producer-token\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        started = time.monotonic()
        for _ in range(3):  # a byte a second
            time.sleep(1)
            try:
                s.sendall(b" ")
            except OSError:
                break
        done, _ = closed_by_server(s, 5.0)
        assert done, "a slow body was not cut off"
        assert time.monotonic() - started < 8
    finally:
        s.close()
    assert httpx.get(stack.url("ingest") + "/healthz", timeout=5).status_code == 200


def test_a_huge_head_is_refused(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(settings, tmp_path, ("feeds",))
    stack_factory.append(stack)
    stack.start()
    s = connect_from(ATTACKER, stack.ports["feeds"])
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(100):  # 100 x 1 KiB header lines: past the 64 KiB bound
                s.sendall(b"X-Pad: " + b"a" * 1024 + b"\r\n")
        except OSError:
            pass  # the server may already have closed it
        done, first = closed_by_server(s, 5.0)
        assert done and first.startswith(b"HTTP/1.1 431"), first[:100]
    finally:
        s.close()


def test_pipelined_streams_on_an_aborted_connection_give_their_slots_back(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(settings, tmp_path, ("feeds",))  # 3 streams per token, the default
    stack_factory.append(stack)
    stack.start()
    feeds = stack.url("feeds")
    auth = token_for(feeds, "s:pia")["authorization"].encode()
    request = b"GET /v1/me/feed/stream HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n\r\n"
    for _ in range(5):  # more than the per-token bound: each must give its slot back
        s = connect_from("127.0.0.1", stack.ports["feeds"])
        s.sendall(request + request)  # two pipelined on one connection
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # aborted (RST)
        time.sleep(0.3)
    # the person can still open a stream: no slot was kept by an aborted connection
    deadline = time.monotonic() + 10
    while True:
        with (
            httpx.Client(timeout=httpx.Timeout(10.0, read=20.0)) as client,
            client.stream(
                "GET", f"{feeds}/v1/me/feed/stream", headers={"authorization": auth.decode()}
            ) as r,
        ):
            if r.status_code == 200:
                break
            assert r.status_code == 429
        assert time.monotonic() < deadline, "the aborted connections' stream slots leaked"
        time.sleep(0.5)
