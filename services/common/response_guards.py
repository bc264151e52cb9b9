"""What every response of an HTTP service carries, whatever route made it (pure ASGI
middleware): no framing by another site, a content security policy on every HTML page, and
redirects that never point where the request's ``Host`` header says.

**Framing**: ``X-Frame-Options: DENY`` on every response, and an HTML response without a
policy of its own gets ``CSP`` (``frame-ancestors 'none'`` among the rest; the person's page
sets its own, which says the same). ``X-Content-Type-Options: nosniff`` everywhere.

**Redirects**:
Starlette builds the ``Location`` of its own redirects (a missing trailing slash on a mount
such as ``/metrics``) as an absolute URL from the request's ``Host``: a request that names
another host would be sent there. Every absolute ``Location`` that a response carries is
rewritten onto ``base`` (the service's configured public URL), or, for a service without
one, made relative (a path is a valid ``Location``, RFC 9110 10.2.2)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def rebased(location: str, base: str | None) -> str:
    """``location`` onto ``base``'s scheme and host (or as a path, without ``base``)."""
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        return location  # relative already
    path = parts.path or "/"
    if base:
        b = urlsplit(base)
        prefix = b.path.rstrip("/")
        return urlunsplit((b.scheme, b.netloc, prefix + path, parts.query, parts.fragment))
    return urlunsplit(("", "", path, parts.query, parts.fragment))


#: the policy of HTML pages that set none (the console, the unsubscribe page, error pages)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


def guarded_headers(
    headers: list[tuple[bytes, bytes]], base: str | None
) -> list[tuple[bytes, bytes]]:
    names = {k.lower() for k, _ in headers}
    out = [
        (k, rebased(v.decode("latin-1"), base).encode("latin-1"))
        if k.lower() == b"location"
        else (k, v)
        for k, v in headers
    ]
    if b"x-frame-options" not in names:
        out.append((b"x-frame-options", b"DENY"))
    if b"x-content-type-options" not in names:
        out.append((b"x-content-type-options", b"nosniff"))
    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    if content_type.startswith(b"text/html") and b"content-security-policy" not in names:
        out.append((b"content-security-policy", CSP.encode()))
    return out


class ResponseGuards:
    def __init__(self, app: ASGIApp, *, base: str | None = None) -> None:
        self.app, self.base = app, base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = guarded_headers(list(message.get("headers", [])), self.base)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)
