"""Groups from circles (services.matcher.groups), worked by hand: every two members close to
each other, on both sides; a hub is not a group; a large clique becomes a table of six."""

from __future__ import annotations

import itertools

from services.matcher.circles import Circle, Digest, digest, observe
from services.matcher.groups import groups_around

T0 = 1_700_000_000.0


def circles_from(ties: list[tuple[str, str, float]]) -> dict[str, Circle]:
    out: dict[str, Circle] = {}
    for a, b, w in ties:
        out[a] = observe(out.get(a), b, w, T0, half_life_days=21)
        out[b] = observe(out.get(b), a, w, T0, half_life_days=21)
    return out


def lookup(cs: dict[str, Circle]):  # type: ignore[no-untyped-def]
    def digest_of(p: str) -> Digest | None:
        return digest(cs[p]) if p in cs else None

    return digest_of


def test_three_who_all_talk_are_a_group_and_a_fourth_who_talks_to_one_is_not() -> None:
    cs = circles_from([("ann", "ben", 3), ("ben", "cat", 3), ("ann", "cat", 3), ("cat", "dan", 3)])
    assert groups_around("ann", lookup(cs)) == [("ann", "ben", "cat")]
    assert groups_around("dan", lookup(cs)) == []  # dan knows only cat


def test_a_hub_whose_contacts_do_not_talk_to_each_other_is_no_group() -> None:
    cs = circles_from([("hub", f"p{i}", 2) for i in range(10)])
    assert groups_around("hub", lookup(cs)) == []


def test_a_tie_close_for_one_side_only_does_not_count() -> None:
    """cat is in ann's and ben's closest two, but ann and ben are not in cat's closest two
    (cat talks far more with x and y): with top=2, no group."""
    ties = [("ann", "ben", 3), ("ann", "cat", 3), ("ben", "cat", 3)]
    ties += [("cat", "x", 50), ("cat", "y", 50)]
    cs = circles_from(ties)
    assert groups_around("ann", lookup(cs), top=2) == []
    assert groups_around("ann", lookup(cs), top=4) == [("ann", "ben", "cat")]


def test_a_clique_of_eight_is_trimmed_to_a_table_of_six_with_the_strongest_ties() -> None:
    people = [f"m{i}" for i in range(8)]
    # m6 and m7 are the weakest: their ties weigh 1, the others' 5
    ties = [
        (a, b, 1.0 if {a, b} & {"m6", "m7"} else 5.0) for a, b in itertools.combinations(people, 2)
    ]
    cs = circles_from(ties)
    assert groups_around("m0", lookup(cs)) == [("m0", "m1", "m2", "m3", "m4", "m5")]


def test_a_person_without_a_circle_is_in_no_group() -> None:
    assert groups_around("nobody", lookup({})) == []
