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


def test_scoped_admin_tokens_open_only_their_scope(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    console_token = "console-operator-token-0123456789abcdef"
    metrics_token = "metrics-scraper-token-0123456789abcdef"
    stack = ServiceStack(
        settings,
        tmp_path,
        ("ingest", "feeds", "console"),
        REALCONNECT_ADMIN_TOKENS=f'{{"console": "{console_token}", "metrics": "{metrics_token}"}}',
    )
    stack_factory.append(stack)
    stack.start()
    ingest, feeds, console = (stack.url(s) for s in ("ingest", "feeds", "console"))
    as_console = {"authorization": f"Bearer {console_token}"}
    as_metrics = {"authorization": f"Bearer {metrics_token}"}
    # each opens its own scope...
    assert httpx.get(f"{console}/api/dead-letters", headers=as_console).status_code == 200
    for base in (ingest, feeds, console):
        assert httpx.get(f"{base}/metrics/", headers=as_metrics).status_code == 200
    # ...and nothing else
    assert httpx.get(f"{console}/api/dead-letters", headers=as_metrics).status_code == 401
    assert httpx.get(f"{ingest}/metrics/", headers=as_console).status_code == 401
    for token in (as_console, as_metrics):
        assert httpx.post(f"{feeds}/v1/people/x:y/tokens", headers=token).status_code == 401
        assert httpx.put(f"{ingest}/v1/people/x:y", json={}, headers=token).status_code == 401
        assert httpx.get(f"{ingest}/v1/producers", headers=token).status_code == 401
    # the master token still opens everything
    assert httpx.get(f"{ingest}/v1/producers", headers=ADMIN).status_code == 200
    assert httpx.get(f"{console}/api/dead-letters", headers=ADMIN).status_code == 200
