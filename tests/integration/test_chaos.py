"""A short chaos run inside `make test` (the full set is `make reliability`): the same input
replayed twice, once without faults and once with a matcher SIGKILL and a SIGKILL of the
broker while events are still being sent. Checked against the generator's own answer and
against the fault-free run: nothing lost, nothing twice, the same suggestions and feeds,
no stall, and the matcher's count of interactions equal to those acknowledged.

The broker killed is a one-node broker of this test's own (the suite runs in parallel
against the shared one); the fault-free reference runs on the shared broker."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from tests import reliability as rel
from tests.stack import PrivateKafka


async def test_a_matcher_and_a_broker_sigkill_change_nothing(tmp_path: Path, servers: None) -> None:
    tag = uuid.uuid4().hex[:6]
    broker = PrivateKafka(tmp_path / "kafka")
    starting = asyncio.create_task(asyncio.to_thread(broker.start))
    try:
        reference, observed = await rel.scenario("reference", [], tmp_path / "reference", tag, None)
        assert reference.ok, reference
        assert observed is not None
        await starting
        chaos, _ = await rel.scenario(
            "chaos",
            [rel.kill_matcher, rel.kill_broker],
            tmp_path / "chaos",
            tag,
            observed,
            broker=broker,
        )
        assert len(chaos.faults) >= 2 and not chaos.late_faults, chaos.faults  # mid-stream
        assert chaos.ok, chaos
    finally:
        if not starting.done():
            await asyncio.wait([starting])
        broker.kill()
