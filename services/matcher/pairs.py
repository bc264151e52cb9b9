"""Pair state and the suggestion decision (pure: no faust, aiokafka or redis imports).

A pair is suggested when its exchanges are

- **reciprocal**: both people contribute meaningful exchanges (weight >= ``MEANINGFUL``);
- **repeated**: enough of them, on enough distinct days within a window;
- **recent**: time-decayed scores in *both* directions are high enough now, and the last
  meaningful exchange is not too long ago;

and the tie-strength model (``services/matcher/model.py``, fitted on public data and adapted
to people's answers by ``services/matcher/learning.py``) judges the tie close enough:
``Policy.min_probability``. It is not in cooldown, not declined lately, not already meeting
(an ``in_person`` interaction, an accepted or met suggestion). Exchanges across several
sources lower the decayed bar.

Days, weeks, evenings and weekends are the people's local time: the actor's profile time zone,
else the offset the event carried.

Every decision uses event time. By default (``Policy.apply_in_order``) only the **newest
instant waits**: an event is applied as soon as a later one has been seen, of its pair
(`receive`) or in its partition (the matcher's batches flush up to the partition's newest
instant: `newest_instant`), or when it makes the pair qualify (then at once, see
``suggest_early``). Events of the same instant are applied by id, as in the buffering mode;
an event that arrives after a later one is applied at once, at its own age, as a late event:
counts, days, weeks and decayed scores come out exactly as in event-time order; turn-taking
and answer timing follow arrival. So a replay writes a pair state once per batch, not when an
event is buffered and again an hour of event time later, and the decisions for events that
arrive in time order are exactly those of the buffering mode (tests pin it, on the demo's
data and every data set of ``make eval`` too).

With ``apply_in_order`` off, events wait in a small per-pair buffer until they are older than
the pair's newest event by the allowed lateness (default one hour), and are then applied in
``(occurred_at, id)`` order, whatever order they arrived in within it. ``flush`` applies what is
buffered up to a watermark (the matcher's ticks call it); a state written by that mode keeps
its buffer until it is applied.

A suggestion does not wait for the lateness (``Policy.suggest_early``, on by default): when the
buffered events, applied in event-time order, qualify at one of them, they are applied up to
that one at once and the suggestion is made. What this keeps:

- events that arrive **in the order they are applied** (event time; events of the same
  instant by id) give exactly the suggestions, and the state, that waiting for the lateness
  gives: every later event sorts after the trigger;
- events that arrive **shuffled within the lateness** give the same state and suggestions as
  in time order unless a suggestion was made before an earlier event arrived: that event is
  then applied as a late event (counts, days and decayed scores exactly, at its own age;
  turn-taking and answer timing from its arrival) and the suggestion stands, with the evidence
  that had arrived. With ``suggest_early`` off, suggestions wait for the lateness too and do
  not depend on the arrival order within it at all.

State is bounded whatever the history length, and holds no message text: only numbers
computed from it.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from schemas.events import Interaction
from schemas.suggestions import Suggestion
from services.matcher import scoring, sentences
from services.matcher.model import TieModel, describe, vector

MAX_DAYS: Final = 64
MAX_SOURCES: Final = 16
MAX_RECENT_IDS: Final = 256
MAX_THREADS: Final = 32
MAX_PENDING: Final = 512
MAX_WEEKS: Final = 64
DAY: Final = 86400.0
WEEK: Final = 7 * DAY
#: an answer within this long of the other person's exchange is "back and forth"
ANSWER_S: Final = DAY


@dataclass(frozen=True)
class Policy:
    """Every threshold of the decision; each is a setting (``REALCONNECT_MATCHER__*``)."""

    lateness_s: float = 3600.0
    half_life_days: float = 21.0
    window_days: float = 60.0
    min_exchanges_per_direction: int = 3
    min_distinct_days: int = 2
    min_decayed_per_direction: float = 1.0
    max_silence_days: float = 30.0
    cooldown_days: float = 30.0
    #: a suggestion the notifier could not deliver (a person not opted in) holds the pair
    #: back this long instead of ``cooldown_days`` (`cooldown_ends`)
    undelivered_retry_days: float = 1.0
    decline_cooldown_days: float = 180.0
    source_bonus: float = 0.25
    #: suggest as soon as the buffered events, in event-time order, qualify (see `receive`)
    suggest_early: bool = True
    #: only the newest instant waits, not the lateness (see the module)
    apply_in_order: bool = True
    #: the tie-strength model (None: the rules alone decide) and the probability it must give
    model: TieModel | None = None
    min_probability: float = 0.35
    #: the person-relative decision: a pair each of whom is among the other's
    #: ``closest_top`` closest partners (their circles) is suggested at the lower bar
    #: ``closest_min_probability`` (0: off; see `qualifies`)
    closest_top: int = 3
    closest_min_probability: float = 0.25


@dataclass(frozen=True)
class Place:
    """What a person's profile says about where they are."""

    city: str | None = None
    time_zone: str | None = None


# A buffered event: (ts, id hash, forward, base weight, kind, source, thread hash, is_reply,
# ingested at: wall-clock epoch seconds when Kafka got it, for the end-to-end latency metric,
# local offset: seconds east of UTC where the actor is, call duration: seconds or 0)
Pending = tuple[float, int, bool, float, str, str, int, bool, float, float, float]
_PENDING_LEN: Final = 11

#: the worse of the two people's ranks of each other in their circles (1: each is the
#: other's closest partner), None when either circle does not hold the other or is unknown
Closest = Callable[[str, str], int | None]


@dataclass(frozen=True)
class PairState:
    a: str
    b: str
    pending: tuple[Pending, ...] = ()
    max_seen: float | None = None
    ref_t: float | None = None  # decayed scores are valued at this event time
    s_ab: float = 0.0
    s_ba: float = 0.0
    n_ab: int = 0  # meaningful exchanges a -> b (all time)
    n_ba: int = 0
    e_ab: int = 0  # meaningful exchanges since the last suggestion
    e_ba: int = 0
    x_ab: int = 0  # every non-like exchange
    x_ba: int = 0
    likes: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    signal: dict[str, float] = field(default_factory=dict)  # weight contributed per kind
    days: tuple[int, ...] = ()
    threads: tuple[int, ...] = ()
    threads_total: int = 0
    last_turn: tuple[tuple[int, bool], ...] = ()  # (thread, forward) of each thread's last turn
    turns: int = 0
    sources: tuple[str, ...] = ()
    first_at: float | None = None
    last_at: float | None = None
    in_person_at: float | None = None
    recent_ids: tuple[int, ...] = ()
    suggestions: int = 0
    suggestion_id: str | None = None
    suggested_at: float | None = None
    signals: tuple[str, ...] = ()  # the signals of the last suggestion (for labels)
    trigger_ingested_at: float = 0.0  # when the last suggestion's trigger reached Kafka
    outcome: str | None = None
    outcome_at: float | None = None
    # tie-strength features (format 2): local days and weeks, calls, evenings, answers
    days_total: int = 0  # distinct local days with a meaningful exchange (all time)
    weeks: tuple[int, ...] = ()  # the latest distinct local weeks
    weeks_total: int = 0
    call_s: float = 0.0  # seconds of answered calls
    call_max: float = 0.0
    night: int = 0  # meaningful exchanges 22:00-07:00 local time
    weekend: int = 0  # meaningful exchanges on a local Saturday or Sunday
    answers: int = 0  # meaningful exchanges answering the other person within ANSWER_S
    last_fwd: bool | None = None  # direction of the latest meaningful exchange
    mkinds: dict[str, int] = field(default_factory=dict)  # meaningful exchanges per kind
    x: tuple[float, ...] = ()  # the model's features at the last suggestion (for labels)
    probability: float | None = None  # the model's probability at the last suggestion
    met_by: tuple[str, ...] = ()  # which of the two ("a", "b") said they met

    def encode(self) -> bytes:
        """A JSON array: the format version, then every field's value in field order
        (``__dict__`` is always in field order: see `_made`). Defaults cost a few bytes
        each (``null``, ``0``, ``[]``): about the size of an object without its default
        fields, at a fifth of the cost (no per-field comparison). ``decode`` still reads
        the object forms written before (with or without their default fields)."""
        return orjson.dumps([_FORMAT, *self.__dict__.values()])

    @classmethod
    def decode(cls, raw: bytes) -> PairState:
        d: Any = orjson.loads(raw)
        if isinstance(d, list):
            return _from_array(d)
        for f in _TUPLE_FIELDS:
            if f in d:
                d[f] = tuple(d[f] or ())
        if "pending" in d:
            d["pending"] = tuple(_padded(p) for p in d["pending"] or ())
        if "last_turn" in d:
            d["last_turn"] = tuple(tuple(t) for t in d["last_turn"] or ())
        if "a" not in d or "b" not in d:
            raise ValueError("a pair state names both people (a, b)")
        # every field, in field order; the mutable defaults are fresh objects
        return _made(
            {
                f: d[f] if f in d else ({} if f in _DICT_FIELDS else default)  # noqa: SIM401
                for f, default in _DEFAULTS
            }
        )


_new = object.__new__
_set = object.__setattr__


def _made(values: dict[str, Any]) -> PairState:
    """A PairState over ``values`` (every field, in field order) without the frozen
    ``__init__``'s 32 ``object.__setattr__`` calls: the hot path builds several per event."""
    state = _new(PairState)
    _set(state, "__dict__", values)
    return state


def replace(s: PairState, **changes: Any) -> PairState:
    """``dataclasses.replace`` for PairState, about ten times cheaper: a copy of the field
    dict with the changes applied (only known fields are accepted)."""
    values = s.__dict__.copy()
    values.update(changes)
    if len(values) != len(_DEFAULTS):
        raise TypeError(f"unknown PairState fields: {sorted(set(changes) - set(_DEFAULT_OF))}")
    return _made(values)


def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING  # required: never equal to a value, always written


#: (field, default) of every PairState field, in order
_DEFAULTS: Final = tuple((f.name, _default(f)) for f in fields(PairState))
_DEFAULT_OF: Final = dict(_DEFAULTS)
_DICT_FIELDS: Final = frozenset(f.name for f in fields(PairState) if f.default_factory is dict)
_TUPLE_FIELDS: Final = (
    "days",
    "threads",
    "sources",
    "recent_ids",
    "signals",
    "weeks",
    "x",
    "met_by",
)
#: version of ``PairState.encode``'s array (bumped when the fields change)
_FORMAT: Final = 2
_NAMES: Final = tuple(f for f, _ in _DEFAULTS)
_PENDING_AT: Final = 1 + _NAMES.index("pending")
#: format 1 had the fields up to ``outcome_at``; format 2 appended the tie-strength ones
_FORMAT_1_FIELDS: Final = 1 + _NAMES.index("outcome_at")


def _padded(p: Any) -> Pending:
    """A buffered event of any format: the fields added since are filled with zeros."""
    return (*p, *(0.0,) * (_PENDING_LEN - len(p)))


def _from_array(v: list[Any]) -> PairState:
    if v and v[0] == 1 and len(v) == _FORMAT_1_FIELDS + 1:
        v = [*v, *(_DEFAULT_OF[f] for f in _NAMES[_FORMAT_1_FIELDS:])]  # format 1 -> 2
        v[1 + _NAMES.index("mkinds")] = {}
    elif len(v) != len(_DEFAULTS) + 1 or v[0] != _FORMAT:
        raise ValueError(f"not a pair state of format {_FORMAT} ({len(v)} values)")
    d = dict(zip(_NAMES, v[1:], strict=True))
    if not isinstance(d["a"], str) or not isinstance(d["b"], str):
        raise ValueError("a pair state names both people (a, b)")
    for f in _TUPLE_FIELDS:
        d[f] = tuple(d[f])
    d["pending"] = tuple(tuple(p) if len(p) == _PENDING_LEN else _padded(p) for p in d["pending"])
    d["last_turn"] = tuple(map(tuple, d["last_turn"]))
    return _made(d)


def earliest_pending(raw: bytes) -> float | None:
    """The time of the earliest buffered event of an encoded state (None: nothing buffered),
    without decoding the rest."""
    d = orjson.loads(raw)
    pending = d[_PENDING_AT] if isinstance(d, list) else d.get("pending")
    return float(pending[0][0]) if pending else None


def new_pair(a: str, b: str) -> PairState:
    """``PairState(a=a, b=b)`` without the frozen ``__init__`` (a fifth of a new pair's
    cost): the defaults in field order, fresh dicts for the dict fields."""
    values = dict(_DEFAULTS)
    values["a"], values["b"] = a, b
    for f in _DICT_FIELDS:
        values[f] = {}
    return _made(values)


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def event_hash(i: Interaction) -> int:
    return _h(f"{i.source}\x1f{i.event_id}")


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # an unknown zone in a profile: fall back to the event's own offset


def local_offset(interaction: Interaction, place: Place | None) -> float:
    """Seconds east of UTC where the actor was: their profile's time zone at that instant,
    else the offset the event itself carried (``+02:00``), else UTC."""
    if place is not None and place.time_zone and (zone := _zone(place.time_zone)):
        offset = interaction.occurred_at.astimezone(zone).utcoffset()
    else:
        offset = interaction.occurred_at.utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def receive(
    state: PairState | None,
    interaction: Interaction,
    policy: Policy,
    places: Callable[[str], Place | None] = lambda _: None,
    ingested_at: float = 0.0,
    closest: Closest | None = None,
) -> tuple[PairState, list[Suggestion]]:
    """Buffer one interaction and apply whatever is now due: by default everything older
    than the pair's newest instant; with ``apply_in_order`` off, older than the lateness.

    A redelivered event (same source and id) returns ``state`` unchanged (the same object).
    """
    if state is None:
        state = new_pair(*interaction.pair)
    p = _pending_of(state, interaction, places, ingested_at)
    if p is None:
        return state, []
    return _receive(state, p, policy, places, closest)


def _pending_of(
    state: PairState,
    interaction: Interaction,
    places: Callable[[str], Place | None],
    ingested_at: float,
) -> Pending | None:
    """The interaction as the pair buffers it; None if the pair has it already (the same
    source and id, applied or buffered)."""
    h = event_hash(interaction)
    if h in state.recent_ids or any(p[1] == h for p in state.pending):
        return None
    base = scoring.weight(interaction)
    # where the actor is matters only to an exchange that can be meaningful (turn-taking
    # raises a weight by a quarter at most): likes and shares skip the profile look-up
    could_count = base * 1.25 >= scoring.MEANINGFUL
    return (
        interaction.occurred_at.timestamp(),
        h,
        interaction.actor == state.a,
        base,
        interaction.kind,
        interaction.source,
        _h(interaction.thread_id) if interaction.thread_id else 0,
        bool(interaction.in_reply_to) or interaction.kind == "reply",
        ingested_at,
        local_offset(interaction, places(interaction.actor)) if could_count else 0.0,
        interaction.duration_s or 0.0,
    )


def _receive(
    state: PairState,
    p: Pending,
    policy: Policy,
    places: Callable[[str], Place | None],
    closest: Closest | None = None,
) -> tuple[PairState, list[Suggestion]]:
    ts = p[0]
    pending = list(state.pending)
    bisect.insort(pending, p)
    max_seen = ts if state.max_seen is None else max(state.max_seen, ts)
    state = replace(state, pending=tuple(pending), max_seen=max_seen)
    # by default only the newest instant waits (same-instant events are applied by id, as
    # in the buffering mode); otherwise everything within the lateness
    until = newest_instant(max_seen) if policy.apply_in_order else max_seen - policy.lateness_s
    if len(state.pending) > MAX_PENDING:  # a flood inside one lateness window
        until = max(until, state.pending[len(state.pending) - MAX_PENDING - 1][0])
    state, out = flush(state, until, policy, places, closest)
    if policy.suggest_early and state.pending and _could_qualify(state, policy):
        # A suggestion does not wait for the lateness: if the buffered events, in event-time
        # order, qualify at one of them, they are applied up to it now. For events arriving in
        # order this is exactly what the lateness would do later (the module docstring).
        trigger = _first_trigger(state, policy, closest)
        if trigger is not None:
            state, made = flush(state, trigger, policy, places, closest)
            out.extend(made)
    return state, out


def newest_instant(t: float) -> float:
    """The latest time before ``t``: flushing up to it applies everything older than ``t``
    and leaves what happened at ``t`` buffered."""
    return math.nextafter(t, -math.inf)


def receive_many(
    state: PairState | None,
    interactions: Iterable[tuple[Interaction, float]],
    policy: Policy,
    places: Callable[[str], Place | None] = lambda _: None,
    until: float | None = None,
    fresh: list[tuple[Interaction, float]] | None = None,
    closest: Closest | None = None,
) -> tuple[PairState | None, list[tuple[Suggestion, float]], int]:
    """A pair's interactions of one batch, ``(interaction, ingested at)`` in arrival order,
    applied one after the other (`receive`), then what is buffered up to ``until`` (the
    partition's watermark; None: nothing more): the state after them (``state`` itself, the
    same object, if nothing changed), each suggestion made with when its trigger reached
    Kafka, and how many interactions were new (``fresh``, if given, gets each of them with
    its weight, as `scoring.weight` scored it: a redelivered one is in the state already). A
    batch of any size makes the same decisions as one `receive` per event with the same
    watermarks."""
    made: list[tuple[Suggestion, float]] = []
    new = 0
    items = list(interactions)
    last = len(items) - 1
    for i, (interaction, ingested_at) in enumerate(items):
        if state is None:
            state = new_pair(*interaction.pair)
        p = _pending_of(state, interaction, places, ingested_at)
        if p is None:
            continue
        new += 1
        if fresh is not None:
            fresh.append((interaction, p[3]))
        ts = p[0]
        if (
            until is not None
            and policy.apply_in_order  # buffering: a later, older event goes before it
            and ts <= until
            and not state.pending
            and (state.max_seen is None or ts > state.max_seen)
            and (i == last or items[i + 1][0].occurred_at.timestamp() > ts)
        ):
            # Applied at once: nothing is buffered before it, and what `receive` would
            # buffer it for cannot come in this batch (the pair's next event here is newer,
            # and the partition's watermark passes it at the end). One copy of the state,
            # not three; the same `_apply` and `qualifies` as `flush` (see `receive_many`'s
            # property test and the real-data equivalence test).
            state = _apply(state, p, policy, max_seen=ts)
            if qualifies(state, policy, ts, closest):
                state, sug = _suggest(state, p, policy, places, closest)
                made.append((sug, state.trigger_ingested_at))
            continue
        state, out = _receive(state, p, policy, places, closest)
        for s in out:
            made.append((s, state.trigger_ingested_at))
    if until is not None and state is not None and state.pending and state.pending[0][0] <= until:
        state, out = flush(state, until, policy, places, closest)
        made.extend((s, state.trigger_ingested_at) for s in out)
    return state, made, new


def _could_qualify(s: PairState, policy: Policy) -> bool:
    """Whether the buffered events could bring both directions to the exchanges a suggestion
    needs (a cheap bound: most pairs never get near, and skip the trial fold)."""
    if s.outcome in ("accepted", "met"):
        return False  # never suggested again (`qualifies`)
    newest = s.pending[-1][0]
    ends = cooldown_ends(s, policy)
    if ends is not None and newest < ends:
        return False  # every buffered event is inside the cooldown of the last suggestion
    k = policy.min_exchanges_per_direction
    if s.e_ab >= k and s.e_ba >= k:
        return True
    fwd = bwd = 0
    for p in s.pending:
        if p[3] * 1.25 >= scoring.MEANINGFUL:  # turn-taking raises a weight by a quarter
            if p[2]:
                fwd += 1
            else:
                bwd += 1
    return s.e_ab + fwd >= k and s.e_ba + bwd >= k


def _first_trigger(s: PairState, policy: Policy, closest: Closest | None = None) -> float | None:
    """The event time of the first buffered event at which the pair, with the buffered
    events applied in order up to it, qualifies; None if none does. A trial: ``s`` is kept."""
    trial = replace(s, pending=())
    for p in s.pending:
        trial = _apply(trial, p, policy)
        if qualifies(trial, policy, p[0], closest):
            return p[0]
    return None


def flush(
    state: PairState,
    until: float | None,
    policy: Policy,
    places: Callable[[str], Place | None] = lambda _: None,
    closest: Closest | None = None,
) -> tuple[PairState, list[Suggestion]]:
    """Apply buffered events with ``occurred_at <= until`` (``None``: all), in order."""
    out: list[Suggestion] = []
    k = (
        len(state.pending)
        if until is None
        else bisect.bisect_right(state.pending, (until, math.inf))
    )
    if k == 0:
        return state, out
    ready, rest = state.pending[:k], state.pending[k:]
    state = replace(state, pending=rest)
    for p in ready:
        state = _apply(state, p, policy)
        if qualifies(state, policy, p[0], closest):
            state, s = _suggest(state, p, policy, places, closest)
            out.append(s)
    return state, out


def _decay(value: float, dt: float, policy: Policy) -> float:
    return value * 0.5 ** (dt / (policy.half_life_days * DAY)) if dt > 0 else value


def _apply(s: PairState, p: Pending, policy: Policy, **also: Any) -> PairState:
    """``s`` with the event ``p`` applied (and the fields ``also``, set in the same copy)."""
    ts, h, fwd, base, kind, source, thread, is_reply, _, offset, duration = p
    recent = (*s.recent_ids, h)[-MAX_RECENT_IDS:]
    if kind == "in_person":
        return replace(
            s,
            recent_ids=recent,
            in_person_at=ts if s.in_person_at is None else max(s.in_person_at, ts),
            **also,
        )
    if kind == "like":
        return replace(
            s,
            recent_ids=recent,
            likes=s.likes + 1,
            kinds={**s.kinds, "like": s.kinds.get("like", 0) + 1},
            **also,
        )
    # turn-taking: a reply in a thread whose previous turn was the other person's
    turns = dict(s.last_turn)
    turn = bool(thread) and is_reply and turns.get(thread) == (not fwd)
    w = min(1.0, base * 1.25) if turn else base
    if thread:
        turns.pop(thread, None)
        turns[thread] = fwd
    meaningful = w >= scoring.MEANINGFUL
    # decayed scores, valued at the newest applied event time
    if s.ref_t is None or ts >= s.ref_t:
        dt = 0.0 if s.ref_t is None else ts - s.ref_t
        s_ab, s_ba, ref = _decay(s.s_ab, dt, policy), _decay(s.s_ba, dt, policy), ts
        add = w
    else:  # an event later than the lateness: add it at its own age
        s_ab, s_ba, ref = s.s_ab, s.s_ba, s.ref_t
        add = _decay(w, s.ref_t - ts, policy)
    local = ts + offset
    day = int(local // DAY)
    threads = s.threads
    if thread and thread not in threads:
        threads = (*threads, thread)[-MAX_THREADS:]
    sources = s.sources
    if source not in sources and len(sources) < MAX_SOURCES:
        sources = tuple(sorted((*sources, source)))
    tie = _tie_features(s, local, day, fwd, ts, kind, duration) if meaningful else {}
    return replace(
        s,
        recent_ids=recent,
        ref_t=ref,
        s_ab=s_ab + (add if fwd else 0.0),
        s_ba=s_ba + (0.0 if fwd else add),
        n_ab=s.n_ab + (fwd and meaningful),
        n_ba=s.n_ba + (not fwd and meaningful),
        e_ab=s.e_ab + (fwd and meaningful),
        e_ba=s.e_ba + (not fwd and meaningful),
        x_ab=s.x_ab + fwd,
        x_ba=s.x_ba + (not fwd),
        kinds={**s.kinds, kind: s.kinds.get(kind, 0) + 1},
        signal={**s.signal, kind: round(s.signal.get(kind, 0.0) + w, 4)},
        days=tuple(sorted({*s.days, day}))[-MAX_DAYS:] if meaningful else s.days,
        threads=threads,
        threads_total=s.threads_total + (thread not in s.threads and bool(thread)),
        last_turn=tuple(turns.items())[-MAX_THREADS:],
        turns=s.turns + turn,
        sources=sources,
        first_at=(ts if s.first_at is None else min(s.first_at, ts)) if meaningful else s.first_at,
        last_at=(ts if s.last_at is None else max(s.last_at, ts)) if meaningful else s.last_at,
        **tie,
        **also,
    )


def _tie_features(
    s: PairState,
    local: float,
    day: int,
    fwd: bool,
    ts: float,
    kind: str,
    duration: float,
) -> dict[str, Any]:
    """The tie-strength counters a meaningful exchange moves (local days and weeks,
    evenings, weekends, calls, answers). Counts of distinct days and weeks are exact while
    events arrive within the ``days``/``weeks`` memory, as the lateness buffer ensures."""
    week = int((day + 3) // 7)  # day 0 (1970-01-01) was a Thursday: weeks start on Monday
    hour = (local % DAY) / 3600
    weekday = (day + 3) % 7  # Monday 0 ... Sunday 6
    answered = (
        s.last_fwd is not None
        and s.last_fwd != fwd
        and s.last_at is not None
        and 0 <= ts - s.last_at <= ANSWER_S
    )
    is_call = kind == "call"
    return {
        "days_total": s.days_total + (day not in s.days),
        "weeks": s.weeks if week in s.weeks else tuple(sorted((*s.weeks, week)))[-MAX_WEEKS:],
        "weeks_total": s.weeks_total + (week not in s.weeks),
        "call_s": s.call_s + (duration if is_call else 0.0),
        "call_max": max(s.call_max, duration) if is_call else s.call_max,
        "night": s.night + (hour >= 22 or hour < 7),
        "weekend": s.weekend + (weekday >= 5),
        "answers": s.answers + answered,
        "last_fwd": fwd if s.last_at is None or ts >= s.last_at else s.last_fwd,
        "mkinds": {**s.mkinds, kind: s.mkinds.get(kind, 0) + 1},
    }


def features(s: PairState, now: float, policy: Policy) -> dict[str, float]:
    """The tie-strength model's inputs (``services.matcher.model.FEATURES``) at ``now``."""
    n = s.n_ab + s.n_ba
    low, high = min(s.n_ab, s.n_ba), max(s.n_ab, s.n_ba)
    ab, ba = decayed(s, now, policy)
    span = 0.0 if s.first_at is None else max(0.0, now - s.first_at) / WEEK
    return {
        "reciprocal_exchanges": math.log1p(low),
        "exchanges": math.log1p(n),
        "balance": low / high if high else 0.0,
        "days": math.log1p(s.days_total),
        "weeks": math.log1p(s.weeks_total),
        "span": math.log1p(span),
        "evenings": s.night / n if n else 0.0,
        "weekends": s.weekend / n if n else 0.0,
        "call_minutes": math.log1p(s.call_s / 60),
        "longest_call": math.log1p(s.call_max / 60),
        "back_and_forth": s.answers / (n - 1) if n > 1 else 0.0,
        "recent_strength": math.log1p(min(ab, ba)),
    }


def decayed(s: PairState, now: float, policy: Policy) -> tuple[float, float]:
    dt = 0.0 if s.ref_t is None else now - s.ref_t
    return _decay(s.s_ab, dt, policy), _decay(s.s_ba, dt, policy)


def cooldown_ends(s: PairState, policy: Policy) -> float | None:
    """When the pair's last suggestion stops holding it back (None: never suggested): after
    ``cooldown_days``, or, if the notifier could not deliver it (a person had not opted in:
    the outcome ``undelivered``), ``undelivered_retry_days`` after it said so."""
    if s.suggested_at is None:
        return None
    ends = s.suggested_at + policy.cooldown_days * DAY
    if s.outcome == "undelivered" and s.outcome_at is not None:
        return min(ends, s.outcome_at + policy.undelivered_retry_days * DAY)
    return ends


def qualifies(s: PairState, policy: Policy, now: float, closest: Closest | None = None) -> bool:
    """Whether the pair is suggested now: the rules, then the model's probability, at
    ``min_probability``, or at ``closest_min_probability`` for a pair each of whom is among
    the other's ``closest_top`` closest partners (``closest``: their circles; None, or a pair
    outside them, is judged by the global bar alone)."""
    if s.outcome in ("accepted", "met"):
        return False  # they are already connecting
    if s.in_person_at is not None and now - s.in_person_at <= policy.window_days * DAY:
        return False  # they already meet in person
    ends = cooldown_ends(s, policy)
    if ends is not None and now < ends:
        return False
    if (
        s.outcome == "declined"
        and s.outcome_at is not None
        and now - s.outcome_at < policy.decline_cooldown_days * DAY
    ):
        return False
    k = policy.min_exchanges_per_direction
    if s.e_ab < k or s.e_ba < k:
        return False
    if s.last_at is None or now - s.last_at > policy.max_silence_days * DAY:
        return False
    first_day = int((now - policy.window_days * DAY) // DAY)
    if sum(1 for d in s.days if d >= first_day) < policy.min_distinct_days:
        return False
    bar = policy.min_decayed_per_direction / (1 + policy.source_bonus * (len(s.sources) - 1))
    ab, ba = decayed(s, now, policy)
    if ab < bar or ba < bar:
        return False
    if policy.model is None:
        return True
    p = policy.model.probability(features(s, now, policy))
    return p >= policy.min_probability or closest_rank(s, policy, p, closest) is not None


def closest_rank(
    s: PairState, policy: Policy, probability: float, closest: Closest | None
) -> int | None:
    """The pair's worse mutual rank when the person-relative decision suggests it (below the
    global bar, at or above the lower one, each among the other's closest few); else None.
    Looked up only in that band, so the circles are read for few pairs."""
    if (
        closest is None
        or policy.closest_top <= 0
        or not policy.closest_min_probability <= probability < policy.min_probability
    ):
        return None
    rank = closest(s.a, s.b)
    return rank if rank is not None and rank <= policy.closest_top else None


def score(s: PairState, now: float, policy: Policy) -> float:
    """The tie-strength model's probability that the pair is a close tie; without a model,
    balanced recent strength: the harmonic mean of the decayed directional scores, raised
    for several sources and for turn-taking."""
    if policy.model is not None:
        return round(policy.model.probability(features(s, now, policy)), 3)
    ab, ba = decayed(s, now, policy)
    if ab <= 0 or ba <= 0:
        return 0.0
    harmonic = 2 * ab * ba / (ab + ba)
    bonus = (1 + policy.source_bonus * (len(s.sources) - 1)) * (1 + min(s.turns, 10) / 20)
    return round(harmonic * bonus, 3)


def meetup(pa: Place | None, pb: Place | None) -> dict[str, Any]:
    """Coffee when both are in the same city; a video call otherwise."""
    if pa and pb and pa.city and pb.city and pa.city.casefold() == pb.city.casefold():
        return {"kind": "coffee", "city": pa.city}
    zones = sorted({z for z in (pa and pa.time_zone, pb and pb.time_zone) if z})
    return {"kind": "video_call", "time_zones": zones}


def _signals(s: PairState, stood_out: list[str] | None = None) -> tuple[str, ...]:
    top = sorted(((w, k) for k, w in s.signal.items() if w > 0), reverse=True)[:3]
    sig = [k for _, k in top] + (stood_out or [])
    if len(s.sources) > 1:
        sig.append("several_sources")
    if s.turns >= 2:
        sig.append("turn_taking")
    return tuple(sig)


def _suggest(
    s: PairState,
    trigger: Pending,
    policy: Policy,
    places: Callable[[str], Place | None],
    closest: Closest | None = None,
) -> tuple[PairState, Suggestion]:
    now = trigger[0]
    from services.matcher import decisions  # it reads this module's gates

    decided = decisions.record(decisions.decide(s, policy, now, closest))  # before the update
    sid = hashlib.sha256(f"{s.a}|{s.b}|{trigger[1]}|{s.suggestions + 1}".encode()).hexdigest()[:32]
    model = policy.model
    x = features(s, now, policy)
    probability = model.probability(x) if model is not None else None
    stood_out = describe(model, x) if model is not None else []
    rank = None if probability is None else closest_rank(s, policy, probability, closest)
    if rank is not None:  # suggested by the person-relative decision: said first
        stood_out = ["closest", *stood_out]
    s = replace(
        s,
        suggestions=s.suggestions + 1,
        suggestion_id=sid,
        suggested_at=now,
        e_ab=0,
        e_ba=0,
        signals=_signals(s, stood_out),
        trigger_ingested_at=trigger[8],
        x=vector(model, x) if model is not None else (),
        probability=round(probability, 4) if probability is not None else None,
    )
    where = meetup(places(s.a), places(s.b))
    ev = evidence(s, now, policy, where)
    if model is not None:
        ev["tie_strength"] = {
            "probability": s.probability,
            "model": model.version,
            "stood_out": stood_out,
        }
    if rank is not None:
        ev["closest"] = {"rank": rank, "top": policy.closest_top}

    return s, Suggestion(
        suggestion_id=sid,
        pair=(s.a, s.b),
        # the model's probability, computed once above (score() is the same for callers)
        score=round(probability, 3) if probability is not None else score(s, now, policy),
        suggested_at=datetime.fromtimestamp(now, UTC),
        evidence=ev,
        explanation=sentences.pair(ev),
        decision=decided,
    )


def evidence(s: PairState, now: float, policy: Policy, where: dict[str, Any]) -> dict[str, Any]:
    ab, ba = decayed(s, now, policy)
    return {
        "exchanges": {f"{s.a}->{s.b}": s.n_ab, f"{s.b}->{s.a}": s.n_ba},
        "all_exchanges": {f"{s.a}->{s.b}": s.x_ab, f"{s.b}->{s.a}": s.x_ba},
        "recent_strength": {f"{s.a}->{s.b}": round(ab, 3), f"{s.b}->{s.a}": round(ba, 3)},
        "likes": s.likes,
        "kinds": dict(sorted(s.kinds.items())),
        "meaningful_kinds": dict(sorted(s.mkinds.items())),
        "distinct_days": s.days_total,
        "distinct_weeks": s.weeks_total,
        "call_minutes": round(s.call_s / 60, 1),
        "longest_call_minutes": round(s.call_max / 60, 1),
        "evening_exchanges": s.night,
        "weekend_exchanges": s.weekend,
        "answers_within_a_day": s.answers,
        "threads": s.threads_total,
        "turn_taking": s.turns,
        "sources": list(s.sources),
        "first_exchange_at": iso(s.first_at),
        "last_exchange_at": iso(s.last_at),
        "signals": list(s.signals),
        "meetup": where,
    }


def record_outcome(s: PairState, outcome: str, at: float, person: str | None = None) -> PairState:
    """An answer from ``person``, one of the pair: a decline (never shown to the other
    person) extends the cooldown; an acceptance ends suggestions for the pair; "met" ends
    the pair as met only once **both** said so (one person's word is recorded and waits for
    the other's: a lone claim cannot end a pair or count as a meeting). Without ``person``
    (an answer of old, or the whole pair at once) "met" counts for both."""
    if outcome == "snoozed":
        return s
    if outcome == "undelivered" and s.outcome in ("accepted", "met", "declined"):
        return s  # the notifier's word never undoes a person's
    if s.outcome in ("accepted", "met") and outcome == "declined":
        return s  # one person's later decline does not undo a meeting that happened
    if outcome == "met":
        if person is not None and person not in (s.a, s.b):
            return s  # not one of the pair
        sides = {"a", "b"} if person is None else {"a" if person == s.a else "b"}
        met_by = tuple(sorted({*s.met_by, *sides}))
        if met_by != ("a", "b"):
            return replace(s, met_by=met_by)
        return replace(s, met_by=met_by, outcome="met", outcome_at=at)
    return replace(s, outcome=outcome, outcome_at=at)


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()
