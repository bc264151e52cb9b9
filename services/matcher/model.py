"""The tie-strength model: how likely a pair is a close tie, from its pair-state features
(pure: no I/O imports; the matcher's wiring reads the model file and hands it in).

A logistic regression over standardised features: ``p = 1 / (1 + exp(-(b + sum w_i z_i)))``
with ``z_i = (x_i - mean_i) / scale_i``. Transparent by construction: each feature's share of
the logit, ``w_i z_i``, is what moved this pair's score away from an average pair's, and the
explanation names the largest of them.

The shipped model (``services/matcher/models/tie-strength-v*.json``) is fitted by
``realconnect train-model`` on public data, with its provenance and held-out metrics in the
file; ``services/matcher/learning.py`` adapts it to a deployment's own answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

#: The features, in model order. Each is a number the pair state holds in bounded memory;
#: ``services.matcher.pairs.features`` computes them.
FEATURES: Final[tuple[str, ...]] = (
    "reciprocal_exchanges",  # log(1 + meaningful exchanges in the quieter direction)
    "exchanges",  # log(1 + meaningful exchanges, both directions)
    "balance",  # quieter direction / busier direction, 0..1
    "days",  # log(1 + distinct local days with a meaningful exchange)
    "weeks",  # log(1 + distinct local weeks with a meaningful exchange)
    "span",  # log(1 + weeks from the first meaningful exchange to this one)
    "evenings",  # share of meaningful exchanges at night (22:00-07:00 local time)
    "weekends",  # share of meaningful exchanges on Saturday or Sunday (local time)
    "call_minutes",  # log(1 + minutes of answered calls)
    "longest_call",  # log(1 + minutes of the longest call)
    "back_and_forth",  # share of exchanges that answer the other person within a day
    "recent_strength",  # log(1 + the weaker direction's time-decayed strength)
)


@dataclass(frozen=True)
class TieModel:
    """A fitted logistic model over `FEATURES` (or a subset, by name)."""

    version: str
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    #: where it came from, how it was evaluated: carried along, never used to decide
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == len(self.weights) == n):
            raise ValueError("a tie model needs one mean, scale and weight per feature")
        unknown = set(self.features) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown tie-model features: {sorted(unknown)}")
        if any(s <= 0 or not math.isfinite(s) for s in self.scale):
            raise ValueError("every feature scale must be a positive number")
        if not all(math.isfinite(v) for v in (*self.mean, *self.weights, self.intercept)):
            raise ValueError("tie-model parameters must be finite numbers")

    def standardise(self, x: Mapping[str, float]) -> list[float]:
        return [
            (x[f] - m) / s for f, m, s in zip(self.features, self.mean, self.scale, strict=True)
        ]

    def logit(self, x: Mapping[str, float]) -> float:
        z = self.standardise(x)
        return self.intercept + sum(w * v for w, v in zip(self.weights, z, strict=True))

    def probability(self, x: Mapping[str, float]) -> float:
        return sigmoid(self.logit(x))

    def contributions(self, x: Mapping[str, float]) -> list[tuple[str, float]]:
        """Each feature's share of the logit against an average pair, largest first."""
        z = self.standardise(x)
        parts = [(f, w * v) for f, w, v in zip(self.features, self.weights, z, strict=True)]
        return sorted(parts, key=lambda kv: (-kv[1], kv[0]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "intercept": self.intercept,
            **({"meta": dict(self.meta)} if self.meta else {}),
        }


def sigmoid(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def from_dict(d: Mapping[str, Any]) -> TieModel:
    """A model from its JSON form; a clear error names what is missing or wrong."""
    try:
        return TieModel(
            version=str(d["version"]),
            features=tuple(str(f) for f in d["features"]),
            mean=tuple(float(v) for v in d["mean"]),
            scale=tuple(float(v) for v in d["scale"]),
            weights=tuple(float(v) for v in d["weights"]),
            intercept=float(d["intercept"]),
            meta=dict(d.get("meta") or {}),
        )
    except KeyError as exc:
        raise ValueError(f"tie model file lacks {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tie model file is malformed: {exc}") from exc


def describe(model: TieModel, x: Mapping[str, float], top: int = 3) -> list[str]:
    """The features that raised this pair's score the most (above an average pair's), by
    name; only those that actually moved it up (share of the logit > 0.1). The sentence
    (``services.matcher.sentences``) says them in the reader's words."""
    out: list[str] = []
    for name, part in model.contributions(x):
        if part <= 0.1 or len(out) >= top:
            break
        out.append(name)
    return out


def vector(model: TieModel, x: Mapping[str, float]) -> tuple[float, ...]:
    """The model's features of ``x`` as a tuple (stored with a suggestion, for learning)."""
    return tuple(round(x[f], 6) for f in model.features)


def as_mapping(model: TieModel, v: Sequence[float]) -> dict[str, float]:
    return dict(zip(model.features, v, strict=True))
