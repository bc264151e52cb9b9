"""The circle stage: each person's circle (``services.matcher.circles``), kept by person.

The matcher's hot path is keyed by pair; a circle is keyed by person. The matcher sends what
a circle needs across (issue 38, docs/architecture.md):

1. for each **new** interaction of a batch that can be meaningful (weight x 1.25 >=
   ``scoring.MEANINGFUL``, turn-taking's most), two activity entries, one per person:
   ``[person, partner, weight, epoch s]``; grouped by the partition of the person and sent as
   one ``person.activity`` record per partition, in the batch's transaction (`activity_of`);
2. the stage's agent takes the records by batch and folds them into the circles of their
   people, each circle read and written once per batch (`CircleStage.fold_many`), into the
   ``circles`` global table (changelogged, compacted: every worker holds every circle, as it
   does profiles), in the partition of the person. The writes go through a
   ``store.BatchStore``, as the pair states do: to the changelog in the batch's transaction,
   into rocksdb once Kafka has them. A circle remembers the offset of the last record folded
   into it, so a record redelivered after a crash is not counted twice;
3. when the matcher judges a pair between the two bars, or suggests one, it reads the two
   circles: the person-relative decision (`closest`) and the pair's structural features in
   the suggestion's ``around`` (`around`), as far as the stage had folded them (see
   docs/matching.md).

Forgetting a person deletes their circle and removes them from every circle of the partition
a forget tick names (each partition's tick, as for pair states).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final

import orjson
import structlog

from schemas.events import Interaction
from schemas.people import person_hash
from schemas.suggestions import Around, GroupSuggestion, MemberTie, Suggestion, group_id
from services.common import records
from services.matcher import circles, groups, scoring, sentences
from services.matcher.store import BatchStore, Decoded

log = structlog.get_logger(__name__)

#: an activity entry: person, partner, weight, epoch seconds
Entry = tuple[str, str, float, float]
#: entries of one record at most (the matcher's batches stay far below; a bound before parsing)
MAX_ENTRIES: Final = 200_000


def activity_of(
    fresh: Iterable[tuple[Interaction, float]], partitions: int
) -> dict[int, list[Entry]]:
    """The activity entries of new interactions (each with its `scoring.weight`), by the
    partition of their person."""
    out: dict[int, list[Entry]] = {}
    for i, w in fresh:
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
    """The circles by person, in the ``circles`` global table, written through a
    `BatchStore` (``services.matcher.store``): a batch's circles go to the changelog together
    (with the batch's transaction, if any) and into rocksdb once Kafka has them, as the pair
    states do, not one faust table write each. A small cache keeps decoded circles."""

    def __init__(
        self,
        store: BatchStore,
        *,
        partitions: int,
        k: int,
        half_life_days: float,
        cache_size: int = 4096,
    ) -> None:
        self.store = store  # person -> Circle.encode(), by the person's partition
        self.n = partitions
        self.k = k
        self.half_life_days = half_life_days
        #: the circles the last `fold_many` wrote (person -> circle)
        self.folded: dict[str, circles.Circle] = {}
        # decoded circles of recently read people, valid while their bytes are the same
        self._decoded = Decoded(cache_size, circles.Circle.decode)

    def get(self, person: str) -> circles.Circle | None:
        """A person's circle, with the writes not in rocksdb yet (see `BatchStore.get`)."""
        key = person.encode()
        raw = self.store.get(key, records.partition_for(key, self.n))
        return None if raw is None else self._decoded.of(key, raw)

    def _put(self, key: bytes, c: circles.Circle) -> None:
        raw = c.encode()
        self.store.put(key, raw, records.partition_for(key, self.n))
        self._decoded.remember(key, raw, c)

    def fold(self, entries: list[Entry], offset: int, forgotten: set[str]) -> int:
        """Fold one ``person.activity`` record (at ``offset`` of its partition) into the
        circles of its people; returns how many circles changed (`fold_many` of one)."""
        return self.fold_many([(entries, offset)], forgotten)

    def fold_many(self, batch: Sequence[tuple[list[Entry], int]], forgotten: set[str]) -> int:
        """Fold ``person.activity`` records of one partition, ``(entries, offset)`` in offset
        order, into the circles of their people: each circle read, folded over all its
        exchanges of the batch and written once (staged in the store, for its write-out).
        Returns how many circles changed. A circle that has a record already (a redelivery:
        its ``applied`` is at or past the record's offset) skips it; entries naming a
        forgotten person are dropped."""
        by_person: dict[str, list[tuple[int, str, float, float]]] = {}
        for entries, offset in batch:
            for person, partner, w, ts in entries:
                if forgotten and {person_hash(person), person_hash(partner)} & forgotten:
                    continue
                by_person.setdefault(person, []).append((offset, partner, w, ts))
        changed: dict[str, circles.Circle] = {}
        for person, exchanges in by_person.items():
            c = self.get(person)
            done = -1 if c is None else c.applied
            new = [(partner, w, ts) for offset, partner, w, ts in exchanges if offset > done]
            if not new:
                continue  # this circle has folded these records before (a redelivery)
            after = circles.observe_many(
                c, new, half_life_days=self.half_life_days, k=self.k, applied=exchanges[-1][0]
            )
            assert after is not None  # at least one exchange
            changed[person] = after
            self._put(person.encode(), after)
        self.store.keep_record()
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
                    explanation=sentences.group(len(members)),
                )
            )
        return out

    def forget(self, partition: int, hashed: str) -> int:
        """Delete the forgotten person's circle and remove them from every other circle of
        ``partition`` (staged in the store; call after its `settle`, so that every circle
        written out is in rocksdb); returns how many circles changed."""
        self.folded = {}
        changed = 0
        for key in self.store.stored_keys(partition, self.n):
            person = key.decode()
            if person_hash(person) == hashed:
                self.store.delete(key, partition)
                self._decoded.forget(key)
                changed += 1
                continue
            c = self.get(person)
            if c is None:
                continue
            gone = [p for p in c.entries if person_hash(p) == hashed]
            if gone:
                self._put(key, circles.without(c, gone))
                changed += 1
        self.store.keep_record()
        return changed

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
