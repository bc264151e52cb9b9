"""Groups of people who all talk with each other (issue 38: group meetups; pure, no I/O).

People meet in small groups: three colleagues who all reply to each other are a lunch. A
group here is a set of 3 to 6 people in which **every two** are in each other's circle
among their closest ``top`` partners (``services/matcher/circles.py``; a circle is fed by
both sides of every meaningful exchange, so being in each other's circle is reciprocal
contact, and being among the closest few is repeated contact, relative to each person's own
life). Every triangle is not a group: each tie must be a close one for *both* of its people.

`groups_around` looks from one person: the close ties among their closest partners form a
graph of at most ``top + 1`` people, whose maximal cliques (Bron-Kerbosch with pivoting;
tiny graphs, so no graph library) of 3 or more that include the person are the candidate
groups. A clique over ``max_size`` keeps its ``max_size`` members with the strongest ties to
the others, so each group is a table for a meetup, not a community.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from services.matcher.circles import Digest

#: how many of a person's closest partners count as close: the innermost layer of the circles
#: people keep, about 5 (Zhou, Sornette, Hill & Dunbar 2005). On the high-school students'
#: reported friendships, member pairs of groups found with 5 are friends 0.94 of the time,
#: with 10 0.78, with 15 0.64 (docs/evaluation.md, "The people around a pair")
DEFAULT_TOP: Final = 5
MIN_SIZE: Final = 3
MAX_SIZE: Final = 6


def close(d: Digest, top: int) -> dict[str, float]:
    """A person's closest ``top`` partners with their shares."""
    return dict(d.partners[:top])


def groups_around(
    person: str,
    digest_of: Callable[[str], Digest | None],
    *,
    top: int = DEFAULT_TOP,
    min_size: int = MIN_SIZE,
    max_size: int = MAX_SIZE,
    strong: Callable[[str, str], bool] | None = None,
) -> list[tuple[str, ...]]:
    """The groups ``person`` is in, each sorted, the list sorted (deterministic).
    ``strong(p, q)``: whether p's exchange with q is enough to count at all (repeated, not
    one message to someone with few contacts); None: every close partner counts."""
    me = digest_of(person)
    if me is None:
        return []

    def near_of(p: str, d: Digest) -> dict[str, float]:
        c = close(d, top)
        return c if strong is None else {q: s for q, s in c.items() if strong(p, q)}

    near: dict[str, dict[str, float]] = {person: near_of(person, me)}
    if len(near[person]) < min_size - 1:
        return []  # too few close ties to be in any group: no partner's circle is read
    for p in near[person]:
        d = digest_of(p)
        near[p] = near_of(p, d) if d is not None else {}
    # a close tie is close on both sides
    nodes = [p for p in near if p == person or person in near[p]]
    adj: dict[str, set[str]] = {p: set() for p in nodes}
    for i, p in enumerate(nodes):
        for q in nodes[i + 1 :]:
            if q in near[p] and p in near[q]:
                adj[p].add(q)
                adj[q].add(p)
    found: set[tuple[str, ...]] = set()
    for clique in _cliques(adj, {person}, adj[person], set()):
        if len(clique) < min_size:
            continue
        found.add(tuple(sorted(_trim(clique, person, near, max_size))))
    return sorted(found)


#: a group sharing this many members with one suggested before is the same table, grown or
#: shrunk: not suggested again (people would get two group items for one lunch)
SAME_TABLE: Final = 3
#: groups remembered per person for that check (the newest)
REMEMBERED: Final = 16


def same_table(members: Iterable[str], earlier: Iterable[Iterable[str]]) -> bool:
    """Whether a group shares ``SAME_TABLE`` or more members with another one in ``earlier``
    (the same group again is not another: a record handled again suggests it again)."""
    mine = set(members)
    return any(len(mine & set(e)) >= SAME_TABLE and set(e) != mine for e in earlier)


def _cliques(adj: dict[str, set[str]], r: set[str], p: set[str], x: set[str]) -> Iterable[set[str]]:
    """Maximal cliques containing ``r`` (Bron-Kerbosch with pivoting)."""
    if not p and not x:
        yield r
        return
    pivot = max(p | x, key=lambda u: (len(adj[u] & p), u))
    for v in sorted(p - adj[pivot]):
        yield from _cliques(adj, r | {v}, p & adj[v], x & adj[v])
        p = p - {v}
        x = x | {v}


def _trim(
    clique: set[str], person: str, near: dict[str, dict[str, float]], max_size: int
) -> set[str]:
    """At most ``max_size`` members: the person, then those with the strongest ties (sum of
    the shares they and the others give each other) to the rest."""
    if len(clique) <= max_size:
        return clique

    def strength(m: str) -> tuple[float, str]:
        s = sum(near[m].get(o, 0.0) + near[o].get(m, 0.0) for o in clique if o != m)
        return (-s, m)

    others = sorted((m for m in clique if m != person), key=strength)
    return {person, *others[: max_size - 1]}
