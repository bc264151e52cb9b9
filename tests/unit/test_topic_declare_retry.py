"""A worker that declares its topics while the broker restarts waits for the broker instead of
crashing (services/common/faust_transport.py, CI's test_matcher_broker_restart)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import NodeNotReadyError
from faust.transport.drivers import aiokafka as faust_aiokafka

from services.common import faust_transport


class Owner:
    should_stop = False


def test_a_declaration_into_a_restarting_broker_is_retried_until_it_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    async def flaky(self: Any, owner: Any, client: Any, topic: str, *a: Any, **kw: Any) -> None:
        calls.append(topic)
        if len(calls) < 3:
            raise NodeNotReadyError("Attempt to send a request to node which is not ready")

    monkeypatch.setattr(faust_aiokafka.Transport, "_create_topic", flaky)
    monkeypatch.setattr(faust_transport.Backoff, "next", lambda self: 0.0)
    transport = object.__new__(faust_transport.Transport)
    asyncio.run(transport._create_topic(Owner(), None, "t.leader", 1, 1))
    assert calls == ["t.leader"] * 3


def test_a_broker_that_never_comes_back_still_fails_the_declaration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def dead(self: Any, owner: Any, client: Any, topic: str, *a: Any, **kw: Any) -> None:
        raise NodeNotReadyError("down")

    monkeypatch.setattr(faust_aiokafka.Transport, "_create_topic", dead)
    monkeypatch.setattr(faust_transport.Backoff, "next", lambda self: 0.0)
    monkeypatch.setattr(faust_transport, "DECLARE_PATIENCE_S", 0.05)
    transport = object.__new__(faust_transport.Transport)
    with pytest.raises(NodeNotReadyError):
        asyncio.run(transport._create_topic(Owner(), None, "t.leader", 1, 1))
