"""Each person's web page: their suggestions, answers and preferences (server-rendered).

- **Sign-in** by a one-time link (``POST /v1/people/{id}/signin-links``, or the link in an
  email). Opening it shows a button; pressing it uses the link up and opens a session: an
  HttpOnly, SameSite=Lax cookie (Secure in prod) naming a session in Redis. A link scanner
  that only GETs the link signs nobody in and does not use it up.
- **CSRF**: every form carries the session's token, checked on every POST (a synchronizer
  token; SameSite=Lax is a second line).
- **Object-level authorisation**: every item is looked up in the signed-in person's own feed;
  anyone else's item id is a 404, as in the API.
- The page works without JavaScript (plain forms); a small script adds live updates (server-
  sent events) and announces new items to screen readers.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args
from zoneinfo import available_timezones

import structlog
from babel import Locale
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup, escape
from pydantic import ValidationError

from schemas.people import Channel, FeedItem, Preferences
from schemas.topics import RAW_SOURCES
from services.common import i18n
from services.common.problems import Problem
from services.common.words import ENGLISH, LANGUAGES, N_, Words
from services.feeds import chat
from services.feeds.routes import (
    Action,
    ActionBody,
    ItemPath,
    _store,
    answer,
    check_webhook_target,
    live_stream,
    store_preferences,
    why_not_for,
)
from services.matcher import sentences
from services.notifier.mail import invite

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/app", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
#: the words of the page being rendered (set by `_page` just before it renders)
_WORDS: ContextVar[Words] = ContextVar("page_words", default=ENGLISH)
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    gettext=lambda m: _WORDS.get().gettext(m),
    ngettext=lambda s, p, n: _WORDS.get().ngettext(s, p, n),
    pgettext=lambda c, m: _WORDS.get().pgettext(c, m),
    newstyle=True,
)


@pass_context
def who(context: Any, person_id: str) -> Markup:
    """A person as the page shows them: by the name of their profile (the page's ``names``),
    with the handle and platform beside it, never by an id alone; each in its own bidi
    isolate (so that no right-to-left text in it can reorder what follows). The platform is
    shown so that one person cannot pass for another of the same name elsewhere."""
    w: Words = context.get("words") or ENGLISH
    name = (context.get("names") or {}).get(person_id)
    source, _, handle = person_id.partition(":")
    on = escape(w.gettext("{handle} on {platform}"))
    place = sentences.platform(w, source)
    if handle and source in RAW_SOURCES:
        where = on.format(handle=Markup("<bdi>{}</bdi>").format(handle), platform=place)
    else:
        where = Markup("<bdi>{}</bdi>").format(person_id)
    if name:
        return Markup('<bdi class="who">{}</bdi> <span class="handle">({})</span>').format(
            name, where
        )
    if handle and source in RAW_SOURCES:
        return Markup('<bdi class="who">{}</bdi> <span class="platform">{}</span>').format(
            handle, w.gettext("on {platform}").format(platform=place)
        )
    return Markup('<bdi class="who">{}</bdi>').format(person_id)


async def _with_names(request: Request, context: dict[str, Any], *people: str) -> dict[str, Any]:
    """``context`` with the display names of ``people``."""
    return {**context, "names": await _store(request).names(people)}


async def _entries(
    request: Request, person: str, w: Words
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The person's items as the page shows them, with the names of everyone they name."""
    items = await _items(request, person)
    people = {person, *(o for i in items for o in i.others)}
    names = await _store(request).names(sorted(people))
    return _view(items, w, names), names


@pass_context
def people(context: Any, shown: Iterable[Markup]) -> Markup:
    """People (each already `who`) joined as the page's language joins a list."""
    w: Words = context.get("words") or ENGLISH
    each = list(shown)
    keys = [f"\x00{i}\x00" for i in range(len(each))]
    joined = escape(w.list(keys))
    for key, person in zip(keys, each, strict=True):
        joined = joined.replace(key, escape(person))  # Markup's replace escapes what it adds
    return joined


@pass_context
def answer_word(context: Any, response: str) -> str:
    """A person's answer, as the page says it back to them."""
    w: Words = context.get("words") or ENGLISH
    match response:
        case "accepted":
            return w.pgettext("answer", "yes")
        case "declined":
            return w.pgettext("answer", "no, thanks")
        case "snoozed":
            return w.pgettext("answer", "ask me later")
        case "met":
            return w.pgettext("answer", "we met")
    return response


templates.env.filters["who"] = who
templates.env.filters["people"] = people
templates.env.filters["answer"] = answer_word
COOKIE: Final = "rc_session"
#: the pre-sign-in cookie: set by the page a link opens, required (and matched) by its POST
SIGNIN_COOKIE: Final = "rc_signin"
#: request state: (session id, (person, CSRF token)) as the rate limit verified it
VERIFIED_SESSION: Final = "verified_session"
ZONES: Final = sorted(available_timezones() | {"UTC"})


@dataclass(frozen=True)
class Signed:
    """The signed-in person of a request: who, their CSRF token, their session's cookie."""

    person: str
    csrf: str
    sid: str


async def _signed(request: Request) -> Signed | None:
    sid = request.cookies.get(COOKIE)
    if not sid or len(sid) > 128:
        return None
    known = getattr(request.state, VERIFIED_SESSION, None)  # the rate limit's look-up
    found = (
        known[1] if known is not None and known[0] == sid else await _store(request).session(sid)
    )
    return None if found is None else Signed(found[0], found[1], sid)


class SignedOut(Exception):
    """Raised where a page needs a session; answered with the signed-out page (401)."""


async def signed_in(request: Request) -> Signed:
    who = await _signed(request)
    if who is None:
        raise SignedOut
    return who


Me = Annotated[Signed, Depends(signed_in)]


def _check_csrf(who: Signed, csrf: str) -> None:
    if not hmac.compare_digest(csrf.encode(), who.csrf.encode()):
        raise Problem(403, N_("Form expired"), N_("Reload the page and try again."))


def words_of(request: Request, prefs: Preferences | None = None) -> Words:
    """The words of a page: the person's language and zone, else the browser's language."""
    return i18n.words_for(prefs, request.headers.get("accept-language"))


async def _words(request: Request, person: str) -> Words:
    return words_of(request, await _store(request).preferences(person))


def _page(
    request: Request,
    name: str,
    context: dict[str, Any],
    status: int = 200,
    words: Words | None = None,
) -> HTMLResponse:
    w = words or words_of(request)
    headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    headers["Content-Language"] = w.language
    token = _WORDS.set(w)
    try:
        return templates.TemplateResponse(
            request,
            name,
            {"request": request, "words": w, "lang": w.language, **context},
            status_code=status,
            headers=headers,
        )
    finally:
        _WORDS.reset(token)


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """A page that says what went wrong (``title`` and ``detail`` are message ids, marked
    with `N_` where they are written: said here in the reader's language)."""
    w = words_of(request)
    context = {"title": w.gettext(title), "detail": w.gettext(detail)}
    return _page(request, "message.html", context, status, w)


# --- what an item says, in plain words --------------------------------------------------


def plain_evidence(
    item: FeedItem, w: Words = ENGLISH, names: dict[str, str] | None = None
) -> list[str]:
    """The evidence of a suggestion as sentences (no scores or field names)."""
    ev = item.evidence or {}
    if item.is_group:
        return group_evidence(item, w, names)
    me, other = item.person_id, item.other_person_id
    them = (names or {}).get(other) or other
    out: list[str] = []
    ex = ev.get("exchanges") or {}
    mine, theirs = ex.get(f"{me}->{other}"), ex.get(f"{other}->{me}")
    if mine is not None and theirs is not None:
        n = mine + theirs
        out.append(
            w.ngettext(
                "{n} thoughtful exchange: {mine} from you, {theirs} from {other}.",
                "{n} thoughtful exchanges: {mine} from you, {theirs} from {other}.",
                n,
            ).format(n=w.number(n), mine=w.number(mine), theirs=w.number(theirs), other=them)
        )
    days, weeks = ev.get("distinct_days"), ev.get("distinct_weeks")
    if days and weeks:
        on_days = w.ngettext("on {n} different day", "on {n} different days", days)
        in_weeks = w.ngettext("in {n} different week", "in {n} different weeks", weeks)
        out.append(
            w.gettext("In touch {days}, {weeks}.").format(
                days=on_days.format(n=w.number(days)), weeks=in_weeks.format(n=w.number(weeks))
            )
        )
    elif days:
        out.append(
            w.ngettext(
                "In touch on {n} different day.", "In touch on {n} different days.", days
            ).format(n=w.number(days))
        )
    if ev.get("call_minutes"):
        minutes, longest = round(ev["call_minutes"]), round(ev.get("longest_call_minutes") or 0)
        out.append(
            w.ngettext(
                "{n} minute on the phone; the longest call was {longest} minutes.",
                "{n} minutes on the phone; the longest call was {longest} minutes.",
                minutes,
            ).format(n=w.number(minutes), longest=w.number(longest))
        )
    sources = ev.get("sources") or []
    if sources:
        where = w.list(sentences.platform(w, str(s)) for s in sources)
        out.append(w.gettext("Where: {platforms}.").format(platforms=where))
    tie = ev.get("tie_strength") or {}
    if tie.get("probability") is not None:
        out.append(
            w.gettext(
                "How close this tie looks: {percent} (from patterns of contact, never from "
                "what you wrote)."
            ).format(percent=w.percent(float(tie["probability"])))
        )
    return out


def group_evidence(
    item: FeedItem, w: Words = ENGLISH, names: dict[str, str] | None = None
) -> list[str]:
    """Why a group: for each of the others, where you and they rank in each other's circle."""
    me = item.person_id
    ties = (item.evidence or {}).get("ties") or {}
    out = []
    for other in item.others:
        a, b = sorted((me, other))
        tie = ties.get(f"{a}|{b}")
        if not tie:
            continue
        mine, theirs = tie["rank"] if a == me else tie["rank"][::-1]
        out.append(_ranks(w, (names or {}).get(other) or other, int(mine), int(theirs)))
    if len(item.others) > 1:
        out.append(
            w.gettext(
                "All of you talk with each other, back and forth, not only with one of you "
                "(from patterns of contact, never from what you wrote)."
            )
        )
    return out


def _ranks(w: Words, other: str, mine: int, theirs: int) -> str:
    """Where ``other`` is in your circle, and you in theirs, in words."""
    if mine == 1 and theirs == 1:
        said = w.gettext("{other} is your closest contact, and you are theirs.")
    elif mine == 1:
        said = w.gettext("{other} is your closest contact; you are among their {theirs} closest.")
    elif theirs == 1:
        said = w.gettext("{other} is among your {mine} closest contacts; you are their closest.")
    else:
        said = w.gettext(
            "{other} is among your {mine} closest contacts; you are among their {theirs} closest."
        )
    return said.format(other=other, mine=w.number(mine), theirs=w.number(theirs))


def proposal(item: FeedItem, w: Words = ENGLISH) -> dict[str, Any]:
    """What the item proposes, and (for a mutual item) the hour in each person's zone."""
    m = item.meetup or {}
    slot = sentences.slot(m, w) if item.type in ("mutual", "group_on") else []
    hint = ""
    if not slot and m.get("kind") != "coffee":
        if item.is_group:
            hint = w.gettext(
                "at an hour that is daytime for all of you; the hour is proposed once three "
                "of you say yes"
            )
        else:
            hint = w.gettext(
                "at an hour that is daytime for you both; the hour is proposed once you both "
                "say yes"
            )
        zones = w.list(m.get("time_zones") or [])
        if zones:
            hint = w.gettext("{hint} (time zones: {zones})").format(hint=hint, zones=zones)
    return {"what": sentences.headline(m, w), "slot": slot, "hint": hint}


def _view(
    items: list[FeedItem], w: Words = ENGLISH, names: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """What the page shows of each item, in ``w``'s words."""
    return [
        {
            "item": i,
            "said": sentences.item(i.type, i.evidence, i.meetup, len(i.members), w)
            or i.explanation,
            "evidence": plain_evidence(i, w, names),
            "proposal": proposal(i, w),
        }
        for i in items
    ]


async def _items(request: Request, person: str) -> list[FeedItem]:
    items, _ = await _store(request).page(person, limit=100, cursor=None, now=datetime.now(UTC))
    return items


# --- sign-in ----------------------------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(
    request: Request, t: Annotated[str, Query(max_length=128)] = ""
) -> HTMLResponse:
    person = await _store(request).peek_signin(t) if t else None
    if person is None:
        return error_page(
            request,
            410,
            N_("This link no longer works"),
            N_(
                "Sign-in links work once and expire. Ask for a new one, or use the link in "
                "your latest email."
            ),
        )
    settings = request.app.state.settings
    nonce = secrets.token_urlsafe(32)
    context = await _with_names(request, {"person": person, "token": t, "nonce": nonce}, person)
    response = _page(request, "signin.html", context, words=await _words(request, person))
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        max_age=3600,  # while the page is open; a later visit opens the link again
        httponly=True,
        secure=settings.env == "prod",
        samesite="strict",
        path="/app/signin",
    )
    return response


def _same_browser(request: Request, nonce: str) -> bool:
    """Whether a sign-in POST comes from the browser that opened the link, on this site:
    the pre-sign-in cookie (SameSite=Strict, so never sent by another site's form) matches
    the form's value, and the browser does not say the request came from elsewhere."""
    cookie = request.cookies.get(SIGNIN_COOKIE, "")
    if not cookie or not nonce or not hmac.compare_digest(cookie.encode(), nonce.encode()):
        return False
    site = request.headers.get("sec-fetch-site")
    if site is not None:  # what the browser itself says (no page can set it)
        return site in ("same-origin", "none")
    # a browser without Fetch Metadata: its Origin, where it sends a real one (these pages
    # send no-referrer, under which a browser may send "null" for its own forms)
    origin = request.headers.get("origin")
    own = request.app.state.settings.feeds.public_url.rstrip("/")
    return origin in (None, "null", own)


@router.post("/signin")
async def signin(
    request: Request,
    t: Annotated[str, Form(max_length=128)],
    n: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    store = _store(request)
    if not _same_browser(request, n):
        # login CSRF: another site's form cannot sign this browser in as someone else;
        # the link is not used up, so its owner can still open it
        log.warning("signin_refused_other_origin")
        return error_page(
            request,
            403,
            N_("Open the link again"),
            N_(
                "For your safety, sign-in works only from the page your link opened. "
                "Open the link from your email again and press the button there."
            ),
        )
    person = await store.use_signin(t)
    if person is None or await store.is_forgotten(person):
        return error_page(
            request,
            410,
            N_("This link no longer works"),
            N_("Sign-in links work once and expire."),
        )
    settings = request.app.state.settings
    ttl = settings.feeds.session_ttl_days * 86400
    sid, _ = await store.open_session(person, ttl)
    response = RedirectResponse("/app", status_code=303)
    response.delete_cookie(SIGNIN_COOKIE, path="/app/signin")
    response.set_cookie(
        COOKIE,
        sid,
        max_age=ttl,
        httponly=True,
        secure=settings.env == "prod",
        samesite="lax",
        path="/",
    )
    log.info("signed_in")
    return response


@router.post("/signout")
async def signout(request: Request, who: Me, csrf: Annotated[str, Form(max_length=64)]) -> Response:
    _check_csrf(who, csrf)
    await _store(request).close_session(who.sid)
    response = RedirectResponse("/app/signed-out", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/signed-out", response_class=HTMLResponse)
async def signed_out(request: Request) -> HTMLResponse:
    return error_page(
        request,
        200,
        N_("You are signed out"),
        N_("Use the link in your latest email to come back."),
    )


# --- the feed ---------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def feed(request: Request, who: Me) -> HTMLResponse:
    w = await _words(request, who.person)
    entries, names = await _entries(request, who.person, w)
    context = {"person": who.person, "csrf": who.csrf, "entries": entries, "names": names}
    return _page(request, "feed.html", context, words=w)


@router.get("/why-not", response_class=HTMLResponse)
async def why_not_page(
    request: Request, who: Me, other: Annotated[str, Query(alias="with", max_length=256)] = ""
) -> HTMLResponse:
    """ "Why haven't we suggested meeting …?": the same answer as ``GET /v1/me/why-not``
    (services/feeds/why.py), in words; a question it cannot answer says so on the page."""
    w = await _words(request, who.person)
    context: dict[str, Any] = {"person": who.person, "csrf": who.csrf, "other": other.strip()}
    if other.strip():
        try:
            context["answer"] = await why_not_for(request, who.person, other, w)
        except Problem as exc:
            context["problem"] = w.gettext(exc.detail)
    people = (who.person, other.strip())
    return _page(request, "why_not.html", await _with_names(request, context, *people), words=w)


@router.get("/items", response_class=HTMLResponse)
async def items_fragment(request: Request, who: Me) -> HTMLResponse:
    """The list alone (the script swaps it in when a new item arrives)."""
    w = await _words(request, who.person)
    entries, names = await _entries(request, who.person, w)
    context = {"csrf": who.csrf, "entries": entries, "names": names}
    return _page(request, "_items.html", context, words=w)


@router.post("/items/{item_id}/{action}")
async def act(
    request: Request,
    who: Me,
    item_id: ItemPath,
    action: Action,
    csrf: Annotated[str, Form(max_length=64)],
    rating: Annotated[str, Form(max_length=1)] = "",
    snooze_days: Annotated[int, Form(ge=1, le=90)] = 3,
) -> Response:
    _check_csrf(who, csrf)
    body = ActionBody(rating=int(rating) if rating.isdigit() else None, snooze_days=snooze_days)
    await answer(request, who.person, item_id, action, body)
    return RedirectResponse(f"/app#item-{item_id}", status_code=303)


@router.get("/items/{item_id}/invite.ics")
async def calendar_file(request: Request, who: Me, item_id: ItemPath) -> Response:
    item = await _store(request).item(who.person, item_id)
    if item is None:
        raise Problem(404, N_("Not found"), N_("No such item in your feed."))
    prefs = await _store(request).preferences(who.person)
    settings = request.app.state.settings
    ics = invite(
        item,
        organizer=settings.email.sender,
        attendees={who.person: prefs.email if prefs else None},
        method="PUBLISH",
        names=await _store(request).names((who.person, *item.others)),
        words=words_of(request, prefs),
    )
    if ics is None:
        raise Problem(
            404, N_("No meetup yet"), N_("A calendar file exists once you both said yes.")
        )
    return Response(
        ics,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="meetup-{item_id[:12]}.ics"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/stream")
async def stream(request: Request, who: Me) -> Response:
    store = _store(request)

    async def still_valid() -> bool:
        return await store.session(who.sid) is not None

    return live_stream(request, who.person, "session:" + who.sid, still_valid)


# --- preferences ------------------------------------------------------------------------


def _form_prefs(form: Any) -> dict[str, Any]:
    def text(name: str) -> str:
        return str(form.get(name) or "").strip()

    start, end = text("quiet_start"), text("quiet_end")
    sources = [s for s in form.getlist("sources") if s in RAW_SOURCES]
    return {
        "opted_in": form.get("opted_in") == "on",
        "paused_until": text("paused_until") or None,
        "time_zone": text("time_zone") or "UTC",
        "quiet_hours": {"start": start, "end": end} if start or end else None,
        "max_per_week": text("max_per_week") or "0",
        "never_with": [line.strip() for line in text("never_with").splitlines() if line.strip()],
        "sources": None if form.get("all_sources") == "on" else sources,
        "channels": [
            "page",
            *(c for c in get_args(Channel) if c != "page" and form.get(f"channel_{c}") == "on"),
        ],
        "email": text("email") or None,
        "webhook_url": text("webhook_url") or None,
        "language": text("language") or None,
    }


def _prefs_context(
    who: Signed, prefs: Preferences, settings: Any = None, **extra: Any
) -> dict[str, Any]:
    chat_cfg = settings.chat if settings is not None else None
    return {
        "chat_platforms": [p for p in ("slack", "discord") if chat_cfg and chat_cfg.enabled(p)],
        "person": who.person,
        "csrf": who.csrf,
        "prefs": prefs,
        "zones": ZONES,
        "sources": RAW_SOURCES,
        "today": date.today().isoformat(),
        "languages": [(lang, Locale.parse(lang).get_display_name(lang)) for lang in LANGUAGES],
        **extra,
    }


#: the preferences form's fields, as the form labels them (for its errors)
_FIELDS: Final = {
    "opted_in": N_("Suggest people I could meet"),
    "paused_until": N_("Pause until"),
    "time_zone": N_("Time zone"),
    "quiet_hours": N_("Quiet hours"),
    "max_per_week": N_("At most this many suggestions a week"),
    "never_with": N_("Never suggest me with"),
    "sources": N_("Or only these platforms"),
    "channels": N_("Where new suggestions reach me"),
    "email": N_("Email address"),
    "webhook_url": N_("Webhook URL"),
    "language": N_("Language"),
}


def _form_errors(exc: ValidationError | ValueError, w: Words) -> list[str]:
    """What is wrong with the form, field by field, in the person's words."""
    if not isinstance(exc, ValidationError):
        return [
            w.gettext("{field}: {problem}").format(
                field=w.gettext(_FIELDS["webhook_url"]),
                problem=w.gettext("this address cannot receive webhooks from us"),
            )
        ]
    out = []
    for e in exc.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        kind = str(e.get("type", ""))
        if kind in ("greater_than_equal", "less_than_equal"):
            problem = w.gettext("a number from 0 to 100")
        elif kind in ("date_from_datetime_parsing", "date_parsing"):
            problem = w.gettext("a date such as 2026-12-24")
        elif field == "quiet_hours":
            problem = w.gettext("both times, from and to, such as 22:00 and 07:00")
        elif field == "time_zone":
            problem = w.gettext("a time zone from the list")
        elif field == "email":
            problem = w.gettext("an email address such as ann@example.org")
        elif field == "webhook_url":
            problem = w.gettext("an address starting with https://")
        elif field == "channels":
            problem = w.gettext("the address this channel needs")
        else:
            problem = w.gettext("this value is not valid")
        label = w.gettext(_FIELDS[field]) if field in _FIELDS else field
        out.append(w.gettext("{field}: {problem}").format(field=label, problem=problem))
    return out


@router.get("/preferences", response_class=HTMLResponse)
async def preferences_page(
    request: Request,
    who: Me,
    saved: Annotated[int, Query(ge=0, le=1)] = 0,
    linked: Annotated[Literal["sent", "linked", "unlinked"] | None, Query()] = None,
) -> HTMLResponse:
    prefs = await _store(request).preferences(who.person) or Preferences()
    context = await _with_links(request, who, prefs, saved=bool(saved), linked=linked)
    return _page(request, "preferences.html", context, words=words_of(request, prefs))


@router.post("/preferences", response_class=HTMLResponse)
async def save_preferences(request: Request, who: Me) -> Response:
    form = await request.form(max_files=0, max_fields=200)
    _check_csrf(who, str(form.get("csrf") or ""))
    current = await _store(request).preferences(who.person) or Preferences()
    values = _form_prefs(form)
    w = words_of(request, current)
    try:
        prefs = Preferences.model_validate(values)
        if prefs.webhook_url is not None:
            check_webhook_target(request, prefs.webhook_url)
    except (ValidationError, ValueError) as exc:
        errors = _form_errors(exc, w)
        shown = Preferences.model_construct(**{**current.model_dump(), **_safe(values)})
        context = await _with_links(request, who, shown, errors=errors)
        return _page(request, "preferences.html", context, status=422, words=w)
    await store_preferences(request, who.person, prefs)
    return RedirectResponse("/app/preferences?saved=1", status_code=303)


def _safe(values: dict[str, Any]) -> dict[str, Any]:
    """What the person typed, to show it again beside the errors (not validated)."""
    out = dict(values)
    if isinstance(out.get("quiet_hours"), dict):
        out["quiet_hours"] = None
    return out


# -- chat accounts: link with a code the bot sends, unlink ---------------------------------


async def _with_links(
    request: Request, who: Signed, prefs: Preferences, **extra: Any
) -> dict[str, Any]:
    """The preferences page's context, with the person's linked accounts and whether a link
    code is waiting to be entered."""
    linked = await chat.links(request, who.person)
    return _prefs_context(
        who,
        prefs,
        request.app.state.settings,
        links=[h for h in linked.handles if h.startswith(("slack:", "discord:"))],
        pending=linked.pending,
        **extra,
    )


async def _linking(request: Request, who: Signed, step: Awaitable[Any], done: str) -> Response:
    """One step of linking an account, from the page: back to the preferences with
    ``done`` said, or the page again with the problem in the person's words."""
    try:
        await step
    except Problem as exc:
        prefs = await _store(request).preferences(who.person) or Preferences()
        w = words_of(request, prefs)
        context = await _with_links(request, who, prefs, errors=[w.gettext(exc.detail)])
        return _page(request, "preferences.html", context, status=exc.status, words=w)
    return RedirectResponse(f"/app/preferences?linked={done}#chat", status_code=303)


async def _code_for(request: Request, person: str, platform: str, account: str) -> None:
    try:
        body = chat.LinkRequest(platform=platform, account=account)
    except ValidationError as exc:
        raise Problem(
            422, N_("Not an account"), N_("That is not an account id we can use.")
        ) from exc
    await chat.send_link_code(request, person, body)


@router.post("/links")
async def link_account(
    request: Request,
    who: Me,
    csrf: Annotated[str, Form(max_length=64)],
    platform: Annotated[Literal["slack", "discord"], Form()],
    account: Annotated[str, Form(max_length=64)],
) -> Response:
    """Send a one-time code to the account the person names (by DM from the bot)."""
    _check_csrf(who, csrf)
    return await _linking(request, who, _code_for(request, who.person, platform, account), "sent")


@router.post("/links/confirm")
async def confirm_link(
    request: Request,
    who: Me,
    csrf: Annotated[str, Form(max_length=64)],
    code: Annotated[str, Form(max_length=16)],
) -> Response:
    _check_csrf(who, csrf)
    return await _linking(
        request, who, chat.confirm_link(request, who.person, code.strip()), "linked"
    )


@router.post("/links/remove")
async def unlink_account(
    request: Request,
    who: Me,
    csrf: Annotated[str, Form(max_length=64)],
    handle: Annotated[str, Form(max_length=600)],
) -> Response:
    _check_csrf(who, csrf)
    return await _linking(request, who, chat.unlink(request, who.person, handle), "unlinked")
