"""The learning loop, simulated: people answer the matcher's suggestions as the label says
(accept a pair that is a tie in the label, decline the others), their answers refit the
model as ``services/matcher/handlers.py`` does, and later suggestions are compared with a run
that learns nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from schemas.events import Interaction
from services.evaluation import offline
from services.evaluation.datasets import Pair
from services.matcher import learning, pairs
from services.matcher.model import TieModel

#: an answer reaches the matcher this long after the suggestion (event time)
ANSWER_DELAY_S = 86400.0


@dataclass(frozen=True)
class Run:
    #: (event time, pair, positive?) of each pair's first suggestion, in order
    suggested: list[tuple[float, Pair, bool]]
    #: when each pair first interacted
    began: dict[Pair, float]
    answers: int
    refits: int
    final_version: str
    #: the model in use when the replay ended (the prior if nothing was learnt)
    model: TieModel | None = None


def simulate(
    events: Sequence[Interaction],
    positives: set[Pair],
    policy: pairs.Policy,
    cfg: learning.LearnConfig | None,
    *,
    refit_every: int = 10,
) -> Run:
    """Replay ``events`` in time order (lateness 0) through ``pairs.receive``; with a
    ``cfg``, both people answer each suggestion ``ANSWER_DELAY_S`` later, and the model is
    refitted from all answers so far after every ``refit_every`` new ones."""
    policy = replace(policy, lateness_s=0.0, apply_in_order=False)  # applied as they come
    prior = policy.model
    states: dict[str, pairs.PairState] = {}
    waiting: list[tuple[float, str, learning.Example, str]] = []  # (due, key, example, outcome)
    examples: list[learning.Example] = []
    first: dict[Pair, tuple[float, bool]] = {}
    began: dict[Pair, float] = {}
    refits = 0
    since = 0
    for e in events:
        ts = e.occurred_at.timestamp()
        began.setdefault(e.pair, ts)
        if cfg is not None and waiting and waiting[0][0] <= ts:
            due = [w for w in waiting if w[0] <= ts]
            waiting = [w for w in waiting if w[0] > ts]
            for at, key, ex, outcome in due:
                examples.append(ex)
                states[key] = pairs.record_outcome(states[key], outcome, at)
                since += 1
            if since >= refit_every and prior is not None:
                policy = replace(policy, model=learning.refit(prior, examples, cfg))
                refits += 1
                since = 0
        state, made = pairs.receive(states.get(e.key), e, policy)
        states[e.key] = state
        for s in made:
            p = s.pair
            good = p in positives
            first.setdefault(p, (ts, good))
            if cfg is not None and state.x:
                outcome = "accepted" if good else "declined"
                for person in p:
                    ex = learning.Example(s.suggestion_id, person, state.x, int(good), ts)
                    waiting.append((ts + ANSWER_DELAY_S, e.key, ex, outcome))
    suggested = sorted((t, p, g) for p, (t, g) in first.items())
    version = policy.model.version if policy.model is not None else "none"
    return Run(suggested, began, len(examples), refits, version, policy.model)


def precision_after(run: Run, start: float) -> tuple[int, float]:
    """The suggestions for pairs that began talking at or after ``start`` (judged from their
    first exchange on, by a model that learnt from the answers about earlier pairs): how
    many, and their precision. Pairs that began earlier are left out of both runs: a model
    that learnt to suggest friends sooner would otherwise leave only the hard cases for
    "later"."""
    later = [g for _, p, g in run.suggested if run.began[p] >= start]
    return len(later), (sum(later) / len(later) if later else float("nan"))


@dataclass(frozen=True)
class EqualVolume:
    """The shipped model and the model learnt from earlier answers, ranking the same later
    pairs: each one's precision over the same number of them."""

    answers: int  # answers the learnt model had
    volume: int  # later pairs the shipped model suggests (20 if it suggests none)
    shipped: float
    learnt: float


def at_equal_volume(
    events: Sequence[Interaction],
    positives: set[Pair],
    policy: pairs.Policy,
    cfg: learning.LearnConfig,
    cut: float,
) -> EqualVolume:
    """Learn from the answers to suggestions made up to ``cut``; then rank the pairs that
    began talking after it (all their events) by the shipped and by the learnt model, as
    ``offline.by_model`` does, and compare the two at the shipped model's volume. A learnt
    intercept alone changes how many pairs pass, not which come first: this isolates what
    the answers taught about *which* pairs are close."""
    early = [e for e in events if e.occurred_at.timestamp() <= cut]
    learnt = simulate(early, positives, policy, cfg)
    first: dict[Pair, float] = {}
    for e in events:
        first.setdefault(e.pair, e.occurred_at.timestamp())
    later = [e for e in events if first[e.pair] > cut]
    shipped = offline.probe(later, policy, policy.model)
    taught = offline.probe(later, policy, learnt.model or policy.model)
    k = offline.volume(shipped, policy.min_probability) or min(20, len(shipped))
    return EqualVolume(
        learnt.answers,
        k,
        offline.precision(offline.by_model(shipped), positives, k),
        offline.precision(offline.by_model(taught), positives, k),
    )
