"""A person's circle: the partners they exchange the most with, bounded (pure: no I/O).

Issue 38: the matcher judges a pair by the pair alone; the people around it say more. A tie
among a quiet person's closest few is close even when its numbers are small, one of hundreds
in a busy life less so, and two people with many contacts in common are embedded in the same
group. This module keeps, per person, what that needs in bounded memory, and computes the
structural features of a pair from the two circles.

**The circle** is a *space-saving* sketch (Metwally, Agrawal & El Abbadi, ICDT 2005) of the
person's meaningful exchanges, weighted and time-decayed, over at most ``k`` partners:

- a partner already in the circle gains the exchange's weight;
- a new partner enters while there is room; when the circle is full, it takes the place of the
  partner with the least weight, and inherits that weight as its *overestimate* (``error``).
  Whatever the input, the circle holds ``k`` entries (a celebrity with a million repliers
  costs ``k``), and every partner whose true weight exceeds ``total / k`` is in it (the
  sketch's guarantee); while a person has at most ``k`` partners, the circle is exact.

Weights decay with the matcher's half-life by *forward decay* (Cormode et al., ICDE 2009):
an exchange of weight ``w`` at time ``t`` adds ``w * 2 ** ((t - landmark) / half_life)``, and
every stored value is read at ``now`` by dividing by ``2 ** ((now - landmark) / half_life)``.
Ranks and shares do not change with ``now``, an update costs one entry (not ``k``), and late
events count at their own age. The landmark moves forward (all values rescaled) before the
numbers grow large.

The default ``k`` is 150: the outer layer of the layered circles people keep (about 5, 15, 50
and 150 people: Zhou, Sornette, Hill & Dunbar 2005; Dunbar 2016).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Final

import orjson

DAY: Final = 86_400.0
#: partners kept per person by default (the 150 layer: see the module)
DEFAULT_K: Final = 150
#: the forward-decay exponent at which the landmark moves (2 ** 64 stays far from overflow)
_REBASE_AT: Final = 64.0


@dataclass(frozen=True, slots=True)
class Circle:
    """One person's circle. ``entries``: partner -> (forward-decayed weight, overestimate),
    both in landmark units; ``total``: every exchange's weight, whoever it was with;
    ``partners_seen``: partners that entered the circle (a returning evicted partner counts
    again: a breadth estimate, exact while nobody was evicted); ``applied``: the offset of the
    last ``person.activity`` record folded in (its stage skips a redelivered one)."""

    landmark: float = 0.0
    total: float = 0.0
    exchanges: int = 0
    partners_seen: int = 0
    entries: Mapping[str, tuple[float, float]] = None  # type: ignore[assignment]
    applied: int = -1

    def __post_init__(self) -> None:
        if self.entries is None:
            object.__setattr__(self, "entries", {})

    def encode(self) -> bytes:
        return orjson.dumps(
            [
                _FORMAT,
                self.landmark,
                self.total,
                self.exchanges,
                self.partners_seen,
                self.applied,
                [[p, u, e] for p, (u, e) in self.entries.items()],
            ]
        )

    @classmethod
    def decode(cls, raw: bytes) -> Circle:
        v = orjson.loads(raw)
        if not isinstance(v, list) or len(v) != 7 or v[0] != _FORMAT:
            raise ValueError(f"not a circle of format {_FORMAT}")
        _, landmark, total, exchanges, seen, applied, entries = v
        return cls(
            landmark=float(landmark),
            total=float(total),
            exchanges=int(exchanges),
            partners_seen=int(seen),
            entries={str(p): (float(u), float(e)) for p, u, e in entries},
            applied=int(applied),
        )


#: version of ``Circle.encode``'s array
_FORMAT: Final = 1


def _growth(t: float, landmark: float, half_life_s: float) -> float:
    return float(2.0 ** ((t - landmark) / half_life_s))


def observe(
    circle: Circle | None,
    partner: str,
    weight: float,
    at: float,
    *,
    half_life_days: float,
    k: int = DEFAULT_K,
) -> Circle:
    """``circle`` with one exchange of ``weight`` with ``partner`` at ``at`` (epoch s)."""
    out = observe_many(circle, ((partner, weight, at),), half_life_days=half_life_days, k=k)
    assert out is not None  # one exchange
    return out


def observe_many(
    circle: Circle | None,
    exchanges: Iterable[tuple[str, float, float]],
    *,
    half_life_days: float,
    k: int = DEFAULT_K,
    applied: int | None = None,
) -> Circle | None:
    """``circle`` with each ``(partner, weight, at)`` exchange in order, with one copy of its
    entries (the circle stage folds a batch's entries of a person at once), and ``applied``
    as its last folded record, if given. A full circle is
    a space-saving sketch: the least-weighted partner makes room for a newcomer, and its weight
    is carried over as the newcomer's overestimate (ties: the smallest id, so replays are
    deterministic). None only if ``circle`` is None and there are no exchanges."""
    if k < 1:
        raise ValueError("a circle keeps at least one partner")
    h = half_life_days * DAY
    entries: dict[str, tuple[float, float]] | None = None
    landmark = total = 0.0
    count = seen = 0
    for partner, weight, at in exchanges:
        if weight < 0 or not math.isfinite(weight):
            raise ValueError(f"an exchange's weight is a finite number >= 0, not {weight!r}")
        if entries is None:
            if circle is None:
                circle = Circle(landmark=at)
            landmark, total = circle.landmark, circle.total
            count, seen = circle.exchanges, circle.partners_seen
            entries = dict(circle.entries)
        if (at - landmark) / h > _REBASE_AT:  # rescale everything to a later landmark
            f = 1.0 / _growth(at, landmark, h)
            total *= f
            entries = {p: (u * f, e * f) for p, (u, e) in entries.items()}
            landmark = at
        add = weight * _growth(at, landmark, h)
        if partner in entries:
            u, e = entries[partner]
            entries[partner] = (u + add, e)
        elif len(entries) < k:
            entries[partner] = (add, 0.0)
            seen += 1
        else:  # space-saving (see above)
            least = min(entries, key=lambda p: (entries[p][0], p))
            floor = entries.pop(least)[0]
            entries[partner] = (floor + add, floor)
            seen += 1
        total += add
        count += 1
    if entries is None or circle is None:
        return circle
    return Circle(
        landmark=landmark,
        total=total,
        exchanges=count,
        partners_seen=seen,
        entries=entries,
        applied=circle.applied if applied is None else applied,
    )


def weight_at(circle: Circle, partner: str, at: float, *, half_life_days: float) -> float:
    """The decayed weight of the person's exchange with ``partner`` as of ``at`` (epoch s),
    without the sketch's overestimate (a lower bound of the true weight; 0 if not in it)."""
    u, e = circle.entries.get(partner, (0.0, 0.0))
    return (u - e) / _growth(at, circle.landmark, half_life_days * DAY)


def has_strong(
    circle: Circle, at: float, min_weight: float, *, half_life_days: float, at_least: int
) -> bool:
    """Whether at least ``at_least`` partners weigh ``min_weight`` or more as of ``at``
    (``weight_at``), without sorting the circle: most people are in no group, and this says
    so before their circle is ranked."""
    bar = min_weight * _growth(at, circle.landmark, half_life_days * DAY)
    n = 0
    for u, e in circle.entries.values():
        if u - e >= bar:
            n += 1
            if n >= at_least:
                return True
    return False


def without(circle: Circle, people: Iterable[str]) -> Circle:
    """``circle`` with ``people`` removed (a person who asked to be forgotten): their weight
    leaves the total too, so the others' shares are as if they had never been there."""
    gone = set(people) & set(circle.entries)
    if not gone:
        return circle
    entries = {p: v for p, v in circle.entries.items() if p not in gone}
    total = max(0.0, circle.total - sum(circle.entries[p][0] for p in gone))
    return replace(circle, total=total, entries=entries)


@dataclass(frozen=True, slots=True)
class Digest:
    """What the matcher needs of a circle to judge a pair: the partners in rank order with
    their shares of the person's attention (decay cancels in a share), and the person's
    breadth. Compact: ``k`` names and numbers, whatever the history."""

    partners: tuple[tuple[str, float], ...]  # (partner, share of the total), best first
    partners_seen: int
    exchanges: int

    def rank(self, partner: str) -> int | None:
        """1 for the person's closest partner; None if not in the circle."""
        for i, (p, _) in enumerate(self.partners, 1):
            if p == partner:
                return i
        return None

    def share(self, partner: str) -> float:
        for p, s in self.partners:
            if p == partner:
                return s
        return 0.0


def digest(circle: Circle) -> Digest:
    """The circle's partners by weight (ties by id), each with its share of the total."""
    total = circle.total
    ranked = sorted(circle.entries.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return Digest(
        partners=tuple((p, (u / total) if total > 0 else 0.0) for p, (u, _) in ranked),
        partners_seen=circle.partners_seen,
        exchanges=circle.exchanges,
    )


def mutual_rank(ca: Circle | None, cb: Circle | None, a: str, b: str) -> int | None:
    """The worse of ``a``'s rank of ``b`` (in ``ca``) and ``b``'s of ``a`` (in ``cb``): 1 when
    each is the other's closest; None when either circle is unknown or lacks the other. The
    person-relative decision's look-up (``pairs.closest_rank``)."""
    if ca is None or cb is None or b not in ca.entries or a not in cb.entries:
        return None
    ra, rb = digest(ca).rank(b), digest(cb).rank(a)
    return None if ra is None or rb is None else max(ra, rb)


#: the structural features, in the order ``structure`` returns them (model.FEATURES has them)
STRUCTURE: Final[tuple[str, ...]] = (
    "shared_contacts",
    "adamic_adar",
    "attention",
    "closest",
)


def structure(
    a: str,
    b: str,
    da: Digest | None,
    db: Digest | None,
    breadth: Callable[[str], int | None] = lambda _: None,
) -> dict[str, float]:
    """The structural features of the pair ``a`` and ``b`` from the two circles (each oriented so
    that more means a closer tie; a person without a circle yet gives zeros):

    - ``shared_contacts``: ``log(1 + |contacts both have|)`` (the two themselves aside);
    - ``adamic_adar``: the shared contacts, each weighing ``1 / log(2 + breadth)``: a shared
      friend with few contacts says more than a hub everyone talks to (Adamic & Adar 2003;
      ``breadth`` gives a contact's ``partners_seen``; unknown: its place in neither circle
      says nothing, and it weighs as a contact of ``k`` partners would);
    - ``attention``: the smaller of the two shares each gives the other of their exchanges
      (the weaker side of how exclusive the tie is);
    - ``closest``: ``1 / rank`` of each in the other's circle, the worse of the two (1: each is
      the other's closest; 0: absent from a circle). Person-relative: a quiet person's top
      tie scores as a busy person's.
    """
    if da is None or db is None:
        return dict.fromkeys(STRUCTURE, 0.0)
    pa = {p for p, _ in da.partners} - {a, b}
    pb = {p for p, _ in db.partners} - {a, b}
    shared = pa & pb
    aa = 0.0
    for z in shared:
        n = breadth(z)
        aa += 1.0 / math.log(2 + (n if n is not None else DEFAULT_K))
    ra, rb = da.rank(b), db.rank(a)
    return {
        "shared_contacts": math.log1p(len(shared)),
        "adamic_adar": aa,
        "attention": min(da.share(b), db.share(a)),
        "closest": min(1.0 / ra if ra else 0.0, 1.0 / rb if rb else 0.0),
    }


def decayed_weight(circle: Circle, partner: str, now: float, half_life_days: float) -> float:
    """The partner's weight in the circle valued at ``now`` (0 if not in it)."""
    if partner not in circle.entries:
        return 0.0
    return circle.entries[partner][0] / _growth(now, circle.landmark, half_life_days * DAY)
