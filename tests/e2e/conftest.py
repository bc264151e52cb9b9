from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _check_servers, new_namespace, settings_for, unavailable
from tests.stack import ServiceStack

ALL = ("ingest", "feeds", "console", "normalizer", "matcher", "notifier")


#: a module sets this to run its stack with other settings, saying why (see test_linked_people)
EXTRA_ENV = "PIPELINE_ENV"


@pytest.fixture(scope="module")
def pipeline_stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ServiceStack]:
    """Every service running in one fresh namespace (the e2e tests share it per module), with
    the defaults a user gets, the matcher's gate included, and any settings the module's
    ``PIPELINE_ENV`` adds."""
    extra: dict[str, str] = getattr(request.module, EXTRA_ENV, {})
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
        **extra,
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
