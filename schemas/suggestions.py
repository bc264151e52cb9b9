"""A meetup suggestion, as written to ``meetup.suggestions`` and printed by the CLI.

Wire format::

    {"suggestion_id": str, "pair": [a, b] (sorted), "score": number, "suggested_at": ISO-8601,
     "evidence": {...}, "explanation": str, "around": {...} or null,
     "decision": {...} or null}
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)


class Around(BaseModel):
    """The people around the pair when it was suggested: the structural features of their two
    circles (services/matcher/circles.py, docs/matching.md). Context, not evidence: it does
    not decide, and it reflects the circles as far as the circle stage had folded them then,
    so a replay of the same events may give other figures (the decision stays the same)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shared_contacts: int = Field(ge=0)
    adamic_adar: float = Field(ge=0)
    attention: float = Field(ge=0, le=1)
    closest: float = Field(ge=0, le=1)
    #: where each ranks in the other's circle (1: closest; None: not in it), a's rank of b first
    rank: tuple[int | None, int | None]


class GateRecord(BaseModel):
    """One gate of a decision (services/matcher/decisions.py): its value, its threshold, and
    whether it passed, with a sentence. Numbers only, never message text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    passed: bool
    value: float | str | None
    threshold: float | str | None
    says: str = Field(max_length=500)


class DecisionRecord(BaseModel):
    """What decided a suggestion, as it was decided then (issue 39): every gate in order, the
    model's version and probability, each feature's share of the score, and what would have
    changed the answer. Kept with the suggestion, so an explanation of a past suggestion
    shows that decision, not what today's model would say."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suggested: bool
    decided_by: str | None = Field(default=None, max_length=64)
    gates: tuple[GateRecord, ...] = Field(max_length=32)
    model: str | None = Field(default=None, max_length=128)
    probability: float | None = Field(default=None, ge=0, le=1)
    #: each feature's share of the score against an average pair
    contributions: dict[str, float] = Field(default_factory=dict, max_length=64)
    would_change: str | None = Field(default=None, max_length=500)


class Suggestion(BaseModel):
    """The matcher's decision that two people should meet, with the evidence behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the version of this format (a record written before formats carried one reads as 1;
    #: a change a reader of the last version could not read takes the next number)
    v: Literal[1] = 1

    suggestion_id: str = Field(min_length=1)
    pair: tuple[str, str]
    score: float
    #: Event time of the interaction that triggered the suggestion, never the wall clock.
    suggested_at: AwareDatetime
    evidence: dict[str, Any]
    explanation: str
    around: Around | None = None
    decision: DecisionRecord | None = None

    @field_validator("pair")
    @classmethod
    def _sorted(cls, v: tuple[str, str]) -> tuple[str, str]:
        if v[0] >= v[1]:
            raise ValueError("pair must be two distinct ids in sorted order")
        return v


SUGGESTION_ADAPTER: Final = TypeAdapter(Suggestion)


class MemberTie(BaseModel):
    """One pair of a group, as each of the two sees it: where the other ranks in their circle
    (1: closest) and what share of their meaningful exchange goes to the other, the pair's
    sorted order (``"a|b"``: a's view first)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rank: tuple[int, int]
    share: tuple[float, float]

    @field_validator("rank")
    @classmethod
    def _ranks(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 1:
            raise ValueError("a rank is 1 or more")
        return v

    @field_validator("share")
    @classmethod
    def _shares(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= x <= 1 for x in v):
            raise ValueError("a share is between 0 and 1")
        return v


#: the sizes of a group meetup (issue 38: a table, not a community)
GROUP_MIN: Final = 3
GROUP_MAX: Final = 6


def group_id(members: tuple[str, ...]) -> str:
    """A group's id: the same members, the same id (a suggestion made twice is one)."""
    return hashlib.sha256(("group|" + "|".join(sorted(members))).encode()).hexdigest()[:32]


class GroupSuggestion(BaseModel):
    """The matcher's decision that 3 to 6 people who all talk with each other should meet
    together (services/matcher/groups.py). Wire format on ``meetup.groups``, keyed by id::

        {"group_id": str, "members": [sorted ids], "suggested_at": ISO-8601,
         "ties": {"a|b": {"rank": [a's rank of b, b's of a], "share": [...]}, ...},
         "sources": [...], "explanation": str}
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the version of this format (a record written before formats carried one reads as 1;
    #: a change a reader of the last version could not read takes the next number)
    v: Literal[1] = 1

    group_id: str = Field(min_length=1, max_length=64)
    members: tuple[str, ...] = Field(min_length=GROUP_MIN, max_length=GROUP_MAX)
    #: event time of the exchange that completed the group, never the wall clock
    suggested_at: AwareDatetime
    #: every pair of members, "a|b" with a < b
    ties: dict[str, MemberTie]
    explanation: str
    sources: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> GroupSuggestion:
        m = self.members
        if list(m) != sorted(set(m)):
            raise ValueError("members must be distinct ids in sorted order")
        pairs = {f"{a}|{b}" for i, a in enumerate(m) for b in m[i + 1 :]}
        if set(self.ties) != pairs:
            raise ValueError("ties must name every pair of members, and only those")
        if self.group_id != group_id(m):
            raise ValueError("group_id must be group_id(members)")
        return self

    def without(self, person: str) -> GroupSuggestion | None:
        """The group after ``person`` asked to be forgotten (None: fewer than three left)."""
        rest = tuple(p for p in self.members if p != person)
        if len(rest) < GROUP_MIN:
            return None
        ties = {k: v for k, v in self.ties.items() if person not in k.split("|")}
        return self.model_copy(update={"members": rest, "ties": ties, "group_id": group_id(rest)})


GROUP_ADAPTER: Final = TypeAdapter(GroupSuggestion)
