"""The feed API. People act only on their own items (object-level authorisation): every
``/v1/me`` route resolves the person from their bearer token, and an item id that is not in
*their* feed is answered 404, whoever else it may belong to."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlencode

import orjson
import structlog
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import LockError, RedisError

from schemas.feedback import FeedbackGiven
from schemas.people import FeedItem, Preferences, Response, person_hash
from schemas.webhook_targets import TargetError, check_url
from services.common import i18n
from services.common.admin import admin, bearer
from services.common.kafka import ProducerSlot, Topics, produce
from services.common.paths import PersonPath
from services.common.problems import Problem
from services.common.redis import Keys
from services.common.words import ENGLISH, N_, Words
from services.feeds.why import WhyNot
from services.notifier import chatting
from services.notifier.email import job as email_job
from services.notifier.feeds import group_on_items, mutual_items
from services.notifier.mail import signin_url, unsubscribe_sig
from services.notifier.store import FeedStore
from services.notifier.webhooks import secret_for

log = structlog.get_logger(__name__)
router = APIRouter()
ItemPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown bearer token"},
    503: {"description": "Kafka did not acknowledge; retry"},
}
_ITEM: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    404: {"description": "No such item in your feed"},
    409: {"description": "The action does not apply to this item"},
}


#: request state: (bearer token, person) as the rate limit verified it (services.feeds.app)
VERIFIED_BEARER: Final = "verified_bearer"


async def me(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    store = _store(request)
    person: str | None = None
    if creds:
        known = getattr(request.state, VERIFIED_BEARER, None)  # the rate limit's look-up
        if known is not None and known[0] == creds.credentials:
            person = str(known[1])
        else:
            person = await store.person_for(creds.credentials)
    if person is None or await store.is_forgotten(person):
        raise Problem(
            401,
            "Unauthenticated",
            "A valid bearer token is required.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return person


Me = Annotated[str, Depends(me)]


def _store(request: Request) -> FeedStore:
    store: FeedStore = request.app.state.store
    return store


def _topics(request: Request) -> Topics:
    topics: Topics = request.app.state.topics
    return topics


async def _send(
    request: Request, topic: str, key: str, value: bytes | None, partition: int | None = None
) -> None:
    producer: ProducerSlot = request.app.state.producer
    try:
        await producer.acknowledged(produce(producer, topic, key.encode(), value, partition))
    except KafkaError as exc:
        raise Problem(
            503, "Kafka unavailable", "Not stored; retry.", headers={"Retry-After": "1"}
        ) from exc


async def _save(request: Request, item: FeedItem) -> None:
    """Kafka first (the rebuild source), then the Redis view."""
    await _send(
        request,
        _topics(request).feeds,
        f"{item.person_id}|{item.item_id}",
        item.model_dump_json().encode(),
    )
    await _store(request).put(item)


class Feed(BaseModel):
    person_id: str
    items: list[FeedItem]
    next_cursor: str | None = None


@router.get("/v1/me/feed", response_model=Feed, responses=_AUTH, summary="My feed, newest first")
async def my_feed(
    request: Request,
    person: Me,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_=-]+$")] = None,
) -> Feed:
    try:
        items, nxt = await _store(request).page(
            person, limit=limit, cursor=cursor, now=datetime.now(UTC)
        )
    except ValueError as exc:
        raise Problem(422, "Invalid cursor", "The cursor is not one this API gave out.") from exc
    return Feed(person_id=person, items=items, next_cursor=nxt)


class ActionBody(BaseModel):
    rating: Annotated[int, Field(ge=1, le=5)] | None = None
    snooze_days: Annotated[int, Field(ge=1, le=90)] = 3


Action = Literal["accept", "decline", "snooze", "met", "read"]
_OUTCOME: dict[str, Response] = {
    "accept": "accepted",
    "decline": "declined",
    "snooze": "snoozed",
    "met": "met",
}


@router.post(
    "/v1/me/feed/{item_id}/{action}",
    response_model=FeedItem,
    responses=_ITEM,
    summary="Answer one of my items: accept, decline, snooze, met, or mark it read",
)
async def act(
    request: Request,
    person: Me,
    item_id: ItemPath,
    action: Annotated[Action, Path()],
    body: Annotated[ActionBody | None, Body()] = None,
) -> FeedItem:
    return await answer(request, person, item_id, action, body or ActionBody())


async def answer(
    request: Request,
    person: str,
    item_id: str,
    action: Action,
    body: ActionBody,
    *,
    updated_on: str | None = None,
) -> FeedItem:
    """One answer to one of ``person``'s own items (the API, the web page and the chat
    buttons share it). One at a time per item, whoever of its people answers (a lock in
    Redis: two yeses at once announce the meetup once), and the same answer again
    (a double click, a retried delivery) is no new answer. The item's chat messages are
    updated after it, but the one on ``updated_on``, whose caller does that itself."""
    redis = request.app.state.redis
    lock = Keys(request.app.state.settings).answering(item_id)
    try:
        async with redis.lock(lock, timeout=10, blocking_timeout=5):
            updated = await _answer(request, person, item_id, action, body)
    except LockError as exc:
        raise Problem(
            409,
            N_("Busy"),
            N_("This item is being answered; try again."),
            headers={"Retry-After": "1"},
        ) from exc
    refresh = getattr(request.app.state, "chat", None)
    if refresh is not None and action != "read":
        refresh(updated, skip=updated_on)
    return updated


def _again(item: FeedItem, action: Action, body: ActionBody, now: datetime) -> bool:
    """Whether ``action`` is the answer the item already has (nothing new to record)."""
    if action == "read" or item.response != _OUTCOME[action]:
        return False
    if action == "snooze":
        return item.snoozed_until is not None and item.snoozed_until > now
    return action != "met" or body.rating in (None, item.met_rating)


async def _answer(
    request: Request, person: str, item_id: str, action: Action, body: ActionBody
) -> FeedItem:
    store = _store(request)
    item = await store.item(person, item_id)
    if item is None:
        raise Problem(404, N_("Not found"), N_("No such item in your feed."))
    now = datetime.now(UTC)
    if _again(item, action, body, now):
        # nothing new; a yes whose meetup step failed (Kafka down) completes it now
        if action == "accept":
            await (_maybe_group_on if item.is_group else _maybe_mutual)(request, item, now)
        log.info("feed_answered_again", action=action, item_id=item_id)
        return item
    if action == "read":
        updated = item.model_copy(update={"read": True})
        await _save(request, updated)
        return updated
    if action == "met" and not await _meetup_on(store, item):
        raise Problem(
            409, N_("Not yet"), N_("Report a meeting once the meetup is on (all said yes).")
        )
    if action in ("accept", "decline") and item.type not in ("suggestion", "group"):
        raise Problem(409, "Not applicable", f"A {item.type} item cannot be answered so.")
    outcome = _OUTCOME[action]

    updated = item.model_copy(
        update={
            "read": True,
            "response": outcome,
            "responded_at": now,
            "snoozed_until": now + timedelta(days=body.snooze_days) if action == "snooze" else None,
            "met_rating": body.rating if action == "met" else item.met_rating,
        }
    )
    if not item.is_group:  # before the item: a retry after a failure sends it, never loses it
        a, b = sorted((person, item.other_person_id))
        feedback = FeedbackGiven(
            suggestion_id=item.suggestion_id, pair=(a, b), person_id=person, outcome=outcome, at=now
        )
        await _send(
            request, _topics(request).feedback, f"{a}|{b}", feedback.model_dump_json().encode()
        )
    await _save(request, updated)
    if item.is_group:  # each member answers for themself; the matcher learns from pairs
        await request.app.state.redis.hincrby(
            Keys(request.app.state.settings).stats, f"group_responses_{outcome}", 1
        )
        if action == "accept":
            await _maybe_group_on(request, updated, now)
        log.info("group_answered", action=action, item_id=item_id)
        return updated
    await request.app.state.redis.hincrby(
        Keys(request.app.state.settings).stats, f"responses_{outcome}", 1
    )
    if action == "accept":
        await _maybe_mutual(request, updated, now)
    log.info("feed_answered", action=action, item_id=item_id)
    return updated


async def _meetup_on(store: Any, item: FeedItem) -> bool:
    """Whether the meetup of ``item`` is on: its "mutual" or "group_on" item, or a pair's
    suggestion both said yes to. "We met" is offered, and taken, only then (issue 41)."""
    if item.type in ("mutual", "group_on"):
        return True
    if item.is_group or item.response not in ("accepted", "met"):
        return False  # a group is on in its own "group_on" item
    theirs = await store.item(item.other_person_id, item.item_id)
    return theirs is not None and theirs.response in ("accepted", "met")


async def _maybe_group_on(request: Request, mine: FeedItem, now: datetime) -> None:
    """Three or more members said yes: a "group_on" item in the feed of each who did, naming
    only them (a decline, or no answer yet, is never revealed), with an hour that is daytime
    for all of them. A later yes joins it: every yes-sayer's item then names them too."""
    store = _store(request)
    answered = [
        i
        for m in mine.members
        if (i := mine if m == mine.person_id else await store.item(m, mine.item_id)) is not None
    ]
    prefs = {i.person_id: await store.preferences(i.person_id) for i in answered}
    yes = [i for i in answered if i.response in ("accepted", "met")]
    zones = sorted({p.time_zone for i in yes if (p := prefs[i.person_id]) is not None})
    on = group_on_items(answered, now, zones)
    if not on:
        return
    before = await store.item(mine.person_id, on[0].item_id)
    if before is not None and set(before.members) == set(on[0].members):
        return  # already on with these people
    emails = {
        i.person_id: (
            p.email if (p := prefs[i.person_id]) is not None and p.wants("email") else None
        )
        for i in on
    }
    await _group_answers(request, [i.person_id for i in on], mine.suggestion_id, now)
    for item in on:
        old = await store.item(item.person_id, item.item_id)
        if old is not None:  # keep what they did with it; the proposal now names everyone
            item = item.model_copy(
                update={k: getattr(old, k) for k in ("read", "response", "responded_at")}
                | {"delivered_at": old.delivered_at}
            )
        await _announce(request, item, prefs[item.person_id] if old is None else None, emails)


async def _group_answers(request: Request, yes: list[str], group: str, now: datetime) -> None:
    """A group that is on is an answer for each pair of those who said yes (issue 38): one
    ``meetup.feedback`` record per member and pair, keyed by the pair, for the matcher to
    learn from (schemas/feedback.py). Sent again when a later yes joins: the matcher keeps
    one example per group, pair and person."""
    topic = _topics(request).feedback
    for i, a in enumerate(sorted(yes)):
        for b in sorted(yes)[i + 1 :]:
            for person in (a, b):
                fb = FeedbackGiven(
                    suggestion_id=group,
                    group_id=group,
                    pair=(a, b),
                    person_id=person,
                    outcome="accepted",
                    at=now,
                )
                await _send(request, topic, f"{a}|{b}", fb.model_dump_json().encode())


async def _maybe_mutual(request: Request, mine: FeedItem, now: datetime) -> None:
    """Both accepted: a "mutual" item with the proposed meetup in both feeds (once).
    A decline is never revealed: the other person simply never gets this."""
    store = _store(request)
    theirs = await store.item(mine.other_person_id, mine.item_id)
    if theirs is None or theirs.response != "accepted":
        return
    prefs = [await store.preferences(p) for p in (mine.person_id, theirs.person_id)]
    zones = sorted({p.time_zone for p in prefs if p is not None})
    first, second = mutual_items(mine, theirs, now, zones)
    if await store.item(first.person_id, first.item_id) is not None:
        return
    emails = {
        p.person_id: (pref.email if pref is not None and pref.wants("email") else None)
        for p, pref in ((mine, prefs[0]), (theirs, prefs[1]))
    }
    for item, pref in ((first, prefs[0]), (second, prefs[1])):
        await _announce(request, item, pref, emails)


async def _announce(
    request: Request, item: FeedItem, pref: Preferences | None, emails: dict[str, str | None]
) -> None:
    """A meetup that is on, to one person: saved in their feed, emailed with its invite if
    ``pref`` chose email (None: no email), and pushed to their live stream. The invite names
    everyone in ``emails``: each sees another's address only if that one chose email too (and
    said yes)."""
    await _save(request, item)
    if pref is not None and pref.wants("email") and pref.email:
        await _send(
            request, _topics(request).emails, item.person_id, email_job(item, pref.email, emails)
        )
    for job in await chatting.jobs(request.app.state.settings, _store(request), item, pref):
        await _send(request, _topics(request).chat, item.person_id, job)
    await request.app.state.redis.publish(
        Keys(request.app.state.settings).feed_events(item.person_id), item.model_dump_json()
    )


@router.get(
    "/v1/me/feed/stream",
    responses={**_AUTH, 429: {"description": "Too many open streams (problem+json)"}},
    summary="My new feed items, live (server-sent events)",
    response_class=StreamingResponse,
)
async def stream(
    request: Request,
    person: Me,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> StreamingResponse:
    token = creds.credentials if creds else ""
    digest = hashlib.sha256(token.encode()).hexdigest()
    store = _store(request)

    async def still_valid() -> bool:
        return await store.person_for(token) == person

    return live_stream(request, person, digest, still_valid)


def live_stream(
    request: Request, person: str, digest: str, still_valid: Callable[[], Awaitable[bool]]
) -> StreamingResponse:
    """Server-sent events of ``person``'s new items. ``digest`` counts the streams one
    credential holds open (bounded: each holds a Redis connection); ``still_valid`` is asked
    at every keep-alive, and the stream ends once the credential is revoked."""
    redis = request.app.state.redis
    settings = request.app.state.settings
    channel = Keys(settings).feed_events(person)
    open_streams: Counter[str] = request.app.state.sse
    cfg = settings.feeds
    if open_streams[digest] >= cfg.sse_max_per_token or open_streams.total() >= cfg.sse_max_total:
        raise Problem(
            429,
            "Too many open streams",
            f"At most {cfg.sse_max_per_token} live streams per token "
            f"({cfg.sse_max_total} in all); close one first.",
            headers={"Retry-After": str(int(cfg.sse_keepalive_s))},
        )
    open_streams[digest] += 1

    async def events() -> AsyncIterator[bytes]:
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(channel)
            yield b": connected\n\n"
            while not await request.is_disconnected():
                msg = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=cfg.sse_keepalive_s
                )
                if msg is None:
                    if not await still_valid():
                        return  # the credential was revoked: the stream ends with it
                    yield b": keep-alive\n\n"
                    continue
                item = orjson.loads(msg["data"])
                yield f"id: {item['item_id']}\nevent: item\ndata: ".encode() + msg["data"] + b"\n\n"
        except asyncio.CancelledError:
            pass
        finally:
            open_streams[digest] -= 1
            if open_streams[digest] <= 0:
                del open_streams[digest]
            await pubsub.unsubscribe(channel)
            await pubsub.aclose()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


#: a person's "why not?" reads the matcher's state from Kafka (services/explain.py): at most
#: this long per read, and this many at once per process (others wait their turn)
WHY_NOT_TIMEOUT_S: Final = 20.0
_WHY_NOT_AT_ONCE: Final = asyncio.Semaphore(4)
#: never in contact, or the other was forgotten: the same words, so that a forgetting is
#: not told
_NOTHING_TO_SAY: Final = N_("We know of no exchange between you two that we could explain.")


@router.get(
    "/v1/me/why-not",
    responses={
        **_AUTH,
        404: {"description": "No exchange known between you two (problem+json)"},
        422: {"description": "Not a pair: yourself, or an invalid id"},
        503: {"description": "The matcher's state is unavailable; retry (problem+json)"},
    },
    summary="Why we have not suggested meeting someone you exchange with",
)
async def why_not(
    request: Request,
    person: Me,
    other: Annotated[str, Query(alias="with", min_length=1, max_length=256)],
) -> dict[str, Any]:
    """Only about a pair the asker belongs to (the asker is the token's person), and only
    from facts the asker may know (services/feeds/why.py): the other person's decline,
    consent, exclusions and quiet hours are never told apart. The answer's words are in the
    person's language (their preference, else ``Accept-Language``)."""
    prefs = await _store(request).preferences(person)
    words = i18n.words_for(prefs, request.headers.get("accept-language"))
    return (await why_not_for(request, person, other, words)).to_dict()


async def why_not_for(request: Request, person: str, other: str, words: Words = ENGLISH) -> WhyNot:
    """The asker's answer about the pair with ``other`` (the API's and the page's); a
    question that cannot be answered is a `Problem` (422, 404 or 503)."""
    from services.explain import ExplainError, explain
    from services.feeds.why import why_not as answer

    other = other.strip()
    if not other or other == person:
        raise Problem(422, N_("Not a pair"), N_("Ask about someone other than yourself."))
    settings = request.app.state.settings
    try:
        async with _WHY_NOT_AT_ONCE:
            got = await explain(settings, person, other, timeout=WHY_NOT_TIMEOUT_S)
    except ExplainError as exc:
        raise Problem(404, N_("Nothing to explain"), _NOTHING_TO_SAY) from exc
    except (KafkaError, RedisError) as exc:
        raise Problem(
            503, N_("Not available"), N_("Try again in a moment."), headers={"Retry-After": "2"}
        ) from exc
    mine = await _store(request).preferences(person)
    # ``other`` may have been a linked handle: the pair names the person it resolved to
    other = got.state.b if got.state.a == person else got.state.a
    return answer(
        other,
        got.state,
        got.now,
        mine,
        datetime.now(UTC),
        not_now_days=settings.matcher.decline_cooldown_days,
        words=words,
    )


@router.get(
    "/v1/me/preferences",
    response_model=Preferences,
    responses=_AUTH,
    summary="My consent and preferences",
)
async def get_preferences(request: Request, person: Me) -> Preferences:
    return await _store(request).preferences(person) or Preferences()


@router.put(
    "/v1/me/preferences",
    response_model=Preferences,
    responses={**_AUTH, 422: {"description": "Invalid preferences"}},
    summary="Opt in or out, pause, quiet hours, weekly cap, exclusions, sources",
)
async def put_preferences(request: Request, person: Me, prefs: Preferences) -> Preferences:
    if prefs.webhook_url is not None:
        try:
            check_webhook_target(request, prefs.webhook_url)
        except TargetError as exc:
            raise Problem(
                422,
                "Invalid preferences",
                str(exc),
                errors=[
                    {
                        "loc": ["body", "webhook_url"],
                        "pointer": "/body/webhook_url",
                        "msg": str(exc),
                        "type": "webhook_target",
                    }
                ],
            ) from exc
    await store_preferences(request, person, prefs)
    return prefs


def check_webhook_target(request: Request, url: str) -> None:
    """Where a person's webhook may point: https in prod, no literal non-public address
    (raises ``TargetError``)."""
    settings = request.app.state.settings
    check_url(
        url,
        require_https=settings.env == "prod",
        allow_private=settings.notifier.webhook_allow_private,
    )


async def store_preferences(request: Request, person: str, prefs: Preferences) -> None:
    """Kafka first (``people.consent``, the rebuild source), then the Redis view."""
    await _send(request, _topics(request).consent, person, prefs.model_dump_json().encode())
    await _store(request).set_preferences(person, prefs)


class Webhook(BaseModel):
    url: str | None
    secret: str
    scheme: str = 'X-Realconnect-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>'


@router.get(
    "/v1/me/webhook",
    response_model=Webhook,
    responses=_AUTH,
    summary="Where my items are also POSTed, and the secret that signs them",
)
async def my_webhook(request: Request, person: Me) -> Webhook:
    prefs = await _store(request).preferences(person) or Preferences()
    key = request.app.state.settings.notifier.webhook_key.get_secret_value()
    return Webhook(url=prefs.webhook_url, secret=secret_for(key, person))


# --- admin -------------------------------------------------------------------------------


class Token(BaseModel):
    person_id: str
    token: str  # shown once; only its hash is stored
    #: when it stops working (None: until revoked)
    expires_at: datetime | None = None


class PersonFeed(BaseModel):
    person_id: str
    items: list[dict[str, Any]]


_ADMIN: dict[int | str, dict[str, Any]] = {
    401: {"description": "Admin token required"},
    503: {"description": "Kafka did not acknowledge"},
}


@router.post(
    "/v1/people/{person_id}/tokens",
    response_model=Token,
    responses={**_ADMIN, 409: {"description": "Forgotten, or not (problem+json)"}},
    dependencies=[Depends(admin("feeds"))],
    status_code=201,
    summary="Issue a bearer token for a person (admin)",
)
async def issue_token(
    request: Request,
    person_id: PersonPath,
    expires_days: Annotated[int | None, Query(ge=1, le=3650)] = None,
) -> Token:
    await _not_forgotten(request, person_id)
    return await _issue(request, person_id, expires_days)


async def _not_forgotten(request: Request, person_id: str) -> None:
    """Nothing is issued for a forgotten person: they come back only by opting in again."""
    if await _store(request).is_forgotten(person_id):
        raise Problem(
            409,
            "Forgotten",
            "This person asked to be forgotten. They come back only by opting in again, "
            "explicitly: POST /v1/people/{person_id}/opt-in-again with "
            '{"opted_in": true}.',
        )


async def _issue(request: Request, person_id: str, expires_days: int | None) -> Token:
    days = expires_days or request.app.state.settings.feeds.token_ttl_days
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    token, digest = await _store(request).issue_token(
        person_id, expires.timestamp() if expires else None
    )
    record = {"person_id": person_id, "expires_at": expires.timestamp() if expires else None}
    await _send(request, _topics(request).tokens, digest, orjson.dumps(record))
    return Token(person_id=person_id, token=token, expires_at=expires)


class OptInAgain(BaseModel):
    """A forgotten person's explicit wish to come back (nothing else brings them back)."""

    model_config = ConfigDict(extra="forbid")
    opted_in: Literal[True]


@router.post(
    "/v1/people/{person_id}/opt-in-again",
    response_model=Token,
    responses={**_ADMIN, 409: {"description": "Forgotten, or not (problem+json)"}},
    dependencies=[Depends(admin("feeds"))],
    status_code=201,
    summary="A forgotten person opts in again, explicitly (admin, on their request)",
)
async def opt_in_again(
    request: Request,
    person_id: PersonPath,
    body: OptInAgain,
    expires_days: Annotated[int | None, Query(ge=1, le=3650)] = None,
) -> Token:
    """Lifts the suppression of the id (not of the handles forgotten with it: they are linked
    again like new ones), records the consent, and issues a token. What was forgotten stays
    forgotten: only what happens from now on is tracked."""
    store = _store(request)
    if not await store.is_forgotten(person_id):
        raise Problem(409, "Not forgotten", "This person was not forgotten: issue a token.")
    await _send(request, _topics(request).forgotten, person_hash(person_id), None)
    await store.unforget(person_id)
    await store_preferences(request, person_id, Preferences(opted_in=body.opted_in))
    log.info("person_opted_in_again", person_hash=person_hash(person_id)[:12])
    return await _issue(request, person_id, expires_days)


class SigninLink(BaseModel):
    person_id: str
    url: str  # works once, until expires_at; shown once (only its hash is stored)
    expires_at: datetime


@router.post(
    "/v1/people/{person_id}/signin-links",
    response_model=SigninLink,
    responses={**_ADMIN, 409: {"description": "Forgotten, or not (problem+json)"}},
    dependencies=[Depends(admin("feeds"))],
    status_code=201,
    summary="Create a one-time sign-in link to a person's web page (admin)",
)
async def signin_link(
    request: Request,
    person_id: PersonPath,
    ttl_s: Annotated[int | None, Query(ge=30, le=7 * 24 * 3600)] = None,
) -> SigninLink:
    await _not_forgotten(request, person_id)
    settings = request.app.state.settings
    ttl = ttl_s or settings.feeds.signin_ttl_s
    token = await _store(request).mint_signin(person_id, ttl)
    return SigninLink(
        person_id=person_id,
        url=signin_url(settings.feeds.public_url, token),
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
    )


#: the query of an unsubscribe link: whose, and the HMAC that proves it came from us
UnsubscribeFor = Annotated[str, Query(max_length=256)]
Signature = Annotated[str, Query(max_length=64)]


async def _unsubscribe_person(request: Request, p: str, s: str) -> str:
    key = request.app.state.settings.notifier.webhook_key.get_secret_value()
    if not (p and s and hmac.compare_digest(s.encode(), unsubscribe_sig(key, p).encode())):
        raise Problem(404, "Not found", "This unsubscribe link is not valid.")
    return p


@router.get(
    "/v1/unsubscribe",
    response_class=HTMLResponse,
    summary="The page behind an email's unsubscribe link: a button that POSTs",
    responses={404: {"description": "Not a valid unsubscribe link"}},
)
async def unsubscribe_page(
    request: Request, p: UnsubscribeFor = "", s: Signature = ""
) -> HTMLResponse:
    """The link in an email's footer: a button, so that a mail scanner's GET changes nothing."""
    await _unsubscribe_person(request, p, s)
    # the configured public URL, never the request's Host header
    public = request.app.state.settings.feeds.public_url.rstrip("/")
    action = html.escape(f"{public}/v1/unsubscribe?{urlencode({'p': p, 's': s})}", quote=True)
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Stop emails - realconnect</title></head><body><main>"
        "<h1>Stop realconnect emails?</h1>"
        f"<form method='post' action='{action}'>"
        "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        "<button type='submit'>Stop the emails</button></form>"
        "<p>Your suggestions stay on your page.</p></main></body></html>"
    )


@router.post(
    "/v1/unsubscribe",
    summary="One-click unsubscribe (RFC 8058): turn the email channel off",
    responses={404: {"description": "Not a valid unsubscribe link"}},
)
async def unsubscribe(
    request: Request, p: UnsubscribeFor = "", s: Signature = ""
) -> dict[str, Any]:
    person = await _unsubscribe_person(request, p, s)
    store = _store(request)
    prefs = await store.preferences(person)
    if prefs is not None and "email" in prefs.channels:
        prefs = prefs.model_copy(update={"channels": [c for c in prefs.channels if c != "email"]})
        await store_preferences(request, person, prefs)
    log.info("email_unsubscribed")
    return {"email": "off"}


@router.delete(
    "/v1/me/token",
    status_code=204,
    responses=_AUTH,
    summary="Sign out: revoke the bearer token of this request (its live streams end too)",
)
async def revoke_my_token(
    request: Request,
    person: Me,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    revoked = await _store(request).revoke_token(creds.credentials if creds else "")
    if revoked is not None:  # a tombstone, so that rebuild-feeds does not bring it back
        await _send(request, _topics(request).tokens, revoked[1], None)


@router.get(
    "/v1/people/{person_id}/feed",
    response_model=PersonFeed,
    responses=_ADMIN,
    dependencies=[Depends(admin("feeds"))],
    summary="A person's feed (admin)",
)
async def person_feed(
    request: Request, person_id: PersonPath, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> PersonFeed:
    return PersonFeed(person_id=person_id, items=await _store(request).feed(person_id, limit=limit))


@router.delete(
    "/v1/people/{person_id}",
    status_code=204,
    responses=_ADMIN,
    dependencies=[Depends(admin("feeds"))],
    summary="Forget a person everywhere (admin)",
)
async def forget(request: Request, person_id: PersonPath) -> None:
    """Feed, tokens, preferences, identities, profile, items in other feeds, and (through
    ``people.forgotten``) the matcher's pair states. Kafka gets tombstones; the suppression
    list keeps only a hash of the id, so a replay cannot bring the person back."""
    store, t = _store(request), _topics(request)
    redis = request.app.state.redis
    keys = Keys(request.app.state.settings)
    digests = [d.decode() for d in await redis.smembers(keys.tokens_of(person_id))]
    handles = [h.decode() for h in await redis.smembers(keys.identities_of(person_id))]
    hashed = person_hash(person_id)
    # the id and every handle linked to it: pair states and interactions under a handle from
    # before the link are dropped and suppressed as well
    forgotten_at = orjson.dumps({"forgotten_at": datetime.now(UTC).isoformat()})
    for name in (person_id, *handles):
        await _send(request, t.forgotten, person_hash(name), forgotten_at)
    if handles:
        await redis.sadd(keys.forgotten, *(person_hash(h) for h in handles))
        await _forget_directory(redis, keys, set(handles))
    # the forms a raw payload may name them by (ann@x.social, @ann, ann), for the console's
    # dead-letter view only: withholding a dead letter of someone else named "ann" is safe,
    # tracking nobody called "ann" again would not be
    await redis.sadd(
        keys.forgotten_names, *(person_hash(n) for n in name_forms(person_id, handles))
    )
    partitions = request.app.state.settings.kafka.partitions
    for partition, raw in await store.held_of(person_id, partitions):  # held deliveries too
        held = orjson.loads(raw)
        key_id = held.get("suggestion_id") or held["group_id"]  # a pair's or a group's
        await _send(request, t.held, key_id, None, partition=partition)
    await redis.hdel(keys.platform_names, person_id, *handles)  # what platforms call them
    if handles:
        await redis.hdel(keys.linked, *handles)  # their chat buttons press for nobody
    removed, regrouped = await store.forget(person_id, partitions)
    for owner, item_id in removed:
        await _send(request, t.feeds, f"{owner}|{item_id}", None)
    for item in regrouped:  # a group that goes on without them
        await _send(
            request, t.feeds, f"{item.person_id}|{item.item_id}", item.model_dump_json().encode()
        )
    for digest in digests:
        await _send(request, t.tokens, digest, None)
    for handle in handles:
        await _send(request, t.identities, handle, None)
    await _send(request, t.consent, person_id, None)
    await _send(request, t.profiles, person_id, None)
    await redis.delete(keys.identities_of(person_id))
    await redis.hdel(keys.names, person_id)
    log.info("person_forgotten", person_hash=hashed[:12], items=len(removed))


def name_forms(person_id: str, handles: list[str]) -> set[str]:
    """Every form of the id and handles a platform payload could carry."""
    out: set[str] = set()
    for name in (person_id, *handles):
        bare = name.split(":", 1)[1] if ":" in name else name
        bare = bare.removeprefix("u/").lstrip("@")
        out |= {name, bare, "@" + bare}
        if "@" in bare:
            out.add(bare.split("@", 1)[0])
    return {n for n in out if n and n != "@"}


async def _forget_directory(redis: Any, keys: Keys, handles: set[str]) -> None:
    """Drop the normalizer's directory entries (platform reference -> handle) that point at
    the person's handles, and the handles from the group conversations' member lists."""
    from services.sources import SOURCES

    for source in SOURCES:
        key = keys.directory(source)
        doomed = [
            field
            async for field, value in redis.hscan_iter(key, count=1000)
            if (value.decode() if isinstance(value, bytes) else value) in handles
        ]
        if doomed:
            await redis.hdel(key, *doomed)
    # and out of every group conversation's members (services/normalizer/members.py)
    async for key in redis.scan_iter(match=keys.members_pattern(), count=1000):
        await redis.srem(key, *handles)
    await redis.srem(keys.automated_flagged, *handles)


@router.get("/healthz", summary="Liveness and Redis connectivity")
async def healthz(request: Request) -> dict[str, Any]:
    ok = bool(await request.app.state.redis.ping())
    return {"status": "ok" if ok else "degraded", "redis": ok}
