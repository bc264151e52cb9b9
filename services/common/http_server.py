"""The HTTP/1.1 protocol the project's uvicorn servers run: uvicorn's httptools protocol with
the bounds a public server needs and uvicorn does not have.

- **Time to send the headers** (``HTTP_HEADERS_TIMEOUT_S``): from the connection's start,
  and from the end of one response on a kept-alive connection, a request's whole head must
  arrive within this time. A client that trickles a header line every few seconds (slowloris)
  is cut off, instead of holding one of the process's connections for as long as it likes.
- **Time to send the body** (``HTTP_BODY_TIMEOUT_S``): from the end of the head to the end
  of the body. A slow body is cut off the same way (the app sees ``http.disconnect``).
- **Connections per client** (``HTTP_MAX_CONNECTIONS_PER_CLIENT``): the connections one
  address holds open at once; past it a new one gets a 503 and is closed. The
  deployment's trusted proxies (``HTTP_TRUSTED_PROXIES``) are not counted: behind one, the
  proxy bounds its clients (docs/security.md says what it should add).
- **Every request of a closed connection sees it closed.** uvicorn tells only the newest
  request of a connection that the connection was lost; with two requests pipelined, the
  first (say a live stream) never learnt it and ran on for good, holding its stream slot.

uvicorn's own ``limit_concurrency`` (503 past that many connections) still applies.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


def _canned(status: str, text: str) -> bytes:
    """A whole response that closes the connection (written straight to the transport)."""
    body = text.encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body


_REFUSED = _canned("503 Service Unavailable", "Too many connections from this client.\n")
_TOO_LARGE = _canned("431 Request Header Fields Too Large", "The request head is too large.\n")


class Limits:
    """The bounds, read once per process from Settings (``configure``)."""

    configured = False
    headers_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_per_client: int = 100
    max_head_bytes: int = 64 * 1024
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


def configure(settings: Any) -> None:
    Limits.configured = True
    Limits.max_head_bytes = settings.http_max_head_bytes
    Limits.headers_timeout_s = settings.http_headers_timeout_s
    Limits.body_timeout_s = settings.http_body_timeout_s
    Limits.max_per_client = settings.http_max_connections_per_client
    Limits.trusted = tuple(ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies)


def trusted_proxy(host: str) -> bool:
    """Whether ``host`` is one of the deployment's reverse proxies (an address or network)."""
    if not Limits.trusted:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in net for net in Limits.trusted)


def client_key(host: str) -> str:
    """The unit a limit counts: an IPv4 address, or an IPv6 address's /64 (one subscriber
    gets a whole /64, so counting single IPv6 addresses would bound nothing)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


#: open connections per client key, for this process
_open: Counter[str] = Counter()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not Limits.configured:
            from services.common.settings import Settings

            configure(Settings())
        self._head_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._key: str | None = None
        self._cycles: list[RequestResponseCycle] = []

    # -- connections per client ---------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else ""
        if host and Limits.max_per_client > 0 and not trusted_proxy(host):
            key = client_key(host)
            if _open[key] >= Limits.max_per_client:
                transport.write(_REFUSED)
                transport.close()
                return
            _open[key] += 1
            self._key = key
        self._arm(Limits.headers_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._key is not None:
            _open[self._key] -= 1
            if _open[self._key] <= 0:
                del _open[self._key]
            self._key = None
        # every request still running on this connection learns that it is gone (uvicorn
        # tells only the newest, self.cycle)
        for cycle in self._cycles:
            if not cycle.response_complete:
                cycle.disconnected = True
            cycle.message_event.set()
        self._cycles.clear()
        super().connection_lost(exc)

    # -- time to send the head and the body ---------------------------------------------
    def _arm(self, seconds: float) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection that sent its request too slowly")
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._deadline is None:  # a pipelined request's head: its own allowance
            self._arm(Limits.headers_timeout_s)

    # -- the size of the head (httptools has no bound of its own) ------------------------
    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > Limits.max_head_bytes and not self.transport.is_closing():
            self.transport.write(_TOO_LARGE)
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self.transport.is_closing():  # refused above: no app call for it
            return
        super().on_headers_complete()
        if self.cycle is not None:
            self._cycles = [c for c in self._cycles if not c.response_complete]
            self._cycles.append(self.cycle)
        self._arm(Limits.body_timeout_s)

    def on_body(self, body: bytes) -> None:
        if self.cycle is not None and not self.transport.is_closing():
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        if self.cycle is not None and not self.transport.is_closing():
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._cycles = [c for c in self._cycles if not c.response_complete]
        if not self.transport.is_closing() and not self._cycles:
            # waiting for the next request: uvicorn's keep-alive timeout bounds the idle
            # wait, this one the time its head then takes
            self._arm(Limits.headers_timeout_s + self.timeout_keep_alive)


def uvicorn_options(settings: Any) -> dict[str, Any]:
    """The keyword arguments every HTTP service gives uvicorn for these bounds."""
    trusted = ",".join(settings.trusted_proxies)
    return {
        "http": "services.common.http_server:GuardedHttpToolsProtocol",
        # bounded: past this many connections (live streams included) uvicorn answers 503
        "limit_concurrency": settings.http_limit_concurrency,
        "timeout_keep_alive": settings.http_keep_alive_s,
        # X-Forwarded-For/-Proto are believed only from the deployment's own proxies
        # (uvicorn's default believes 127.0.0.1)
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or "",
        "h11_max_incomplete_event_size": 16 * 1024,
    }
