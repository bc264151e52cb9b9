"""A person's circle (services.matcher.circles): bounded, exact while small, the heavy hitters
kept whatever the input, forward decay equal to decaying every value, and the structural
features of a pair worked by hand."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.matcher.circles import (
    DAY,
    STRUCTURE,
    Circle,
    decayed_weight,
    digest,
    observe,
    structure,
    without,
)

H = 21.0  # half-life, days
T0 = 1_700_000_000.0


def fold(exchanges: list[tuple[str, float, float]], k: int) -> Circle:
    c: Circle | None = None
    for partner, w, t in exchanges:
        c = observe(c, partner, w, t, half_life_days=H, k=k)
    assert c is not None
    return c


def test_a_small_circle_is_exact_and_ranked() -> None:
    """Hand-worked: three partners at one instant (no decay), k = 5."""
    c = fold([("ben", 1.0, T0), ("cat", 0.5, T0), ("ben", 1.0, T0), ("dan", 0.5, T0)], k=5)
    d = digest(c)
    assert [p for p, _ in d.partners] == ["ben", "cat", "dan"]  # ties by id
    assert d.share("ben") == pytest.approx(2.0 / 3.0)
    assert d.share("cat") == pytest.approx(0.5 / 3.0)
    assert d.rank("ben") == 1 and d.rank("dan") == 3 and d.rank("eve") is None
    assert (d.partners_seen, d.exchanges) == (3, 4)
    assert all(e == 0.0 for _, e in c.entries.values())  # nothing evicted: no overestimate


def test_a_full_circle_replaces_its_least_partner_and_carries_its_weight() -> None:
    """Hand-worked space-saving, k = 2: cat (0.5) makes room for dan, who enters at
    0.5 + 0.25 with an overestimate of 0.5."""
    c = fold([("ben", 1.0, T0), ("cat", 0.5, T0), ("dan", 0.25, T0)], k=2)
    assert set(c.entries) == {"ben", "dan"}
    assert c.entries["dan"] == pytest.approx((0.75, 0.5))
    assert c.total == pytest.approx(1.75)
    assert c.partners_seen == 3


def test_decay_halves_a_partner_s_weight_each_half_life() -> None:
    c = fold([("ben", 1.0, T0)], k=3)
    assert decayed_weight(c, "ben", T0, H) == pytest.approx(1.0)
    assert decayed_weight(c, "ben", T0 + H * DAY, H) == pytest.approx(0.5)
    assert decayed_weight(c, "ben", T0 + 3 * H * DAY, H) == pytest.approx(0.125)
    # a later exchange outweighs an older one of the same weight: recency ranks
    d = digest(fold([("ben", 1.0, T0), ("cat", 1.0, T0 + 10 * DAY)], k=3))
    assert [p for p, _ in d.partners] == ["cat", "ben"]


def test_years_of_exchanges_rebase_without_overflow_and_keep_the_same_shares() -> None:
    """Forward decay moves its landmark before the numbers grow: ten years of weekly
    exchanges stay finite, and the shares are those of decaying every value each time."""
    weeks = 52 * 10
    c = fold([(p, 1.0, T0 + i * 7 * DAY) for i in range(weeks) for p in ("ben", "cat")], k=5)
    assert all(math.isfinite(u) for u, _ in c.entries.values()) and math.isfinite(c.total)
    assert c.landmark > T0
    assert digest(c).share("ben") == pytest.approx(0.5)
    now = T0 + (weeks - 1) * 7 * DAY
    exact = sum(0.5 ** ((now - (T0 + i * 7 * DAY)) / (H * DAY)) for i in range(weeks))
    assert decayed_weight(c, "ben", now, H) == pytest.approx(exact, rel=1e-9)


exchanges = st.lists(
    st.tuples(
        st.sampled_from([f"p{i}" for i in range(40)]),
        st.floats(0.0, 1.0),
        st.floats(T0, T0 + 120 * DAY),
    ),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(exchanges, st.integers(1, 12))
def test_memory_is_bounded_and_every_heavy_partner_is_kept(
    xs: list[tuple[str, float, float]], k: int
) -> None:
    """Whatever the input: at most k partners, and (the space-saving guarantee, here with
    decay valued at one instant) every partner whose true weight exceeds total / k is in the
    circle, with an estimate within its overestimate of the truth."""
    if not xs:
        return
    xs = sorted(xs, key=lambda x: x[2])
    c = fold(xs, k)
    assert len(c.entries) <= k
    now = xs[-1][2]
    true: Counter[str] = Counter()
    for p, w, t in xs:
        true[p] += w * 0.5 ** ((now - t) / (H * DAY))
    total = sum(true.values())
    g = 2.0 ** ((now - c.landmark) / (H * DAY))
    assert c.total / g == pytest.approx(total, rel=1e-9, abs=1e-9)
    for p, v in true.items():
        if v > total / k + 1e-9:
            assert p in c.entries, (p, v, total / k)
    for p, (u, e) in c.entries.items():
        est, over = u / g, e / g
        assert est + 1e-9 >= true[p] >= est - over - 1e-9


@settings(max_examples=100, deadline=None)
@given(exchanges)
def test_a_circle_with_room_for_everyone_is_exact(xs: list[tuple[str, float, float]]) -> None:
    c = fold(sorted(xs, key=lambda x: x[2]), k=40) if xs else None
    if c is None:
        return
    assert set(c.entries) == {p for p, _, _ in xs}
    assert all(e == 0.0 for _, e in c.entries.values())


def test_a_forgotten_person_leaves_the_circle_and_its_total() -> None:
    c = fold([("ben", 1.0, T0), ("cat", 1.0, T0), ("dan", 2.0, T0)], k=5)
    after = without(c, ["dan", "nobody"])
    assert set(after.entries) == {"ben", "cat"}
    assert digest(after).share("ben") == pytest.approx(0.5)
    assert without(after, ["nobody"]) is after


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="at least one partner"):
        observe(None, "ben", 1.0, T0, half_life_days=H, k=0)
    with pytest.raises(ValueError, match="finite number"):
        observe(None, "ben", math.nan, T0, half_life_days=H)
    with pytest.raises(ValueError, match="finite number"):
        observe(None, "ben", -1.0, T0, half_life_days=H)


def test_structural_features_worked_by_hand() -> None:
    """ann: ben 2, cat 1, dan 1 (total 4); ben: ann 1, cat 1, eve 2 (total 4). Shared
    contacts: cat only. ann gives ben 2/4, ben gives ann 1/4: attention 0.25. ben is ann's
    first, ann is ben's second (after eve; ann and cat tie at 1, ann first by id): closest
    1/2. cat's breadth is 2 (ann and ben): Adamic-Adar 1 / log(4)."""
    ann = digest(fold([("ben", 2.0, T0), ("cat", 1.0, T0), ("dan", 1.0, T0)], k=10))
    ben = digest(fold([("ann", 1.0, T0), ("cat", 1.0, T0), ("eve", 2.0, T0)], k=10))
    got = structure("ann", "ben", ann, ben, breadth={"cat": 2}.get)
    assert list(got) == list(STRUCTURE)
    assert got["shared_contacts"] == pytest.approx(math.log(2))
    assert got["adamic_adar"] == pytest.approx(1 / math.log(4))
    assert got["attention"] == pytest.approx(0.25)
    assert got["closest"] == pytest.approx(0.5)
    # symmetric in the pair
    assert structure("ben", "ann", ben, ann, breadth={"cat": 2}.get) == got


def test_a_person_without_a_circle_gives_zeros() -> None:
    ann = digest(fold([("ben", 1.0, T0)], k=3))
    assert structure("ann", "ben", ann, None) == dict.fromkeys(STRUCTURE, 0.0)


def test_a_circle_survives_its_encoding_and_bad_bytes_are_refused() -> None:
    c = fold([("ben", 1.0, T0), ("cat", 0.5, T0 + DAY), ("dan", 0.25, T0 + 2 * DAY)], k=2)
    c = dataclasses.replace(c, applied=41)
    assert Circle.decode(c.encode()) == c
    for bad in (b"[]", b'{"a": 1}', b"[2, 0, 0, 0, 0, -1, []]"):
        with pytest.raises(ValueError, match="not a circle"):
            Circle.decode(bad)


@settings(max_examples=100, deadline=None)
@given(exchanges, st.randoms(use_true_random=False))
def test_late_events_count_as_in_time_order(
    xs: list[tuple[str, float, float]], rnd: object
) -> None:
    """Forward decay adds each exchange at its own age whatever the arrival order: a circle
    with room for everyone is the same in any order (late and duplicate-free events alike)."""
    if not xs:
        return
    shuffled = list(xs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = fold(sorted(xs, key=lambda x: x[2]), k=40)
    b = fold(shuffled, k=40)
    now = max(t for _, _, t in xs)
    assert set(a.entries) == set(b.entries)
    for p in a.entries:
        assert decayed_weight(a, p, now, H) == pytest.approx(
            decayed_weight(b, p, now, H), rel=1e-9, abs=1e-12
        )


@given(exchanges, exchanges, st.integers(1, 12))
def test_folding_a_record_at_once_is_folding_it_one_exchange_at_a_time(
    before: list[tuple[str, float, float]], record: list[tuple[str, float, float]], k: int
) -> None:
    from services.matcher.circles import observe_many

    start = fold(before, k) if before else None
    one_by_one = start
    for partner, w, t in record:
        one_by_one = observe(one_by_one, partner, w, t, half_life_days=H, k=k)
    assert observe_many(start, record, half_life_days=H, k=k) == one_by_one


def test_has_strong_counts_partners_at_or_over_the_bar_as_of_a_time() -> None:
    from services.matcher.circles import has_strong

    # ann: 4.0 with bo, 3.0 with cy, 1.0 with di, all at T0
    c = fold([("bo", 1.0, T0)] * 4 + [("cy", 1.0, T0)] * 3 + [("di", 1.0, T0)], k=10)
    assert has_strong(c, T0, 3.0, half_life_days=H, at_least=2)  # bo and cy
    assert not has_strong(c, T0, 3.0, half_life_days=H, at_least=3)
    # one half-life later bo weighs 2.0 and cy 1.5: neither reaches 3.0
    assert not has_strong(c, T0 + H * DAY, 3.0, half_life_days=H, at_least=1)
    assert has_strong(c, T0 + H * DAY, 1.5, half_life_days=H, at_least=2)
