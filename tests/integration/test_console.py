"""The console's stats API against the real servers, and when one of them is gone."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.common.settings import Settings
from services.console.app import create_app
from tests.conftest import settings_for
from tests.people import ADMIN
from tests.stack import free_port


def test_stats_of_an_empty_namespace_are_zero(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        stats = client.get("/api/stats", headers=ADMIN).json()
    assert stats["interactions_in"] == 0
    assert stats["pairs_tracked"] == 0
    assert stats["feed_items"] == 0


def test_unreachable_redis_is_a_clear_503_not_a_500(servers: None, namespace: str) -> None:
    settings = settings_for(namespace, redis={"url": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(settings)) as client:
        r = client.get("/api/stats", headers=ADMIN)
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "2"
    assert "Redis" in r.json()["detail"]


def test_the_console_api_needs_the_admin_token(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/stats").status_code == 401
        assert (
            client.get("/api/dead-letters", headers={"authorization": "Bearer x"}).status_code
            == 401
        )
        assert client.get("/").status_code == 200  # the page itself asks for the token
