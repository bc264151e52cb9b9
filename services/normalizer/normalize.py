"""Drafts -> canonical interactions (pure: no I/O imports).

Handles are mapped to person ids where the person linked them (``people.identities``);
unlinked handles stay source-qualified (``mastodon:@a@host``), so a pair that talks on two
linked platforms is one pair. A draft whose counterpart could not be resolved is returned
as unresolved, never guessed.

Each interaction leaves scored (its meaningfulness computed from its text) and without the
text: message text lives only on the raw topics, which keep it 24 hours by default.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from schemas.events import Interaction
from services.matcher.scoring import scored
from services.sources.base import GONE, Draft, Extraction, event_id


@dataclass(frozen=True)
class Outcome:
    interactions: list[Interaction] = field(default_factory=list)
    unresolved: list[Draft] = field(default_factory=list)
    #: drafts that became one person talking to themself (two linked accounts of one person)
    same_person: int = 0
    #: drafts that are not valid interactions (say, a handle with control characters), with
    #: the error: dead-lettered, while the delivery's valid interactions go on
    invalid: list[tuple[Draft, str]] = field(default_factory=list)
    #: drafts to a known automated account or under a deleted author: left out
    not_to_a_person: int = 0


def to_interactions(
    source: str,
    extraction: Extraction,
    resolved: Mapping[str, str],
    person_of: Callable[[str], str | None],
    automated: Callable[[str], bool] = lambda handle: False,
) -> Outcome:
    """``automated`` says whether a handle is a known automated account: its messages are
    flagged (``actor_bot``, weighing nothing), messages to it are left out."""
    out: list[Interaction] = []
    unresolved: list[Draft] = []
    invalid: list[tuple[Draft, str]] = []
    same = skipped = 0
    # how many people each action addressed (drafts of one action share its native id)
    per_action = Counter(_action(d) for d in extraction.drafts)
    for d in extraction.drafts:
        target = d.target or (resolved.get(d.target_ref) if d.target_ref else None)
        if target is None:
            unresolved.append(d)
            continue
        if target == GONE or automated(target):
            skipped += 1  # under a deleted author, or to a bot: not an exchange with a person
            continue
        actor_bot = d.actor_bot or automated(d.actor)
        actor = person_of(d.actor) or d.actor
        target = person_of(target) or target
        if actor == target:
            same += 1
            continue
        try:
            interaction = Interaction(
                source=source,
                event_id=d.event_id,
                kind=d.kind,
                actor=actor,
                target=target,
                occurred_at=d.occurred_at,
                text=d.text,
                duration_s=d.duration_s,
                thread_id=d.thread_id,
                in_reply_to=d.in_reply_to,
                recipients=per_action[_action(d)],
                audience=d.audience,
                actor_bot=actor_bot,
            )
        except ValidationError as exc:
            invalid.append((d, str(exc)))
            continue
        out.append(scored(interaction))  # the text stops here (services.matcher.scoring)
    return Outcome(
        interactions=out,
        unresolved=unresolved,
        same_person=same,
        invalid=invalid,
        not_to_a_person=skipped,
    )


def expand(
    drafts: list[Draft], members: Mapping[str, Collection[str]], bots: Collection[str] = ()
) -> list[Draft]:
    """A message to a group conversation as one draft per other member (a multi-party DM is
    an exchange between its author and each other member), by ``members`` (conversation key
    -> handles). Left out: the author, the bots the payload flags (``bots``), and members the
    same action already answers (a thread reply's parent); a mention of a member by the same
    message is dropped, as the message already addresses them. A group draft with no other
    member known stays unresolved (``target_ref`` is its conversation key): it is
    dead-lettered, to be replayed once the members are known, never dropped."""
    answered: dict[str, set[str]] = defaultdict(set)
    for d in drafts:
        if d.members_ref is None and d.kind != "mention" and d.target:
            answered[_action(d)].add(d.target)
    out: list[Draft] = []
    addressed: dict[str, set[str]] = defaultdict(set)
    for d in drafts:
        if d.members_ref is None:
            out.append(d)
            continue
        action = _action(d)
        skip = {d.actor, *bots, *answered[action]}
        others = sorted(set(members.get(d.members_ref, ())) - skip)
        if not others:
            out.append(replace(d, target_ref=d.members_ref, members_ref=None))
            continue
        addressed[action].update(others)
        out += [
            replace(d, event_id=event_id(action, d.kind, m), target=m, members_ref=None)
            for m in others
        ]
    return [
        d for d in out if not (d.kind == "mention" and d.target in addressed.get(_action(d), ()))
    ]


def _action(d: Draft) -> str:
    """The native id of the action behind a draft: its event id without the
    ``/<kind>/<counterpart>`` that ``base.event_id`` appended."""
    suffix = f"/{d.kind}/{d.target or d.target_ref or d.members_ref or ''}"
    return d.event_id[: -len(suffix)] if d.event_id.endswith(suffix) else d.event_id
