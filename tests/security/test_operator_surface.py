"""/metrics and the interactive docs are not on the public surface: behind the admin token on
every HTTP service (the OpenAPI document stays public; the workers' faust web listens on
loopback only)."""

from __future__ import annotations

from pathlib import Path

import httpx

from services.common.settings import Settings
from tests.people import ADMIN, PRODUCER
from tests.stack import ServiceStack


def test_metrics_and_docs_need_the_admin_token(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(settings, tmp_path, ("ingest", "feeds", "console"))
    stack_factory.append(stack)
    stack.start()
    for service in ("ingest", "feeds", "console"):
        base = stack.url(service)
        for path in ("/metrics/", "/docs", "/redoc"):
            for auth in ({}, PRODUCER, {"authorization": "Bearer nope"}):
                r = httpx.get(base + path, headers=auth)
                assert r.status_code == 401, (service, path, auth, r.status_code)
            assert httpx.get(base + path, headers=ADMIN).status_code == 200, (service, path)
        assert httpx.get(base + "/openapi.json").status_code == 200
