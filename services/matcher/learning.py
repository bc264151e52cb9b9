"""Learning from people's answers (pure: no I/O imports).

Every answer to a suggestion is a labelled example: the model's features when the pair was
suggested, and 1 for "accepted" or "met", 0 for "declined" ("snoozed" says nothing). A
deployment refits its model from these examples, safely:

- **A prior, not a blank slate.** The refit is the maximum a-posteriori logistic regression
  with a Gaussian prior centred on the shipped model (its intercept and weights), worth
  ``prior_strength`` answers: a handful of labels barely moves it, thousands do.
- **Nothing before enough evidence.** Until ``min_labels`` answers from ``min_people``
  different people exist, the shipped model is used unchanged.
- **No one person swings it.** Each person's answers weigh together at most
  ``max_per_person`` answers (each of theirs is down-weighted to fit).
- **Monotone stays monotone.** Weights the shipped model holds at zero or above stay at zero
  or above (projected Newton steps), so no answer set can make "more contact" count against
  a pair.

The intercept (the deployment's own base rate) moves first and most freely: its prior is a
tenth as strong as the weights'.

**It cannot make things worse** (issue 38). In ``make eval``'s simulation, answers lowered
precision on EU email by 0.309: its people accept most suggestions, so the refit raised the
intercept, every pair's probability rose, and more pairs passed the bar, the extra ones the
least certain; at the same volume the refit ranked exactly as the shipped model did. Answers
can only tell about pairs that were suggested, never about the pairs a lower bar would add,
so a refit:

- may lower the intercept (a community that declines gets fewer, surer suggestions), never
  raise it above the shipped model's: answers do not lower the bar;
- is judged on answers it was not fitted on: one suggestion in ``HOLD_BACK`` (by its id, so
  both people's answers stay together) is held back, and the refit is adopted only if its
  log loss there is lower than the model in use's and its ranking (AUC) no worse. Otherwise
  the model in use stays.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import orjson

from services.matcher.model import TieModel, sigmoid


@dataclass(frozen=True)
class Example:
    """One answer: who gave it, to which suggestion, the features then, and the label."""

    suggestion_id: str
    person: str
    x: tuple[float, ...]  # raw features, in the model's feature order
    label: int  # 1 accepted/met, 0 declined
    at: float


@dataclass(frozen=True)
class LearnConfig:
    min_labels: int = 30
    min_people: int = 10
    prior_strength: float = 50.0
    max_per_person: float = 5.0
    iterations: int = 12


#: one suggestion in this many has its answers held back to judge a refit
HOLD_BACK: Final = 4


def held_back(e: Example) -> bool:
    """Whether this answer judges refits rather than fitting them (stable per suggestion)."""
    return hashlib.sha256(e.suggestion_id.encode()).digest()[0] % HOLD_BACK == 0


def label_of(outcome: str) -> int | None:
    return {"accepted": 1, "met": 1, "declined": 0}.get(outcome)


def ready(examples: Sequence[Example], cfg: LearnConfig) -> bool:
    return len(examples) >= cfg.min_labels and len({e.person for e in examples}) >= cfg.min_people


def weights(examples: Sequence[Example], cfg: LearnConfig) -> list[float]:
    """Each example's weight: 1, or less so that a person's answers sum to at most
    ``max_per_person``."""
    per = Counter(e.person for e in examples)
    return [min(1.0, cfg.max_per_person / per[e.person]) for e in examples]


def refit(prior: TieModel, examples: Sequence[Example], cfg: LearnConfig) -> TieModel:
    """The prior adapted to ``examples``, if that is better on the answers held back from the
    fit (see the module); else the prior itself (also while the answers are not enough)."""
    usable = [e for e in examples if len(e.x) == len(prior.features)]
    if not ready(usable, cfg):
        return prior
    fit_on = [e for e in usable if not held_back(e)]
    judge_on = [e for e in usable if held_back(e)]
    if not ready(fit_on, cfg) or not judge_on:
        return prior  # nothing to judge a refit by yet
    candidate = _fit(prior, fit_on, cfg)
    return candidate if better(candidate, prior, judge_on, cfg) else prior


def better(
    candidate: TieModel, current: TieModel, held: Sequence[Example], cfg: LearnConfig
) -> bool:
    """Lower log loss on ``held`` (each person's answers weighted as in the fit) and, if they
    hold both answers, an AUC no lower."""
    sw = weights(held, cfg)

    def loss(m: TieModel) -> float:
        total = 0.0
        for e, w in zip(held, sw, strict=True):
            p = min(1 - 1e-9, max(1e-9, m.probability(dict(zip(m.features, e.x, strict=True)))))
            total -= w * (math.log(p) if e.label else math.log(1 - p))
        return total

    def auc(m: TieModel) -> float:
        scored = [(m.logit(dict(zip(m.features, e.x, strict=True))), e.label) for e in held]
        pos = [s for s, y in scored if y]
        neg = [s for s, y in scored if not y]
        wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
        return wins / (len(pos) * len(neg))

    if not loss(candidate) < loss(current):
        return False
    return len({e.label for e in held}) < 2 or auc(candidate) >= auc(current)


def _fit(prior: TieModel, usable: Sequence[Example], cfg: LearnConfig) -> TieModel:
    k = len(prior.features)
    z = [
        [(v - m) / s for v, m, s in zip(e.x, prior.mean, prior.scale, strict=True)] for e in usable
    ]
    y = [float(e.label) for e in usable]
    sw = weights(usable, cfg)
    mu = [prior.intercept, *prior.weights]  # prior centre
    # prior precision per parameter: the intercept's is a tenth of the weights'
    lam = [cfg.prior_strength / 10, *([cfg.prior_strength] * k)]
    lower = [-math.inf, *(0.0 if w >= 0 else -math.inf for w in prior.weights)]
    # answers never lower the bar: the intercept may only fall (see the module)
    upper = [prior.intercept, *([math.inf] * k)]
    theta = list(mu)
    for _ in range(cfg.iterations):
        grad = [lam[j] * (theta[j] - mu[j]) for j in range(k + 1)]
        hess = [[0.0] * (k + 1) for _ in range(k + 1)]
        for j in range(k + 1):
            hess[j][j] = lam[j]
        for row, target, w in zip(z, y, sw, strict=True):
            xi = [1.0, *row]
            p = sigmoid(sum(t * v for t, v in zip(theta, xi, strict=True)))
            r = w * (p - target)
            c = w * p * (1 - p)
            for a in range(k + 1):
                grad[a] += r * xi[a]
                ca = c * xi[a]
                for b in range(a, k + 1):
                    hess[a][b] += ca * xi[b]
        for a in range(k + 1):
            for b in range(a):
                hess[a][b] = hess[b][a]
        step = _solve(hess, grad)
        new = [
            min(hi, max(lo, t - s)) for t, s, lo, hi in zip(theta, step, lower, upper, strict=True)
        ]
        moved = max(abs(a - b) for a, b in zip(new, theta, strict=True))
        theta = new
        if moved < 1e-5:  # Newton: a handful of steps from the prior
            break
    return TieModel(
        version=f"{prior.version}+{len(usable)}answers",
        features=prior.features,
        mean=prior.mean,
        scale=prior.scale,
        weights=tuple(round(v, 6) for v in theta[1:]),
        intercept=round(theta[0], 6),
        meta={
            "prior": prior.version,
            "answers": len(usable),
            "people": len({e.person for e in usable}),
        },
    )


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """``a x = b`` by Gaussian elimination with partial pivoting (a is small and positive
    definite here: the prior's precision is on its diagonal)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        d = m[col][col]
        for r in range(col + 1, n):
            f = m[r][col] / d
            if f:
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def encode_example(e: Example) -> tuple[bytes, bytes]:
    """The ``labels`` table's key and value for an example (one per suggestion and person)."""
    value: dict[str, object] = {"suggestion_id": e.suggestion_id, "person": e.person}
    value |= {"x": e.x, "label": e.label, "at": e.at}
    return example_key(e.suggestion_id, e.person), orjson.dumps(value)


def example_key(suggestion_id: str, person: str) -> bytes:
    return f"{suggestion_id}|{person}".encode()


def decode_example(raw: bytes) -> Example | None:
    """An example from the ``labels`` table, or None for a value that is not one."""
    try:
        d = orjson.loads(raw)
        return Example(
            suggestion_id=str(d["suggestion_id"]),
            person=str(d["person"]),
            x=tuple(float(v) for v in d["x"]),
            label=int(d["label"]),
            at=float(d["at"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
