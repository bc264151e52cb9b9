"""Direct messages from the bot on Slack and Discord: one attempt each, with what the
platform said about retrying (its 429 and ``Retry-After``). The durable retries are the
notifier's (``notifications.chat.retry``, services/notifier/agents.py); this module only
speaks each platform's API.

- Slack, through ``slack-sdk``'s ``AsyncWebClient`` (bot token, scopes ``chat:write`` and
  ``im:write``): ``conversations.open`` for the DM channel, ``chat.postMessage``,
  ``chat.update``. https://api.slack.com/methods, https://api.slack.com/apis/rate-limits
- Discord, over its REST API with httpx (``Authorization: Bot …``):
  ``POST /users/@me/channels`` for the DM channel, ``POST /channels/{id}/messages``,
  ``PATCH /channels/{id}/messages/{id}``. https://discord.com/developers/docs/topics/rate-limits
  (a 429's JSON ``retry_after`` in seconds, and the ``Retry-After`` header).

A refusal that retrying cannot change (an unknown user, a user who blocks DMs, a bad
token) is final: the job is dead-lettered, never retried forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from typing_extensions import TypedDict

from services.common.settings import ChatSettings
from services.notifier.chat import Platform

#: Slack errors worth another attempt (the rest: a wrong token, user or scope)
_SLACK_TRANSIENT: Final = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class ChatJob(TypedDict, total=False):
    """What ``notifications.chat`` carries: one item for one person on one platform, to
    their linked account (``handle``), and on a retry the attempt and its earliest time."""

    person_id: str
    platform: Platform
    handle: str
    item: dict[str, Any]
    attempt: int
    not_before: float


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retry: bool = False
    retry_after: float | None = None
    reason: str = ""
    #: where the message is (Slack: channel and ts; Discord: channel and message id)
    ref: dict[str, str] = field(default_factory=dict)


def user_of(handle: str, platform: Platform) -> str:
    """The platform's user id in a linked handle: ``slack:<team>:<user>``,
    ``discord:<user>``."""
    parts = handle.split(":")
    if parts[0] != platform or len(parts) != (3 if platform == "slack" else 2) or not parts[-1]:
        raise ValueError(f"not a {platform} handle: {handle!r}")
    return parts[-1]


def _retry_after(headers: Any, body: Any = None) -> float | None:
    asked = None
    if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
        asked = float(body["retry_after"])
    try:
        header = float((headers or {}).get("Retry-After") or "")
    except ValueError:
        header = None
    values = [v for v in (asked, header) if v is not None and v >= 0]
    return max(values) if values else None


class Slack:
    def __init__(self, cfg: ChatSettings) -> None:
        assert cfg.slack_token is not None
        self.client = AsyncWebClient(
            token=cfg.slack_token.get_secret_value(),
            base_url=cfg.slack_api_url,
            timeout=int(max(1, cfg.timeout_s)),
            retry_handlers=[],  # every retry is the notifier's, on its durable topic
        )

    async def _call(self, method: str, **kwargs: Any) -> tuple[Outcome, Any]:
        try:
            response = await self.client.api_call(method, json=kwargs)
            return Outcome(True), response
        except SlackApiError as exc:
            r = exc.response
            error = str(r.get("error") or "") if isinstance(r.data, dict) else ""
            status = r.status_code
            retry = status == 429 or status >= 500 or error in _SLACK_TRANSIENT
            reason = f"slack {method} {status}: {error or 'error'}"
            return Outcome(False, retry, _retry_after(r.headers), reason), None
        except (SlackClientError, OSError, TimeoutError) as exc:
            return Outcome(False, True, None, f"slack {method}: {type(exc).__name__}: {exc}"), None

    async def send(self, handle: str, message: dict[str, Any]) -> Outcome:
        opened, response = await self._call("conversations.open", users=user_of(handle, "slack"))
        if not opened.ok:
            return opened
        channel = str(response["channel"]["id"])
        posted, response = await self._call("chat.postMessage", channel=channel, **message)
        if not posted.ok:
            return posted
        return Outcome(True, ref={"channel": channel, "ts": str(response["ts"])})

    async def update(self, ref: dict[str, str], message: dict[str, Any]) -> Outcome:
        done, _ = await self._call("chat.update", channel=ref["channel"], ts=ref["ts"], **message)
        return done


class Discord:
    def __init__(self, cfg: ChatSettings) -> None:
        assert cfg.discord_token is not None
        self.base = cfg.discord_api_url.rstrip("/")
        self.client = httpx.AsyncClient(
            timeout=cfg.timeout_s,
            headers={"Authorization": f"Bot {cfg.discord_token.get_secret_value()}"},
        )

    async def _call(self, verb: str, path: str, body: dict[str, Any]) -> tuple[Outcome, Any]:
        what = f"discord {verb} {path.split('/')[1]}"
        try:
            r = await self.client.request(verb, self.base + path, json=body)
        except httpx.HTTPError as exc:
            return Outcome(False, True, None, f"{what}: {type(exc).__name__}: {exc}"), None
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.is_success:
            return Outcome(True), data
        message = data.get("message") if isinstance(data, dict) else None
        retry = r.status_code == 429 or r.status_code >= 500
        reason = f"{what} {r.status_code}: {str(message or r.reason_phrase)[:200]}"
        return Outcome(False, retry, _retry_after(r.headers, data), reason), None

    async def send(self, handle: str, message: dict[str, Any]) -> Outcome:
        user = user_of(handle, "discord")
        opened, dm = await self._call("POST", "/users/@me/channels", {"recipient_id": user})
        if not opened.ok:
            return opened
        channel = str(dm["id"])
        posted, sent = await self._call("POST", f"/channels/{channel}/messages", message)
        if not posted.ok:
            return posted
        return Outcome(True, ref={"channel": channel, "message": str(sent["id"])})

    async def update(self, ref: dict[str, str], message: dict[str, Any]) -> Outcome:
        path = f"/channels/{ref['channel']}/messages/{ref['message']}"
        done, _ = await self._call("PATCH", path, message)
        return done


class Clients:
    """One client per configured platform, made on first use (inside the event loop)."""

    def __init__(self, cfg: ChatSettings) -> None:
        self.cfg = cfg
        self._made: dict[str, Slack | Discord] = {}

    def __call__(self, platform: Platform) -> Slack | Discord:
        if platform not in self._made:
            if not self.cfg.enabled(platform):
                raise LookupError(f"{platform} is not configured (REALCONNECT_CHAT__…)")
            self._made[platform] = Slack(self.cfg) if platform == "slack" else Discord(self.cfg)
        return self._made[platform]
