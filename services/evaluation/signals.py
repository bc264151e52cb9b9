"""Single signals against counting: which simple measures of a pair pick closer ties than the
raw count does, on each dataset, at the same number of pairs (``make eval``).

The model can only weigh what the data rewards. This table is the evidence behind its form:
each candidate signal ranks every pair of the dataset on its own (ties broken by raw count),
and its precision at a fixed volume is compared with raw counting's on the same draw of a
paired bootstrap. A signal whose interval does not clear zero on a dataset is no better than
counting there, however plausible it sounds.

Signals computed from the raw events (not the pair state: some need every person's contacts):

- **raw count**: every interaction of the pair (the baseline);
- **reciprocal first**: pairs in contact both ways first, each group by count;
- **days**: distinct days with contact, in the events' own local time;
- **weeks**: distinct weeks (Monday to Sunday) with contact, local time;
- **phone calls**: calls long enough to be a conversation (``scoring.SHORT_CALL_S``);
- **common contacts**: people both have been in touch with (network embeddedness);
- **each other's top contact**: the worse of the two ranks each gives the other among their
  own contacts by count (1: both are each other's busiest tie);
- **share of their contact**: the smaller of the two shares of each person's interactions
  that go to the other (how exclusive the tie is).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from schemas.events import Interaction
from services.evaluation.datasets import Pair
from services.evaluation.offline import Interval, bootstrap, precision
from services.matcher.scoring import SHORT_CALL_S

BASELINE: Final = "raw count"
SIGNALS: Final[tuple[str, ...]] = (
    BASELINE,
    "reciprocal first",
    "days",
    "weeks",
    "phone calls",
    "common contacts",
    "each other's top contact",
    "share of their contact",
)


def signed(x: float) -> str:
    """``x`` to three decimals with its sign, zero as ``+0.000``: a lead of exactly zero
    negated is ``-0.0``, which ``format`` prints as ``-0.000``."""
    return f"{round(x, 3) + 0.0:+.3f}"


@dataclass(frozen=True)
class PairStats:
    """What the signals need to know of one pair."""

    events: int = 0
    forward: int = 0  # from the pair's first person (sorted) to the second
    backward: int = 0
    days: frozenset[int] = frozenset()
    weeks: frozenset[int] = frozenset()
    calls: int = 0


def stats(events: Sequence[Interaction]) -> dict[Pair, PairStats]:
    """Per pair: counts each way, local days and weeks, conversation-length calls."""
    count: Counter[Pair] = Counter()
    fwd: Counter[Pair] = Counter()
    calls: Counter[Pair] = Counter()
    days: dict[Pair, set[int]] = defaultdict(set)
    for e in events:
        p = e.pair
        count[p] += 1
        fwd[p] += e.actor == p[0]
        local = e.occurred_at.date().toordinal()  # the event's own offset: its local day
        days[p].add(local)
        if e.kind == "call" and (e.duration_s or 0.0) > SHORT_CALL_S:
            calls[p] += 1
    return {
        p: PairStats(
            events=n,
            forward=fwd[p],
            backward=n - fwd[p],
            days=frozenset(days[p]),
            # ordinal 1 (0001-01-01) was a Monday: weeks run Monday to Sunday
            weeks=frozenset((d - 1) // 7 for d in days[p]),
            calls=calls[p],
        )
        for p, n in count.items()
    }


def rankings(table: Mapping[Pair, PairStats]) -> dict[str, list[Pair]]:
    """Every pair, ranked by each signal (strongest first; ties by raw count, then name)."""
    contacts: dict[str, set[str]] = defaultdict(set)
    volume: Counter[str] = Counter()
    per_person: dict[str, list[Pair]] = defaultdict(list)
    for (a, b), s in table.items():
        contacts[a].add(b)
        contacts[b].add(a)
        volume[a] += s.events
        volume[b] += s.events
        per_person[a].append((a, b))
        per_person[b].append((a, b))
    rank: dict[tuple[str, Pair], int] = {}
    for person, ps in per_person.items():
        for i, p in enumerate(sorted(ps, key=lambda q: (-table[q].events, q))):
            rank[(person, p)] = i + 1

    def by(key: Callable[[Pair], float | tuple[float, ...]]) -> list[Pair]:
        return sorted(table, key=lambda p: (key(p), -table[p].events, p))

    return {
        BASELINE: by(lambda p: 0.0),
        "reciprocal first": by(lambda p: -float(table[p].forward > 0 and table[p].backward > 0)),
        "days": by(lambda p: -len(table[p].days)),
        "weeks": by(lambda p: -len(table[p].weeks)),
        "phone calls": by(lambda p: -table[p].calls),
        "common contacts": by(lambda p: -len(contacts[p[0]] & contacts[p[1]])),
        "each other's top contact": by(lambda p: max(rank[(p[0], p)], rank[(p[1], p)])),
        "share of their contact": by(
            lambda p: -min(table[p].events / volume[p[0]], table[p].events / volume[p[1]])
        ),
    }


@dataclass(frozen=True)
class Row:
    """One signal on one dataset at one volume."""

    signal: str
    precision: float
    #: precision minus raw counting's, with its paired-bootstrap interval (None: the baseline)
    lead: Interval | None
    #: the same pairs as raw counting's at this volume
    same_as_count: bool


def judge(
    events: Sequence[Interaction], positives: set[Pair], k: int, *, rounds: int = 1000
) -> list[Row]:
    """Each signal's precision at ``k`` pairs against raw counting's (``k`` is capped at the
    number of pairs)."""
    table = stats(events)
    ranked = rankings(table)
    k = min(k, len(table))
    chosen = {name: ranked[name][:k] for name in SIGNALS}
    iv = bootstrap(chosen, positives, sorted(table), rounds=rounds)
    base = set(chosen[BASELINE])
    return [
        Row(
            name,
            precision(ranked[name], positives, k),
            None if name == BASELINE else iv[f"{name} - {BASELINE}"],
            name != BASELINE and set(chosen[name]) == base,
        )
        for name in SIGNALS
    ]


def cell(row: Row) -> str:
    """A table cell: the precision, and for a signal its lead over counting with interval."""
    if row.lead is None:
        return f"{row.precision:.3f}"
    if row.same_as_count:
        return f"{row.precision:.3f} (the same pairs)"
    lead = row.lead
    clear = lead.low > 0 or lead.high < 0
    mark = "**" if clear else ""
    return (
        f"{row.precision:.3f} ({mark}{signed(lead.value)}{mark} "
        f"[{signed(lead.low)}, {signed(lead.high)}])"
        if not math.isnan(lead.value)
        else f"{row.precision:.3f}"
    )
