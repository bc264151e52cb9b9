"""A rolling upgrade of the matcher mid-stream (issue 42), on the real Kafka and Redis: release
0.1.0's matcher (its code taken from git at the commit whose persisted formats
``tests/compat/samples/0.1.0.*`` hold) runs on part of a stream, is stopped as a rollout stops
a pod (SIGTERM), and today's matcher starts on the same state (its RocksDB directory, its
changelogs, its committed offsets) and finishes the stream. A ``read_committed`` reader gets
each expected suggestion exactly once, with no dedupe, and every pair is counted once: nothing
lost, nothing duplicated, nothing stranded across the upgrade. The expected answer is the pure
policy's over the whole stream, fault-free (``test_matcher_crash.expected``)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.kafka import Topics, group_lag
from services.common.settings import Settings
from tests.integration.test_matcher_crash import (
    _tracked,
    expected,
    history,
    restarted_and_drained,
    started_and_fed,
)
from tests.stack import ServiceStack

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
#: release 0.1.0: the commit that froze its persisted formats under tests/compat/samples
OLD_RELEASE = "71ea633"


def old_release(into: Path) -> Path:
    """Release 0.1.0's code (``services`` and ``schemas``), from git, in ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", OLD_RELEASE, "services", "schemas"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    # with it first on the path, a process imports the old release's code (-P: as a
    # console script, with no current directory before it)
    where = subprocess.run(
        [sys.executable, "-P", "-c", "import services; print(services.__file__)"],
        env={"PYTHONPATH": str(into), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where == str(into / "services" / "__init__.py")
    return into


async def test_a_matcher_upgraded_mid_stream_loses_and_duplicates_nothing(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    old = await asyncio.to_thread(old_release, tmp_path / "release-0.1.0")
    pairs = 1000
    events = history(pairs)
    stack = await started_and_fed(
        settings, tmp_path / "run", stack_factory, events, PYTHONPATH=str(old)
    )
    t = Topics(settings)
    # stopped as a rollout stops a pod: SIGTERM, its transaction committed, its group left
    stack.kill("matcher", signal.SIGTERM)
    lag = await group_lag(settings.kafka.bootstrap_servers, t.interactions, t.app_id("matcher"))
    done = sum(lag.committed.values())
    assert 0 < done < len(events), f"the upgrade did not land mid-stream ({done} committed)"
    # today's release on the same state: the same data directory, changelogs and offsets
    del stack.env["PYTHONPATH"]
    got = await restarted_and_drained(settings, stack)
    want = expected(events, settings)
    assert len(want) == pairs
    assert sorted(s.suggestion_id for s in got) == sorted(want)  # each once: no reader dedupe
    for s in got:
        assert s.evidence == want[s.suggestion_id]
    assert sum(int(v) for v in await _tracked(settings, pairs)) == pairs
    # both releases ran, one after the other, on the one data directory
    assert stack.log("matcher").read_text(errors="replace").count("Worker ready") == 2
