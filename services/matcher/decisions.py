"""Why, and why not: the matcher's decision about a pair as a record (pure: no I/O imports).

``decide`` walks the gates of ``pairs.qualifies`` in the same order, each with its value, its
threshold and whether it passed, and stops at none: every gate is evaluated, so the record
also says what else would fail. The first gate that fails decided the answer
(``decided_by``); with none failing the pair is suggested. The model's part is the
probability, the bar that applied (the global one, or the person-relative one for a pair
each of whom is among the other's closest) and each feature's share of the score.

``decide(...).suggested == pairs.qualifies(...)`` for every state (a property test holds the
two together: a disagreement is a bug in one of them). The record holds numbers only, never
message text. ``nearest`` says, in plain words, what would change the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from schemas.suggestions import DecisionRecord, GateRecord
from services.matcher import pairs
from services.matcher.pairs import DAY, Closest, PairState, Policy

#: the gates, in the order they are applied (and the order a person would ask about them)
GATES: Final = (
    "not_meeting_already",
    "not_in_person_lately",
    "cooldown",
    "decline_cooldown",
    "reciprocity",
    "recency",
    "repetition",
    "recent_strength",
    "tie_strength",
)


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    value: float | str | None
    threshold: float | str | None
    #: the gate in plain words, with its numbers
    says: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "value": self.value,
            "threshold": self.threshold,
            "says": self.says,
        }


@dataclass(frozen=True)
class Decision:
    pair: tuple[str, str]
    at: float  # event time the decision is for (epoch s)
    suggested: bool
    decided_by: str | None  # the first gate that failed; None when suggested
    gates: tuple[Gate, ...]
    model: str | None = None
    probability: float | None = None
    #: each feature's share of the score against an average pair, largest first
    contributions: tuple[tuple[str, float], ...] = ()
    features: tuple[tuple[str, float], ...] = ()

    def gate(self, name: str) -> Gate | None:
        return next((g for g in self.gates if g.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair": list(self.pair),
            "at": pairs.iso(self.at),
            "suggested": self.suggested,
            "decided_by": self.decided_by,
            "gates": [g.to_dict() for g in self.gates],
            "model": self.model,
            "probability": self.probability,
            "contributions": [{"feature": f, "share": round(v, 4)} for f, v in self.contributions],
            "features": {f: round(v, 4) for f, v in self.features},
            "would_change": nearest(self),
        }


def record(d: Decision) -> DecisionRecord:
    """The decision as it travels with a suggestion (``Suggestion.decision``)."""
    return DecisionRecord(
        suggested=d.suggested,
        decided_by=d.decided_by,
        gates=tuple(
            GateRecord(
                name=g.name, passed=g.passed, value=g.value, threshold=g.threshold, says=g.says
            )
            for g in d.gates
        ),
        model=d.model,
        probability=d.probability,
        contributions={f: round(v, 4) for f, v in d.contributions},
        would_change=nearest(d),
    )


def _days(seconds: float) -> float:
    return round(seconds / DAY, 1)


def _date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def _rule_gates(s: PairState, policy: Policy, now: float) -> list[Gate]:
    """The gates before the model, in ``pairs.qualifies``' order."""
    gates: list[Gate] = []

    def add(name: str, passed: bool, value: Any, threshold: Any, says: str) -> None:
        gates.append(Gate(name, passed, value, threshold, says))

    meeting = s.outcome in ("accepted", "met")
    add(
        "not_meeting_already",
        not meeting,
        s.outcome,
        "neither accepted nor met",
        "they already said yes to meeting" if meeting else "no meetup under way",
    )
    since_in_person = None if s.in_person_at is None else now - s.in_person_at
    in_person = since_in_person is not None and since_in_person <= policy.window_days * DAY
    add(
        "not_in_person_lately",
        not in_person,
        None if since_in_person is None else _days(since_in_person),
        policy.window_days,
        (
            f"they met in person {_days(since_in_person or 0)} days ago"
            if in_person
            else "no in-person meeting in the window"
        ),
    )
    since = None if s.suggested_at is None else now - s.suggested_at
    ends = pairs.cooldown_ends(s, policy)
    cooling = ends is not None and now < ends
    # not delivered: the short hold runs from when the notifier said so
    undelivered = s.outcome == "undelivered" and s.outcome_at is not None and since is not None
    held = now - (s.outcome_at or 0) if undelivered else since
    add(
        "cooldown",
        not cooling,
        None if held is None else _days(held),
        policy.undelivered_retry_days if undelivered else policy.cooldown_days,
        (
            f"suggested {_days(since or 0)} days ago"
            + (" and not delivered (a person had not opted in)" if undelivered else "")
            + f"; the cooldown ends on {_date(ends or 0)}"
            if cooling
            else "not suggested lately"
        ),
    )
    since_no = None if s.outcome_at is None or s.outcome != "declined" else now - s.outcome_at
    declined = since_no is not None and since_no < policy.decline_cooldown_days * DAY
    add(
        "decline_cooldown",
        not declined,
        None if since_no is None else _days(since_no),
        policy.decline_cooldown_days,
        "declined lately" if declined else "no recent decline",
    )
    k = policy.min_exchanges_per_direction
    low = min(s.e_ab, s.e_ba)
    add(
        "reciprocity",
        s.e_ab >= k and s.e_ba >= k,
        low,
        k,
        f"{s.e_ab} meaningful exchange{'' if s.e_ab == 1 else 's'} one way and {s.e_ba} the "
        f"other{' since the last suggestion' if s.suggested_at is not None else ''}; {k} each "
        "way are needed",
    )
    silent = None if s.last_at is None else now - s.last_at
    add(
        "recency",
        silent is not None and silent <= policy.max_silence_days * DAY,
        None if silent is None else _days(silent),
        policy.max_silence_days,
        (
            "no meaningful exchange yet"
            if silent is None
            else f"the last meaningful exchange was {_days(silent)} days ago"
        ),
    )
    first_day = int((now - policy.window_days * DAY) // DAY)
    days = sum(1 for d in s.days if d >= first_day)
    add(
        "repetition",
        days >= policy.min_distinct_days,
        days,
        policy.min_distinct_days,
        f"contact on {days} different day{'' if days == 1 else 's'} in the last "
        f"{policy.window_days:g} days",
    )
    bar = policy.min_decayed_per_direction / (1 + policy.source_bonus * (len(s.sources) - 1))
    ab, ba = pairs.decayed(s, now, policy)
    add(
        "recent_strength",
        ab >= bar and ba >= bar,
        round(min(ab, ba), 3),
        round(bar, 3),
        f"recent strength {ab:.2f} one way and {ba:.2f} the other; {bar:.2f} each way needed",
    )
    return gates


def _model_gate(
    s: PairState, policy: Policy, probability: float, closest: Closest | None, rules_pass: bool
) -> Gate:
    """The model's gate: the global bar, or the person-relative one for a pair each of whom
    is among the other's closest (looked up, as in ``qualifies``, only once the rules pass
    and the probability is below the global bar)."""
    rank = (
        pairs.closest_rank(s, policy, probability, closest)
        if rules_pass and probability < policy.min_probability
        else None
    )
    threshold = policy.min_probability if rank is None else policy.closest_min_probability
    return Gate(
        "tie_strength",
        probability >= threshold,
        round(probability, 4),
        threshold,
        (
            f"the tie-strength model gives {probability:.2f}; each is among the other's "
            f"{rank} closest, so {threshold:g} is enough"
            if rank is not None
            else f"the tie-strength model gives {probability:.2f}; {threshold:g} is needed"
        ),
    )


def decide(s: PairState, policy: Policy, now: float, closest: Closest | None = None) -> Decision:
    """The decision about ``s`` at event time ``now``, gate by gate (see the module)."""
    gates = _rule_gates(s, policy, now)
    model = policy.model
    probability = None
    contributions: tuple[tuple[str, float], ...] = ()
    features: tuple[tuple[str, float], ...] = ()
    if model is not None:
        x = pairs.features(s, now, policy)
        probability = model.probability(x)
        contributions = tuple(model.contributions(x))
        features = tuple((f, x[f]) for f in model.features)
        rules_pass = all(g.passed for g in gates)
        gates.append(_model_gate(s, policy, probability, closest, rules_pass))
    failed = next((g.name for g in gates if not g.passed), None)
    return Decision(
        pair=(s.a, s.b),
        at=now,
        suggested=failed is None,
        decided_by=failed,
        gates=tuple(gates),
        model=None if model is None else model.version,
        probability=None if probability is None else round(probability, 4),
        contributions=contributions,
        features=features,
    )


def nearest(d: Decision) -> str | None:
    """What would change the answer, in plain words: the gate that decided, and by how much
    it fails. None when the pair is suggested."""
    g = d.gate(d.decided_by) if d.decided_by else None
    if g is None:
        return None
    if g.name == "reciprocity":
        assert isinstance(g.value, int) and isinstance(g.threshold, int)
        more = g.threshold - g.value
        exchanges = "exchange" if more == 1 else "exchanges"
        return f"{more} more meaningful {exchanges} from the quieter of the two"
    if g.name == "repetition":
        assert isinstance(g.value, int) and isinstance(g.threshold, int)
        more = g.threshold - g.value
        return f"contact on {more} more different day{'' if more == 1 else 's'}"
    if g.name == "recency":
        return "a new meaningful exchange"
    if g.name == "recent_strength":
        return "more recent meaningful exchanges in both directions"
    if g.name == "tie_strength":
        return (
            "more of what the model counts most: contact in more different weeks, "
            "quick answers to each other, a longer connection"
        )
    return g.says  # the cooldowns and meetups end by themselves: their dates are in `says`
