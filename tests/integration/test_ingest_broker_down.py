"""Ingest fails fast when Kafka cannot take a write (issue 21): with its only broker
SIGKILLed, aiokafka still takes the dead broker for the leader and a send waits for a
metadata refresh that never comes. Every request that writes must answer 503 with
Retry-After within the produce deadline, never hang (the replay client would time out).
Stopping a service then is bounded too: aiokafka's producer would wait for the dead broker
until SIGKILL (an orchestrator's grace period), so shutdown gives up after the same deadline."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from schemas.events import Interaction
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from services.ingest.webhooks import EXAMPLE_LIKE
from tests.factories import interaction
from tests.people import ADMIN, PRODUCER
from tests.stack import PrivateKafka, ServiceStack
from tests.webhooks import signed_headers

JSON = {**PRODUCER, "content-type": "application/json"}
DEADLINE_S = 3.0  # REALCONNECT_KAFKA__PRODUCE_TIMEOUT_S here (default 10 s): a quick test


def body(i: Interaction) -> str:
    return i.model_dump_json()


@pytest.fixture
async def broker(tmp_path: Path, settings: Settings):  # type: ignore[no-untyped-def]
    kafka = PrivateKafka(tmp_path / "kafka")
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.kill()


async def test_every_write_answers_503_within_the_deadline_when_the_broker_is_gone(
    tmp_path: Path, settings: Settings, broker: PrivateKafka
) -> None:
    own = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap})}
    )
    await ensure_topics(own)
    stack = ServiceStack(
        own,
        tmp_path / "stack",
        ("ingest", "feeds"),
        REALCONNECT_KAFKA__PRODUCE_TIMEOUT_S=str(DEADLINE_S),
    ).start()
    try:
        ingest, feeds = stack.url("ingest"), stack.url("feeds")
        ok = httpx.post(
            f"{ingest}/v1/interactions", content=body(interaction()), headers=JSON, timeout=30
        )
        assert ok.status_code == 202, ok.text  # the broker is there: accepted

        broker.kill()

        raw = json.dumps(EXAMPLE_LIKE).encode()  # a Bluesky like, as Jetstream sends it
        writes = {
            "interaction": lambda: httpx.post(
                f"{ingest}/v1/interactions",
                content=body(interaction("carol", "dave")),
                headers=JSON,
                timeout=30,
            ),
            "webhook": lambda: httpx.post(
                f"{ingest}/v1/sources/bluesky/events",
                content=raw,
                headers=signed_headers("bluesky", raw),
                timeout=30,
            ),
            "profile": lambda: httpx.put(
                f"{ingest}/v1/people/p1", json={"city": "Lisbon"}, headers=ADMIN, timeout=30
            ),
            "token": lambda: httpx.post(f"{feeds}/v1/people/p1/tokens", headers=ADMIN, timeout=30),
        }
        for name, write in writes.items():
            started = time.monotonic()
            r = write()
            took = time.monotonic() - started
            assert r.status_code == 503, (name, r.status_code, r.text)
            assert r.headers.get("retry-after"), name
            assert r.headers["content-type"].startswith("application/problem+json"), name
            assert took < DEADLINE_S + 5, (name, took)  # not the 30 s client timeout

        # SIGTERM with the broker still gone: each exits cleanly within the deadline, instead
        # of waiting for the broker until the SIGKILL that ServiceStack.kill sends after 30 s
        for name in ("ingest", "feeds"):
            proc = stack.procs[name]
            started = time.monotonic()
            stack.kill(name, signal.SIGTERM)
            took = time.monotonic() - started
            # uvicorn ends a clean shutdown by raising the signal it caught again: -SIGTERM
            assert proc.returncode in (0, -signal.SIGTERM), (name, proc.returncode)
            assert "Application shutdown complete" in stack.tail(name), name
            assert took < DEADLINE_S + 10, (name, took)
            # a fresh producer that could not bootstrap is closed, not left to the collector
            assert "Unclosed AIOKafkaProducer" not in stack.log(name).read_text(), name
    finally:
        stack.stop()
