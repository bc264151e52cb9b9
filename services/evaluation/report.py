"""``make eval`` and ``realconnect train-model``: fit the tie-strength model, judge it on data
it was not fitted on, simulate learning from answers, and write ``docs/evaluation.md`` with
its figure ``docs/evaluation.png``.

Every comparison is at equal volume: a baseline takes as many pairs as the matcher suggested,
ranked its own way (raw count; reciprocal pairs first, by count; reciprocal pairs by most
recent contact). Intervals are 95% paired bootstraps over pairs.
"""

from __future__ import annotations

import math
import random
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from services.evaluation import around, feedback, offline, signals, synthetic, train
from services.evaluation import datasets as D
from services.evaluation.datasets import Dataset, Pair
from services.evaluation.offline import Interval, PairRecord
from services.evaluation.signals import signed
from services.matcher import learning, pairs
from services.matcher.model import TieModel

Say = Callable[[str], None]
BASELINES = ("raw count", "reciprocal first", "recency")
#: the strongest simple rankings, each at the matcher's volume (issue 38): its lead is over the
#: best of them
SIMPLE = ("raw count", "reciprocal first", "distinct weeks", "shared contacts")
#: the volumes at which single signals are compared with counting
SIGNAL_VOLUMES = (20, 50)


@dataclass(frozen=True)
class Heldout:
    name: str
    title: str
    label: str
    model: TieModel
    records: list[PairRecord]
    positives: set[Pair]
    volume: int  # pairs the matcher suggests at the default threshold
    rankings: dict[str, list[Pair]]
    intervals: dict[str, Interval]


def rankings(
    records: list[PairRecord], events: list[Any] | None = None, policy: pairs.Policy | None = None
) -> dict[str, list[Pair]]:
    out = {
        "matcher": offline.by_model(records, policy),
        "raw count": offline.by_count(records),
        "reciprocal first": offline.by_reciprocal_count(records),
        "recency": offline.by_recency(records),
    }
    if events is not None:
        # distinct local weeks with contact, and contacts in common (signals.py's rankings)
        simple = signals.rankings(signals.stats(events))
        out["distinct weeks"] = simple["weeks"]
        out["shared contacts"] = simple["common contacts"]
    return out


def judge(
    ds: Dataset, model: TieModel, policy: pairs.Policy, *, only: set[str] | None = None
) -> Heldout:
    events, positives = offline.labelled(ds)
    if only is not None:
        events = [e for e in events if e.actor in only and e.target in only]
    records = offline.probe(events, policy, model)
    volume = offline.volume(records, policy.min_probability, policy)
    ranks = rankings(records, events, policy)
    # nothing suggested (a one-week history never shows weeks of contact): the rankings are
    # still compared, at the minimum of 20 pairs
    k = volume or 20
    chosen = {name: r[:k] for name, r in ranks.items()}
    intervals = offline.bootstrap(chosen, positives, [r.pair for r in records])
    return Heldout(ds.name, ds.title, ds.label, model, records, positives, volume, ranks, intervals)


def fit_all(parts: dict[str, train.Part], names: tuple[str, ...], version: str) -> TieModel:
    return train.fit([parts[n] for n in names], version=version)


def people_splits(
    dss: dict[str, Dataset],
    parts: dict[str, train.Part],
    policy: pairs.Policy,
    repeats: int,
    say: Say,
) -> dict[str, list[float]]:
    """Matcher minus the better of raw count and reciprocal-first, at the matcher's volume,
    on the half of each dataset's people the fit never saw; repeated with new halves."""
    out: dict[str, list[float]] = {n: [] for n in D.FIT}
    for r in range(repeats):
        rng = random.Random(1000 + r)
        halves = {}
        for n in D.FIT:
            people = sorted({p for pr in parts[n].people for p in pr})
            rng.shuffle(people)
            halves[n] = set(people[: len(people) // 2])
        model = train.fit([train.subset(parts[n], halves[n], inside=True) for n in D.FIT])
        for n in D.FIT:
            everyone = {p for e in dss[n].events for p in (e.actor, e.target)}
            h = judge(dss[n], model, policy, only=everyone - halves[n])
            best = max(h.intervals["raw count"].value, h.intervals["reciprocal first"].value)
            if h.volume:
                out[n].append(h.intervals["matcher"].value - best)
        say(f"people split {r + 1}/{repeats} done")
    return out


def calibration(held: list[Heldout]) -> list[tuple[str, float, float, int]]:
    """Predicted vs observed, in bins of the held-out model's probability at each pair's
    latest exchange: (bin, mean predicted, observed share, pairs)."""
    rows = []
    for h in held:
        for lo in np.arange(0.0, 1.0, 0.2):
            hi = lo + 0.2
            got = [
                (h.model.probability(r.x), r.pair in h.positives)
                for r in h.records
                if r.x is not None and lo <= h.model.probability(r.x) < hi + (hi >= 1.0)
            ]
            if got:
                rows.append(
                    (
                        f"{h.name} {lo:.1f}-{hi:.1f}",
                        sum(p for p, _ in got) / len(got),
                        sum(y for _, y in got) / len(got),
                        len(got),
                    )
                )
    return rows


#: the learning simulations' settings: fewer answers before a refit than a deployment's default
SIM_LEARNING = learning.LearnConfig(min_labels=20, min_people=5)


def answer_sets(dss: dict[str, Dataset]) -> dict[str, tuple[list[Any], set[Pair], float]]:
    """The learning simulations' data: a generated community whose friends are known, and
    each fitted-on dataset with its label; each with the end of its first third."""
    made = synthetic.community()
    sets = {"generated community": (made.events, set(made.friends))}
    sets.update({n: offline.labelled(dss[n]) for n in D.FIT})
    out = {}
    for n, (events, positives) in sets.items():
        t0, t1 = events[0].occurred_at.timestamp(), events[-1].occurred_at.timestamp()
        out[n] = (list(events), positives, t0 + (t1 - t0) / 3)
    return out


def simulations(
    dss: dict[str, Dataset], policy: pairs.Policy, say: Say
) -> dict[str, tuple[feedback.Run, feedback.Run, float]]:
    """Each answer set replayed twice with the shipped model: people answering as the label
    says, and nobody answering. Judged on the pairs that began talking after the first third
    of the time span."""
    out = {}
    for n, (events, positives, third) in answer_sets(dss).items():
        with_fb = feedback.simulate(events, positives, policy, SIM_LEARNING)
        without = feedback.simulate(events, positives, policy, None)
        out[n] = (with_fb, without, third)
        say(f"feedback simulation {n}: {with_fb.answers} answers, {with_fb.refits} refits")
    return out


def equal_volume(dss: dict[str, Dataset], policy: pairs.Policy) -> dict[str, feedback.EqualVolume]:
    """What answers teach about which pairs are close, apart from how many pass: the model
    learnt from answers in the first third against the shipped one, on the later pairs."""
    return {
        n: feedback.at_equal_volume(events, positives, policy, SIM_LEARNING, third)
        for n, (events, positives, third) in answer_sets(dss).items()
    }


def plot(
    held: list[Heldout], sims: dict[str, tuple[feedback.Run, feedback.Run, float]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(held) + 1
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8))
    styles = {
        "matcher": ("C3", "-"),
        "raw count": ("C0", "--"),
        "reciprocal first": ("C2", ":"),
        "recency": ("C7", "-."),
        "distinct weeks": ("C1", "--"),
        "shared contacts": ("C4", ":"),
    }
    for ax, h in zip(axes, held, strict=False):
        reciprocal = sum(1 for r in h.records if r.best is not None)
        top = max(20, min(len(h.records), max(3 * h.volume, 200), reciprocal or 200))
        ks = sorted({int(v) for v in np.unique(np.geomspace(5, top, 40).astype(int))})
        for name, ranked in h.rankings.items():
            color, ls = styles[name]
            ax.plot(
                ks,
                [offline.precision(ranked, h.positives, k) for k in ks],
                ls,
                color=color,
                label=name,
            )
        if h.volume:
            ax.axvline(h.volume, color="C3", lw=0.8, alpha=0.5)
        ax.set_xscale("log")
        ax.set_title(f"{h.name} ({h.label})", fontsize=9)
        ax.set_xlabel("pairs suggested (volume)")
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("precision")
    axes[0].legend(fontsize=7)
    ax = axes[-1]
    for i, (name, (fb, nofb, _)) in enumerate(sims.items()):
        t0, t1 = min(fb.began.values()), max(fb.began.values())
        fracs = [j / 10 for j in range(1, 9)]
        for run, ls, tag in ((fb, "-", "answers"), (nofb, ":", "none")):
            ys = [feedback.precision_after(run, t0 + f * (t1 - t0))[1] for f in fracs]
            ax.plot(fracs, ys, ls, color=f"C{i}", marker="o", ms=3, label=f"{name}: {tag}")
    ax.set_title("learning from answers", fontsize=9)
    ax.set_xlabel("pairs that began after this share of the span")
    ax.set_ylabel("precision of their suggestions")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ci(iv: Interval) -> str:
    if math.isnan(iv.value):
        return "—"
    return f"{iv.value:.3f} [{iv.low:.3f}, {iv.high:.3f}]"


#: each feature in a community manager's words
PLAIN = {
    "reciprocal_exchanges": "how many thoughtful messages the quieter of the two has sent",
    "exchanges": "how many thoughtful messages they have exchanged in all",
    "balance": "how evenly the two share the talking",
    "days": "on how many different days they were in touch",
    "weeks": "in how many different weeks they were in touch",
    "span": "how long ago they first talked (how old the connection is)",
    "evenings": "how much of it happens in the evening or at night",
    "weekends": "how much of it happens at weekends",
    "call_minutes": "how long they have spent on the phone",
    "longest_call": "their longest call",
    "back_and_forth": "how often one answers the other within a day",
    "recent_strength": "how strong the contact is lately, in both directions",
}


def _words(model: TieModel) -> list[str]:
    parts = sorted(zip(model.features, model.weights, strict=True), key=lambda kv: -kv[1])
    return [f"- {PLAIN[f]} (`{f}`, weight {w:.2f})" for f, w in parts if w > 0]


def fit_shipped(data_dir: Path, out: Path, say: Say) -> TieModel:
    """``realconnect train-model``: the model fitted on every FIT dataset, with provenance
    and its leave-one-dataset-out figures."""
    policy = pairs.Policy()
    dss = {n: D.LOADERS[n](data_dir) for n in (*D.FIT, *D.UNSEEN)}
    parts = {n: train.examples(dss[n], policy) for n in D.FIT}
    model = fit_all(parts, D.FIT, "tie-strength-v2")
    shipped = replace(policy, model=model)
    metrics = {}
    for n in (*D.FIT, *D.UNSEEN):
        m = (
            model
            if n in D.UNSEEN
            else fit_all(parts, tuple(x for x in D.FIT if x != n), f"without-{n}")
        )
        h = judge(dss[n], m, replace(shipped, model=m))
        metrics[n] = {
            "held_out": n not in D.FIT or "left out of this fit",
            "label": h.label,
            "volume": h.volume,
            **{name: round(h.intervals[name].value, 4) for name in ("matcher", *BASELINES)},
        }
        say(
            f"{n}: volume {h.volume}, matcher {metrics[n]['matcher']}, count {metrics[n]['raw count']}"
        )
    meta = train.provenance(
        list(parts.values()), policy, {"held_out_precision_at_equal_volume": metrics}
    )
    model = replace(model, meta={**dict(model.meta), **meta})
    import orjson

    out.write_bytes(orjson.dumps(model.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    return model


def evaluate(data_dir: Path, policy: pairs.Policy, say: Say, *, repeats: int = 5) -> dict[str, Any]:
    """Everything ``docs/evaluation.md`` reports, computed (no Kafka: the pure core)."""
    dss = {n: D.LOADERS[n](data_dir) for n in (*D.FIT, *D.UNSEEN)}
    say("datasets loaded")
    parts = {n: train.examples(dss[n], policy) for n in D.FIT}
    held: list[Heldout] = []
    for n in D.FIT:
        m = fit_all(parts, tuple(x for x in D.FIT if x != n), f"without-{n}")
        held.append(judge(dss[n], m, replace(policy, model=m)))
        say(f"held out {n}: volume {held[-1].volume}")
    assert policy.model is not None
    for n in D.UNSEEN:
        held.append(judge(dss[n], policy.model, policy))
        say(f"unseen {n}: volume {held[-1].volume}")
    splits = people_splits(dss, parts, policy, repeats, say)
    sims = simulations(dss, policy, say)
    equal = equal_volume(dss, policy)
    say("learning at equal volume done")
    single = {
        n: {k: signals.judge(*offline.labelled(dss[n]), k) for k in SIGNAL_VOLUMES} for n in dss
    }
    say("single signals against counting done")
    ranking = {h.name: offline.ranking_quality(h.records, h.positives, h.model) for h in held}
    say("ranking every pair done")
    people_around = around.evaluate({n: dss[n] for n in D.FIT}, parts, policy, data_dir, say)
    return {
        "held": held,
        "ranking": ranking,
        "splits": splits,
        "sims": sims,
        "equal": equal,
        "calibration": calibration(held),
        "signals": single,
        "around": people_around,
    }


def _heldout_row(h: Heldout) -> str:
    """A held-out dataset's row: each method's precision at the matcher's volume."""
    iv = h.intervals
    best = max((b for b in SIMPLE if b in iv), key=lambda b: iv[b].value)
    diff = iv.get(f"{best} - matcher")
    lead = f"{signed(-diff.value)} [{signed(-diff.high)}, {signed(-diff.low)}]" if diff else "—"
    seen = "never fitted on" if h.name in D.UNSEEN else "left out of the fit"
    k = h.volume or 20
    same = set(h.rankings["reciprocal first"][:k]) == set(h.rankings["raw count"][:k])
    # two baselines that chose the same pairs are one baseline, not two
    recip = f"= raw count (the same {k} pairs)" if same else _ci(iv["reciprocal first"])
    return (
        f"| {h.name} ({h.label}; {seen}) | {h.volume or '0 (ranking at 20)'} | "
        f"{_ci(iv['matcher'])} | {_ci(iv['raw count'])} | {recip} | "
        f"{_ci(iv['distinct weeks'])} | {_ci(iv['shared contacts'])} | {_ci(iv['recency'])} | "
        f"{lead} ({best}) |"
    )


def _recall_row(h: Heldout) -> str:
    """Close pairs found: of the label's pairs in contact both ways, how many the matcher's
    suggestions (and each simple ranking at the same volume) include."""
    close = {r.pair for r in h.records if r.reciprocal and r.pair in h.positives}
    k = h.volume or 20
    cells = []
    for name in ("matcher", *SIMPLE):
        found = len(set(h.rankings[name][:k]) & close)
        cells.append(f"{found} ({found / len(close):.3f})" if close else "—")
    return f"| {h.name} ({h.label}) | {len(close)} | {k} | " + " | ".join(cells) + " |"


def _sim_row(name: str, fb: Any, nofb: Any, mid: float) -> str:
    """A learning simulation's row: later suggestions' precision with and without answers."""
    k1, p1 = feedback.precision_after(fb, mid)
    k0, p0 = feedback.precision_after(nofb, mid)
    change = signed(p1 - p0) if k0 and k1 else "—"
    return f"| {name} | {fb.answers} | {fb.refits} | {k0} | {p0:.3f} | {k1} | {p1:.3f} | {change} |"


def _model_section(policy: pairs.Policy, model: Any, trained: str) -> str:
    rates = [t["base_rate"] for t in model.meta.get("training_data", []) if t["base_rate"]]
    spread = f"from {min(rates):.2f} to {max(rates):.2f}" if rates else "widely"
    return f"""## The model in plain words

realconnect suggests that two people meet when their exchanges are **reciprocal**, **repeated**
and **recent** (the rules), *and* a tie-strength model judges the tie close enough (probability
≥ {policy.min_probability}, the default). The model is a logistic regression over twelve numbers the pair state keeps
about the two people; no message text is kept. Fitted on public data, it learnt which of them
tell a lasting tie from a passing one. What raises a pair's score, strongest first:

{chr(10).join(_words(model))}

Every other signal ({", ".join(f for f, w in zip(model.features, model.weights, strict=True) if w <= 0)})
got weight 0: once the above are known, more of it did not make a lasting tie more likely on
this data (the fit would have needed a negative weight, which the model does not allow). The
weights are held non-negative (more of a signal never lowers a score), so the model stays
monotone and each suggestion names the signals that raised its score ("What stood out: …").

The strongest signal is **persistence**: contact that comes back week after week. A burst of
a hundred messages in two days is counted as one week; ten weeks of steady contact as ten.
That is what raw counting misses, and what the research on tie strength finds
(duration and recency of contact; Gilbert & Karahalios 2009).

- Model file: `services/matcher/models/tie-strength-v2.json` ({model.version}), fitted by
  `realconnect train-model` on {trained}; each dataset weighs the same, and has its own
  intercept (base rates differ {spread}); the shipped intercept is their median.
- Labels: Copenhagen Facebook friendship, among the people who have Facebook data (a pair
  with anyone else has no label and is left out); tie persistence elsewhere (from the first
  part of a history, are the two still writing to each other, both ways, in the later part?).

"""


def _precision_section(rows: list[str], recall: list[str], png: str, saturated: float) -> str:
    return f"""## Precision at equal volume, on data the model was not fitted on

Each row is one dataset, judged by a model **fitted without it** (Higgs: never used to fit
anything). "Volume" is how many pairs the matcher suggests with the default settings; every
baseline takes the same number of pairs. Precision with a 95% bootstrap interval; the last
column is the matcher's lead over the best of the four simple rankings (raw count,
reciprocal pairs first, distinct local weeks with contact, contacts in common), named.
The high-school students' reported friendships are the one other label in the data, and
they have no row here: their contacts are face-to-face (`in_person`), and a pair seen
meeting in person lately is never suggested a meetup (the gate `not_in_person_lately`), so
the matcher's volume there is zero by design. Their label is used where it can say
something: the single signals and the groups under "The people around a pair".

| data set | volume | matcher | raw count | reciprocal first | distinct weeks | shared contacts | recency | lead (over the best) |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

**Recall**: of the label's close pairs that were in contact both ways (the pairs the matcher
could suggest), how many the suggestions include, and how many each simple ranking finds
with as many pairs:

| data set | close pairs in contact both ways | pairs taken | matcher | raw count | reciprocal first | distinct weeks | shared contacts |
|---|---|---|---|---|---|---|---|
{chr(10).join(recall)}

![precision against volume]({png})

Left panels: precision of each method as the volume grows (the red line marks the matcher's
default volume). Right: precision of the suggestions for pairs that began talking after a
given share of the time span, with (solid) and without (dotted) learning from answers.

Read with care: Copenhagen's label is saturated ({saturated:.2f} of reciprocal pairs are Facebook
friends) and its window is four weeks, so "weeks" can only be 1–5 there; recency wins on
persistence labels by construction (the label *is* later contact), so it is shown but is not
a fair rival for a closeness label.

None of these labels is a closeness label with room to spare, so the figure that decides
whether the matcher judges better than counting is one on people's own answers: a community
that asked its people to name their close friends gets it, with the same baselines and
intervals, from `realconnect judge` (see "Judging it on your own community" in
[matching.md](matching.md)).

"""


def _closest_row(h: Heldout, policy: pairs.Policy) -> str:
    """One dataset: the matcher with and without the person-relative decision, each at its
    own volume against the best simple ranking at that volume."""
    theta = policy.min_probability
    alone = offline.volume(h.records, theta)  # the global bar alone
    if not h.volume:
        return f"| {h.name} ({h.label}) | 0 | 0 | | | | |"

    def at(k: int, ranked: list[Pair]) -> tuple[float, str, float]:
        best = max(SIMPLE, key=lambda n: offline.precision(h.rankings[n], h.positives, k))
        return (
            offline.precision(ranked, h.positives, k),
            best,
            offline.precision(h.rankings[best], h.positives, k),
        )

    without = offline.by_model(h.records)
    p0, b0, v0 = at(alone, without) if alone else (math.nan, "", math.nan)
    p1, b1, v1 = at(h.volume, h.rankings["matcher"])
    added = set(h.rankings["matcher"][: h.volume]) - set(without[:alone])
    pa = f"{sum(p in h.positives for p in added) / len(added):.3f}" if added else "none"
    return (
        f"| {h.name} ({h.label}) | {alone} | {h.volume} | {len(added)} ({pa}) "
        f"| {p0:.3f} ({b0} {v0:.3f}) | {p1:.3f} ({b1} {v1:.3f}) | {p1 - v1:+.3f} |"
    )


def _closest_section(held: list[Heldout], policy: pairs.Policy) -> str:
    rows = "\n".join(_closest_row(h, policy) for h in held)
    return f"""## The person-relative decision

A pair each of whom is among the other's {policy.closest_top} closest partners is suggested
at a probability of {policy.closest_min_probability} (the global bar:
{policy.min_probability}; docs/matching.md). The replay keeps each person's circle as the
matcher's circle stage does. Each dataset judged by the model fitted without it; each volume
against the best of the four simple rankings at that volume (precision, the ranking named).
The two settings were chosen on Copenhagen, so its row is not a held-out figure.

| data set | volume, global bar alone | volume, with it | pairs it adds (precision) | matcher without it (best simple) | matcher with it (best simple) | lead with it |
|---|---|---|---|---|---|---|
{rows}

"""


def _ranking_section(ranking: dict[str, offline.RankingQuality], labels: dict[str, str]) -> str:
    rows = "\n".join(
        f"| {n} ({labels[n]}) | {q.pairs:,} | {q.base_rate:.3f} | {_ci(q.count)} "
        f"| {_ci(q.model)} | {signed(q.lead.value)} [{signed(q.lead.low)}, {signed(q.lead.high)}] |"
        for n, q in ranking.items()
    )
    verdicts = []
    for n, q in ranking.items():
        if q.lead.low > 0:
            verdicts.append(f"better than counting on {n}")
        elif q.lead.high < 0:
            verdicts.append(f"worse than counting on {n}")
        else:
            verdicts.append(f"not clearly different from counting on {n}")
    said = textwrap.fill(
        f"The model orders the pairs {'; '.join(verdicts)}. Copenhagen's is the only closeness "
        "label here, and the model judged on it was fitted on persistence labels alone; the "
        "others reward later contact, which counting predicts well on a long, sparse history "
        "like CollegeMsg's. Where a closeness label leaves room at the top, a better order of "
        "every pair is what a better top needs; where it leaves none, as on Copenhagen, only "
        "this figure can show it.",
        95,
        break_on_hyphens=False,
    )
    return f"""## Ranking every pair, not just the top

Precision at the matcher's volume looks only at the top of each ranking, and at the top
Copenhagen's label leaves no room. Over *every* pair in contact both ways (the pairs the
matcher can suggest), the AUC says how well a ranking puts ties above the others: the chance
that a random tie is ranked above a random other pair (0.5 is chance). Each dataset is judged
by the model fitted without it (Higgs: never fitted on), from its probability at each pair's
latest exchange, against raw count; the difference has a 95% paired-bootstrap interval
(`offline.ranking_quality`).

| data set | pairs (both ways) | ties | raw count | model | model − count |
|---|---|---|---|---|---|
{rows}

{said}

"""


def _signals_section(single: dict[str, dict[int, list[signals.Row]]]) -> str:
    names = list(single)
    tables = []
    for k in SIGNAL_VOLUMES:
        head = "| signal | " + " | ".join(names) + " |\n|---|" + "---|" * len(names)
        body = [
            f"| {name} | " + " | ".join(signals.cell(single[n][k][i]) for n in names) + " |"
            for i, name in enumerate(signals.SIGNALS)
        ]
        tables.append(f"**The top {k} pairs of each ranking:**\n\n{head}\n" + "\n".join(body))
    joined = "\n\n".join(tables)
    return f"""## Single signals against counting

Which simple measure of a pair, on its own, picks more of the dataset's ties than raw counting
does at the same number of pairs? Each signal ranks every pair of the dataset (ties broken by
raw count; `services/evaluation/signals.py`); each cell is its precision, then its lead over
raw counting with a 95% paired-bootstrap interval, in bold where the interval leaves out
zero. The labels are the ones above (Copenhagen: Facebook friendship; the others: later
contact both ways).

{joined}

What it says: counting is hard to beat. On Copenhagen no signal clears zero above it (its
label is saturated). Persistence, the distinct days and weeks of contact, is the signal that
clears zero somewhere (CollegeMsg) and, where a history is longer than a week, never falls
clearly below counting; this is why the model is built on it. Higgs covers a single week
(Sunday 1 to Saturday 7 July 2012): there a pair has two "weeks" only if it also talked on
the Sunday, which says nothing. The network signals, which need every person's contacts and so
state per person rather than per pair, win on CollegeMsg and lose clearly on the EU
department or Higgs, so they are not in the model. Only Copenhagen has phone calls
(elsewhere that ranking is raw count's); their lead there does not clear zero.

"""


def _splits_section(split_rows: str) -> str:
    return f"""## Repeated splits by people

Five times, each dataset's people were split into two random halves; the model was fitted on
pairs within one half (of all datasets) and judged on pairs within the other. The figure is
the matcher's precision minus the better of raw count and reciprocal-first, at the
matcher's volume.

| data set | splits | mean lead | lowest | highest |
|---|---|---|---|---|
{split_rows}

"""


def _calibration_section(cal: str) -> str:
    return f"""## Calibration on held-out data

The held-out model's probability at each pair's latest exchange, in bins, against the share
of pairs that were ties. The shipped intercept is a median across datasets with very
different base rates, so the probabilities are an honest ranking but only roughly
calibrated on any one dataset; learning from answers (below) moves the intercept to the
deployment's own rate first.

| bin | mean predicted | observed | pairs |
|---|---|---|---|
{cal}

"""


def _equal_rows(equal: dict[str, feedback.EqualVolume]) -> str:
    rows = "\n".join(
        f"| {n} | {e.answers} | {e.volume} | {e.shipped:.3f} | {e.learnt:.3f} | "
        f"{signed(e.learnt - e.shipped)} |"
        for n, e in equal.items()
    )
    least = SIM_LEARNING.min_labels
    few = [n for n, e in equal.items() if e.answers < least]
    same = [n for n, e in equal.items() if e.answers >= least and e.learnt == e.shipped]
    notes = []
    if same:
        notes.append(
            f"On {' and '.join(same)} the answers taught nothing about which pairs come first: "
            "they agree with the shipped ranking (a persistence label rewards the persistence "
            "the shipped model already weighs), so only the intercept, and with it the number "
            "of suggestions, moved."
        )
    if few:
        notes.append(
            f"Fewer than {least} answers came in the first third on {' and '.join(few)}, so nothing "
            "was learnt there."
        )
    return rows + ("\n\n" + " ".join(notes) if notes else "")


def _learning_section(sim_rows: list[str], equal_rows: str, extra: str) -> str:
    return f"""## Learning from answers

Simulated people answer every suggestion a day later: both accept if the pair is a tie in
the label, both decline otherwise. The first row is a generated community
(`services/evaluation/synthetic.py`) whose answer is known: friends and colleagues are both
in touch week after week, so the shipped model cannot tell them apart, but friends talk in
the evening, at weekends and on long calls; the others are the real data sets and their
labels. Answers refit the model as the matcher does
(`services/matcher/learning.py`: a prior worth {learning.LearnConfig().prior_strength:.0f} answers
around the shipped model, nothing before 20 answers from 5 people in this simulation (30 from
10 by default), each person's answers capped at {learning.LearnConfig().max_per_person:.0f};
the intercept may fall, never rise above the shipped model's, and a refit is adopted only if it
beats the model in use on the answers to one suggestion in {learning.HOLD_BACK}, held back from it).
Precision of the suggestions for pairs that began talking after the first third of the time
span (judged from their first exchange on, by a model that learnt from the answers about
earlier pairs), against the same replay with nobody answering:

| data set | answers | refits | pairs (no answers) | precision | pairs (learning) | precision | change |
|---|---|---|---|---|---|---|---|
{chr(10).join(sim_rows)}

The two runs above need not suggest as many pairs: answers move the model's intercept first.
Until issue 38 they could raise it, so a community that accepted most suggestions got more
of them, the extra ones the less certain (EU email lost 0.309 of precision that way); now
they can only lower it. To see what the answers taught about *which* pairs are close, apart from how
many pass, the model learnt from the answers to the first third's suggestions and the shipped
model rank the same later pairs, and each takes as many as the shipped model suggests among
them (`feedback.at_equal_volume`):

| data set | answers learnt from | pairs | shipped model | learnt model | change |
|---|---|---|---|---|---|
{equal_rows}

{extra}
"""


def _reciprocal_rate(held: list[Heldout], name: str) -> float:
    """The share of a held-out dataset's reciprocal pairs that are ties in its label."""
    got = [r.pair in h.positives for h in held if h.name == name for r in h.records if r.reciprocal]
    return sum(got) / len(got) if got else math.nan


def render(result: dict[str, Any], policy: pairs.Policy, png: str, header: str, extra: str) -> str:
    """docs/evaluation.md: the tables computed here, the rest is the document's text."""
    model = policy.model
    assert model is not None
    rows = [_heldout_row(h) for h in result["held"]]
    split_rows = "\n".join(
        f"| {n} | {len(v)} | {signed(float(np.mean(v)))} | {signed(min(v))} | {signed(max(v))} |"
        for n, v in result["splits"].items()
        if v
    )
    sim_rows = [_sim_row(n, fb, nofb, mid) for n, (fb, nofb, mid) in result["sims"].items()]
    cal = "\n".join(f"| {b} | {p:.2f} | {o:.2f} | {c} |" for b, p, o, c in result["calibration"])
    meta = model.meta
    trained = ", ".join(
        f"{t['dataset']} ({t['examples']} pairs, base rate {t['base_rate']})"
        for t in meta.get("training_data", [])
    )
    return (
        f"# Evaluation\n\n{header}\n\n"
        + _model_section(policy, model, trained)
        + _precision_section(
            rows,
            [_recall_row(h) for h in result["held"]],
            png,
            _reciprocal_rate(result["held"], "copenhagen"),
        )
        + _closest_section(result["held"], policy)
        + _ranking_section(result["ranking"], {h.name: h.label for h in result["held"]})
        + _signals_section(result["signals"])
        + around.render(result["around"])
        + _splits_section(split_rows)
        + _calibration_section(cal)
        + _learning_section(sim_rows, _equal_rows(result["equal"]), extra)
    )
