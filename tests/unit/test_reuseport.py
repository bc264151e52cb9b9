"""The SO_REUSEPORT supervisor: connections are spread over its processes, a killed process
is replaced, SIGTERM stops everything, and an app that cannot start stops the service."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from services.common.reuseport import listener

SUPERVISE = """
import sys
from services.common.reuseport import Supervisor
raise SystemExit(Supervisor(host="127.0.0.1", port=int(sys.argv[1]), workers=2,
    log_level="info", uvicorn_kwargs={"app": sys.argv[2], "log_config": None,
    "access_log": False}).run())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_answering(port: int) -> int | None:
    """The pid of the process that answers a new connection (None: nobody yet)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/")
        return int(conn.getresponse().read())
    except OSError:
        return None
    finally:
        conn.close()


def supervise(port: int, app: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", SUPERVISE, str(port), app],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def pids_seen(port: int, connections: int, deadline_s: float = 30) -> set[int]:
    deadline = time.monotonic() + deadline_s
    seen: set[int] = set()
    while time.monotonic() < deadline and len(seen) < connections:
        pid = pid_answering(port)
        if pid is None:
            time.sleep(0.1)
            continue
        seen.add(pid)
        connections -= 1
    return seen


def test_listeners_share_a_port() -> None:
    port = free_port()
    a, b = listener("127.0.0.1", port), listener("127.0.0.1", port)
    try:
        assert a.getsockname() == b.getsockname()
    finally:
        a.close()
        b.close()
    with socket.socket() as plain:  # a listener outside the group keeps the port
        plain.bind(("127.0.0.1", port))
        plain.listen()
        with pytest.raises(OSError, match="in use"):
            listener("127.0.0.1", port)


def both_answering(port: int, deadline_s: float = 30) -> set[int]:
    """The pids answering new connections, once two have (a process can start seconds after
    the other on a loaded machine: the first then answers every connection until then)."""
    deadline = time.monotonic() + deadline_s
    seen: set[int] = set()
    while time.monotonic() < deadline and len(seen) < 2:
        seen |= pids_seen(port, 20, deadline_s=deadline - time.monotonic())
    return seen


def test_connections_spread_and_a_killed_worker_is_replaced() -> None:
    port = free_port()
    proc = supervise(port, "tests.pid_app:app")
    try:
        first = both_answering(port)
        assert len(first) == 2, f"one process took every connection: {first}"
        assert proc.pid not in first  # the parent only supervises
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        replaced: set[int] = set()
        while time.monotonic() < deadline:
            replaced = pids_seen(port, 20) - first
            if replaced:
                break
            time.sleep(0.2)
        assert replaced, "the killed worker was not replaced"
        assert victim not in pids_seen(port, 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    assert pid_answering(port) is None  # every worker stopped with the parent


def test_an_app_that_cannot_start_stops_the_service() -> None:
    proc = supervise(free_port(), "tests.pid_app:failing")
    try:
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
