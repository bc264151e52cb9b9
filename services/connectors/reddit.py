"""Reddit: polls each subreddit's newest posts and comments through the OAuth API with
``httpx`` (https://www.reddit.com/dev/api, https://github.com/reddit-archive/reddit/wiki/OAuth2).

Each poll reads ``/r/{sub}/new`` and ``/r/{sub}/comments`` (100 a page, paging back with
``after`` until it reaches the stored fullname, at most 10 pages: Reddit's listings end
near 1,000 items) and forwards what is newer than the stored fullname as a Listing, oldest
first, posts before comments so that the normalizer knows a post's author before the
comments on it. Ids are compared as numbers (base 36), so a deleted anchor does not stall
the poll the way a ``before=`` anchor does. Rate limits: ``X-Ratelimit-Remaining`` /
``X-Ratelimit-Reset``; 429 waits ``Retry-After``.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import structlog

from services.common.backoff import Backoff, retry_after
from services.connectors.core import Fatal, Link, get_json

log = structlog.get_logger("realconnect.connector.reddit")

LIMIT = 100
MAX_PAGES = 10
#: a forwarded Listing stays well under ingest's 1 MiB body limit
MAX_BODY = 512 * 1024
LISTINGS = ("new", "comments")


def number(fullname: str) -> int:
    """``t1_abc`` -> the base-36 id as a number (Reddit's ids grow with time)."""
    return int(fullname.partition("_")[2] or "0", 36)


def pace(r: httpx.Response) -> float | None:
    try:
        remaining = float(r.headers.get("x-ratelimit-remaining", "10"))
        reset = float(r.headers.get("x-ratelimit-reset", "0"))
    except ValueError:
        return None
    return reset if remaining < 1 else None


def chunks(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Items in order, cut so each Listing body stays under ``MAX_BODY``."""
    out: list[list[dict[str, Any]]] = [[]]
    size = 0
    for item in items:
        n = len(orjson.dumps(item))
        if out[-1] and size + n > MAX_BODY:
            out.append([])
            size = 0
        out[-1].append(item)
        size += n
    return [c for c in out if c]


def listing(children: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {"kind": "Listing", "data": {"after": None, "before": None, "children": children}}
    )


class Reddit:
    def __init__(self, link: Link, client: httpx.AsyncClient) -> None:
        cfg = link.settings.connect.reddit
        if not cfg.client_id or not (cfg.client_secret and cfg.client_secret.get_secret_value()):
            raise Fatal("set REALCONNECT_CONNECT__REDDIT__CLIENT_ID and __CLIENT_SECRET")
        self.link = link
        self.cfg = cfg
        self.client = client
        self.token: str | None = None
        self.expires = 0.0
        self.ua = link.settings.connect.user_agent

    async def authenticate(self) -> None:
        cfg = self.cfg
        if cfg.username and cfg.password and cfg.password.get_secret_value():
            form = {
                "grant_type": "password",
                "username": cfg.username,
                "password": cfg.password.get_secret_value(),
            }
        else:
            form = {"grant_type": "client_credentials"}
        backoff = Backoff(
            self.link.settings.connect.backoff_s, self.link.settings.connect.backoff_max_s
        )
        while True:
            try:
                r = await self.client.post(
                    f"{cfg.auth_url.rstrip('/')}/api/v1/access_token",
                    data=form,
                    auth=(cfg.client_id, cfg.client_secret.get_secret_value()),  # type: ignore[union-attr]
                    headers={"user-agent": self.ua},
                )
            except httpx.HTTPError as e:
                wait = backoff.next()
                log.warning("token endpoint unreachable", error=str(e), retry_in_s=wait)
            else:
                if r.status_code == 200 and "access_token" in r.json():
                    body = r.json()
                    self.token = str(body["access_token"])
                    self.expires = time.monotonic() + float(body.get("expires_in", 3600)) - 60
                    return
                if r.status_code in (400, 401, 403) or "error" in _json(r):
                    raise Fatal(
                        f"Reddit refused the app's credentials: {r.status_code} {r.text[:200]}"
                    )
                wait = retry_after(r.headers) or backoff.next()
                self.link.throttled()
            await self.link.sleep(wait)
            if self.link.stop.is_set():
                raise Fatal("stopped while authenticating")

    async def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.token is None or time.monotonic() > self.expires:
            await self.authenticate()
        try:
            return await self._get(path, params)
        except Fatal:
            # an expired or revoked token: one fresh token, then the refusal stands
            await self.authenticate()
            return await self._get(path, params)

    async def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        body, _ = await get_json(
            self.link,
            self.client,
            f"{self.cfg.api_url.rstrip('/')}{path}",
            params={**params, "raw_json": 1},
            headers={"authorization": f"bearer {self.token}", "user-agent": self.ua},
            pace=pace,
        )
        return body  # type: ignore[no-any-return]

    async def newer(
        self, path: str, after_number: int | None, *, since: float | None = None
    ) -> list[dict[str, Any]]:
        """The listing's things newer than ``after_number`` (or created at ``since`` or
        later), oldest first."""
        found: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"limit": LIMIT}
            if after:
                params["after"] = after
            data = (await self.get(path, params)).get("data") or {}
            children = [c for c in data.get("children") or [] if isinstance(c, dict)]
            keep = [
                c
                for c in children
                if (after_number is None or number(c["data"]["name"]) > after_number)
                and (since is None or float(c["data"].get("created_utc") or 0) >= since)
            ]
            found += keep
            after = data.get("after")
            if len(keep) < len(children) or not after:
                break
        found.sort(key=lambda c: number(c["data"]["name"]))
        return found

    async def send(self, sub: str, what: str, things: list[dict[str, Any]], *, save: bool) -> None:
        for part in chunks(things):
            first, last = part[0]["data"]["name"], part[-1]["data"]["name"]
            newest = max(float(c["data"].get("created_utc") or 0) for c in part)
            await self.link.forward(
                listing(part), f"reddit:r/{sub}/{what}:{first}-{last}", at=newest or None
            )
            if save:
                await self.link.save(**{f"{what}:{sub}": last})

    async def poll(self, sub: str) -> None:
        for what in LISTINGS:
            pos = await self.link.position(f"{what}:{sub}")
            path = f"/r/{sub}/{what}"
            if pos is None:  # first start: from now on (``realconnect backfill`` reads history)
                data = (await self.get(path, {"limit": 1})).get("data") or {}
                children = data.get("children") or []
                if children:
                    await self.link.save(**{f"{what}:{sub}": children[0]["data"]["name"]})
                continue
            things = await self.newer(path, number(pos))
            if things:
                await self.send(sub, what, things, save=True)


async def run(link: Link) -> None:
    cfg = link.settings.connect.reddit
    if not cfg.subreddits:
        raise Fatal("set REALCONNECT_CONNECT__REDDIT__SUBREDDITS (a JSON list)")
    async with httpx.AsyncClient(timeout=link.settings.connect.timeout_s) as client:
        reddit = Reddit(link, client)
        while not link.stop.is_set():
            started = time.monotonic()
            for sub in cfg.subreddits:
                await reddit.poll(sub)
            link.state = "live"
            await link.sleep(cfg.poll_s - (time.monotonic() - started))


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
