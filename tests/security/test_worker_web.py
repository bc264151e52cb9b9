"""The faust workers' own web servers (normalizer, matcher, notifier): attack 1 of the second
round. They listened on every interface and answered ``/metrics`` and faust's table pages
(a pair's counts, call minutes, contact times for any two ids) with no token. Now they listen
on loopback, faust's state pages are off, ``/metrics`` needs the admin token (master or the
``metrics`` scope) and ``/healthz`` says only that the worker is up."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from services.common.settings import Settings
from tests.people import ADMIN, PRODUCER
from tests.stack import ServiceStack

WORKERS = ("normalizer", "matcher", "notifier")


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port`` (from /proc/net/tcp{,6})."""
    found: set[str] = set()
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr_hex)
            # /proc prints each 32-bit word in host (little-endian) order
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, size, 4))
            family = socket.AF_INET if size == 4 else socket.AF_INET6
            found.add(socket.inet_ntop(family, words))
    return found


def test_worker_web_servers_listen_on_loopback_and_show_no_state(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(settings, tmp_path, WORKERS)
    stack_factory.append(stack)
    stack.start()
    for worker in WORKERS:
        port = stack.ports[worker]
        assert listening_addresses(port) == {"127.0.0.1"}, (worker, listening_addresses(port))
        base = stack.url(worker)
        # faust's pages that show state or topology: a pair's row, the table list, sensors,
        # the partition assignment, the cluster's URLs
        for path in (
            "/table/",
            "/table/pairs/",
            "/table/pairs/alice%7Cbob/",
            "/router/",
            "/router/pairs/alice%7Cbob/",
            "/stats/",
            "/assignment/",
            "/graph/",
            "/performance/",
        ):
            r = httpx.get(base + path, timeout=10)
            assert r.status_code == 404, (worker, path, r.status_code, r.text[:200])
        # faust's production index says only that it is up
        assert httpx.get(base + "/", timeout=10).json() == {"status": "OK"}
        # metrics: the same rule as every HTTP service's
        for auth in ({}, PRODUCER, {"authorization": "Bearer nope"}, {"authorization": "nope"}):
            r = httpx.get(base + "/metrics", headers=auth, timeout=10)
            assert r.status_code == 401, (worker, auth, r.status_code)
            assert "python_gc" not in r.text
        assert httpx.get(base + "/metrics", headers=ADMIN, timeout=10).status_code == 200
        health = httpx.get(base + "/healthz", timeout=10)
        assert health.status_code == 200 and health.json() == {"status": "ok"}, worker


def test_the_metrics_scope_opens_worker_metrics(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    token = "metrics-scraper-token-0123456789abcdef"
    stack = ServiceStack(
        settings, tmp_path, ("matcher",), REALCONNECT_ADMIN_TOKENS=f'{{"metrics": "{token}"}}'
    )
    stack_factory.append(stack)
    stack.start()
    base = stack.url("matcher")
    ok = httpx.get(base + "/metrics", headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert ok.status_code == 200 and "python_gc_objects_collected" in ok.text
    wrong = {"authorization": "Bearer console-operator-token-0123456789abcdef"}
    assert httpx.get(base + "/metrics", headers=wrong, timeout=10).status_code == 401
