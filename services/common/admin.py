"""Admin bearer tokens: the master ``ADMIN_TOKEN`` opens every admin route; a token per scope
(``REALCONNECT_ADMIN_TOKENS='{"console": "..."}'``) opens only its own, so that the console's
operator, a metrics scraper or a people-import job need not hold the master token:

- ``people``: the people API (profiles, identities) on ingest;
- ``producers``: issuing and revoking producer tokens on ingest;
- ``feeds``: person tokens, a person's feed, forgetting, on feeds;
- ``console``: the console's API;
- ``metrics``: ``/metrics``, ``/docs`` and ``/redoc`` of every HTTP service.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.problems import Problem

bearer = HTTPBearer(auto_error=False)
UNAUTHENTICATED = (
    b'{"type":"about:blank","title":"Unauthenticated","status":401,'
    b'"detail":"An admin bearer token is required."}'
)


AdminScope = Literal["people", "producers", "feeds", "console", "metrics"]


def _accepted(settings: Any, scope: str | None) -> list[bytes]:
    tokens = [settings.admin_token.get_secret_value().encode()]
    if scope is not None and (scoped := settings.admin_tokens.get(scope)) is not None:
        tokens.append(scoped.get_secret_value().encode())
    return tokens


def _valid(given: bytes, accepted: list[bytes]) -> bool:
    ok = False
    for token in accepted:  # every one compared, in constant time each
        ok |= hmac.compare_digest(given, token)
    return ok


def bearer_valid(header: bytes, settings: Any, scope: AdminScope | None) -> bool:
    """Whether an ``Authorization`` header value carries the master token or ``scope``'s."""
    scheme, _, token = header.partition(b" ")
    return scheme.lower() == b"bearer" and _valid(token.strip(), _accepted(settings, scope))


def bearer_principal(header: bytes, settings: Any) -> str | None:
    """Which admin token an ``Authorization`` header carries (``admin:master`` or
    ``admin:<scope>``), or None: every token is compared, each in constant time."""
    scheme, _, token = header.partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = token.strip()
    found = None
    named = [("master", settings.admin_token), *settings.admin_tokens.items()]
    for name, secret in named:
        if hmac.compare_digest(token, secret.get_secret_value().encode()) and found is None:
            found = f"admin:{name}"
    return found


def admin(scope: AdminScope | None = None) -> Callable[..., Awaitable[None]]:
    """A dependency: the master admin token, or ``scope``'s own."""

    async def check(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> None:
        given = creds.credentials.encode() if creds else b""
        if not creds or not _valid(given, _accepted(request.app.state.settings, scope)):
            raise Problem(
                401,
                "Unauthenticated",
                "An admin bearer token is required.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


#: the master admin token only
require_admin = admin()


def admin_only(app: ASGIApp, settings: Any) -> ASGIApp:
    """``app`` (e.g. prometheus_client's /metrics) behind the admin bearer token: scrapers
    send ``Authorization: Bearer <admin token>`` (Prometheus: ``authorization`` in the
    scrape config). Anything else is a 401 before ``app`` sees the request."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not bearer_valid(header, settings, "metrics"):
                body = UNAUTHENTICATED
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/problem+json"),
                            (b"content-length", b"%d" % len(body)),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


def protected_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc behind the admin token (the OpenAPI document stays public: it
    is the same as the source's)."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(admin("metrics"))])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False, dependencies=[Depends(admin("metrics"))])
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")
