"""Delivery policy and feed items (pure: no I/O imports).

A suggestion reaches feeds only with both people's consent (double opt-in) and neither
excluding the other. Quiet hours, a pause and the weekly cap *hold* a delivery until it is
allowed (nothing is dropped for timing); no consent, an exclusion or a disallowed source drop
it (and nobody is told why: an exclusion is confidential).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from schemas.people import FeedItem, Preferences
from schemas.suggestions import (
    GROUP_ADAPTER,
    SUGGESTION_ADAPTER,
    GateRecord,
    GroupSuggestion,
    Suggestion,
)
from services.matcher import sentences

#: Local hours in which a meeting may be proposed.
DAY_START, DAY_END = 9, 21


@dataclass(frozen=True)
class Decision:
    action: Literal["deliver", "hold", "drop"]
    reason: str = ""
    until: datetime | None = None
    #: every delivery gate in order, each with its value, threshold and pass (issue 39): what
    #: the notifier decided and why, for operators (``realconnect explain``). Never shown to
    #: the people: a decline, an exclusion, consent and quiet hours are theirs alone.
    gates: tuple[GateRecord, ...] = ()

    def record(self, now: datetime) -> dict[str, Any]:
        return {
            "action": self.action,
            "decided_by": self.reason or None,
            "at": now.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "gates": [g.model_dump() for g in self.gates],
        }


def week_of(now: datetime, tz: str) -> str:
    y, w, _ = now.astimezone(ZoneInfo(tz)).isocalendar()
    return f"{y}-W{w:02d}"


def _local_midnight(d: date, tz: str) -> datetime:
    return datetime.combine(d, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def _quiet_until(p: Preferences, now: datetime) -> datetime | None:
    if p.quiet_hours is None:
        return None
    tz = ZoneInfo(p.time_zone)
    local = now.astimezone(tz)
    start = time.fromisoformat(p.quiet_hours.start)
    end = time.fromisoformat(p.quiet_hours.end)
    t = local.time()
    inside = start <= t < end if start <= end else (t >= start or t < end)
    if not inside:
        return None
    end_day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(UTC)


def decide(
    suggestion: Suggestion,
    prefs: dict[str, Preferences | None],
    now: datetime,
    sent_this_week: dict[str, int],
) -> Decision:
    used = set(suggestion.evidence.get("sources") or [])
    return decide_for(suggestion.pair, used, prefs, now, sent_this_week)


def decide_group(
    group: GroupSuggestion,
    prefs: dict[str, Preferences | None],
    now: datetime,
    sent_this_week: dict[str, int],
) -> Decision:
    """A group meetup: every member's consent, no member excluding another, and every
    member's pause, quiet hours and weekly cap (a group suggestion counts against each
    member's cap). A group's evidence is the members' circles, which do not keep sources:
    a member who limits the sources used for them is not suggested a group."""
    return decide_for(group.members, None, prefs, now, sent_this_week)


def decide_for(
    people: tuple[str, ...],
    used: set[str] | None,
    prefs: dict[str, Preferences | None],
    now: datetime,
    sent_this_week: dict[str, int],
) -> Decision:
    """The delivery policy for ``people`` together; ``used``: the sources the evidence came
    from (None: not known)."""
    ps = [prefs.get(person) for person in people]
    gates: list[GateRecord] = []

    def gate(name: str, passed: bool, value: Any, threshold: Any, says: str) -> None:
        gates.append(
            GateRecord(name=name, passed=passed, value=value, threshold=threshold, says=says)
        )

    opted = sum(1 for p in ps if p is not None and p.opted_in)
    gate("consent", opted == len(people), opted, len(people), f"{opted} of {len(people)} opted in")
    chosen = [p for p in ps if p is not None]
    exclusions = sum(
        1
        for person, p in zip(people, ps, strict=True)
        if p is not None
        for o in people
        if o != person and o in p.never_with
    )
    gate("never_with", exclusions == 0, exclusions, 0, f"{exclusions} asked never to be paired")
    limited = sum(
        1 for p in chosen if p.sources is not None and (used is None or not used <= set(p.sources))
    )
    gate(
        "sources",
        limited == 0,
        ",".join(sorted(used)) if used is not None else None,
        "each person's allowed sources",
        f"{limited} of {len(people)} limit the sources the evidence came from",
    )
    holds: list[tuple[datetime, str]] = []
    for person, p in zip(people, ps, strict=True):
        if p is None or not p.opted_in:
            continue
        if (
            p.paused_until is not None
            and now.astimezone(ZoneInfo(p.time_zone)).date() <= p.paused_until
        ):
            holds.append(
                (_local_midnight(p.paused_until + timedelta(days=1), p.time_zone), "paused")
            )
        if (q := _quiet_until(p, now)) is not None:
            holds.append((q, "quiet_hours"))
        if sent_this_week.get(person, 0) >= p.max_per_week:
            local = now.astimezone(ZoneInfo(p.time_zone)).date()
            monday = local + timedelta(days=7 - local.weekday())
            holds.append((_local_midnight(monday, p.time_zone), "weekly_cap"))
    for name, says in (
        ("paused", "someone paused suggestions"),
        ("quiet_hours", "someone's quiet hours"),
        ("weekly_cap", "someone's weekly cap is reached"),
    ):
        until = max((u for u, why in holds if why == name), default=None)
        gate(
            name,
            until is None,
            None if until is None else until.isoformat(),
            None,
            f"held until {until.isoformat()}: {says}" if until is not None else f"no {name}",
        )
    done = tuple(gates)
    for g in done:  # consent, exclusions and sources drop a suggestion; the rest hold it
        if not g.passed and g.name in _DROP_REASON:
            return Decision("drop", _DROP_REASON[g.name], gates=done)
    if holds:
        until, reason = max(holds)
        return Decision("hold", reason, until, gates=done)
    return Decision("deliver", gates=done)


#: the reason each dropping gate gives (metrics and logs kept their names)
_DROP_REASON: Final = {"consent": "consent", "never_with": "excluded", "sources": "sources"}


def parse_held(raw: bytes) -> Suggestion | GroupSuggestion:
    """A held delivery: a pair's suggestion or a group's (a group has ``members``)."""
    if b'"members"' in raw:
        return GROUP_ADAPTER.validate_json(raw)
    return SUGGESTION_ADAPTER.validate_json(raw)


def items_for(suggestion: Suggestion, now: datetime) -> tuple[FeedItem, FeedItem]:
    """One item for each person of the pair, naming the other."""
    a, b = suggestion.pair
    return (_item(suggestion, a, b, now), _item(suggestion, b, a, now))


def _item(s: Suggestion, person: str, other: str, now: datetime) -> FeedItem:
    return FeedItem(
        item_id=s.suggestion_id,
        type="suggestion",
        person_id=person,
        other_person_id=other,
        suggestion_id=s.suggestion_id,
        score=s.score,
        suggested_at=s.suggested_at,
        delivered_at=now,
        explanation=s.explanation,
        evidence=s.evidence,
        meetup=s.evidence.get("meetup"),
    )


def meeting_window(zones: list[str], now: datetime) -> dict[str, Any]:
    """The first hour, from tomorrow on, that is daytime (09-21) for everyone."""
    tzs = [ZoneInfo(z) for z in zones] or [ZoneInfo("UTC")]
    start = (
        (now + timedelta(days=1)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    )

    for h in range(24 * 7):
        t = start + timedelta(hours=h)
        if all(DAY_START <= t.astimezone(z).hour < DAY_END - 1 for z in tzs):
            return {
                "start": t.isoformat(),
                "end": (t + timedelta(hours=1)).isoformat(),
                "local": {str(z): t.astimezone(z).strftime("%a %H:%M") for z in tzs},
            }
    return {"start": None, "end": None, "local": {}}  # no shared daytime (antipodes)


def mutual_items(
    mine: FeedItem, theirs: FeedItem, now: datetime, zones: list[str]
) -> tuple[FeedItem, FeedItem]:
    """Both accepted: each feed gets a "mutual" item with the proposed meetup."""
    proposal = dict(mine.meetup or {"kind": "video_call"})
    proposal["window"] = meeting_window(zones, now)
    item_id = hashlib.sha256(f"{mine.suggestion_id}|mutual".encode()).hexdigest()[:32]

    def make(base: FeedItem) -> FeedItem:
        return base.model_copy(
            update={
                "item_id": item_id,
                "type": "mutual",
                "delivered_at": now,
                "meetup": proposal,
                "read": False,
                "response": None,
                "responded_at": None,
                "snoozed_until": None,
                "explanation": sentences.mutual(proposal),
            }
        )

    return make(mine), make(theirs)


def group_items(g: GroupSuggestion, now: datetime, zones: list[str]) -> tuple[FeedItem, ...]:
    """One item for each member of a group, naming them all (the item id is the group's)."""
    meetup = {"kind": "group", "size": len(g.members), "time_zones": zones}
    return tuple(
        FeedItem(
            item_id=g.group_id,
            type="group",
            person_id=m,
            other_person_id=g.group_id,
            suggestion_id=g.group_id,
            score=0.0,
            suggested_at=g.suggested_at,
            delivered_at=now,
            explanation=g.explanation,
            evidence={"ties": {k: v.model_dump(mode="json") for k, v in g.ties.items()}},
            meetup=meetup,
            members=g.members,
        )
        for m in g.members
    )


#: at least this many members must say yes before a group meetup is on
GROUP_ON_AT: Final = 3


def group_on_items(
    answered: list[FeedItem], now: datetime, zones: list[str]
) -> tuple[FeedItem, ...]:
    """Three or more members of a group said yes: a "group_on" item for each of them, naming
    only those who said yes (a decline, or no answer yet, stays private), with a proposed
    hour that is daytime for all of them. Empty while fewer than three said yes."""
    yes = sorted(i.person_id for i in answered if i.response in ("accepted", "met"))
    if len(yes) < GROUP_ON_AT:
        return ()
    first = answered[0]
    item_id = hashlib.sha256(f"{first.suggestion_id}|on".encode()).hexdigest()[:32]
    proposal = {"kind": "group", "size": len(yes), "window": meeting_window(zones, now)}
    return tuple(
        FeedItem(
            item_id=item_id,
            type="group_on",
            person_id=p,
            other_person_id=first.other_person_id,
            suggestion_id=first.suggestion_id,
            score=0.0,
            suggested_at=first.suggested_at,
            delivered_at=now,
            explanation=sentences.group_on(len(yes)),
            evidence=first.evidence,
            meetup=proposal,
            members=tuple(yes),
        )
        for p in yes
    )
