"""GitHub webhooks: ``issue_comment``, ``pull_request_review_comment`` and
``discussion_comment`` (the event name comes from the ``X-GitHub-Event`` header).

A comment answers the comment it replies to (``in_reply_to_id`` / ``parent_id``, from the
directory of comments seen before) or else the issue's, pull request's or discussion's
author; ``@login`` mentions in the body are mentions. Only ``created`` counts: an edit or a
deletion is not a new exchange. People are ``github:<login>`` (lower case).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from services.sources.base import Draft, Extraction, clip, event_id, finish, mentions

NAME: Final = "github"
EVENTS: Final = ("issue_comment", "pull_request_review_comment", "discussion_comment")
_CFG = ConfigDict(frozen=True, extra="ignore")
Login = Annotated[str, Field(min_length=1, max_length=128)]
_MENTION = re.compile(r"(?<![\w`/])@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\b")


class Account(BaseModel):
    model_config = _CFG
    login: Login
    type: str = "User"


class Comment(BaseModel):
    model_config = _CFG
    id: int
    user: Account
    body: Annotated[str, Field(max_length=300_000)] | None = None
    created_at: AwareDatetime
    in_reply_to_id: int | None = None
    parent_id: int | None = None
    #: set when a GitHub App made the comment
    performed_via_github_app: dict[str, Any] | None = None


class Parent(BaseModel):
    model_config = _CFG
    number: int | None = None
    user: Account


class Repository(BaseModel):
    model_config = _CFG
    full_name: Annotated[str, Field(max_length=256)]


class CommentEvent(BaseModel):
    model_config = _CFG
    action: Annotated[str, Field(max_length=64)]
    comment: Comment
    issue: Parent | None = None
    pull_request: Parent | None = None
    discussion: Parent | None = None
    repository: Repository


PAYLOAD: Final = TypeAdapter(CommentEvent)


def _bot(account: Account) -> bool:
    """GitHub marks apps ``type: Bot``, and reserves the ``[bot]`` suffix for them."""
    return account.type == "Bot" or account.login.endswith("[bot]")


def _who(login: str) -> str:
    return f"github:{login.lower()}"


def extract(payload: CommentEvent, *, event: str) -> Extraction:
    if event not in EVENTS:
        return Extraction(ignored=f"event {event}")
    c = payload.comment
    actor = _who(c.user.login)
    repo = payload.repository.full_name
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
    drafts: list[Draft] = []
    replied: str | None = None
    if reply_to is not None:
        ref = f"comment:{repo}:{event}:{reply_to}"
        common["in_reply_to"] = f"github:{repo}:{event}:{reply_to}"
        drafts.append(
            Draft(event_id=event_id(native, "reply", ref), kind="reply", target_ref=ref, **common)
        )
    elif parent is not None and _who(parent.user.login) != actor and not _bot(parent.user):
        replied = _who(parent.user.login)
        drafts.append(
            Draft(
                event_id=event_id(native, "comment", replied),
                kind="comment",
                target=replied,
                **common,
            )
        )
    targets = [_who(m) for m in _MENTION.findall(c.body or "")]
    drafts += mentions(native, targets, (actor, replied), common)
    return finish(drafts, learned)
