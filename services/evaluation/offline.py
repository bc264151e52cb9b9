"""The matcher's pure core replayed over a dataset in memory (no Kafka): the same
``pairs.receive`` the faust agent calls, so the features, gates and decisions are the
production ones. Used to build training examples, precision-volume curves and the feedback
simulation; ``make eval`` also replays Copenhagen through the real pipeline and checks that
both agree.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from numpy.typing import ArrayLike

from schemas.events import Interaction
from schemas.suggestions import Suggestion
from services.evaluation.datasets import Dataset, Pair
from services.matcher import circles, pairs, scoring
from services.matcher.model import FEATURES, TieModel

_ANY = TieModel(
    "probe", FEATURES, (0.0,) * len(FEATURES), (1.0,) * len(FEATURES), (0.0,) * len(FEATURES), 0.0
)


@dataclass(frozen=True)
class PairRecord:
    """What one pair did in the replayed period, and what the matcher thought of it."""

    pair: Pair
    events: int  # raw interactions of any kind (the count baseline)
    reciprocal: bool  # raw interactions in both directions
    last_at: float  # time of the latest raw interaction (the recency baseline)
    #: the model's features at the pair's latest meaningful exchange (None: never reciprocal)
    x: dict[str, float] | None
    #: the highest probability the model gave while the rule gates passed (None: never)
    best: float | None
    people: tuple[str, str]
    #: the highest probability while the rules passed and each was among the other's
    #: ``policy.closest_top`` closest partners (the person-relative decision; None: never)
    closest: float | None = None


def split(events: Sequence[Interaction], cut: float) -> tuple[list[Interaction], float]:
    """The events of the first ``cut`` of the time span, and the cut's time."""
    t0, t1 = events[0].occurred_at.timestamp(), events[-1].occurred_at.timestamp()
    at = t0 + (t1 - t0) * cut
    return [e for e in events if e.occurred_at.timestamp() <= at], at


def persisted(events: Iterable[Interaction], after: float) -> set[Pair]:
    """Pairs in contact in both directions after ``after`` (tie persistence)."""
    seen: set[tuple[str, str]] = set()
    for e in events:
        if e.occurred_at.timestamp() > after:
            seen.add((e.actor, e.target))
    return {pairs_key(a, b) for a, b in seen if (b, a) in seen}


def pairs_key(a: str, b: str) -> Pair:
    return (a, b) if a <= b else (b, a)


def labelled(ds: Dataset) -> tuple[list[Interaction], set[Pair]]:
    """The events features may see, and the positive pairs of the dataset's label; only the
    events between people the label speaks for."""
    if ds.friends is not None:
        return [e for e in ds.events if ds.speaks_for(e.actor, e.target)], set(ds.friends)
    before, at = split(ds.events, ds.cut)
    return before, persisted(ds.events, at)


def probe(
    events: Sequence[Interaction],
    policy: pairs.Policy,
    model: TieModel | None = None,
    on_state: Callable[[pairs.PairState, float], None] | None = None,
) -> list[PairRecord]:
    """Replay in time order (lateness 0: in order, nothing waits) without suggesting, and
    record for each pair its raw counts, its features at its latest meaningful exchange and
    the best probability ``model`` gave while the rule gates passed: the matcher at
    threshold θ suggests exactly the pairs whose best probability reached θ (before its
    first suggestion resets the per-suggestion counters). Each person's circle is kept as the
    matcher's circle stage keeps it, an event folded after its pair has seen it, for the
    person-relative decision (``PairRecord.closest``)."""
    # never suggests (no probability reaches 2), so no counter is reset by a suggestion
    # lateness 0 in the buffering mode: every event applied as it comes (by default the
    # newest instant would wait for the next event, and a pair's last one never come)
    silent = replace(policy, lateness_s=0.0, apply_in_order=False, model=_ANY, min_probability=2.0)
    quiet = replace(policy, lateness_s=0.0, apply_in_order=False, model=None)  # rules alone
    states: dict[str, pairs.PairState] = {}
    best: dict[str, float] = {}
    count: Counter[str] = Counter()
    directed: set[tuple[str, str]] = set()
    last: dict[str, float] = {}
    cs: dict[str, circles.Circle] = {}
    near: dict[str, float] = {}
    hl = policy.half_life_days

    def closest(a: str, b: str) -> int | None:
        return circles.mutual_rank(cs.get(a), cs.get(b), a, b)

    for e in events:
        key = e.key
        ts = e.occurred_at.timestamp()
        count[key] += 1
        directed.add((e.actor, e.target))
        last[key] = ts
        before = states.get(key)
        state, _ = pairs.receive(before, e, silent)
        states[key] = state
        if state is before:
            continue
        if on_state is not None:
            on_state(state, ts)
        if model is not None and pairs.qualifies(state, quiet, ts):
            p = model.probability(pairs.features(state, ts, quiet))
            if p > best.get(key, -1.0):
                best[key] = p
            if (
                policy.closest_top > 0
                and p >= policy.closest_min_probability
                and p > near.get(key, -1.0)
                and (r := closest(state.a, state.b)) is not None
                and r <= policy.closest_top
            ):
                near[key] = p
        w = scoring.weight(e)
        if w * 1.25 >= scoring.MEANINGFUL:  # what the circle stage folds (circle_stage.py)
            cs[e.actor] = circles.observe(cs.get(e.actor), e.target, w, ts, half_life_days=hl)
            cs[e.target] = circles.observe(cs.get(e.target), e.actor, w, ts, half_life_days=hl)
    out = []
    for key, s in states.items():
        a, b = s.a, s.b
        x = None
        if s.n_ab > 0 and s.n_ba > 0 and s.last_at is not None:
            x = pairs.features(s, s.last_at, quiet)
        out.append(
            PairRecord(
                pair=(a, b),
                events=count[key],
                reciprocal=(a, b) in directed and (b, a) in directed,
                last_at=last[key],
                x=x,
                best=best.get(key),
                people=(a, b),
                closest=near.get(key),
            )
        )
    out.sort(key=lambda r: r.pair)
    return out


def replay(
    events: Iterable[Interaction], policy: pairs.Policy
) -> tuple[dict[str, pairs.PairState], list[Suggestion]]:
    """The matcher's decisions over ``events``, as the faust agent makes them."""
    states: dict[str, pairs.PairState] = {}
    out: list[Suggestion] = []
    for e in events:
        state, made = pairs.receive(states.get(e.key), e, policy)
        states[e.key] = state
        out += made
    for key, s in states.items():
        s, made = pairs.flush(s, None, policy)
        states[key] = s
        out += made
    return states, out


# --- rankings at equal volume -------------------------------------------------------------


def by_count(records: Sequence[PairRecord]) -> list[Pair]:
    return [r.pair for r in sorted(records, key=lambda r: (-r.events, r.pair))]


def by_reciprocal_count(records: Sequence[PairRecord]) -> list[Pair]:
    """Pairs in contact both ways first, each group by raw count."""
    return [r.pair for r in sorted(records, key=lambda r: (not r.reciprocal, -r.events, r.pair))]


def by_recency(records: Sequence[PairRecord]) -> list[Pair]:
    """Reciprocal pairs by their latest contact, most recent first, then the rest."""
    return [r.pair for r in sorted(records, key=lambda r: (not r.reciprocal, -r.last_at, r.pair))]


def effective(r: PairRecord, policy: pairs.Policy | None) -> float | None:
    """What the matcher's decision makes of a pair: its best probability, raised to the
    global bar if the person-relative decision takes it (``policy``; None: the bar alone)."""
    if (
        policy is not None
        and policy.closest_top > 0
        and r.closest is not None
        and r.closest >= policy.closest_min_probability
    ):
        return max(r.best or 0.0, policy.min_probability)
    return r.best


def by_model(records: Sequence[PairRecord], policy: pairs.Policy | None = None) -> list[Pair]:
    """The matcher's order: pairs whose gates passed, by the best probability they reached
    (`effective`: a higher threshold keeps a prefix of this list), then the rest by raw
    count."""
    scored = [(effective(r, policy), r) for r in records]
    return [
        r.pair
        for e, r in sorted(
            scored, key=lambda t: (t[0] is None, -(t[0] or 0.0), -t[1].events, t[1].pair)
        )
    ]


def volume(
    records: Sequence[PairRecord], threshold: float, policy: pairs.Policy | None = None
) -> int:
    """How many pairs the matcher suggests at ``threshold``: those whose best probability
    while the rule gates passed reached it, and those the person-relative decision of
    ``policy`` takes (None: the threshold alone)."""
    return sum(1 for r in records if (e := effective(r, policy)) is not None and e >= threshold)


def precision(ranked: Sequence[Pair], positives: set[Pair], k: int) -> float:
    top = ranked[:k]
    return sum(p in positives for p in top) / len(top) if top else math.nan


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


def bootstrap(
    chosen: Mapping[str, Sequence[Pair]],
    positives: set[Pair],
    universe: Sequence[Pair],
    *,
    rounds: int = 1000,
    seed: int = 7,
) -> dict[str, Interval]:
    """Precision of each chosen set, and of each one minus the first, with a 95% interval
    from a paired bootstrap over the pairs of the universe (every set sees the same draw).

    Keys: the names of ``chosen``, and ``"<name> - <first>"`` for the differences."""
    rng = np.random.default_rng(seed)
    index = {p: i for i, p in enumerate(universe)}
    sets = {
        name: np.array([index[p] for p in ps if p in index], dtype=np.int64)
        for name, ps in chosen.items()
    }
    y = np.array([p in positives for p in universe], dtype=np.float64)
    n = len(universe)
    first = next(iter(chosen))
    samples: dict[str, list[float]] = {k: [] for k in chosen}
    samples.update({f"{k} - {first}": [] for k in chosen if k != first})
    for _ in range(rounds):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        prec = {}
        for name, idx in sets.items():
            total = w[idx].sum()
            prec[name] = float((w[idx] * y[idx]).sum() / total) if total else math.nan
            samples[name].append(prec[name])
        for name in chosen:
            if name != first:
                samples[f"{name} - {first}"].append(prec[name] - prec[first])
    point = {name: float(y[idx].mean()) if len(idx) else math.nan for name, idx in sets.items()}
    point.update({f"{k} - {first}": point[k] - point[first] for k in chosen if k != first})
    out = {}
    for name, values in samples.items():
        v = sorted(x for x in values if not math.isnan(x))
        lo, hi = (v[int(0.025 * len(v))], v[int(0.975 * len(v)) - 1]) if v else (math.nan,) * 2
        out[name] = Interval(point[name], lo, hi)
    return out


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts).date().isoformat()


# --- ranking every pair ---------------------------------------------------------------------


def auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """The chance that a random positive scores above a random negative (ties count half):
    the Mann-Whitney statistic. NaN without both classes."""
    from scipy.stats import rankdata

    y = np.asarray(labels, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        return math.nan
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


@dataclass(frozen=True)
class RankingQuality:
    pairs: int  # pairs in contact both ways
    base_rate: float
    count: Interval  # AUC of raw count
    model: Interval  # AUC of the model's probability at each pair's latest exchange
    lead: Interval  # model minus count, paired


def ranking_quality(
    records: Sequence[PairRecord],
    positives: set[Pair],
    model: TieModel,
    *,
    rounds: int = 1000,
    seed: int = 7,
) -> RankingQuality:
    """How well the model and raw count order *every* pair in contact both ways (the pairs
    the matcher can suggest), not just the top: AUC of each, with 95% intervals from a
    paired bootstrap over the pairs."""
    rows = [r for r in records if r.x is not None]
    y = np.array([r.pair in positives for r in rows], dtype=bool)
    count = np.array([r.events for r in rows], dtype=np.float64)
    logit = np.array([model.logit(r.x) for r in rows if r.x is not None], dtype=np.float64)
    point = (auc(count, y), auc(logit, y))
    rng = np.random.default_rng(seed)
    draws: list[tuple[float, float]] = []
    for _ in range(rounds if len(rows) else 0):
        i = rng.integers(0, len(rows), len(rows))
        c, m = auc(count[i], y[i]), auc(logit[i], y[i])
        if not (math.isnan(c) or math.isnan(m)):
            draws.append((c, m))

    def interval(value: float, values: list[float]) -> Interval:
        if not values:
            return Interval(value, math.nan, math.nan)
        lo, hi = np.percentile(values, [2.5, 97.5])
        return Interval(value, float(lo), float(hi))

    return RankingQuality(
        pairs=len(rows),
        base_rate=float(y.mean()) if len(rows) else math.nan,
        count=interval(point[0], [c for c, _ in draws]),
        model=interval(point[1], [m for _, m in draws]),
        lead=interval(point[1] - point[0], [m - c for c, m in draws]),
    )
