"""GitHub webhooks (the event name comes from the ``X-GitHub-Event`` header): comments
(``issue_comment``, ``pull_request_review_comment``, ``discussion_comment``,
``commit_comment``), code review (``pull_request_review``), answers (``discussion``
``answered``) and ``push`` (which only teaches the directory who wrote each commit).

A comment answers the comment it replies to (``in_reply_to_id`` / ``parent_id``, from the
directory of comments seen before) or else the issue's, pull request's or discussion's
author, or the commit's author (from the directory of pushes seen); ``@login`` mentions in
the body are mentions. A review with a body is a comment to the pull request's author. Marking
someone's discussion comment as the answer is an acknowledgement, weighed like a reaction.
Only ``created`` / ``submitted`` / ``answered`` count: an edit or a deletion is not a new
exchange. People are ``github:<login>`` (lower case).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import AwareDatetime, BaseModel, Discriminator, Field, OnErrorOmit, Tag, TypeAdapter

from services.sources.base import (
    PLATFORM,
    Draft,
    Extraction,
    Ignored,
    PlatformTime,
    Tolerant,
    TolerantList,
    clip,
    event_id,
    finish,
    mentions,
    reaction,
)

NAME: Final = "github"
#: the events read; every other is answered 202 "ignored" (docs/sources.md lists them)
EVENTS: Final = (
    "issue_comment",
    "pull_request_review_comment",
    "discussion_comment",
    "commit_comment",
    "pull_request_review",
    "discussion",
    "push",
)
_CFG = PLATFORM
Login = Annotated[str, Field(min_length=1, max_length=128)]
_MENTION = re.compile(r"(?<![\w`/])@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\b")


class Account(BaseModel):
    model_config = _CFG
    login: Login
    type: str = "User"


Body = Annotated[str, Field(max_length=300_000)]


class Comment(BaseModel):
    model_config = _CFG
    id: int
    #: null when the account was deleted (GitHub shows "ghost")
    user: Annotated[Account | None, Tolerant] = None
    body: Body | None = None
    created_at: PlatformTime
    in_reply_to_id: Annotated[int | None, Tolerant] = None
    parent_id: Annotated[int | None, Tolerant] = None
    #: a commit comment's commit
    commit_id: Annotated[Annotated[str, Field(max_length=64)] | None, Tolerant] = None
    #: set when a GitHub App made the comment
    performed_via_github_app: Annotated[dict[str, Any] | None, Tolerant] = None


class Parent(BaseModel):
    model_config = _CFG
    id: Annotated[int | None, Tolerant] = None
    number: Annotated[int | None, Tolerant] = None
    user: Annotated[Account | None, Tolerant] = None
    answer_chosen_at: Annotated[AwareDatetime | None, Tolerant] = None
    answer_chosen_by: Annotated[Account | None, Tolerant] = None


class Repository(BaseModel):
    model_config = _CFG
    full_name: Annotated[str, Field(max_length=256)]


class CommentEvent(BaseModel):
    model_config = _CFG
    action: Annotated[str, Field(max_length=64)]
    comment: Comment
    issue: Annotated[Parent | None, Tolerant] = None
    pull_request: Annotated[Parent | None, Tolerant] = None
    discussion: Annotated[Parent | None, Tolerant] = None
    repository: Repository


class Review(BaseModel):
    model_config = _CFG
    id: int
    user: Annotated[Account | None, Tolerant] = None
    body: Body | None = None
    submitted_at: Annotated[AwareDatetime | None, Tolerant] = None
    state: Annotated[str, Field(max_length=64)] = ""


class ReviewEvent(BaseModel):
    model_config = _CFG
    action: Annotated[str, Field(max_length=64)]
    review: Review
    pull_request: Parent
    repository: Repository


class AnswerEvent(BaseModel):
    """``discussion`` ``answered``: who marked which comment as the answer."""

    model_config = _CFG
    action: Annotated[str, Field(max_length=64)]
    answer: Comment
    discussion: Parent
    repository: Repository
    sender: Annotated[Account | None, Tolerant] = None


class GitAuthor(BaseModel):
    model_config = _CFG
    #: the GitHub login, when the commit's email belongs to an account
    username: Annotated[Login | None, Tolerant] = None


class Commit(BaseModel):
    model_config = _CFG
    id: Annotated[str, Field(max_length=64)]
    author: Annotated[GitAuthor | None, Tolerant] = None


class PushEvent(BaseModel):
    model_config = _CFG
    ref: Annotated[str, Field(max_length=1024)]
    commits: Annotated[list[OnErrorOmit[Commit]], TolerantList] = []
    repository: Repository


class Other(Ignored):
    @classmethod
    def kind_of(cls, data: Any) -> str:
        action = data.get("action") if isinstance(data, dict) else None
        return f"action {str(action)[:48]}" if isinstance(action, str) else "other"


def _shape(v: Any) -> str | None:
    """The payload's kind, by the keys its event has (the event name is a header)."""
    if not isinstance(v, dict):
        return None
    for key, tag in (("comment", "comment"), ("review", "review"), ("answer", "answer")):
        if key in v:
            return tag
    if "commits" in v and "ref" in v:
        return "push"
    return "ignored"  # a discussion created, labeled, pinned...: nothing realconnect reads


Payload = Annotated[
    Annotated[CommentEvent, Tag("comment")]
    | Annotated[ReviewEvent, Tag("review")]
    | Annotated[AnswerEvent, Tag("answer")]
    | Annotated[PushEvent, Tag("push")]
    | Annotated[Other, Tag("ignored")],
    Discriminator(_shape),
]
PAYLOAD: Final = TypeAdapter(Payload)


def _bot(account: Account) -> bool:
    """GitHub marks apps ``type: Bot``, and reserves the ``[bot]`` suffix for them."""
    return account.type == "Bot" or account.login.endswith("[bot]")


def _who(login: str) -> str:
    return f"github:{login.lower()}"


def extract(
    payload: CommentEvent | ReviewEvent | AnswerEvent | PushEvent, *, event: str
) -> Extraction:
    if event not in EVENTS:
        return Extraction(ignored=f"event {event}")
    repo = payload.repository.full_name
    if isinstance(payload, PushEvent):  # who wrote each commit, for comments on it
        learned = {
            f"commit:{repo}:{c.id}": _who(c.author.username)
            for c in payload.commits
            if c.author is not None and c.author.username
        }
        return Extraction(learned=learned, ignored="push")
    if isinstance(payload, ReviewEvent):
        return _review(payload, repo)
    if isinstance(payload, AnswerEvent):
        return _answer(payload, repo)
    return _comment(payload, repo, event)


def _review(payload: ReviewEvent, repo: str) -> Extraction:
    """A submitted review with a body: a comment to the pull request's author."""
    r, pr = payload.review, payload.pull_request
    if r.user is None or payload.action != "submitted":
        return Extraction(ignored=f"pull_request_review.{payload.action}")
    actor = _who(r.user.login)
    if not (r.body or "").strip() or r.submitted_at is None:
        return Extraction(ignored=f"a review without a body ({r.state})")
    thread = f"github:{repo}#{pr.number}" if pr.number is not None else None
    native = f"github:{repo}:pull_request_review:{r.id}"
    common: dict[str, Any] = {
        "actor": actor,
        "occurred_at": r.submitted_at,
        "text": clip(r.body),
        "thread_id": thread,
        "actor_bot": _bot(r.user),
    }
    author = _who(pr.user.login) if pr.user is not None and not _bot(pr.user) else None
    return finish(_to(native, author, r.body, common), {})


def _to(native: str, author: str | None, body: str | None, common: dict[str, Any]) -> list[Draft]:
    """A ``comment`` to ``author`` (unless None or the actor), and a ``mention`` of each
    other ``@login`` in ``body``."""
    actor = common["actor"]
    drafts: list[Draft] = []
    if author is not None and author != actor:
        eid = event_id(native, "comment", author)
        drafts.append(Draft(event_id=eid, kind="comment", target=author, **common))
    targets = [_who(m) for m in _MENTION.findall(body or "")]
    return drafts + mentions(native, targets, (actor, author), common)


def _answer(payload: AnswerEvent, repo: str) -> Extraction:
    """Marking another person's comment as the discussion's answer: an acknowledgement of
    it, weighed like a reaction (a ``like`` from who marked it to the comment's author)."""
    d, a = payload.discussion, payload.answer
    marker = d.answer_chosen_by or payload.sender
    if payload.action != "answered" or marker is None or a.user is None:
        return Extraction(ignored=f"discussion.{payload.action}")
    if _bot(a.user):
        return Extraction(ignored="an answer written by an app")
    return reaction(
        f"github:{repo}:discussion:{d.id or d.number}:answer:{a.id}",
        _who(marker.login),
        _who(a.user.login),
        None,
        d.answer_chosen_at or a.created_at,
        f"github:{repo}:discussion_comment:{a.id}",
        actor_bot=_bot(marker),
    )


def _comment(payload: CommentEvent, repo: str, event: str) -> Extraction:
    c = payload.comment
    if c.user is None:
        return Extraction(ignored="a comment by a deleted account")
    actor = _who(c.user.login)
    learned = {f"comment:{repo}:{event}:{c.id}": actor}
    if payload.action != "created":
        return Extraction(learned=learned, ignored=f"{event}.{payload.action}")
    parent = payload.issue or payload.pull_request or payload.discussion
    thread = f"github:{repo}#{parent.number}" if parent and parent.number is not None else None
    native = f"github:{repo}:{event}:{c.id}"
    common: dict[str, Any] = {
        "actor": actor,
        "occurred_at": c.created_at,
        "text": clip(c.body),
        "thread_id": thread,
        "actor_bot": _bot(c.user) or c.performed_via_github_app is not None,
    }
    reply_to = c.in_reply_to_id or c.parent_id
    if reply_to is not None:
        ref = f"comment:{repo}:{event}:{reply_to}"
        common["in_reply_to"] = f"github:{repo}:{event}:{reply_to}"
        reply = Draft(
            event_id=event_id(native, "reply", ref), kind="reply", target_ref=ref, **common
        )
        return finish([reply, *_to(native, None, c.body, common)], learned)
    if event == "commit_comment" and c.commit_id:  # to the commit's author (from a push)
        ref = f"commit:{repo}:{c.commit_id}"
        common["thread_id"] = f"github:{repo}@{c.commit_id}"
        eid = event_id(native, "comment", ref)
        to_commit = Draft(event_id=eid, kind="comment", target_ref=ref, **common)
        return finish([to_commit, *_to(native, None, c.body, common)], learned)
    author = None
    if parent is not None and parent.user is not None and not _bot(parent.user):
        author = _who(parent.user.login)
    return finish(_to(native, author, c.body, common), learned)
