"""Judge the matcher on a community's own answer (``realconnect judge``).

A community manager who asked people to name their close friends (a survey, or the answers
people gave to suggestions) can check the matcher against that answer on their own history:

- the **events**: the canonical JSONL a replay sends (``realconnect replay``);
- the **labels**: a CSV with a header ``a,b``, one row per pair named close ("a named b"; the
  pair counts as close when either named the other, or only when both did, ``mutual``);
- optionally the **people** the survey asked: pairs with anybody else are left out, because
  the survey says nothing about them (left out is not the same as "not close");
- optionally the **suggestions** the running pipeline made (``realconnect suggestions``);
  without them, the matcher's pure core decides on the same events with the deployment's
  settings (``make eval`` shows that both make the same suggestions).

The figure is the one the matcher has to beat to be worth running: the precision of its
suggested pairs against the same number of pairs taken by raw count, by reciprocal-first
(pairs in contact both ways, then raw count) and by recency, with 95% intervals from a paired
bootstrap over the pairs (``offline.bootstrap``). Every pair with any contact between two
labelled people is in the universe the baselines rank, as in the evaluation.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from schemas.events import Interaction
from services.evaluation import offline
from services.evaluation.datasets import Pair, pair
from services.evaluation.offline import Interval
from services.evaluation.signals import signed
from services.matcher import pairs

#: the fewest suggested pairs a precision is worth reading at (the issue's minimum)
MIN_PAIRS: Final = 20
#: stricter bars shown: the matcher's k most confident suggested pairs against each baseline's k
STRICTER: Final = (10, 20, 50)
BASELINES: Final = ("raw count", "reciprocal first", "recency")


class LabelError(ValueError):
    """A labels or people file that cannot be read as documented."""


def read_labels(path: Path, *, mutual: bool = False) -> tuple[frozenset[Pair], int, int]:
    """The close pairs of a CSV with the header ``a,b`` (more columns are ignored): either
    person naming the other makes the pair close, or, with ``mutual``, both must have.
    Returns the pairs, the rows read and the rows skipped (a person naming themselves)."""
    named: set[tuple[str, str]] = set()
    rows = skipped = 0
    with path.open(newline="") as f:
        reader = csv.reader(line for line in f if line.strip() and not line.startswith("#"))
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["a", "b"]:
            raise LabelError(f"{path}: the first line must be the header a,b (got {header})")
        for n, row in enumerate(reader, start=2):
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise LabelError(f"{path}: row {n} needs two ids (got {row})")
            a, b = row[0].strip(), row[1].strip()
            rows += 1
            if a == b:
                skipped += 1
                continue
            named.add((a, b))
    if mutual:
        close = {pair(a, b) for a, b in named if (b, a) in named}
    else:
        close = {pair(a, b) for a, b in named}
    return frozenset(close), rows, skipped


def read_people(path: Path) -> frozenset[str]:
    """One id a line (blank lines and ``#`` comments ignored)."""
    people = frozenset(
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    if not people:
        raise LabelError(f"{path} names nobody")
    return people


@dataclass(frozen=True)
class Judgement:
    pairs: int  # pairs with any contact that the label speaks for (the universe)
    base_rate: float  # the share of them that are close
    volume: int  # distinct suggested pairs the label speaks for
    unjudged: int  # suggested pairs with someone the label does not speak for
    precision: dict[str, Interval]  # "matcher" and each baseline, at the matcher's volume
    #: the matcher's precision minus each baseline's, with a paired 95% interval
    lead: dict[str, Interval]
    #: the better of raw count and reciprocal-first (the issue's bar)
    rival: str
    #: at a stricter bar: k -> precision of the matcher's k highest-scored suggested pairs,
    #: and of each baseline's top k (point values)
    stricter: dict[int, dict[str, float]]

    @property
    def lead_over_rival(self) -> Interval:
        return self.lead[self.rival]


def judge(
    events: Sequence[Interaction],
    positives: Iterable[Pair],
    suggested: Mapping[Pair, float],
    policy: pairs.Policy,
    *,
    people: frozenset[str] | None = None,
    rounds: int = 1000,
) -> Judgement:
    """The matcher's suggested pairs (each with its score, the model's probability when it
    was suggested) against the baselines at the same volume."""

    def known(p: tuple[str, str]) -> bool:
        return people is None or (p[0] in people and p[1] in people)

    seen = [e for e in events if known((e.actor, e.target))]
    records = offline.probe(seen, policy)
    universe = [r.pair for r in records]
    close = {p for p in positives if known(p)}
    scores: dict[Pair, float] = {}
    for p, score in suggested.items():
        key = pair(*p)
        scores[key] = max(score, scores.get(key, score))
    in_universe = set(universe)
    # most confident first: a stricter bar keeps a prefix of this list
    judged = sorted((p for p in scores if p in in_universe), key=lambda p: (-scores[p], p))
    n = len(judged)
    ranked = {
        "raw count": offline.by_count(records),
        "reciprocal first": offline.by_reciprocal_count(records),
        "recency": offline.by_recency(records),
    }
    sets = {"matcher": judged, **{name: r[:n] for name, r in ranked.items()}}
    iv = offline.bootstrap(sets, close, universe, rounds=rounds)
    lead = {name: _negated(iv[f"{name} - matcher"]) for name in BASELINES}
    rival = max(("raw count", "reciprocal first"), key=lambda k: _or_low(iv[k].value))
    stricter = {
        k: {
            name: offline.precision(r, close, k)
            for name, r in {"matcher": judged, **ranked}.items()
        }
        for k in STRICTER
        if k < n
    }
    return Judgement(
        pairs=len(universe),
        base_rate=sum(p in close for p in universe) / len(universe) if universe else math.nan,
        volume=n,
        unjudged=len(scores) - n,
        precision={k: iv[k] for k in sets},
        lead=lead,
        rival=rival,
        stricter=stricter,
    )


def _negated(iv: Interval) -> Interval:
    return Interval(-iv.value, -iv.high, -iv.low)


def _or_low(v: float) -> float:
    return -1.0 if math.isnan(v) else v


def _f(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.3f}"


def _signed(v: float) -> str:
    return "n/a" if math.isnan(v) else signed(v)


def render(j: Judgement) -> str:
    """The judgement as a plain-text report."""
    lines = [
        f"pairs with any contact that the label covers: {j.pairs:,} "
        f"(close: {_f(j.base_rate)} of them)",
        f"pairs the matcher suggested: {j.volume:,}"
        + (f" (and {j.unjudged:,} with someone the label does not cover)" if j.unjudged else ""),
        "",
        f"precision at {j.volume:,} pairs, with 95% bootstrap intervals:",
    ]
    for name, iv in j.precision.items():
        lead = "" if name == "matcher" else f"   matcher lead {_ci(j.lead[name], signed=True)}"
        lines.append(f"  {name:<17} {_ci(iv)}{lead}")
    lines += [
        "",
        f"lead over the better of raw count and reciprocal-first ({j.rival}): "
        f"{_ci(j.lead_over_rival, signed=True)}",
    ]
    if j.stricter:
        lines += ["", "at a stricter bar (the matcher's most confident pairs; point values):"]
        names = list(next(iter(j.stricter.values())))
        lines.append("  " + " " * 8 + "".join(f"{name:>18}" for name in names))
        for k, row in j.stricter.items():
            lines.append(f"  {k:>4} pairs" + "".join(f"{_f(row[name]):>18}" for name in names))
    if j.volume < MIN_PAIRS:
        lines.append(
            f"note: fewer than {MIN_PAIRS} suggested pairs; a precision on so few says little"
        )
    return "\n".join(lines)


def _ci(iv: Interval, *, signed: bool = False) -> str:
    fmt = _signed if signed else _f
    return f"{fmt(iv.value)} [{fmt(iv.low)}, {fmt(iv.high)}]"


def as_dict(j: Judgement) -> dict[str, object]:
    def d(iv: Interval) -> dict[str, float | None]:
        return {
            k: (None if math.isnan(v) else round(v, 4))
            for k, v in (("value", iv.value), ("low", iv.low), ("high", iv.high))
        }

    return {
        "pairs": j.pairs,
        "base_rate": None if math.isnan(j.base_rate) else round(j.base_rate, 4),
        "volume": j.volume,
        "unjudged": j.unjudged,
        "precision": {k: d(v) for k, v in j.precision.items()},
        "lead": {k: d(v) for k, v in j.lead.items()},
        "rival": j.rival,
        "lead_over_rival": d(j.lead_over_rival),
        "stricter": {
            str(k): {name: None if math.isnan(v) else round(v, 4) for name, v in row.items()}
            for k, row in j.stricter.items()
        },
    }
