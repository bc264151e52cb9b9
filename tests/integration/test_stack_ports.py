"""The test harness itself: a service whose port another process took before it could bind
it is not taken for ready (the stranger answers on the port), and is started again on a new
port (CI once waited a minute on a matcher that had exited on "address already in use")."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.settings import Settings
from tests.stack import ServiceStack, _group_holds, _listeners

pytestmark = pytest.mark.integration


@pytest.fixture
def stranger() -> Iterator[socket.socket]:
    """Another process's listener, on a port of its own."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s
    s.close()


def test_a_service_whose_port_was_taken_starts_again_on_another(
    settings: Settings, tmp_path: Path, stranger: socket.socket
) -> None:
    taken = stranger.getsockname()[1]
    stack = ServiceStack(settings, tmp_path, ("feeds",))
    stack.ports["feeds"] = taken
    stack.env["REALCONNECT_FEEDS__PORT"] = str(taken)
    stack.env["REALCONNECT_FEEDS__PUBLIC_URL"] = stack.url("feeds")
    try:
        stack.start()
        assert stack.ports["feeds"] != taken
        assert _group_holds(stack.procs["feeds"].pid, _listeners(stack.ports["feeds"]))
        assert httpx.get(stack.url("feeds") + "/healthz", timeout=10).status_code == 200
        assert "address already in use" in stack.log("feeds").read_text(errors="replace")
    finally:
        stack.stop()
