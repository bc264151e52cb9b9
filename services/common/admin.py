"""The admin bearer token, shared by the admin endpoints of every HTTP service."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.common.problems import Problem

bearer = HTTPBearer(auto_error=False)


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
