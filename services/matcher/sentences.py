"""How a suggestion reads, in the reader's language (pure: no I/O imports).

A suggestion carries its evidence (``services.matcher.pairs.evidence``: counts, dates,
platforms, what stood out to the model, the meetup); its sentence is written from that
evidence when someone reads it, in their language (``Words``). The matcher writes the English
one into the suggestion (``Suggestion.explanation``) with the same functions, so the English
page says word for word what the topic carries.

A pair reads like this: *"You two have traded 23 replies and 4 messages over 7 weeks on
Mastodon and Slack. You kept in touch in 5 separate weeks, and you tend to answer each other
within a day. You're both in Lisbon — coffee?"*: what they exchanged, over how long, where;
then what stood out to the model, as things a person would say of a friendship; then the
meetup. Only meaningful exchanges are counted (a "lol" is not a reply traded), and no number
is an internal one (no scores, no feature names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from services.common.words import ENGLISH, Words

DAY: Final = 86400.0
WEEK: Final = 7 * DAY
#: how many kinds of exchange a sentence names (the most frequent)
KINDS_NAMED: Final = 3
#: how many things that stood out a sentence names
STOOD_OUT_NAMED: Final = 2


def _kind(w: Words, kind: str, n: int) -> str | None:
    """``n`` exchanges of one kind ("23 replies"), or None for a kind not counted."""
    count = w.number(n)
    match kind:
        case "reply":
            return w.ngettext("{n} reply", "{n} replies", n).format(n=count)
        case "message":
            return w.ngettext("{n} message", "{n} messages", n).format(n=count)
        case "comment":
            return w.ngettext("{n} comment", "{n} comments", n).format(n=count)
        case "mention":
            return w.ngettext("{n} mention", "{n} mentions", n).format(n=count)
        case "share":
            return w.ngettext("{n} share", "{n} shares", n).format(n=count)
        case "call":
            return w.ngettext("{n} call", "{n} calls", n).format(n=count)
    return None


def platform(w: Words, source: str) -> str:
    """A platform as a sentence names it (its own name, or "the phone")."""
    match source:
        case "phone":
            return w.gettext("the phone")
        case "generic":
            return w.gettext("the web")
        case "github":
            return "GitHub"
    return source.capitalize()


def _when(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _span(ev: Mapping[str, Any]) -> float:
    """Seconds from the pair's first meaningful exchange to its latest (0: not known)."""
    first, last = _when(ev.get("first_exchange_at")), _when(ev.get("last_exchange_at"))
    return (last - first) if first is not None and last is not None else 0.0


def _span_weeks(ev: Mapping[str, Any]) -> int:
    """How many weeks the opening says the two have talked over (0: it gives no weeks)."""
    span = _span(ev)
    if span < 2 * WEEK:
        return 0
    # six and a half weeks from a Sunday touch eight calendar weeks: say the larger, so that
    # "over 8 weeks" never sits beside "in 8 different weeks" of a six-week span
    return max(round(span / WEEK), int(ev.get("distinct_weeks") or 0))


def _opening(w: Words, ev: Mapping[str, Any]) -> str:
    kinds: Mapping[str, int] = ev.get("meaningful_kinds") or ev.get("kinds") or {}
    counted = sorted(((int(n), k) for k, n in kinds.items() if n), reverse=True)
    named = [t for n, k in counted if (t := _kind(w, k, n)) is not None][:KINDS_NAMED]
    what = w.list(named) or w.gettext("messages")
    sources = [str(s) for s in ev.get("sources") or ()]
    # texts and calls alone need no "on the phone": that is what they are
    where = "" if sources == ["phone"] else w.list(platform(w, s) for s in sources)
    span = _span(ev)
    if span >= 2 * WEEK:
        weeks = _span_weeks(ev)
        duration = w.ngettext("{n} week", "{n} weeks", weeks).format(n=w.number(weeks))
    elif span >= 2 * DAY:
        days = round(span / DAY)
        duration = w.ngettext("{n} day", "{n} days", days).format(n=w.number(days))
    else:
        duration = ""
    if duration and where:
        return w.gettext("You two have traded {what} over {duration} on {where}.").format(
            what=what, duration=duration, where=where
        )
    if duration:
        return w.gettext("You two have traded {what} over {duration}.").format(
            what=what, duration=duration
        )
    if where:
        return w.gettext("You two have traded {what} lately on {where}.").format(
            what=what, where=where
        )
    return w.gettext("You two have traded {what} lately.").format(what=what)


def _stood_out(w: Words, name: str, ev: Mapping[str, Any]) -> str | None:
    """One thing the model's judgement rested on, as a person would say it (None: nothing
    worth saying, e.g. the span the opening already gives)."""
    match name:
        case "closest":
            rank = int((ev.get("closest") or {}).get("rank") or 0)
            if rank <= 1:
                return w.gettext("you are each other's closest contact")
            return w.gettext("you are both among each other's {n} closest contacts").format(
                n=w.number(rank)
            )
        case "weeks":
            n = int(ev.get("distinct_weeks") or 0)
            over = _span_weeks(ev)
            if n < 2:
                return None
            if over and n >= over:
                return w.gettext("you kept in touch every week")
            if over:
                return w.ngettext(
                    "you kept in touch in {n} of those weeks",
                    "you kept in touch in {n} of those weeks",
                    n,
                ).format(n=w.number(n))
            return w.ngettext(
                "you kept in touch in {n} separate week",
                "you kept in touch in {n} separate weeks",
                n,
            ).format(n=w.number(n))
        case "days":
            n = int(ev.get("distinct_days") or 0)
            if n < 2:
                return None
            return w.ngettext(
                "you talked on {n} different day", "you talked on {n} different days", n
            ).format(n=w.number(n))
        case "back_and_forth":
            return w.gettext("you tend to answer each other within a day")
        case "reciprocal_exchanges":
            return w.gettext("neither of you does all the writing")
        case "exchanges":
            return w.gettext("you write to each other a lot")
        case "balance":
            return w.gettext("you share the conversation evenly")
        case "evenings":
            return w.gettext("you often talk in the evening")
        case "weekends":
            return w.gettext("you talk at weekends too")
        case "call_minutes":
            n = round(float(ev.get("call_minutes") or 0))
            if n < 1:
                return None
            return w.ngettext(
                "you have spent {n} minute on the phone",
                "you have spent {n} minutes on the phone",
                n,
            ).format(n=w.number(n))
        case "longest_call":
            n = round(float(ev.get("longest_call_minutes") or 0))
            if n < 1:
                return None
            return w.ngettext(
                "one of your calls lasted {n} minute", "one of your calls lasted {n} minutes", n
            ).format(n=w.number(n))
        case "recent_strength":
            return w.gettext("you have been in closer touch lately")
    return None  # "span": the opening says how long already


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def meetup(w: Words, where: Mapping[str, Any] | None) -> str:
    if where and where.get("kind") == "coffee" and where.get("city"):
        return w.gettext("You're both in {city} — coffee?").format(city=where["city"])
    return w.gettext("How about a video call?")


def pair(ev: Mapping[str, Any], w: Words = ENGLISH) -> str:
    """The sentence of a pair's suggestion, from its evidence, in ``w``'s language."""
    names: Sequence[str] = (ev.get("tie_strength") or {}).get("stood_out") or ()
    clauses = [c for n in names if (c := _stood_out(w, str(n), ev)) is not None]
    parts = [_opening(w, ev)]
    if clauses:
        parts.append(_capital(w.list(clauses[:STOOD_OUT_NAMED])) + ".")
    parts.append(meetup(w, ev.get("meetup")))
    return " ".join(parts)


def count(w: Words, n: int) -> str:
    """A small number of people in words ("three"), as a sentence says it; larger in digits."""
    match n:
        case 2:
            return w.pgettext("people", "two")
        case 3:
            return w.pgettext("people", "three")
        case 4:
            return w.pgettext("people", "four")
        case 5:
            return w.pgettext("people", "five")
        case 6:
            return w.pgettext("people", "six")
    return w.number(n)


def group(size: int, w: Words = ENGLISH) -> str:
    """The sentence of a group's suggestion: why together. Who is in it is the heading's
    (by the names people know each other by): a sentence never carries ids."""
    return w.ngettext(
        "You all write to each other, back and forth, and each of you is among the others' "
        "closest contacts. A table for {n}?",
        "You all write to each other, back and forth, and each of you is among the others' "
        "closest contacts. A table for {n}?",
        size,
    ).format(n=count(w, size))


def what(where: Mapping[str, Any] | None, w: Words = ENGLISH) -> str:
    """The meetup proposed, as part of a sentence ("coffee in Lisbon")."""
    if where and where.get("kind") == "coffee" and where.get("city"):
        return w.gettext("coffee in {city}").format(city=where["city"])
    if where and where.get("kind") == "group":
        n = int(where.get("size") or 3)
        return w.ngettext("a meetup for the {n} of you", "a meetup for the {n} of you", n).format(
            n=count(w, n)
        )
    return w.gettext("a video call")


def headline(where: Mapping[str, Any] | None, w: Words = ENGLISH) -> str:
    """The meetup proposed, on its own ("Coffee in Lisbon")."""
    return _capital(what(where, w))


def mutual(where: Mapping[str, Any] | None, w: Words = ENGLISH) -> str:
    """Both said yes."""
    if where and where.get("kind") == "coffee" and where.get("city"):
        return w.gettext("You both said yes! Coffee in {city}?").format(city=where["city"])
    return w.gettext("You both said yes! How about a video call?")


def group_on(size: int, w: Words = ENGLISH) -> str:
    """Three or more of a group said yes."""
    return w.ngettext(
        "It's on: all {n} of you said yes. How about meeting?",
        "It's on: all {n} of you said yes. How about meeting?",
        size,
    ).format(n=count(w, size))


def item(
    kind: str,
    evidence: Mapping[str, Any] | None,
    where: Mapping[str, Any] | None,
    size: int,
    w: Words = ENGLISH,
) -> str | None:
    """The sentence of a feed item of type ``kind`` in ``w``'s language (None: a suggestion
    whose evidence cannot say it, one written before the evidence carried its facts; its
    stored sentence is shown then)."""
    ev = evidence or {}
    if kind == "mutual":
        return mutual(where, w)
    if kind == "group":
        return group(size, w)
    if kind == "group_on":
        return group_on(size, w)
    if not ev.get("sources") or not (ev.get("meaningful_kinds") or ev.get("kinds")):
        return None
    return pair(ev, w)


def slot(where: Mapping[str, Any] | None, w: Words = ENGLISH) -> list[str]:
    """The proposed hour in UTC and in each person's zone, in ``w``'s words ("Wed, Dec 9,
    12:30 PM in Europe/Lisbon"); empty when no hour is proposed."""
    window = (where or {}).get("window") or {}
    if not window.get("start"):
        return []
    start = datetime.fromisoformat(window["start"])
    lines = [w.gettext("{time} UTC").format(time=w.in_zone("UTC").datetime(start))]
    lines += [
        w.gettext("{time} in {zone}").format(time=w.in_zone(zone).datetime(start), zone=zone)
        for zone in sorted(window.get("local") or {})
    ]
    return lines
