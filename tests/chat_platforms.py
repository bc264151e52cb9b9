"""Local servers that speak Slack's Web API and Discord's REST API as a bot uses them to send
direct messages, and that sign interactions as each platform does (nothing here can reach
the platforms). Each answers like the platform: its error shapes, its rate-limit answers.

- Slack (https://api.slack.com/methods/conversations.open, /chat.postMessage, /chat.update,
  https://api.slack.com/apis/rate-limits, https://api.slack.com/authentication/verifying-requests-from-slack):
  every answer is HTTP 200 with ``{"ok": false, "error": ...}`` for a refusal (``not_authed``,
  ``invalid_auth``, ``user_not_found``, ``invalid_blocks``, ``message_not_found``), except a
  rate limit: HTTP 429, ``Retry-After`` in seconds, ``{"ok": false, "error": "ratelimited"}``.
  An interaction is a form body ``payload=<JSON>``, signed ``v0=HMAC-SHA256(secret,
  "v0:{ts}:{body}")`` in ``X-Slack-Signature`` with ``X-Slack-Request-Timestamp``.
- Discord (https://discord.com/developers/docs/resources/user#create-dm,
  /resources/message#create-message, #edit-message, /topics/rate-limits,
  /topics/opcodes-and-status-codes#json, /interactions/overview#setting-up-an-endpoint):
  ``Authorization: Bot <token>``; errors are ``{"message", "code"}`` (401 ``0``, 403 ``50007``
  "Cannot send messages to this user", 400 ``50035`` "Invalid Form Body", 404 ``10008``);
  a rate limit is 429 with ``Retry-After`` and ``{"message", "retry_after", "global"}``. An
  interaction is JSON signed with Ed25519 (``X-Signature-Ed25519`` over
  ``{X-Signature-Timestamp}{body}``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

from nacl.signing import SigningKey

from tests.platforms import Refusals  # the next requests answered 429 with Retry-After


class _Server:
    """A threaded HTTP server on loopback; ``route`` answers (status, headers, JSON)."""

    def __init__(self) -> None:
        outer = self
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, verb: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                with outer.lock:
                    status, headers, body = outer.route(verb, self.path, dict(self.headers), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self._answer("POST")

            def do_PATCH(self) -> None:
                self._answer("PATCH")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def route(
        self, verb: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlackServer(_Server):
    TOKEN = "xoxb-test-0000000000-0000000000000-abcdefghijklmnopqrstuvwx"
    SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

    def __init__(self, team: str = "T0CHAT0001") -> None:
        self.team = team
        self.users: set[str] = set()  # members of the workspace
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> message
        self.updates: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []  # what was posted to response URLs
        self.calls: list[tuple[str, float]] = []
        self.refuse = Refusals()
        self._ts = itertools.count(1)
        super().__init__()
        self.api = f"http://127.0.0.1:{self.port}/api/"
        self.response_url = f"http://127.0.0.1:{self.port}/actions/T0CHAT0001/1/hook"

    def dms(self, user: str) -> list[dict[str, Any]]:
        """Messages posted in the DM with ``user``, oldest first."""
        return [m for (c, _), m in sorted(self.messages.items()) if c == f"D{user}"]

    def route(
        self, verb: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        if path.startswith("/actions/"):
            self.responses.append(json.loads(raw))
            return 200, {}, {"ok": True}
        method = path.removeprefix("/api/")
        self.calls.append((method, time.time()))
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if not auth:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if auth != f"Bearer {self.TOKEN}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        args = json.loads(raw or b"{}")
        if method == "conversations.open":
            user = str(args.get("users") or "")
            if user not in self.users:
                return 200, {}, {"ok": False, "error": "user_not_found"}
            return 200, {}, {"ok": True, "channel": {"id": f"D{user}"}}
        if method in ("chat.postMessage", "chat.update"):
            if method == "chat.postMessage" and self.refuse.take():
                return (
                    429,
                    {"Retry-After": str(int(self.refuse.retry_after))},
                    {"ok": False, "error": "ratelimited"},
                )
            blocks = args.get("blocks")
            if (blocks is not None and not _slack_blocks_ok(blocks)) or not args.get("text"):
                return 200, {}, {"ok": False, "error": "invalid_blocks"}
            channel = str(args.get("channel") or "")
            if not channel.startswith("D"):
                return 200, {}, {"ok": False, "error": "channel_not_found"}
            if method == "chat.update":
                key = (channel, str(args.get("ts")))
                if key not in self.messages:
                    return 200, {}, {"ok": False, "error": "message_not_found"}
                self.messages[key] = args
                self.updates.append(args)
                return 200, {}, {"ok": True, "channel": channel, "ts": key[1]}
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            self.messages[(channel, ts)] = args
            return 200, {}, {"ok": True, "channel": channel, "ts": ts, "message": args}
        return 200, {}, {"ok": False, "error": "unknown_method"}

    def press(
        self, user: str, message_ts: str, action: dict[str, Any], *, team: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """A signed ``block_actions`` request, as Slack sends it when ``user`` presses
        ``action`` (a button element of the message)."""
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": team or self.team},
            "api_app_id": "A0CHAT",
            "token": "verification-token-deprecated",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": f"D{user}",
                "is_ephemeral": False,
            },
            "trigger_id": "1.2.3",
            "team": {"id": team or self.team, "domain": "example"},
            "channel": {"id": f"D{user}", "name": "directmessage"},
            "response_url": self.response_url,
            "actions": [
                {
                    "action_id": action["action_id"],
                    "block_id": "b",
                    "text": action["text"],
                    "value": action["value"],
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return sign_slack(body, self.SECRET), body


def sign_slack(body: bytes, secret: str, t: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if t is None else t)
    mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": f"v0={mac}",
    }


def _slack_blocks_ok(blocks: Any) -> bool:
    """Block Kit's limits a message's blocks must keep (else ``invalid_blocks``)."""
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return False
    for b in blocks:
        if b.get("type") == "section" and len(b["text"]["text"]) > 3000:
            return False
        if b.get("type") == "actions":
            for e in b["elements"]:
                if e["type"] != "button" or len(e["text"]["text"]) > 75:
                    return False
                if len(e["value"]) > 2000 or len(e["action_id"]) > 255:
                    return False
    return True


class DiscordServer(_Server):
    TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAw.Gchat0.bot-token-for-tests-only-abcdefghij"

    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.public_key = self.key.verify_key.encode().hex()
        self.users: set[str] = set()
        self.blocking: set[str] = set()  # users who accept no DMs from the bot
        self.messages: dict[str, dict[str, Any]] = {}  # message id -> message
        self.edits: list[dict[str, Any]] = []
        self.calls: list[tuple[str, float]] = []
        self.refuse = Refusals()
        self._ids = itertools.count(1_300_000_000_000_000_000)
        super().__init__()
        self.api = f"http://127.0.0.1:{self.port}/api/v10"

    def dms(self, user: str) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["channel_id"] == f"9{user}"]

    def route(
        self, verb: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        self.calls.append((f"{verb} {path}", time.time()))
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if auth != f"Bot {self.TOKEN}":
            return 401, {}, {"message": "401: Unauthorized", "code": 0}
        body = json.loads(raw or b"{}")
        if verb == "POST" and path == "/api/v10/users/@me/channels":
            user = str(body.get("recipient_id") or "")
            if user not in self.users:
                return 400, {}, {"message": "Invalid Recipient(s)", "code": 50033}
            return 200, {}, {"id": f"9{user}", "type": 1, "recipients": [{"id": user}]}
        if m := re.fullmatch(r"/api/v10/channels/(\d+)/messages(?:/(\d+))?", path):
            channel, message = m.groups()
            if verb == "POST" and message is None:
                if self.refuse.take():
                    wait = self.refuse.retry_after
                    return (
                        429,
                        {"Retry-After": str(int(wait)), "X-RateLimit-Scope": "user"},
                        {
                            "message": "You are being rate limited.",
                            "retry_after": wait,
                            "global": False,
                        },
                    )
                if channel[1:] in self.blocking:
                    return 403, {}, {"message": "Cannot send messages to this user", "code": 50007}
                if problem := _discord_form_problem(body):
                    return (
                        400,
                        {},
                        {"message": "Invalid Form Body", "code": 50035, "errors": problem},
                    )
                mid = str(next(self._ids))
                self.messages[mid] = {**body, "id": mid, "channel_id": channel}
                return 200, {}, self.messages[mid]
            if verb == "PATCH" and message is not None:
                if message not in self.messages:
                    return 404, {}, {"message": "Unknown Message", "code": 10008}
                self.messages[message] = {**self.messages[message], **body}
                self.edits.append(body)
                return 200, {}, self.messages[message]
        return 404, {}, {"message": "404: Not Found", "code": 0}

    def interaction(
        self, kind: int, user: str, message: dict[str, Any] | None = None, custom_id: str = ""
    ) -> tuple[dict[str, str], bytes]:
        """A signed interaction as Discord sends it from a DM (``user``, not ``member``)."""
        payload: dict[str, Any] = {
            "id": str(next(self._ids)),
            "application_id": "1000000000000000001",
            "type": kind,
            "token": "interaction-token",
            "version": 1,
            "user": {"id": user, "username": f"u{user[-4:]}", "global_name": None},
        }
        if message is not None:
            payload |= {
                "channel_id": message["channel_id"],
                "message": {"id": message["id"], "channel_id": message["channel_id"]},
                "data": {"custom_id": custom_id, "component_type": 2},
            }
        body = json.dumps(payload).encode()
        return self.sign(body), body

    def sign(self, body: bytes, t: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if t is None else t)
        signature = self.key.sign(ts.encode() + body).signature.hex()
        return {
            "content-type": "application/json",
            "x-signature-ed25519": signature,
            "x-signature-timestamp": ts,
        }


def _discord_form_problem(body: dict[str, Any]) -> dict[str, Any] | None:
    """What Discord would refuse in a message body (its limits on content and buttons)."""
    if len(body.get("content") or "") > 2000:
        return {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}}
    for row in body.get("components") or []:
        if row.get("type") != 1 or not 0 < len(row.get("components") or []) <= 5:
            return {"components": {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH"}]}}
        for b in row["components"]:
            if b.get("type") != 2 or len(b.get("label", "")) > 80:
                return {"components": {"_errors": [{"code": "BUTTON_LABEL"}]}}
            if not 0 < len(b.get("custom_id", "")) <= 100:
                return {"components": {"_errors": [{"code": "BUTTON_COMPONENT_CUSTOM_ID"}]}}
    return None
