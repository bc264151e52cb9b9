"""RFC 9457 problem details (``application/problem+json``) for every HTTP error."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_JSON = "application/problem+json"


class ProblemResponse(Response):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Problem(Exception):
    """An error answered as problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.errors, self.headers = errors, headers


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors is not None:
        body["errors"] = errors
    return ProblemResponse(body, status_code=status, headers=headers)


def validation_errors(
    exc: ValidationError | RequestValidationError, prefix: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    """Field-level errors: a JSON-pointer-ish path, the message and the error type."""
    out = []
    for e in exc.errors():
        loc = (*prefix, *e.get("loc", ()))
        out.append(
            {
                "loc": list(loc),
                "pointer": "/" + "/".join(str(p) for p in loc),
                "msg": e.get("msg", ""),
                "type": e.get("type", ""),
            }
        )
    return out


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "pointer": {"type": "string"},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def _document_problems(app: FastAPI) -> None:
    """In the OpenAPI document, every 4xx/5xx answer is problem+json (as it is on the wire)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                PROBLEM_SCHEMA
            )
            for operations in schema.get("paths", {}).values():
                for op in operations.values():
                    if "requestBody" in op:
                        op.setdefault("responses", {}).setdefault(
                            "400", {"description": "A body that cannot be parsed"}
                        )
                    for code, response in op.get("responses", {}).items():
                        if code[0] in "45":
                            response["content"] = {
                                PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json, and document it so."""
    _document_problems(app)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> ProblemResponse:
        return problem_response(request, exc.status, exc.title, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> ProblemResponse:
        return problem_response(
            request,
            422,
            "Invalid request",
            "The request failed validation.",
            validation_errors(exc),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
        if exc.status_code == 405:
            # Starlette names only the first route's methods when several share a path
            allowed = sorted(
                {
                    m
                    for r in request.app.routes
                    if r.matches(request.scope)[0] == Match.PARTIAL
                    for m in getattr(r, "methods", None) or ()
                }
            )
            return problem_response(
                request,
                405,
                "Method Not Allowed",
                f"Allowed: {', '.join(allowed)}.",
                headers={"Allow": ", ".join(allowed)},
            )

        return problem_response(
            request,
            exc.status_code,
            str(exc.detail),
            str(exc.detail),
            headers=dict(exc.headers) if exc.headers else None,
        )
