from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _check_servers, new_namespace, settings_for, unavailable
from tests.stack import ServiceStack

ALL = ("ingest", "feeds", "console", "normalizer", "matcher", "notifier")


@pytest.fixture(scope="module")
def pipeline_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    """Every service running in one fresh namespace (the e2e tests share it per module)."""
    problem = asyncio.run(_check_servers())
    if problem:
        unavailable(problem)
    settings = settings_for(new_namespace())
    workdir: Path = tmp_path_factory.mktemp("stack")
    stack = ServiceStack(
        settings,
        workdir,
        ALL,
        REALCONNECT_INGEST__MAX_BATCH_EVENTS="50",
        REALCONNECT_INGEST__MAX_BODY_BYTES="65536",
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
