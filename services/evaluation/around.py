"""The people around a pair (issue 38): do the circles' structural features tell close ties
from the others better than the pair's own numbers? (``make eval``; pure, no Kafka)

For each labelled data set, every person's circle is built from the events the features may
see (``offline.labelled``), by the matcher's own code (``circles.observe``, the weights the
matcher would send to its circle stage, the default k and half-life), and each pair in
contact both ways gets the structural features of ``circles.structure`` from the two circles
at the end of that window (shares and ranks do not depend on when they are read).

Two questions, each over every pair in contact both ways, with 95% paired-bootstrap
intervals over the pairs:

1. **single signals**: the AUC of raw count, of distinct weeks (the model's strongest
   feature) and of each structural feature on its own;
2. **the model with them**: the tie-strength model refitted with the structural features
   added, judged leave-one-dataset-out as the shipped one is, against the same refit without
   them: does knowing the people around a pair rank better on data the fit never saw?

The high-school data set (SocioPatterns 2013: face-to-face contacts by RFID, and the
friendships the students themselves reported) is the one label here that *is* closeness. Its
contacts are in-person meetings, which the matcher never suggests (the two already meet), so
it judges the signals only: circles from the contact records (each 20 s record weighs 1),
"friends" if either named the other, among the pairs whose two students both answered the
survey (a missing name from a student who did not answer says nothing).
"""

from __future__ import annotations

import gzip
import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from schemas.events import Interaction
from services.evaluation import train
from services.evaluation.datasets import Dataset, Pair, pair
from services.evaluation.offline import Interval, auc, labelled
from services.matcher import circles, groups, pairs, scoring
from services.matcher.model import FEATURES

HIGHSCHOOL: Final = "sociopatterns_highschool2013"
#: the signals of the single-signal table, in its column order
SIGNALS: Final = ("raw count", "weeks", *circles.STRUCTURE)


def circles_of(
    contacts: Iterable[tuple[str, str, float, float]],
    *,
    half_life_days: float,
    k: int = circles.DEFAULT_K,
) -> dict[str, circles.Circle]:
    """Every person's circle from ``(a, b, weight, epoch s)`` contacts in time order (each
    counts for both people)."""
    out: dict[str, circles.Circle] = {}
    for a, b, w, ts in contacts:
        out[a] = circles.observe(out.get(a), b, w, ts, half_life_days=half_life_days, k=k)
        out[b] = circles.observe(out.get(b), a, w, ts, half_life_days=half_life_days, k=k)
    return out


def contacts_of(events: Iterable[Interaction]) -> Iterable[tuple[str, str, float, float]]:
    """The contacts the matcher's circle stage gets: interactions that can be meaningful."""
    for e in sorted(events, key=lambda e: e.occurred_at):
        w = scoring.weight(e)
        if w * 1.25 >= scoring.MEANINGFUL:
            yield e.actor, e.target, w, e.occurred_at.timestamp()


def structure_rows(people: Sequence[tuple[str, str]], cs: dict[str, circles.Circle]) -> np.ndarray:
    """The structural features of each pair, in ``circles.STRUCTURE`` order."""
    digests = {p: circles.digest(c) for p, c in cs.items()}

    def breadth(z: str) -> int | None:
        c = cs.get(z)
        return None if c is None else c.partners_seen

    return np.array(
        [
            [
                circles.structure(a, b, digests.get(a), digests.get(b), breadth)[f]
                for f in circles.STRUCTURE
            ]
            for a, b in people
        ],
        dtype=np.float64,
    ).reshape(len(people), len(circles.STRUCTURE))


@dataclass(frozen=True)
class Signals:
    name: str
    label: str
    pairs: int
    base_rate: float
    auc: dict[str, Interval]  # by SIGNALS name


def auc_intervals(
    scores: dict[str, np.ndarray], y: np.ndarray, *, rounds: int = 500, seed: int = 7
) -> dict[str, Interval]:
    """AUC of each score with a 95% interval from one paired bootstrap over the pairs."""
    rng = np.random.default_rng(seed)
    point = {k: auc(v, y) for k, v in scores.items()}
    draws: dict[str, list[float]] = {k: [] for k in scores}
    for _ in range(rounds if len(y) else 0):
        i = rng.integers(0, len(y), len(y))
        for k, v in scores.items():
            a = auc(v[i], y[i])
            if not math.isnan(a):
                draws[k].append(a)
    out = {}
    for k, got in draws.items():
        lo, hi = np.percentile(got, [2.5, 97.5]) if got else (math.nan, math.nan)
        out[k] = Interval(point[k], float(lo), float(hi))
    return out


def _weeks(ts: Iterable[float]) -> int:
    return len({int((t // 86_400 + 3) // 7) for t in ts})


def dataset_signals(ds: Dataset, part: train.Part, policy: pairs.Policy) -> Signals:
    events, _ = labelled(ds)
    cs = circles_of(contacts_of(events), half_life_days=policy.half_life_days)
    s = structure_rows(part.people, cs)
    count = np.array([r.events for r in part.records if r.x is not None], dtype=np.float64)
    scores = {
        "raw count": count,
        "weeks": part.x[:, FEATURES.index("weeks")],
        **{f: s[:, i] for i, f in enumerate(circles.STRUCTURE)},
    }
    y = part.y.astype(bool)
    return Signals(ds.name, ds.label, len(y), float(y.mean()), auc_intervals(scores, y))


@dataclass(frozen=True)
class GroupCheck:
    top: int
    groups: int
    sizes: dict[int, int]
    pairs: int  # member pairs whose two students both answered the survey
    friends: float  # share of them that are reported friends
    whole: float  # share of groups whose every judged member pair is friends
    count_baseline: float  # the same number of pairs, the most contact records first
    base_rate: float


def highschool(data_dir: Path) -> tuple[Signals, list[GroupCheck]] | None:
    """The single signals and the groups (``groups.groups_around`` from every person's
    circle) against the students' own friendships (None: data absent)."""
    d = data_dir / HIGHSCHOOL
    if not d.is_dir():
        return None
    with gzip.open(d / "HighSchool2013_proximity_net.csv.gz", "rt") as f:
        rows = [(int(t), i, j) for t, i, j, *_ in (line.split() for line in f)]
    with gzip.open(d / "HighSchool2013_friendship_network.csv.gz", "rt") as f:
        named = [tuple(line.split()) for line in f if line.strip()]
    answered = {i for i, _ in named}
    friends = {pair(i, j) for i, j in named}
    count: Counter[Pair] = Counter()
    seen: defaultdict[Pair, list[float]] = defaultdict(list)
    for t, i, j in rows:
        count[pair(i, j)] += 1
        seen[pair(i, j)].append(float(t))
    cs = circles_of(((i, j, 1.0, float(t)) for t, i, j in rows), half_life_days=21.0)
    keys = sorted(p for p in count if p[0] in answered and p[1] in answered)
    s = structure_rows(keys, cs)
    scores: dict[str, np.ndarray] = {
        "raw count": np.array([count[p] for p in keys], dtype=np.float64),
        # five school days: distinct days stand in for weeks
        "weeks": np.array([len({int(t // 86_400) for t in seen[p]}) for p in keys], float),
        **{f: s[:, i] for i, f in enumerate(circles.STRUCTURE)},
    }
    y = np.array([p in friends for p in keys], dtype=bool)
    signals = Signals(
        "highschool", "reported friendship", len(y), float(y.mean()), auc_intervals(scores, y)
    )
    digests = {p: circles.digest(c) for p, c in cs.items()}
    by_count = sorted(keys, key=lambda p: (-count[p], p))
    checks = []
    for top in (groups.DEFAULT_TOP, 10, 15):
        found: set[tuple[str, ...]] = set()
        for person in cs:
            found.update(groups.groups_around(person, digests.get, top=top))
        judged = {
            pair(a, b)
            for g in found
            for a, b in itertools.combinations(g, 2)
            if a in answered and b in answered
        }
        whole = [
            all(pair(a, b) in friends for a, b in itertools.combinations(g, 2))
            for g in found
            if all(m in answered for m in g)
        ]
        share = sum(p in friends for p in judged) / len(judged) if judged else math.nan
        top_count = by_count[: len(judged)]
        baseline = sum(p in friends for p in top_count) / len(top_count) if judged else math.nan
        checks.append(
            GroupCheck(
                top=top,
                groups=len(found),
                sizes=dict(sorted(Counter(len(g) for g in found).items())),
                pairs=len(judged),
                friends=share,
                whole=sum(whole) / len(whole) if whole else math.nan,
                count_baseline=baseline,
                base_rate=float(y.mean()),
            )
        )
    return signals, checks


def highschool_signals(data_dir: Path) -> Signals | None:
    got = highschool(data_dir)
    return None if got is None else got[0]


@dataclass(frozen=True)
class Refit:
    name: str
    without: Interval  # AUC of the refit on the pair's own features, this set left out
    with_structure: Interval  # AUC of the refit with the structural features added
    lead: Interval  # with minus without, paired
    weights: dict[str, float]  # the structural features' slopes in the refit


def refits(
    parts: dict[str, train.Part],
    structure: dict[str, np.ndarray],
    *,
    rounds: int = 500,
    seed: int = 7,
) -> list[Refit]:
    """Leave one data set out: the model fitted on the others with and without the
    structural features, each judged by its AUC on the one left out."""
    out = []
    for held in parts:
        others = [n for n in parts if n != held]
        logits = {}
        weights: dict[str, float] = {}
        for with_s in (False, True):
            xs = [np.hstack([parts[n].x, structure[n]]) if with_s else parts[n].x for n in others]
            mean, scale, w = _fit([*xs], [parts[n].y for n in others])
            x = np.hstack([parts[held].x, structure[held]]) if with_s else parts[held].x
            logits[with_s] = ((x - mean) / scale) @ w
            if with_s:
                weights = {
                    f: round(float(v), 3)
                    for f, v in zip(circles.STRUCTURE, w[len(FEATURES) :], strict=True)
                }
        y = parts[held].y.astype(bool)
        iv = auc_intervals({"without": logits[False], "with": logits[True]}, y, rounds=rounds)
        rng = np.random.default_rng(seed)
        diffs = []
        for _ in range(rounds):
            i = rng.integers(0, len(y), len(y))
            a, b = auc(logits[True][i], y[i]), auc(logits[False][i], y[i])
            if not (math.isnan(a) or math.isnan(b)):
                diffs.append(a - b)
        lo, hi = np.percentile(diffs, [2.5, 97.5]) if diffs else (math.nan, math.nan)
        lead = Interval(iv["with"].value - iv["without"].value, float(lo), float(hi))
        out.append(Refit(held, iv["without"], iv["with"], lead, weights))
    return out


def _fit(xs: list[np.ndarray], ys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``train.fit``'s method on any feature matrix: monotone logistic, one intercept per
    data set, each data set weighing the same."""
    x = np.vstack(xs)
    sw = np.concatenate([np.full(len(y), 1.0 / len(y)) for y in ys])
    sw *= len(sw) / sw.sum()
    mean = np.average(x, axis=0, weights=sw)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=sw))
    scale[scale < 1e-9] = 1.0
    groups = np.zeros((len(x), len(xs)))
    row = 0
    for j, y in enumerate(ys):
        groups[row : row + len(y), j] = 1.0
        row += len(y)
    w, _ = train._monotone_logistic((x - mean) / scale, groups, np.concatenate(ys), sw, train.C)
    return mean, scale, w


def evaluate(
    dss: dict[str, Dataset],
    parts: dict[str, train.Part],
    policy: pairs.Policy,
    data_dir: Path,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, object]:
    single = [dataset_signals(dss[n], parts[n], policy) for n in parts]
    hs = highschool(data_dir)
    group_checks: list[GroupCheck] = []
    if hs is not None:
        single.append(hs[0])
        group_checks = hs[1]
    say("structural signals done")
    structure = {}
    for n, part in parts.items():
        events, _ = labelled(dss[n])
        cs = circles_of(contacts_of(events), half_life_days=policy.half_life_days)
        structure[n] = structure_rows(part.people, cs)
    fitted = refits(parts, structure)
    say("refits with the structural features done")
    return {"single": single, "refits": fitted, "groups": group_checks}


GROUP_HEAD: Final = (
    "| closest partners counted | groups | sizes | member pairs judged | friends "
    "| whole groups | count baseline | base rate |\n|---|---|---|---|---|---|---|---|"
)


def _ci(iv: Interval, signed: bool = False) -> str:
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(iv.value)} [{f.format(iv.low)}, {f.format(iv.high)}]"


def render(result: dict[str, object]) -> str:
    single: list[Signals] = result["single"]  # type: ignore[assignment]
    fitted: list[Refit] = result["refits"]  # type: ignore[assignment]
    checks: list[GroupCheck] = result.get("groups", [])  # type: ignore[assignment]
    group_rows = [
        f"| {c.top}{' (default)' if c.top == groups.DEFAULT_TOP else ''} | {c.groups} | "
        f"{', '.join(f'{k}: {v}' for k, v in c.sizes.items())} | {c.pairs} | "
        f"{c.friends:.3f} | {c.whole:.3f} | {c.count_baseline:.3f} | {c.base_rate:.3f} |"
        for c in checks
    ]
    head = "| data set (label) | pairs | base rate | " + " | ".join(SIGNALS) + " |"
    rule = "|---|---|---|" + "---|" * len(SIGNALS)
    rows = [
        f"| {s.name} ({s.label}) | {s.pairs} | {s.base_rate:.3f} | "
        + " | ".join(_ci(s.auc[k]) for k in SIGNALS)
        + " |"
        for s in single
    ]
    refit_rows = [
        f"| {r.name} | {_ci(r.without)} | {_ci(r.with_structure)} | {_ci(r.lead, signed=True)} "
        f"| {', '.join(f'{k} {v}' for k, v in r.weights.items())} |"
        for r in fitted
    ]
    return f"""## The people around a pair

Issue 38: each person's circle (`services/matcher/circles.py`: their top partners by
decayed meaningful exchange, k = {circles.DEFAULT_K}) gives a pair four structural features
(docs/matching.md): **shared contacts** (log of how many), **Adamic-Adar** (shared
contacts, the less connected counting more), **attention** (the smaller of the two shares
each gives the other of their exchanges) and **closest** (1 / the worse of the two ranks
each has in the other's circle). Computed by the matcher's own code from the events the
features may see (`services/evaluation/around.py`). AUC over every pair in contact both ways,
95% paired-bootstrap intervals; the high-school row is the students' own reported
friendships (face-to-face contacts; distinct days stand in for weeks over its five days).

{head}
{rule}
{chr(10).join(rows)}

The tie-strength model refitted with the four added, judged leave-one-dataset-out (AUC on
the set left out, the same method and data as the shipped model), against the same refit
without them:

| left out | without | with the structural features | lead | their slopes in the refit |
|---|---|---|---|---|
{chr(10).join(refit_rows)}

**Groups** (`services/matcher/groups.py`): 3 to 6 people of whom every two are among each
other's closest partners (the top few of each circle), found from every student's circle,
against the students' reported friendships. "Friends" is the share of the groups' member
pairs (both students answered the survey) that are friends; "whole groups" the share of
groups (every member answered) whose every pair is; the count baseline takes as many pairs,
the most contact records first; the base rate is every contact pair's.

{GROUP_HEAD}
{chr(10).join(group_rows)}

"""
