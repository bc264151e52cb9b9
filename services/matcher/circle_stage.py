"""The circle stage: each person's circle (``services.matcher.circles``), kept by person.

The matcher's hot path is keyed by pair; a circle is keyed by person. The matcher sends what
a circle needs across (issue 38, docs/architecture.md):

1. for each **new** interaction of a batch that can be meaningful (weight x 1.25 >=
   ``scoring.MEANINGFUL``, turn-taking's most), two activity entries, one per person:
   ``[person, partner, weight, epoch s]``; grouped by the partition of the person and sent as
   one ``person.activity`` record per partition, in the batch's transaction (`activity_of`);
2. the stage's agent folds each record into the circles of its people and writes them to the
   ``circles`` global table (changelogged, compacted: every worker holds every circle, as it
   does profiles), in the partition of the person. A circle remembers the offset of the last
   record folded into it, so a record redelivered after a crash is not counted twice;
3. when the matcher suggests a pair, it reads the two circles (and the breadth of their
   shared contacts) and writes the pair's structural features into the suggestion's
   ``around`` (`around`), beside its evidence: they do not move the decision yet, and they
   reflect the circles as far as the stage had folded them (see docs/matching.md).

Forgetting a person deletes their circle and removes them from every circle of the partition
a forget tick names (each partition's tick, as for pair states).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

import orjson
import structlog
from faust.stores.rocksdb import Store as FaustRocksDB

from schemas.events import Interaction
from schemas.people import person_hash
from schemas.suggestions import Around, GroupSuggestion, MemberTie, Suggestion, group_id
from services.common import records
from services.common.rocksdb_store import partition_databases
from services.matcher import circles, groups, scoring

log = structlog.get_logger(__name__)

#: an activity entry: person, partner, weight, epoch seconds
Entry = tuple[str, str, float, float]
#: entries of one record at most (the matcher's batches stay far below; a bound before parsing)
MAX_ENTRIES: Final = 200_000


def activity_of(fresh: Iterable[Interaction], partitions: int) -> dict[int, list[Entry]]:
    """The activity entries of new interactions, by the partition of their person."""
    out: dict[int, list[Entry]] = {}
    for i in fresh:
        w = scoring.weight(i)
        if w * 1.25 < scoring.MEANINGFUL:
            continue
        ts = i.occurred_at.timestamp()
        for person, partner in ((i.actor, i.target), (i.target, i.actor)):
            p = records.partition_for(person.encode(), partitions)
            out.setdefault(p, []).append((person, partner, w, ts))
    return out


class BadActivity(ValueError):
    """A ``person.activity`` record that is not a list of ``[person, partner, weight, ts]``."""


def parse(value: bytes | None) -> list[Entry]:
    if value is None:
        raise BadActivity("an activity record has a value")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadActivity(f"not JSON: {exc}") from exc
    if not isinstance(data, list) or len(data) > MAX_ENTRIES:
        raise BadActivity(f"a list of at most {MAX_ENTRIES} entries")
    out: list[Entry] = []
    for e in data:
        if (
            not isinstance(e, list)
            or len(e) != 4
            or not isinstance(e[0], str)
            or not isinstance(e[1], str)
            or not isinstance(e[2], int | float)
            or not isinstance(e[3], int | float)
            or not 0 <= e[2] <= 1
        ):
            raise BadActivity(f"an entry is [person, partner, weight 0..1, epoch s], not {e!r}")
        out.append((e[0], e[1], float(e[2]), float(e[3])))
    return out


class CircleStage:
    def __init__(self, table: Any, *, partitions: int, k: int, half_life_days: float) -> None:
        self.table = table  # global table: person -> Circle.encode()
        self.n = partitions
        self.k = k
        self.half_life_days = half_life_days
        self._db: Callable[[int], Any] | Literal[False] | None = None
        #: the circles the last `fold` wrote (person -> circle)
        self.folded: dict[str, circles.Circle] = {}

    def get(self, person: str) -> circles.Circle | None:
        """A person's circle: one rocksdb get in their partition (see `Matcher._profile`)."""
        key = person.encode()
        db_for = self._databases()
        raw = (
            cast(bytes | None, self.table.get(key))
            if db_for is None
            else db_for(records.partition_for(key, self.n)).get(key)
        )
        return None if raw is None else circles.Circle.decode(raw)

    def _databases(self) -> Callable[[int], Any] | None:
        if self._db is None:
            self._db = partition_databases(getattr(self.table, "data", None)) or False
        return None if self._db is False else self._db

    def fold(self, entries: list[Entry], offset: int, forgotten: set[str]) -> int:
        """Fold one ``person.activity`` record (at ``offset`` of its partition) into the
        circles of its people; returns how many circles changed. A circle that has this record
        already (a redelivery) is left alone; entries naming a forgotten person are dropped."""
        by_person: dict[str, list[tuple[str, float, float]]] = {}
        for person, partner, w, ts in entries:
            if forgotten and {person_hash(person), person_hash(partner)} & forgotten:
                continue
            by_person.setdefault(person, []).append((partner, w, ts))
        changed: dict[str, circles.Circle] = {}
        for person, exchanges in by_person.items():
            c = self.get(person)
            if c is not None and c.applied >= offset:
                continue  # this circle has folded this record before (a redelivery)
            after = circles.observe_many(c, exchanges, half_life_days=self.half_life_days, k=self.k)
            assert after is not None  # at least one exchange
            changed[person] = replace(after, applied=offset)
        for person, c in changed.items():
            self.table[person.encode()] = c.encode()
        self.folded = changed  # what `groups` reads first, without decoding them again
        return len(changed)

    def groups(
        self, people: Iterable[str], at: float, *, top: int, min_weight: float
    ) -> list[GroupSuggestion]:
        """The groups (``services.matcher.groups``) that ``people`` are in, as the circles are
        now: each member among every other's ``top`` closest, each tie at least
        ``min_weight`` as of ``at`` (epoch s) on both sides. Sorted by id."""
        read: dict[str, circles.Circle | None] = dict(self.folded)
        digests: dict[str, circles.Digest | None] = {}

        def circle(p: str) -> circles.Circle | None:
            if p not in read:
                read[p] = self.get(p)
            return read[p]

        def digest_of(p: str) -> circles.Digest | None:
            if p not in digests:
                c = circle(p)
                digests[p] = None if c is None else circles.digest(c)
            return digests[p]

        def strong(p: str, q: str) -> bool:
            c = circle(p)
            hl = self.half_life_days
            return c is not None and circles.weight_at(c, q, at, half_life_days=hl) >= min_weight

        found: set[tuple[str, ...]] = set()
        hl = self.half_life_days
        for person in sorted(set(people)):
            c = circle(person)
            # fewer than two strong ties: in no group (groups_around would say so after
            # ranking the circle; this skips the ranking for most people)
            if c is None or not circles.has_strong(
                c, at, min_weight, half_life_days=hl, at_least=groups.MIN_SIZE - 1
            ):
                continue
            found.update(groups.groups_around(person, digest_of, top=top, strong=strong))
        out = []
        for members in sorted(found):
            ties = {}
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    da, db = digest_of(a), digest_of(b)
                    assert da is not None and db is not None  # both are in each other's top
                    ties[f"{a}|{b}"] = MemberTie(
                        rank=(da.rank(b) or top, db.rank(a) or top),
                        share=(round(da.share(b), 4), round(db.share(a), 4)),
                    )
            out.append(
                GroupSuggestion(
                    group_id=group_id(members),
                    members=members,
                    suggested_at=datetime.fromtimestamp(at, UTC),
                    ties=ties,
                    explanation=groups.explain(members),
                )
            )
        return out

    def forget(self, partition: int, hashed: str) -> int:
        """Delete the forgotten person's circle and remove them from every other circle of
        ``partition``; returns how many circles changed."""
        self.folded = {}
        changed = 0
        for key in list(self._keys(partition)):
            person = key.decode()
            if person_hash(person) == hashed:
                self.table.pop(key, None)
                changed += 1
                continue
            c = self.get(person)
            if c is None:
                continue
            gone = [p for p in c.entries if person_hash(p) == hashed]
            if gone:
                self.table[key] = circles.without(c, gone).encode()
                changed += 1
        return changed

    def _keys(self, partition: int) -> Iterable[bytes]:
        db_for = self._databases()
        if db_for is None:
            return [k for k in self.table if records.partition_for(k, self.n) == partition]
        # rocksdict's keys() iterates the database, which also holds faust's offset key
        keys = db_for(partition).keys()
        return [k for k in keys if k != FaustRocksDB.offset_key]

    def closest(self, a: str, b: str) -> int | None:
        """The worse of ``a``'s rank of ``b`` and ``b``'s of ``a`` in their circles as folded
        so far (1: each is the other's closest); None if either circle lacks the other. The
        person-relative decision's look-up (``pairs.qualifies``): asked only for pairs whose
        probability is between the two bars, so two circle reads for few pairs."""
        return circles.mutual_rank(self.get(a), self.get(b), a, b)

    def around(self, s: Suggestion) -> Suggestion:
        """The suggestion with the pair's structural features (``circles.structure``) as
        ``around``: what the people around the two say of their tie, as the circles are now."""
        a, b = s.pair
        ca, cb = self.get(a), self.get(b)
        da = circles.digest(ca) if ca is not None else None
        db = circles.digest(cb) if cb is not None else None

        def breadth(z: str) -> int | None:
            c = self.get(z)
            return None if c is None else c.partners_seen

        x = circles.structure(a, b, da, db, breadth)
        shared = 0
        if da is not None and db is not None:
            shared = len(({p for p, _ in da.partners} & {p for p, _ in db.partners}) - {a, b})
        around = Around(
            shared_contacts=shared,
            adamic_adar=round(x["adamic_adar"], 4),
            attention=round(x["attention"], 4),
            closest=round(x["closest"], 4),
            rank=(
                da.rank(b) if da is not None else None,
                db.rank(a) if db is not None else None,
            ),
        )
        return s.model_copy(update={"around": around})
