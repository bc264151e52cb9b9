"""Discord: a gateway bot (https://discord.com/developers/docs/events/gateway), spoken with
``websockets``, and the REST API with ``httpx`` for catch-up.

Hello -> Identify (or Resume with the stored session id and sequence) -> heartbeats at the
interval Hello gave, the first after a random fraction of it; a heartbeat that is not
acknowledged before the next one means a zombie connection: close and resume. Opcode 7
(Reconnect) and a resumable opcode 9 (Invalid Session) resume at ``resume_gateway_url``; a
non-resumable one, and close codes 4007/4009, start a new session. Close codes 4004 and
4010-4014 are fatal (bad token, sharding, intents).

``MESSAGE_CREATE`` and ``MESSAGE_REACTION_ADD`` of the configured guilds and channels are
forwarded as the gateway sent them. The session, the sequence and each channel's last
message id are stored after ingest answered. A new session (not a resume) first reads each
configured channel's messages after that id (``GET /channels/{id}/messages?after=``), so a
crash or a lost session does not lose messages.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from services.common.backoff import Backoff, retry_after
from services.connectors.core import Fatal, Link, epoch_of, get_json, id_order

log = structlog.get_logger("realconnect.connector.discord")

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = (
    0, 1, 2, 6, 7, 9, 10, 11,
)  # fmt: skip
WANTED = ("MESSAGE_CREATE", "MESSAGE_REACTION_ADD")
#: close codes after which reconnecting cannot help
FATAL_CLOSE = {
    4004: "authentication failed: check REALCONNECT_CONNECT__DISCORD__TOKEN",
    4010: "invalid shard",
    4011: "sharding required",
    4012: "invalid API version",
    4013: "invalid intents",
    4014: "disallowed intents: enable MESSAGE CONTENT (and the others) in the developer portal",
}
#: close codes after which the session cannot be resumed
NEW_SESSION_CLOSE = {4007, 4009}


class Reconnect(Exception):
    """Leave this connection; ``resume`` says whether the session can be resumed."""

    def __init__(self, resume: bool) -> None:
        self.resume = resume


def pace(r: httpx.Response) -> float | None:
    """``X-RateLimit-Remaining: 0`` -> wait ``X-RateLimit-Reset-After`` seconds."""
    if r.headers.get("x-ratelimit-remaining") == "0":
        try:
            return float(r.headers.get("x-ratelimit-reset-after", "1"))
        except ValueError:
            return 1.0
    return None


def delivery_id(t: str, d: dict[str, Any]) -> str:
    if t == "MESSAGE_REACTION_ADD":
        emoji = d.get("emoji") or {}
        return f"discord:reaction:{d.get('message_id')}:{d.get('user_id')}:" + str(
            emoji.get("id") or emoji.get("name")
        )
    return f"discord:message:{d.get('id')}"


class Gateway:
    def __init__(self, link: Link, client: httpx.AsyncClient) -> None:
        cfg = link.settings.connect.discord
        if not (cfg.token and cfg.token.get_secret_value()):
            raise Fatal("set REALCONNECT_CONNECT__DISCORD__TOKEN (the bot's token)")
        self.link = link
        self.cfg = cfg
        self.client = client
        self.api = cfg.api_url.rstrip("/")
        self.token = cfg.token.get_secret_value()
        self.rest_headers = {
            "authorization": f"Bot {self.token}",
            # Discord asks bots for "DiscordBot ($url, $version)"
            "user-agent": "DiscordBot (https://github.com/realconnect, 0.1) "
            + link.settings.connect.user_agent,
        }
        self.seq: int | None = None
        self.session: str | None = None
        self.resume_url: str | None = None
        self.acked = True
        #: catching up over REST inside the receive loop: acks wait unread meanwhile
        self.busy = False

    def wanted(self, d: dict[str, Any]) -> bool:
        guild, channel = d.get("guild_id"), d.get("channel_id")
        if self.cfg.guilds and guild not in self.cfg.guilds:
            return False
        return not self.cfg.channels or channel in self.cfg.channels

    async def load(self) -> None:
        p = await self.link.positions()
        self.session = p.get("session_id")
        self.resume_url = p.get("resume_gateway_url")
        self.seq = int(p["seq"]) if p.get("seq") else None

    async def forget_session(self) -> None:
        self.session = self.resume_url = None
        self.seq = None
        await self.link.save(session_id=None, resume_gateway_url=None, seq=None)

    async def gateway_url(self) -> str:
        if self.session and self.resume_url:
            return self.resume_url
        body, _ = await get_json(
            self.link, self.client, f"{self.api}/gateway/bot", headers=self.rest_headers, pace=pace
        )
        return str(body["url"])

    # -- catch-up over REST ------------------------------------------------------------

    async def catch_up(self) -> None:
        """Each configured channel's messages after the last one forwarded, oldest first."""
        for channel in self.cfg.channels:
            last = await self.link.position(f"channel:{channel}")
            if last is None:
                continue  # never seen: from now on (``realconnect backfill`` reads history)
            while True:
                page = await self.messages(channel, last)
                fresh = [m for m in page if id_order(str(m["id"])) > id_order(last)]
                for m in fresh:
                    await self.send_message(m)
                    last = str(m["id"])
                if len(page) < 100 or not fresh:
                    break

    async def messages(self, channel: str, after: str) -> list[dict[str, Any]]:
        """Up to 100 of the channel's messages after the id ``after``, oldest first."""
        page, _ = await get_json(
            self.link,
            self.client,
            f"{self.api}/channels/{channel}/messages",
            params={"after": after, "limit": 100},
            headers=self.rest_headers,
            pace=pace,
        )
        return sorted(page, key=lambda m: id_order(str(m["id"])))

    async def send_message(self, m: dict[str, Any], *, save: bool = True) -> None:
        """A REST message object in the envelope of the gateway dispatch that announced it
        (the message object is the same; ingest reads dispatches)."""
        body = orjson.dumps({"op": DISPATCH, "t": "MESSAGE_CREATE", "s": None, "d": m})
        await self.link.forward(
            body, delivery_id("MESSAGE_CREATE", m), at=epoch_of(m.get("timestamp"))
        )
        if save:
            await self.link.save(**{f"channel:{m['channel_id']}": str(m["id"])})

    # -- the gateway -------------------------------------------------------------------

    async def heartbeat(self, ws: ClientConnection, interval_s: float) -> None:
        await asyncio.sleep(interval_s * random.random())  # the documented jitter
        while True:
            if not self.acked and not self.busy:
                log.warning("heartbeat not acknowledged: zombie connection, resuming")
                await ws.close(4000, "heartbeat not acknowledged")
                return
            self.acked = False
            await ws.send(orjson.dumps({"op": HEARTBEAT, "d": self.seq}).decode())
            await asyncio.sleep(interval_s)

    async def hello(self, ws: ClientConnection) -> None:
        if self.session and self.seq is not None:
            payload = {"token": self.token, "session_id": self.session, "seq": self.seq}
            await ws.send(orjson.dumps({"op": RESUME, "d": payload}).decode())
            log.info("resuming", seq=self.seq)
            return
        identify = {
            "token": self.token,
            "intents": self.cfg.intents,
            "properties": {"os": "linux", "browser": "realconnect", "device": "realconnect"},
        }
        await ws.send(orjson.dumps({"op": IDENTIFY, "d": identify}).decode())

    async def dispatch(self, msg: dict[str, Any], raw: bytes) -> None:
        t, d = msg.get("t"), msg.get("d") or {}
        if t == "READY":
            self.session = str(d["session_id"])
            self.resume_url = str(d.get("resume_gateway_url") or "") or None
            await self.link.save(session_id=self.session, resume_gateway_url=self.resume_url)
            log.info("session ready", guilds=len(d.get("guilds") or []))
            self.busy = True
            try:
                await self.catch_up()
            finally:
                self.busy, self.acked = False, True
            self.link.state = "live"
        elif t == "RESUMED":
            self.link.state = "live"
            log.info("session resumed", seq=self.seq)
        elif t in WANTED and self.wanted(d):
            at = epoch_of(d.get("timestamp")) if t == "MESSAGE_CREATE" else None
            await self.link.forward(raw, delivery_id(t, d), at=at)
            if t == "MESSAGE_CREATE":
                await self.link.save(**{f"channel:{d.get('channel_id')}": str(d.get("id"))})
        if msg.get("s") is not None:
            self.seq = int(msg["s"])
            await self.link.save(seq=self.seq)

    async def session_once(self) -> None:
        url = await self.gateway_url()
        sep = "&" if "?" in url else "?"
        c = self.link.settings.connect
        async with connect(
            f"{url.rstrip('/')}/{sep}v=10&encoding=json",
            user_agent_header=c.user_agent,
            max_size=2**24,
            open_timeout=c.timeout_s,
            ping_interval=None,  # the gateway has its own heartbeat
        ) as ws:
            first = orjson.loads(await asyncio.wait_for(ws.recv(), timeout=c.timeout_s))
            if first.get("op") != HELLO:
                raise Reconnect(resume=True)
            self.acked = True
            beat = asyncio.create_task(self.heartbeat(ws, first["d"]["heartbeat_interval"] / 1000))
            try:
                self.link.state = "identifying"
                await self.hello(ws)
                async for raw in ws:
                    data = raw.encode() if isinstance(raw, str) else raw
                    msg = orjson.loads(data)
                    op = msg.get("op")
                    if op == DISPATCH:
                        await self.dispatch(msg, data)
                    elif op == HEARTBEAT:
                        await ws.send(orjson.dumps({"op": HEARTBEAT, "d": self.seq}).decode())
                    elif op == HEARTBEAT_ACK:
                        self.acked = True
                    elif op == RECONNECT:
                        raise Reconnect(resume=True)
                    elif op == INVALID_SESSION:
                        raise Reconnect(resume=bool(msg.get("d")))
                    if self.link.stop.is_set():
                        return
            finally:
                beat.cancel()
            code = ws.close_code
            if code in FATAL_CLOSE:
                raise Fatal(f"Discord closed the gateway with {code}: {FATAL_CLOSE[code]}")
            raise Reconnect(resume=code not in NEW_SESSION_CLOSE)


async def run(link: Link) -> None:
    c = link.settings.connect
    backoff = Backoff(c.backoff_s, c.backoff_max_s)
    async with httpx.AsyncClient(timeout=c.timeout_s) as client:
        gw = Gateway(link, client)
        await gw.load()
        first = True
        while not link.stop.is_set():
            if not first:
                link.reconnected()
            first = False
            link.state = "connecting"
            try:
                await gw.session_once()
            except Reconnect as r:
                if not r.resume:
                    await gw.forget_session()
                    await link.sleep(1 + 4 * random.random())  # the documented 1-5 s
                backoff.reset()
                continue
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
                if code in FATAL_CLOSE:
                    raise Fatal(
                        f"Discord closed the gateway with {code}: {FATAL_CLOSE[code]}"
                    ) from e
                if code in NEW_SESSION_CLOSE:
                    await gw.forget_session()
                wait = backoff.next()
                log.warning("gateway connection lost", code=code, retry_in_s=wait)
            except InvalidStatus as e:
                wait = retry_after(e.response.headers) or backoff.next()
                log.warning("gateway refused", status=e.response.status_code, retry_in_s=wait)
            except (OSError, WebSocketException, TimeoutError) as e:
                wait = backoff.next()
                log.warning("gateway unreachable", error=repr(e), retry_in_s=wait)
            link.state = "backoff"
            await link.sleep(wait)
