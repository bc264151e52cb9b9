"""The admin bearer token, shared by the admin endpoints of every HTTP service, and by
/metrics and the interactive API docs (off the public surface)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.problems import Problem

bearer = HTTPBearer(auto_error=False)
_UNAUTHENTICATED = (
    b'{"type":"about:blank","title":"Unauthenticated","status":401,'
    b'"detail":"An admin bearer token is required."}'
)


async def require_admin(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    expected = request.app.state.settings.admin_token.get_secret_value().encode()
    given = creds.credentials.encode() if creds else b""
    if not creds or not hmac.compare_digest(given, expected):
        raise Problem(
            401,
            "Unauthenticated",
            "An admin bearer token is required.",
            headers={"WWW-Authenticate": "Bearer"},
        )


def admin_only(app: ASGIApp, settings: Any) -> ASGIApp:
    """``app`` (e.g. prometheus_client's /metrics) behind the admin bearer token: scrapers
    send ``Authorization: Bearer <admin token>`` (Prometheus: ``authorization`` in the
    scrape config). Anything else is a 401 before ``app`` sees the request."""
    expected = settings.admin_token.get_secret_value().encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, token = header.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), expected):
                body = _UNAUTHENTICATED
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

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(require_admin)])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False, dependencies=[Depends(require_admin)])
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")
