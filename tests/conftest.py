"""Shared fixtures. Integration and e2e tests need the real Kafka and Redis (``make test``
starts them): unreachable, they FAIL in CI (``CI=true``) and skip, saying why, elsewhere."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.common.settings import Settings
from tests.stack import ServiceStack

# Fewer partitions than production: each test namespace makes its own topics and changelogs.
os.environ.setdefault("REALCONNECT_KAFKA__PARTITIONS", "4")
# The matcher flushes buffered events after this many quiet seconds; tests need not wait 5.
os.environ.setdefault("REALCONNECT_MATCHER__IDLE_FLUSH_S", "1.5")
# The matcher runs with its default gate (the shipped model, MIN_PROBABILITY 0.35): tests that
# need a pair suggested give it weeks of contact (tests/factories.weeks_of_talk). The few
# that run the rule gates alone set MIN_PROBABILITY=0 on their own stack and say why (crash
# and restart tests over thousands of short generated conversations; replays of a dataset's
# days; identity resolution over two days of webhooks).
# The person-relative decision reads the circles as far as the circle stage has folded them,
# so with it the event that makes a pair qualify depends on how the matcher's batches fell:
# tests that assert the exact trigger, evidence or count of suggestions run without it, and
# tests/integration/test_closest_pipeline.py runs it (CLOSEST_TOP=3, the default) on its own.
os.environ.setdefault("REALCONNECT_MATCHER__CLOSEST_TOP", "0")
os.environ.setdefault("REALCONNECT_MATCHER__TICK_INTERVAL_S", "0.3")


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DATA_DIR = Path(
    os.environ.get("REALCONNECT_DATA_DIR", Path(__file__).parents[2] / "shared" / "data")
)


def unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere: a missing server must never pass silently in CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: integration tests never skip)")
    pytest.skip(f"{reason} (start it with `make up` or run `make test`)")


#: namespaces made during the session whose topics are still to be deleted
_namespaces: list[str] = []


def new_namespace() -> str:
    ns = f"t{uuid.uuid4().hex[:12]}"
    _namespaces.append(ns)
    return ns


def drop_namespaces(namespaces: list[str]) -> None:
    """Delete the topics of finished tests: each partition holds open files in the broker,
    and a full run would otherwise exhaust the machine's file-descriptor limit."""
    from services.common.kafka import delete_namespace_topics

    if not namespaces:
        return
    try:
        asyncio.run(delete_namespace_topics(Settings().kafka.bootstrap_servers, namespaces))
    except Exception as exc:  # cleanup only: the broker may be down on purpose
        print(f"topics of {namespaces} not deleted: {exc!r}")


@pytest.fixture(scope="session", autouse=True)
def _drop_session_namespaces() -> Iterator[None]:
    yield
    drop_namespaces(_namespaces)


def settings_for(namespace: str, **overrides: object) -> Settings:
    return Settings(namespace=namespace, env="test", **overrides)  # type: ignore[arg-type]


async def _check_servers() -> str | None:
    settings = Settings()
    from aiokafka.admin import AIOKafkaAdminClient

    from services.common.redis import new_redis

    try:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=settings.kafka.bootstrap_servers, request_timeout_ms=5000
        )
        await asyncio.wait_for(admin.start(), 10)
        await admin.close()
    except Exception as exc:  # any failure to connect is reported below
        return f"Kafka at {settings.kafka.bootstrap_servers} is unreachable: {exc!r}"
    r = new_redis(settings)
    try:
        await asyncio.wait_for(r.ping(), 5)
    except Exception as exc:
        return f"Redis at {settings.redis.url} is unreachable: {exc!r}"
    finally:
        await r.aclose()
    from tests.mail import smtp_problem

    return await smtp_problem(settings)


_server_problem: list[str | None] = []


@pytest.fixture
def servers() -> None:
    """Depend on this to need the real Kafka and Redis."""
    if not _server_problem:
        _server_problem.append(asyncio.run(_check_servers()))
    if _server_problem[0]:
        unavailable(_server_problem[0])


@pytest.fixture
def namespace() -> Iterator[str]:
    ns = new_namespace()
    yield ns
    _namespaces.remove(ns)
    drop_namespaces([ns])


@pytest.fixture
def settings(servers: None, namespace: str) -> Settings:
    return settings_for(namespace)


@pytest.fixture
def data_dir() -> Path:
    if not (DATA_DIR / "copenhagen_cns").is_dir():
        if IN_CI:
            pytest.fail(f"shared data not found at {DATA_DIR} (CI=true)")
        pytest.skip(f"shared data not found at {DATA_DIR}; set REALCONNECT_DATA_DIR")
    return DATA_DIR


@pytest.fixture
def stack_factory(tmp_path: Path, namespace: str) -> Iterator[list[ServiceStack]]:
    """Start service processes in a namespace; every stack is stopped at teardown."""
    stacks: list[ServiceStack] = []
    yield stacks
    for s in stacks:
        s.stop()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[object]:
    from services.common.redis import new_redis

    r = new_redis(settings)
    yield r
    await r.aclose()


# --- time per tier, printed at the end of the run (make test; docs/testing.md) -----------

_tier_seconds: dict[str, float] = {}
_tier_tests: dict[str, int] = {}
_session_started: list[float] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    import time

    _session_started.append(time.monotonic())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Every phase's duration, by tier (the folder under tests/); with pytest-xdist this
    runs in the controller for every worker's reports."""
    parts = report.nodeid.split("/")
    tier = parts[1] if len(parts) > 2 and parts[0] == "tests" else "other"
    _tier_seconds[tier] = _tier_seconds.get(tier, 0.0) + report.duration
    if report.when == "call" or (report.when == "setup" and report.skipped):
        _tier_tests[tier] = _tier_tests.get(tier, 0) + 1


def pytest_terminal_summary(
    terminalreporter: object, exitstatus: int, config: pytest.Config
) -> None:
    import time

    if not _tier_seconds or not _session_started or hasattr(config, "workerinput"):
        return
    workers = getattr(config.option, "numprocesses", None) or 1
    write = terminalreporter.write_line  # type: ignore[attr-defined]
    write(
        f"time per tier (each test's setup + call + teardown, added up; {workers} worker(s) "
        "in parallel):"
    )
    for tier in sorted(_tier_seconds, key=lambda t: -_tier_seconds[t]):
        write(f"  {tier:<12} {_tier_tests.get(tier, 0):>4} tests {_tier_seconds[tier]:>8.1f} s")
    write(f"  {'wall':<12} {'':>10} {time.monotonic() - _session_started[0]:>8.1f} s")
