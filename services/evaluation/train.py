"""Fitting the tie-strength model (``realconnect train-model``).

Examples are pairs in contact both ways, with the model's features at their latest
meaningful exchange, as the matcher computes them (``offline.probe``); labels are each
dataset's own (friendship, or tie persistence). The model is an L2-regularised logistic
regression with non-negative slopes (monotone: more of any signal never lowers a score; scipy)
on standardised features, fitted on several datasets at once with
one intercept per dataset, so that their different base rates (Copenhagen's friendship is
0.81, CollegeMsg's persistence 0.03) do not leak into the slopes. Each dataset weighs the
same in the fit, whatever its size.

The shipped intercept is the median of the per-dataset ones: a deployment's own base rate
is unknown until people answer, and ``services/matcher/learning.py`` moves the intercept
first when they do.
"""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median
from typing import Any

import numpy as np
from scipy.optimize import minimize

from services.evaluation.datasets import Dataset, Pair
from services.evaluation.offline import PairRecord, labelled, probe
from services.matcher import pairs
from services.matcher.model import FEATURES, TieModel

#: L2 strength (inverse, as scikit-learn's C): mild; twelve features, thousands of examples
C = 0.5


@dataclass(frozen=True)
class Part:
    """One dataset's examples: features, labels, and the people of each row."""

    name: str
    x: np.ndarray  # (n, len(FEATURES))
    y: np.ndarray  # (n,) 0/1
    people: list[tuple[str, str]]
    records: list[PairRecord]
    positives: set[Pair]


def examples(ds: Dataset, policy: pairs.Policy) -> Part:
    events, positives = labelled(ds)
    records = probe(events, policy)
    rows = [r for r in records if r.x is not None]
    x = np.array([[r.x[f] for f in FEATURES] for r in rows], dtype=np.float64)  # type: ignore[index]
    y = np.array([r.pair in positives for r in rows], dtype=np.float64)
    return Part(ds.name, x, y, [r.people for r in rows], records, positives)


def subset(part: Part, people: set[str], *, inside: bool) -> Part:
    """The rows whose two people are both in ``people`` (inside) or both outside it."""
    keep = [
        i
        for i, (a, b) in enumerate(part.people)
        if ((a in people) == inside) and ((b in people) == inside)
    ]
    rec = [
        r
        for r in part.records
        if ((r.pair[0] in people) == inside) and ((r.pair[1] in people) == inside)
    ]
    return Part(
        part.name,
        part.x[keep],
        part.y[keep],
        [part.people[i] for i in keep],
        rec,
        part.positives,
    )


def fit(parts: Sequence[Part], *, c: float = C, version: str = "tie-strength") -> TieModel:
    """One model over several datasets: shared slopes, one intercept per dataset."""
    usable = [p for p in parts if len(p.y) and 0 < p.y.sum() < len(p.y)]
    if not usable:
        raise ValueError("no dataset has both positive and negative examples")
    x = np.vstack([p.x for p in usable])
    weights = np.concatenate([np.full(len(p.y), 1.0 / len(p.y)) for p in usable])
    weights *= len(weights) / weights.sum()
    mean = np.average(x, axis=0, weights=weights)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=weights))
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    onehot = np.zeros((len(x), len(usable)))
    row = 0
    for j, p in enumerate(usable):
        onehot[row : row + len(p.y), j] = 1.0
        row += len(p.y)
    y = np.concatenate([p.y for p in usable])
    w, b = _monotone_logistic(z, onehot, y, weights, c)
    slopes = w
    intercepts = {p.name: float(b[j]) for j, p in enumerate(usable)}
    return TieModel(
        version=version,
        features=FEATURES,
        mean=tuple(round(float(v), 6) for v in mean),
        scale=tuple(round(float(v), 6) for v in scale),
        weights=tuple(round(float(v), 6) for v in slopes),
        intercept=round(median(intercepts.values()), 6),
        meta={"intercepts_by_dataset": {k: round(v, 4) for k, v in intercepts.items()}},
    )


def _monotone_logistic(
    z: np.ndarray, groups: np.ndarray, y: np.ndarray, sw: np.ndarray, c: float
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logistic regression with every slope >= 0 (more of any signal never lowers
    a pair's score: the model stays readable and monotone), L2 on the slopes only, and one
    free intercept per dataset. Solved with scipy's L-BFGS-B (bounds)."""
    k = z.shape[1]
    g = groups.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:k], theta[k:]
        t = z @ w + groups @ b
        p = 1.0 / (1.0 + np.exp(-t))
        eps = 1e-12
        nll = -np.sum(sw * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
        r = sw * (p - y)
        grad = np.concatenate([z.T @ r + w / c, groups.T @ r])
        return float(nll + 0.5 * np.dot(w, w) / c), grad

    bounds = [(0.0, None)] * k + [(None, None)] * g
    res = minimize(loss, np.zeros(k + g), jac=True, method="L-BFGS-B", bounds=bounds)
    if not res.success:
        raise RuntimeError(f"the fit did not converge: {res.message}")
    return res.x[:k], res.x[k:]


def provenance(
    parts: Sequence[Part], policy: pairs.Policy, extra: Mapping[str, Any]
) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, read-only
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fitted_by": "realconnect train-model (services/evaluation/train.py)",
        "commit": commit or "unknown",
        "python": platform.python_version(),
        "method": f"L2 logistic regression with non-negative slopes (scipy L-BFGS-B, C={C}), "
        "standardised features, one intercept per dataset (shipped: their median), "
        "each dataset weighted equally",
        "training_data": [
            {
                "dataset": p.name,
                "examples": len(p.y),
                "positives": int(p.y.sum()),
                "base_rate": round(float(p.y.mean()), 4) if len(p.y) else None,
            }
            for p in parts
        ],
        "policy": {
            "min_exchanges_per_direction": policy.min_exchanges_per_direction,
            "min_distinct_days": policy.min_distinct_days,
            "half_life_days": policy.half_life_days,
        },
        **extra,
    }
