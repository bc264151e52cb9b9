"""People in tests: tokens and consent through the real feed API."""

from __future__ import annotations

from typing import Any

import httpx

ADMIN = {"authorization": "Bearer dev-admin-token"}
#: the development producer token (accepted outside prod) for POST /v1/interactions[:batch]
PRODUCER = {"authorization": "Bearer dev-producer-token"}


def token_for(feeds: str, person: str) -> dict[str, str]:
    r = httpx.post(f"{feeds}/v1/people/{person}/tokens", headers=ADMIN, timeout=10)
    assert r.status_code == 201, r.text
    return {"authorization": f"Bearer {r.json()['token']}"}


def opt_in(feeds: str, person: str, **prefs: Any) -> dict[str, str]:
    """Issue a token for ``person`` and opt them in; returns their auth header."""
    auth = token_for(feeds, person)
    body = {"opted_in": True, "max_per_week": 50, **prefs}
    r = httpx.put(f"{feeds}/v1/me/preferences", json=body, headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    return auth


def admin_feed(feeds: str, person: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{feeds}/v1/people/{person}/feed", headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def sign_in(browser: httpx.Client, token: str) -> httpx.Response:
    """What a browser does with a sign-in link: open its page (which sets the pre-sign-in
    cookie and puts its value in the form), then press the button. ``browser`` keeps cookies
    and has the feeds service as its base URL."""
    import re

    page = browser.get("/app/signin", params={"t": token})
    found = re.search(r'name="n" value="([^"]+)"', page.text)
    return browser.post("/app/signin", data={"t": token, "n": found.group(1) if found else ""})
