"""Answers from chat, and linking chat accounts (docs/people.md, "In their chat").

- ``POST /v1/chat/slack/interactions``: Slack's interactivity request URL. The body is
  verified (``X-Slack-Signature`` over ``v0:{timestamp}:{body}`` with the app's signing
  secret, the timestamp within 5 minutes) before it is parsed, and answered within Slack's
  3 seconds: the answer is recorded, then the message is updated (``chat.update``) after the
  response.
- ``POST /v1/chat/discord/interactions``: Discord's interactions endpoint URL. The body is
  verified (Ed25519 by the application's public key over ``{timestamp}{body}``) before it is
  parsed; a PING is answered PONG, a button press with the updated message itself
  (``UPDATE_MESSAGE``).

Who pressed is the platform's verified user, mapped to the person who linked that account;
the button names only the item and the action, and the item must be in that person's own
feed. The answer goes through ``routes.answer``, as the page's: consent, privacy and
learning from answers are the same, and the same answer twice is one.

A person links an account from their page: they name it, the bot sends it a one-time code by
DM, and entering the code proves they control it. They unlink it there too: the handle's
link is removed from ``people.identities`` (a tombstone), so the matcher no longer counts
what that account does as theirs, and no more messages go to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Coroutine, Mapping
from typing import Annotated, Any, Final, Literal
from urllib.parse import parse_qs

import httpx
import orjson
import structlog
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from schemas.people import FeedItem
from services.common import i18n
from services.common.body_limit import read_bounded
from services.common.problems import Problem
from services.common.redis import Keys
from services.common.settings import Settings
from services.common.words import N_
from services.feeds.routes import _AUTH, ActionBody, Me, _meetup_on, _send, _store, _topics, answer
from services.ingest.auth import AuthError, verify_discord, verify_slack
from services.notifier import chat, chatting, dm
from services.notifier.store import FeedStore

log = structlog.get_logger(__name__)
router = APIRouter()
#: an interaction's body is small (Slack's carries the message: a few KB)
MAX_BODY: Final = 64 * 1024
#: what a button press may take before its answer (Slack and Discord wait 3 s)
ANSWER_WITHIN_S: Final = 2.5
Platform = Literal["slack", "discord"]
_SLACK_USER: Final = re.compile(r"^(T[A-Z0-9]{2,20}):(U|W)[A-Z0-9]{2,20}$")
_DISCORD_USER: Final = re.compile(r"^[0-9]{15,21}$")


_LINKS: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    409: {"description": "Chat is not set up here, or the account is someone else's"},
    422: {"description": "Not an account id, or a wrong or expired code (problem+json)"},
    429: {"description": "Too many codes this hour (problem+json)"},
    502: {"description": "The platform did not take the message (problem+json)"},
}
_SIGNED: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not an interaction payload (problem+json)"},
    401: {"description": "Missing, wrong or stale signature (problem+json)"},
    404: {"description": "The platform is not configured here (problem+json)"},
    413: {"description": "Body over 64 KiB (problem+json)"},
    503: {"description": "Kafka did not acknowledge; press again"},
}


# -- updating messages after an answer --------------------------------------------------------


class ChatUpdates:
    """After an answer on the page, the API or one platform, the item's messages on the
    others are updated (their buttons gone, the answer said back), in the background."""

    def __init__(self, settings: Settings, store: FeedStore) -> None:
        self.cfg, self.store = settings.chat, store
        self.clients = dm.Clients(settings.chat)
        self.tasks: set[asyncio.Task[None]] = set()

    def __call__(self, item: FeedItem, *, skip: str | None = None) -> None:
        for platform in chatting.PLATFORMS:
            if platform != skip and self.cfg.enabled(platform):
                self.later(self.update(item, platform))

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after the response (kept until it ends; ``close`` waits for it)."""
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def finish(self, work: asyncio.Future[FeedItem], platform: chat.Platform) -> None:
        """An answer still being recorded after the platform's wait: the message on
        ``platform`` is updated when it ends (the others are by ``answer`` itself)."""

        async def then() -> None:
            try:
                item = await work
            except Exception:  # a refusal: the message keeps its buttons
                log.info("chat_answer_failed_late", platform=platform)
                return
            await self.update(item, platform)

        self.later(then())

    async def update(self, item: FeedItem, platform: chat.Platform) -> None:
        try:
            ref = await self.store.chat_message(platform, item.person_id, item.item_id)
            if ref is None:
                return
            on = await _meetup_on(self.store, item)
            message = await chatting.compose(self.store, item, platform, meetup_on=on)
            outcome = await self.clients(platform).update(ref, message)
            if not outcome.ok:  # the answer stands; the message keeps its old buttons
                log.warning("chat_update_failed", platform=platform, reason=outcome.reason)
        except Exception:
            log.exception("chat_update_failed", platform=platform)

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)


async def _verified(request: Request, platform: Platform) -> bytes:
    """The body of an interaction the platform signed: 404 if the platform is not set up
    here, 413 past ``MAX_BODY``, 401 unless its signature and timestamp check out (before
    anything parses it)."""
    cfg = request.app.state.settings.chat
    if not cfg.enabled(platform):
        raise Problem(404, "Not configured", f"{platform} delivery is not configured here.")
    body = await read_bounded(request, MAX_BODY)
    now, tolerance = time.time(), cfg.signature_tolerance_s
    try:
        if platform == "slack":
            secrets_ = [s.get_secret_value() for s in cfg.slack_signing_secrets]
            verify_slack(request.headers, body, secrets_, now=now, tolerance=tolerance)
        else:
            key = cfg.discord_public_key
            verify_discord(request.headers, body, key, now=now, tolerance=tolerance)
    except AuthError as exc:
        raise Problem(401, "Unauthenticated", str(exc)) from exc
    return body


async def _press(
    request: Request, handle: str, value: str, platform: Platform
) -> tuple[FeedItem | None, str | None]:
    """Record a press of one of our buttons by ``handle``: the updated item, or None and
    why not, in the presser's words."""
    store = _store(request)
    person = await store.owner(handle)
    words = i18n.words_for(await store.preferences(person) if person else None)
    pressed = chat.parse(value, platform)
    if person is None:
        return None, words.gettext("This account is not linked to realconnect any more.")
    if pressed is None:
        return None, words.gettext("We don't know this button.")
    # Discord's message is updated by the response itself; Slack's after it
    updated_on = platform if platform == "discord" else None
    work = asyncio.ensure_future(
        answer(
            request, person, pressed.item_id, pressed.action, ActionBody(), updated_on=updated_on
        )
    )
    try:  # the answer is never cut short: past the platform's wait it ends after the response
        item = await asyncio.wait_for(asyncio.shield(work), ANSWER_WITHIN_S)
    except Problem as exc:  # not theirs (404), not yet (409), Kafka down (503)
        log.info("chat_answer_refused", platform=platform, status=exc.status)
        return None, words.gettext(exc.detail)
    except TimeoutError:
        log.warning("chat_answer_slow", platform=platform)
        if platform == "discord":  # Slack's is updated by answer() when it ends
            request.app.state.chat.finish(work, platform)
        return None, words.gettext(
            "We are still recording your answer; this message changes when it is done."
        )
    return item, None


# -- Slack ----------------------------------------------------------------------------------


@router.post(
    "/v1/chat/slack/interactions",
    summary="Slack's interactivity request URL (signed by Slack)",
    responses=_SIGNED,
)
async def slack_interactions(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    body = await _verified(request, "slack")
    try:
        payload = orjson.loads(parse_qs(body.decode())["payload"][0])
        kind = payload["type"]
        user, team = payload["user"]["id"], payload["user"].get("team_id") or payload["team"]["id"]
        value = str(payload["actions"][0]["value"]) if kind == "block_actions" else ""
    except (KeyError, IndexError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "Bad request", "Not a Slack interaction payload.") from exc
    if kind != "block_actions":  # shortcuts, modals: nothing of ours
        return Response(status_code=200)
    item, refused = await _press(request, f"slack:{team}:{user}", value, "slack")
    if item is not None:
        return Response(status_code=200)  # answer() updates the message after this
    url = str(payload.get("response_url") or "")
    if refused and _slack_hook(url, settings):  # to the presser alone, after this response
        note = {"response_type": "ephemeral", "replace_original": False, "text": refused}
        request.app.state.chat.later(_post_json(url, note))
    return Response(status_code=200)


def _slack_hook(url: str, settings: Settings) -> bool:
    """Whether ``url`` is one of Slack's response URLs (or the configured API's host: a
    GovSlack or test server): a signed payload's, never any address."""
    api = settings.chat.slack_api_url
    origin = api[: api.index("/", api.index("//") + 2) + 1]
    return url.startswith(("https://hooks.slack.com/", origin))


async def _post_json(url: str, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=5.0) as client:
        r = await client.post(url, json=body)
    if not r.is_success:
        log.warning("slack_response_url_refused", status=r.status_code)


# -- Discord --------------------------------------------------------------------------------

#: interaction types (https://discord.com/developers/docs/interactions/receiving-and-responding)
_PING, _COMPONENT = 1, 3
#: response types: PONG, CHANNEL_MESSAGE_WITH_SOURCE, UPDATE_MESSAGE; flag EPHEMERAL
_PONG, _MESSAGE, _UPDATE, _EPHEMERAL = 1, 4, 7, 1 << 6


@router.post(
    "/v1/chat/discord/interactions",
    summary="Discord's interactions endpoint URL (signed by Discord)",
    responses=_SIGNED,
)
async def discord_interactions(request: Request) -> Response:
    body = await _verified(request, "discord")
    try:
        payload = orjson.loads(body)
        kind = int(payload["type"])
        if kind == _PING:
            return JSONResponse({"type": _PONG})
        user = (payload.get("user") or payload["member"]["user"])["id"]
        value = str(payload["data"]["custom_id"]) if kind == _COMPONENT else ""
    except (KeyError, TypeError, ValueError) as exc:
        raise Problem(400, "Bad request", "Not a Discord interaction.") from exc
    if kind != _COMPONENT:
        return JSONResponse({"type": _MESSAGE, "data": {"content": "-", "flags": _EPHEMERAL}})
    item, refused = await _press(request, f"discord:{user}", value, "discord")
    if item is None:
        return JSONResponse({"type": _MESSAGE, "data": {"content": refused, "flags": _EPHEMERAL}})
    store = _store(request)
    on = await _meetup_on(store, item)
    message = await chatting.compose(store, item, "discord", meetup_on=on)
    if (known := payload.get("message") or {}).get("id") and payload.get("channel_id"):
        ref = {"channel": str(payload["channel_id"]), "message": str(known["id"])}
        await store.mark_chat_sent("discord", item.person_id, item.item_id, ref)
    return JSONResponse({"type": _UPDATE, "data": message})


# -- linking accounts -------------------------------------------------------------------------


class LinkRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    platform: Platform
    #: Slack: ``<team id>:<member id>`` (T…:U…, "Copy member ID" in the profile); Discord:
    #: the user id (developer mode, "Copy User ID")
    account: Annotated[str, Field(min_length=3, max_length=64)]


class LinkCode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: Annotated[str, Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")]


def handle_for(platform: Platform, account: str) -> str:
    """The source-qualified handle of an account as a person names it (ValueError if it is
    not one)."""
    account = account.strip()
    if platform == "slack" and _SLACK_USER.match(account):
        return f"slack:{account}"
    if platform == "discord" and _DISCORD_USER.match(account):
        return f"discord:{account}"
    raise ValueError(account)


def _digest(person: str, handle: str, code: str) -> str:
    return hashlib.sha256(f"link|{person}|{handle}|{code}".encode()).hexdigest()


async def send_link_code(request: Request, person: str, body: LinkRequest) -> None:
    """DM a one-time code to the account ``person`` names."""
    settings: Settings = request.app.state.settings
    if not settings.chat.enabled(body.platform):
        raise Problem(409, N_("Not available"), N_("This chat platform is not set up here."))
    try:
        handle = handle_for(body.platform, body.account)
    except ValueError as exc:
        raise Problem(
            422, N_("Not an account"), N_("That is not an account id we can use.")
        ) from exc
    store, redis, keys = _store(request), request.app.state.redis, Keys(settings)
    if await store.owner(handle) not in (None, person):
        raise Problem(409, N_("Cannot link"), N_("That account cannot be linked to you."))
    sent = await redis.incr(keys.link_codes_sent(person))
    if sent == 1:
        await redis.expire(keys.link_codes_sent(person), 3600)
    if sent > settings.chat.link_codes_per_hour:
        raise Problem(429, N_("Too many codes"), N_("Too many codes this hour; try later."))
    code = f"{secrets.randbelow(10**6):06d}"
    w = i18n.words_for(await store.preferences(person))
    text = w.gettext(
        "Your realconnect code is {code}. Enter it on your page to link this account. "
        "If you did not ask for it, ignore this message."
    ).format(code=code)
    message: dict[str, Any] = (
        {"text": text}
        if body.platform == "slack"
        else {"content": text, "allowed_mentions": {"parse": []}}
    )
    outcome = await dm.Clients(settings.chat)(body.platform).send(handle, message)
    if not outcome.ok:
        log.info("link_code_not_sent", platform=body.platform, reason=outcome.reason)
        raise Problem(
            502, N_("Not sent"), N_("We could not send a message to that account; check the id.")
        )
    await redis.hset(
        keys.link_code(person),
        mapping={"digest": _digest(person, handle, code), "handle": handle, "tries": 0},
    )
    await redis.expire(keys.link_code(person), settings.chat.link_code_ttl_s)
    log.info("link_code_sent", platform=body.platform)


async def confirm_link(request: Request, person: str, code: str) -> str:
    """Link the account the pending code was sent to, if ``code`` is it; returns its
    handle."""
    settings: Settings = request.app.state.settings
    store, redis, keys = _store(request), request.app.state.redis, Keys(settings)
    pending: Mapping[bytes, bytes] = await redis.hgetall(keys.link_code(person))
    wrong = Problem(422, N_("Wrong code"), N_("That code is not right, or it has expired."))
    if not pending:
        raise wrong
    handle = pending[b"handle"].decode()
    if await redis.hincrby(keys.link_code(person), "tries", 1) > settings.chat.link_code_tries:
        await redis.delete(keys.link_code(person))
        raise wrong
    if not hmac.compare_digest(_digest(person, handle, code).encode(), pending[b"digest"]):
        raise wrong
    await redis.delete(keys.link_code(person))
    if await store.owner(handle) not in (None, person):
        raise Problem(409, N_("Cannot link"), N_("That account cannot be linked to you."))
    source = handle.split(":", 1)[0]
    identity = {"person_id": person, "source": source, "handle": handle}
    await _send(request, _topics(request).identities, handle, orjson.dumps(identity))
    await store.link(person, handle)
    log.info("account_linked", platform=source)
    return handle


async def unlink(request: Request, person: str, handle: str) -> None:
    store = _store(request)
    if not await store.unlink(person, handle):
        raise Problem(404, N_("Not found"), N_("No such account is linked to you."))
    await _send(request, _topics(request).identities, handle, None)  # the normalizer forgets it
    log.info("account_unlinked", platform=handle.split(":", 1)[0])


class Links(BaseModel):
    #: source-qualified handles linked to the person (every platform, an admin's links too)
    handles: list[str]
    #: the account a code was sent to and is waiting for (None: none)
    pending: str | None = None


async def links(request: Request, person: str) -> Links:
    store = _store(request)
    return Links(handles=await store.handles(person), pending=await store.pending_link(person))


# -- the same for the API ---------------------------------------------------------------------


@router.get("/v1/me/links", response_model=Links, responses=_AUTH, summary="My linked accounts")
async def my_links(request: Request, person: Me) -> Links:
    return await links(request, person)


@router.post(
    "/v1/me/links",
    response_model=Links,
    status_code=202,
    responses=_LINKS,
    summary="Link a Slack or Discord account: the bot sends it a one-time code by DM",
)
async def start_link(request: Request, person: Me, body: LinkRequest) -> Links:
    await send_link_code(request, person, body)
    return await links(request, person)  # pending: the account just sent a code


@router.post(
    "/v1/me/links/confirm",
    response_model=Links,
    responses=_LINKS,
    summary="Link the account the code was sent to",
)
async def finish_link(request: Request, person: Me, body: LinkCode) -> Links:
    await confirm_link(request, person, body.code)
    return await links(request, person)


@router.delete(
    "/v1/me/links/{handle}",
    status_code=204,
    responses={**_AUTH, 404: {"description": "No such account linked to me"}},
    summary="Unlink one of my accounts",
)
async def remove_link(
    request: Request, person: Me, handle: Annotated[str, Path(min_length=3, max_length=600)]
) -> None:
    await unlink(request, person, handle)
