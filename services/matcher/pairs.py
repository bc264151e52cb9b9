"""Pair state and the suggestion decision (pure: no faust, aiokafka or redis imports).

``step(state, interaction, rule)`` folds one interaction into the state of its unordered
pair and says whether the pair has just become worth a meetup suggestion. Every decision
uses event time (``occurred_at``), so replaying history gives what live traffic would.
State is bounded whatever the pair's history length: day, source and event-id memories
are capped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from schemas.events import Interaction
from schemas.suggestions import Suggestion
from services.matcher.scoring import counts_as_exchange

#: Caps that keep one pair's state small however long the pair has talked.
MAX_DAYS: Final = 64
MAX_SOURCES: Final = 16
MAX_RECENT_IDS: Final = 256

_SOURCE_NAMES: Final = {
    "phone": "the phone",
    "github": "GitHub",
    "bluesky": "Bluesky",
    "mastodon": "Mastodon",
    "reddit": "Reddit",
    "slack": "Slack",
    "discord": "Discord",
}
_PLURAL: Final = {
    "share": "shares",
    "comment": "comments",
    "reply": "replies",
    "mention": "mentions",
    "message": "messages",
    "call": "calls",
    "like": "likes",
}


@dataclass(frozen=True)
class Rule:
    """The foundation rule: enough non-like exchanges each way, on enough distinct days."""

    min_exchanges_per_direction: int = 3
    min_distinct_days: int = 2


@dataclass(frozen=True, slots=True)
class PairState:
    """What realconnect remembers about two people (``a`` < ``b``). No message text."""

    a: str
    b: str
    n_ab: int = 0  # exchanges from a to b
    n_ba: int = 0  # exchanges from b to a
    likes: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    days: tuple[int, ...] = ()  # distinct UTC days (proleptic ordinals), most recent MAX_DAYS
    sources: tuple[str, ...] = ()
    threads: int = 0  # interactions that belong to a thread
    first_at: float | None = None  # epoch seconds, event time
    last_at: float | None = None
    recent_ids: tuple[int, ...] = ()  # hashes of recent (source, event_id): duplicates absorbed
    suggestion_id: str | None = None
    suggested_at: float | None = None

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "a": self.a,
                "b": self.b,
                "n_ab": self.n_ab,
                "n_ba": self.n_ba,
                "likes": self.likes,
                "kinds": self.kinds,
                "days": self.days,
                "sources": self.sources,
                "threads": self.threads,
                "first_at": self.first_at,
                "last_at": self.last_at,
                "recent_ids": self.recent_ids,
                "suggestion_id": self.suggestion_id,
                "suggested_at": self.suggested_at,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> PairState:
        d: dict[str, Any] = orjson.loads(raw)
        d["days"] = tuple(d["days"])
        d["sources"] = tuple(d["sources"])
        d["recent_ids"] = tuple(d["recent_ids"])
        return cls(**d)


def event_hash(interaction: Interaction) -> int:
    """A 63-bit hash of the event's identity, for duplicate absorption."""
    digest = hashlib.blake2b(
        f"{interaction.source}\x1f{interaction.event_id}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") >> 1


def suggestion_id(a: str, b: str, trigger: Interaction) -> str:
    """Deterministic: the same pair and trigger give the same id, so replays never duplicate."""
    raw = f"{a}|{b}|{trigger.source}|{trigger.event_id}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _add_bounded_sorted(values: tuple[int, ...], value: int, cap: int) -> tuple[int, ...]:
    if value in values:
        return values
    merged = tuple(sorted((*values, value)))
    return merged[-cap:]


def step(
    state: PairState | None, interaction: Interaction, rule: Rule
) -> tuple[PairState, Suggestion | None]:
    """Fold ``interaction`` into its pair's state; return the new state and any suggestion.

    A duplicate delivery of an event already folded in returns ``state`` unchanged (the same
    object), so at-least-once delivery never changes a result.
    """
    a, b = interaction.pair
    if state is None:
        state = PairState(a=a, b=b)
    h = event_hash(interaction)
    if h in state.recent_ids:
        return state, None

    ts = interaction.occurred_at.timestamp()
    day = interaction.occurred_at.astimezone(UTC).date().toordinal()
    is_exchange = counts_as_exchange(interaction)
    forward = interaction.actor == a
    kinds = dict(state.kinds)
    kinds[interaction.kind] = kinds.get(interaction.kind, 0) + 1
    sources = state.sources
    if interaction.source not in sources and len(sources) < MAX_SOURCES:
        sources = tuple(sorted((*sources, interaction.source)))

    new = replace(
        state,
        n_ab=state.n_ab + (1 if is_exchange and forward else 0),
        n_ba=state.n_ba + (1 if is_exchange and not forward else 0),
        likes=state.likes + (0 if is_exchange else 1),
        kinds=kinds,
        days=_add_bounded_sorted(state.days, day, MAX_DAYS) if is_exchange else state.days,
        sources=sources,
        threads=state.threads + (1 if interaction.thread_id else 0),
        first_at=ts if state.first_at is None else min(state.first_at, ts),
        last_at=ts if state.last_at is None else max(state.last_at, ts),
        recent_ids=(*state.recent_ids, h)[-MAX_RECENT_IDS:],
    )
    if new.suggestion_id is not None or not qualifies(new, rule):
        return new, None

    sid = suggestion_id(a, b, interaction)
    new = replace(new, suggestion_id=sid, suggested_at=ts)
    return new, Suggestion(
        suggestion_id=sid,
        pair=(a, b),
        score=score(new),
        suggested_at=interaction.occurred_at,
        evidence=evidence(new),
        explanation=explain(new),
    )


def qualifies(state: PairState, rule: Rule) -> bool:
    """Reciprocal and repeated: enough exchanges in each direction, on enough distinct days."""
    return (
        state.n_ab >= rule.min_exchanges_per_direction
        and state.n_ba >= rule.min_exchanges_per_direction
        and len(state.days) >= rule.min_distinct_days
    )


def score(state: PairState) -> float:
    """Balanced volume: the harmonic mean of the two directions, scaled by spread over days."""
    if state.n_ab == 0 or state.n_ba == 0:
        return 0.0
    harmonic = 2 * state.n_ab * state.n_ba / (state.n_ab + state.n_ba)
    days = len(state.days)
    return round(harmonic * days / (days + 1), 3)


def evidence(state: PairState) -> dict[str, Any]:
    return {
        "exchanges": {f"{state.a}->{state.b}": state.n_ab, f"{state.b}->{state.a}": state.n_ba},
        "likes": state.likes,
        "kinds": dict(sorted(state.kinds.items())),
        "distinct_days": len(state.days),
        "threads": state.threads,
        "sources": list(state.sources),
        "first_exchange_at": _iso(state.first_at),
        "last_exchange_at": _iso(state.last_at),
    }


def explain(state: PairState) -> str:
    """One human sentence built from the evidence."""
    parts = [
        f"{n} {_PLURAL[k] if n != 1 else k}"
        for k, n in sorted(state.kinds.items(), key=lambda kv: (-kv[1], kv[0]))
        if k != "like"
    ]
    what = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    days = len(state.days)
    span = _span(state.first_at, state.last_at)
    on = " and ".join(_SOURCE_NAMES.get(s, s.capitalize()) for s in state.sources)
    return f"You two have traded {what} in both directions on {days} different days{span}, on {on}."


def _span(first: float | None, last: float | None) -> str:
    if first is None or last is None:
        return ""
    days = (last - first) / 86400
    if days >= 14:
        return f" over {round(days / 7)} weeks"
    if days >= 2:
        return f" over {round(days)} days"
    return ""


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()
