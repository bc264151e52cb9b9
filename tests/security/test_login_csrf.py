"""Login CSRF (attack 2 of the second round), in a real headless Chromium: a page on another
site submitted the attacker's own sign-in link to the sign-in form in the victim's browser,
and the victim then worked inside the attacker's account. Sign-in is now bound to the browser
that opened the link (a SameSite=Strict pre-sign-in cookie matched by the form) and to this
site (Sec-Fetch-Site, Origin)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from services.common.settings import Settings
from tests.browser import launch, need_chromium
from tests.people import ADMIN, sign_in
from tests.stack import ServiceStack

ATTACKER, VICTIM = "evil:mallory", "web:vic"


def link_token(feeds: str, person: str) -> str:
    r = httpx.post(f"{feeds}/v1/people/{person}/signin-links", headers=ADMIN, timeout=10)
    assert r.status_code == 201, r.text
    return str(r.json()["url"]).split("t=", 1)[1]


@pytest.fixture
def evil_site() -> Iterator[tuple[str, dict[str, bytes]]]:
    """Another site (``localhost``, where the feeds service is ``127.0.0.1``): serves the
    page the test puts in ``pages``."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, b"not found")
            self.send_response(200 if self.path in pages else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


def test_another_site_cannot_sign_a_browser_in_as_someone_else(
    settings: Settings,
    tmp_path: Path,
    stack_factory: list[ServiceStack],
    evil_site: tuple[str, dict[str, bytes]],
) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    stack = ServiceStack(settings, tmp_path, ("feeds",))
    stack_factory.append(stack)
    stack.start()
    feeds = stack.url("feeds")
    evil, pages = evil_site
    token = link_token(feeds, ATTACKER)
    # the attacker's page: opens the attacker's link in a hidden frame (to get a pre-sign-in
    # cookie, if the browser would keep one), then submits the link to the sign-in form,
    # with a guess at the form's value
    pages["/win-a-prize"] = f"""<!doctype html><html><body>
<iframe src="{feeds}/app/signin?t={token}" style="display:none"></iframe>
<form id="f" method="post" action="{feeds}/app/signin">
  <input type="hidden" name="t" value="{token}"><input type="hidden" name="n" value="guess">
</form>
<script>setTimeout(function () {{ document.getElementById("f").submit(); }}, 1500);</script>
</body></html>""".encode()
    pages["/no-nonce"] = f"""<!doctype html><html><body>
<form id="f" method="post" action="{feeds}/app/signin">
  <input type="hidden" name="t" value="{token}">
</form>
<script>document.getElementById("f").submit();</script>
</body></html>""".encode()

    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            for path in ("/win-a-prize", "/no-nonce"):
                victim = browser.new_context()
                page = victim.new_page()
                with page.expect_navigation(url=f"{feeds}/app/signin", timeout=15000) as nav:
                    page.goto(evil + path)
                response = nav.value
                assert response is not None and response.status == 403, (path, response)
                assert "Open the link again" in page.content()
                assert not [c for c in victim.cookies() if c["name"] == "rc_session"], path
                # the victim is not signed in anywhere
                assert victim.request.get(f"{feeds}/app").status == 401
                victim.close()

            # the same browser that opens a link itself still signs in as its owner
            own = browser.new_context()
            page = own.new_page()
            page.goto(f"{feeds}/app/signin?t={link_token(feeds, VICTIM)}")
            page.get_by_role("button").click()
            page.wait_for_load_state()
            assert page.url == f"{feeds}/app", (page.url, page.content()[:2000])
            assert [c for c in own.cookies() if c["name"] == "rc_session"]
            own.close()
        finally:
            browser.close()

    # the refused attempts did not use the attacker's link up (its owner can still use it)
    with httpx.Client(base_url=feeds, timeout=10) as attacker:
        assert sign_in(attacker, token).status_code == 303


def test_another_site_cannot_frame_the_pages(
    settings: Settings,
    tmp_path: Path,
    stack_factory: list[ServiceStack],
    evil_site: tuple[str, dict[str, bytes]],
) -> None:
    """Attack 8 of the second round, in Chromium: the unsubscribe page and the console
    could be framed by another site (clickjacking). The browser now refuses to show them."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    from services.notifier.mail import unsubscribe_url

    stack = ServiceStack(settings, tmp_path, ("feeds", "console"))
    stack_factory.append(stack)
    stack.start()
    feeds, console = stack.url("feeds"), stack.url("console")
    key = stack.settings.notifier.webhook_key.get_secret_value()
    targets = [console + "/", unsubscribe_url(feeds, key, "h:ann"), feeds + "/app/signed-out"]
    evil, pages = evil_site
    frames = "".join(f'<iframe src="{t}" width="400" height="300"></iframe>' for t in targets)
    pages["/frames"] = f"<!doctype html><html><body>{frames}</body></html>".encode()
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page()
            page.goto(evil + "/frames")
            page.wait_for_timeout(1500)
            framed = page.frames[1:]
            assert len(framed) == len(targets)
            for frame in framed:
                # a blocked frame shows the browser's error page, never the target's content
                content = frame.evaluate("() => document.documentElement.outerHTML")
                assert "Stop realconnect emails" not in content, frame.url
                assert "realconnect" not in frame.title().lower(), (frame.url, frame.title())
        finally:
            browser.close()
