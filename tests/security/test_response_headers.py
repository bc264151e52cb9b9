"""Attacks 7 and 8 of the second round, against the real services: links and redirects built
from the request's Host header, and pages that another site could frame."""

from __future__ import annotations

from pathlib import Path

import httpx

from services.common.settings import Settings
from services.notifier.mail import unsubscribe_url
from tests.people import ADMIN
from tests.stack import ServiceStack

EVIL = {"host": "evil.example"}


def test_links_and_redirects_never_come_from_the_host_header(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(settings, tmp_path, ("ingest", "feeds", "console"))
    stack_factory.append(stack)
    stack.start()
    feeds = stack.url("feeds")
    # Starlette's own redirect (a mount without its trailing slash) on every service
    for name in ("ingest", "feeds", "console"):
        r = httpx.get(stack.url(name) + "/metrics", headers={**EVIL, **ADMIN})
        assert r.status_code in (307, 308), (name, r.status_code)
        location = r.headers["location"]
        assert "evil.example" not in location, (name, location)
        assert location.endswith("/metrics/"), (name, location)
    r = httpx.get(feeds + "/metrics", headers={**EVIL, **ADMIN})
    assert r.headers["location"] == feeds + "/metrics/"  # onto the configured public URL
    # the unsubscribe form posts to the configured public URL
    key = stack.settings.notifier.webhook_key.get_secret_value()
    link = unsubscribe_url(feeds, key, "h:ann")
    page = httpx.get(link, headers=EVIL)
    assert page.status_code == 200
    assert "evil.example" not in page.text
    assert f"action='{feeds}/v1/unsubscribe?p=h%3Aann&amp;s=" in page.text, page.text


def test_every_html_page_refuses_to_be_framed(
    settings: Settings, tmp_path: Path, stack_factory: list[ServiceStack]
) -> None:
    stack = ServiceStack(settings, tmp_path, ("ingest", "feeds", "console"))
    stack_factory.append(stack)
    stack.start()
    feeds, console, ingest = (stack.url(s) for s in ("feeds", "console", "ingest"))
    key = stack.settings.notifier.webhook_key.get_secret_value()
    pages = [
        console + "/",
        unsubscribe_url(feeds, key, "h:ann"),
        feeds + "/app/signin?t=nope",  # the "link no longer works" page
        feeds + "/app",  # signed out
        feeds + "/app/signed-out",
    ]
    for url in pages:
        r = httpx.get(url)
        assert r.headers["content-type"].startswith("text/html"), url
        assert r.headers.get("x-frame-options") == "DENY", url
        csp = r.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, (url, csp)
    for url in (ingest + "/healthz", feeds + "/healthz", console + "/healthz"):
        r = httpx.get(url)
        assert r.headers.get("x-frame-options") == "DENY" and r.headers["x-content-type-options"]
