"""The evaluation's own machinery (pure): baselines, precision at equal volume, the bootstrap,
the fit, and the learning loop on a community whose answer the generator knows."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from services.evaluation import feedback, offline, synthetic, train
from services.evaluation.offline import PairRecord
from services.matcher import learning, models, pairs
from services.matcher.model import FEATURES


def rec(p: str, events: int, reciprocal: bool, last: float, best: float | None) -> PairRecord:
    a, b = p.split("-")
    return PairRecord((a, b), events, reciprocal, last, None, best, (a, b))


RECORDS = [
    rec("a-b", 50, False, 5.0, None),
    rec("c-d", 40, True, 1.0, 0.9),
    rec("e-f", 30, True, 9.0, 0.2),
    rec("g-h", 20, True, 3.0, 0.6),
    rec("i-j", 10, False, 8.0, None),
]


def test_rankings_by_hand() -> None:
    assert offline.by_count(RECORDS) == [("a", "b"), ("c", "d"), ("e", "f"), ("g", "h"), ("i", "j")]
    assert offline.by_reciprocal_count(RECORDS)[:3] == [("c", "d"), ("e", "f"), ("g", "h")]
    assert offline.by_recency(RECORDS)[:3] == [("e", "f"), ("g", "h"), ("c", "d")]
    assert offline.by_model(RECORDS)[:3] == [("c", "d"), ("g", "h"), ("e", "f")]
    positives = {("c", "d"), ("g", "h")}
    assert offline.precision(offline.by_model(RECORDS), positives, 2) == 1.0
    assert offline.precision(offline.by_count(RECORDS), positives, 2) == 0.5


def test_the_bootstrap_brackets_the_point_and_pairs_the_draws() -> None:
    universe = [(f"p{i}", f"q{i}") for i in range(200)]
    positives = set(universe[:100])
    chosen = {"good": universe[:80], "mixed": universe[60:140]}
    iv = offline.bootstrap(chosen, positives, universe, rounds=400)
    assert iv["good"].value == 1.0 and iv["mixed"].value == 0.5
    assert iv["mixed"].low < 0.5 < iv["mixed"].high
    assert iv["mixed - good"].value == -0.5 and iv["mixed - good"].high < 0


def test_persistence_labels_need_both_directions_after_the_cut() -> None:
    from tests.factories import T0, interaction

    events = [
        interaction("a", "b", at=T0),
        interaction("a", "b", days=10),
        interaction("b", "a", days=11),
        interaction("c", "d", days=10),
    ]
    assert offline.persisted(events, (T0.timestamp() + 86400)) == {("a", "b")}


def test_the_fit_recovers_the_signal_of_a_generated_label() -> None:
    """Labels generated from one feature alone: the fit weighs that feature most."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, len(FEATURES)))
    y = (x[:, FEATURES.index("weekends")] + 0.3 * rng.normal(size=3000) > 0.5).astype(float)
    part = train.Part("gen", x, y, [("a", "b")] * 3000, [], set())
    model = train.fit([part])
    assert max(zip(model.weights, model.features, strict=True))[1] == "weekends"
    assert all(w >= 0 for w in model.weights)


@pytest.mark.parametrize("seed", [5, 11])
def test_answers_raise_the_precision_of_later_suggestions(seed: int) -> None:
    """Friends and colleagues both talk every week; only answers can teach the matcher that
    here friends talk in the evening and on long calls. The generator knows who is a friend."""
    made = synthetic.community(seed=seed)
    policy = replace(pairs.Policy(), model=models.load())
    t0 = made.events[0].occurred_at.timestamp()
    t1 = made.events[-1].occurred_at.timestamp()
    later = t0 + (t1 - t0) / 3
    cfg = learning.LearnConfig(min_labels=20, min_people=5)
    with_answers = feedback.simulate(made.events, made.friends, policy, cfg)
    without = feedback.simulate(made.events, made.friends, policy, None)
    k1, p1 = feedback.precision_after(with_answers, later)
    k0, p0 = feedback.precision_after(without, later)
    assert with_answers.answers >= 100 and with_answers.refits >= 5
    assert k1 >= 30 and k0 >= 30
    assert p1 >= p0 + 0.1, (p0, p1)


@pytest.mark.parametrize("seed", [5, 11])
def test_answers_teach_which_pairs_are_close_at_equal_volume(seed: int) -> None:
    """The generator knows the friends: a model learnt from the first third's answers ranks
    the later pairs better than the shipped one, over as many pairs."""
    made = synthetic.community(seed=seed)
    policy = replace(pairs.Policy(), model=models.load())
    t0 = made.events[0].occurred_at.timestamp()
    t1 = made.events[-1].occurred_at.timestamp()
    cfg = learning.LearnConfig(min_labels=20, min_people=5)
    eq = feedback.at_equal_volume(made.events, made.friends, policy, cfg, t0 + (t1 - t0) / 3)
    assert eq.answers >= 50 and eq.volume >= 30
    assert eq.learnt >= eq.shipped + 0.03, eq


def test_without_enough_answers_the_learnt_model_is_the_shipped_one() -> None:
    made = synthetic.community(seed=5)
    policy = replace(pairs.Policy(), model=models.load())
    t0 = made.events[0].occurred_at.timestamp()
    t1 = made.events[-1].occurred_at.timestamp()
    never = learning.LearnConfig(min_labels=10**6)
    eq = feedback.at_equal_volume(made.events, made.friends, policy, never, t0 + (t1 - t0) / 3)
    assert eq.learnt == eq.shipped


def test_auc_by_hand() -> None:
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: three of the four pairs in order
    assert offline.auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert offline.auc([1, 1], [False, True]) == 0.5  # a tie counts half
    assert np.isnan(offline.auc([1, 2], [True, True]))


def test_ranking_quality_compares_model_and_count_on_the_same_pairs() -> None:
    from services.matcher.model import TieModel

    def r(p: str, events: int, weeks: float) -> PairRecord:
        a, b = p.split("-")
        return PairRecord((a, b), events, True, 0.0, {"weeks": weeks}, None, (a, b))

    # the ties have the most events and the fewest weeks; a pair never in contact both ways
    # (x None) is not ranked at all
    records = [r("a-b", 9, 1.0), r("c-d", 8, 1.5), r("e-f", 2, 4.0), r("g-h", 1, 5.0)]
    records.append(PairRecord(("i", "j"), 50, False, 0.0, None, None, ("i", "j")))
    model = TieModel("t", ("weeks",), (0.0,), (1.0,), (1.0,), 0.0)
    q = offline.ranking_quality(records, {("a", "b"), ("c", "d")}, model, rounds=200)
    assert (q.pairs, q.base_rate) == (4, 0.5)
    assert (q.count.value, q.model.value, q.lead.value) == (1.0, 0.0, -1.0)
    assert q.lead.low == q.lead.high == -1.0  # every draw with both classes says the same


def test_the_probe_applies_every_event_including_each_pair_s_last() -> None:
    """Hand-counted: three messages each way. The probe replays in time order with every
    event applied as it comes, so the features at the pair's latest exchange count all six
    (with the matcher's default, where the newest instant waits for a later event, the last
    message was never applied and ``make eval`` counted five: issue 37 changed its figures
    until this was fixed)."""
    from services.evaluation.offline import probe
    from services.matcher.pairs import Policy
    from tests.factories import conversation

    talk = conversation("ann", "ben", per_direction=3, days=3)
    (record,) = probe(talk, Policy())
    assert record.events == 6
    assert record.x is not None
    assert record.x["exchanges"] == pytest.approx(math.log1p(6))
    assert record.x["reciprocal_exchanges"] == pytest.approx(math.log1p(3))
