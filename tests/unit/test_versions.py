"""The version guard: the installed dependencies are the locked ones, and faust-streaming
and aiokafka are the versions whose private parts were read (services/common/upstream.py)."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from services.common.upstream import CHECKED_AGAINST

ROOT = Path(__file__).parents[2]
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", re.M)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    return {_norm(n): v for n, v in _PIN.findall((ROOT / "requirements.lock").read_text())}


def test_the_lock_pins_every_dependency_with_a_hash() -> None:
    text = (ROOT / "requirements.lock").read_text()
    pins = locked()
    assert {"faust-streaming", "aiokafka", "redis", "pydantic", "structlog"} <= set(pins)
    blocks = [b for b in re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text) if _PIN.match(b)]
    assert len(blocks) == len(pins)
    assert all("--hash=sha256:" in b for b in blocks), "every pin carries its hashes"


@pytest.mark.parametrize("package", sorted(CHECKED_AGAINST))
def test_private_api_users_were_read_against_the_installed_version(package: str) -> None:
    installed = version(package)
    assert installed == CHECKED_AGAINST[package], (
        f"{package} {installed} is installed, but the modules listed in "
        f"services/common/upstream.py were read against {CHECKED_AGAINST[package]}: "
        "read them against the new release, then update CHECKED_AGAINST"
    )
    assert locked()[package] == installed, f"{package}: requirements.lock pins another version"


def test_the_installed_set_is_the_locked_one() -> None:
    drift = {}
    for name, pinned in locked().items():
        try:
            got = version(name)
        except PackageNotFoundError:
            got = "(missing)"
        if got != pinned:
            drift[name] = (pinned, got)
    assert not drift, f"installed versions differ from requirements.lock: {drift}"


def test_the_image_installs_the_runtime_lock_which_agrees_with_the_full_one() -> None:
    runtime = {
        _norm(n): v for n, v in _PIN.findall((ROOT / "requirements-runtime.lock").read_text())
    }
    full = locked()
    assert {"faust-streaming", "aiokafka", "fastapi"} <= set(runtime) <= set(full)
    assert {n: v for n, v in runtime.items() if full[n] != v} == {}
    dockerfile = (ROOT / "deploy/docker/Dockerfile").read_text()
    assert "--require-hashes -r requirements-runtime.lock" in dockerfile
    assert "pip install --no-deps ." in dockerfile


def test_the_private_parts_used_are_still_there() -> None:
    """Each private attribute the modules of services/common/upstream.py reach for exists in
    the installed release (a rename fails here, not in production)."""
    from aiokafka import AIOKafkaConsumer
    from faust.stores import rocksdb as faust_rocksdb
    from faust.tables.recovery import Recovery
    from faust.transport.drivers import aiokafka as faust_aiokafka

    from services.common.rocksdb_store import partition_databases

    assert callable(faust_rocksdb.Store._db_for_partition)
    assert partition_databases(object()) is None  # the memory store of tests: no database
    import inspect

    from aiokafka.client import AIOKafkaClient

    # the consumer keeps its client as ``_client``; the client's metadata is ``cluster``
    assert "self._client = AIOKafkaClient(" in inspect.getsource(AIOKafkaConsumer.__init__)
    assert "self.cluster = " in inspect.getsource(AIOKafkaClient.__init__)
    assert callable(getattr(Recovery, "on_recovery_completed", None))
    assert hasattr(faust_aiokafka, "Consumer")
    # faust_fixes and the stall watchdog read the consumer's committed offsets and paused and
    # buffered partitions, set up by faust's Consumer
    from faust.transport.consumer import Consumer as FaustConsumer

    source = inspect.getsource(FaustConsumer)
    for name in ("_committed_offset", "_paused_partitions", "_buffered_partitions"):
        assert f"self.{name} = " in source, name
