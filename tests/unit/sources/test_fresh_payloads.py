"""Sources III: real payloads that are not in ../shared/fixtures (tests/fixtures/sources, with
PROVENANCE.md), every documented event type of a platform, and the rules: a well-formed
delivery is never refused for a field realconnect does not read; what it does not read is
acknowledged; group DMs and code review are exchanges; the installation's bot is nobody.

The expected meanings were worked out by hand from each payload's fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.normalizer.normalize import expand, to_interactions
from services.sources import SOURCES, Ignored, Meta
from services.sources.base import GONE, Draft, Extraction
from tests.unit.sources.test_adapters import run, triples

FRESH = Path(__file__).parents[2] / "fixtures" / "sources"
GITHUB = sorted((FRESH / "github").glob("*.json"))
AT = datetime(2026, 7, 4, 12, 0, tzinfo=UTC)
META = Meta(delivery_id="d1", received_at=AT)


def load(path: str) -> Any:
    return json.loads((FRESH / path).read_text())


# --- every documented event type: read, or acknowledged and ignored; none refused ------------


@pytest.mark.parametrize("path", GITHUB, ids=lambda p: p.name)
def test_every_octokit_example_of_the_events_read_is_accepted(path: Path) -> None:
    """All 42 of octokit/webhooks' examples of the seven events realconnect reads (every
    action) validate and extract; none is refused."""
    x = run("github", path.read_bytes(), event=path.name.split(".")[0])
    assert x.drafts or x.ignored  # read as something, or acknowledged with a reason


def test_the_github_examples_mean_what_they_say() -> None:
    # a commit comment is addressed to the commit's author, whom a push taught the directory
    x = run("github", load("github/commit_comment.created.json"), event="commit_comment")
    sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    assert triples(x) == [("comment", "github:codertocat", f"?commit:Codertocat/Hello-World:{sha}")]
    assert x.drafts[0].text == "This is a really good change! :+1:"
    push = run("github", load("github/push.with-new-branch.json"), event="push")
    assert push.drafts == [] and push.learned == {
        f"commit:Codertocat/Hello-World:{sha}": "github:codertocat"
    }
    # Codertocat marked dan2wik's comment "Poggers" as the answer: an acknowledgement
    x = run("github", load("github/discussion.answered.json"), event="discussion")
    assert triples(x) == [("like", "github:codertocat", "github:dan2wik")]
    assert x.drafts[0].occurred_at == datetime(2021, 3, 30, 23, 17, 18, tzinfo=UTC)
    # the examples' review has no body: a review without words is not an exchange
    x = run(
        "github", load("github/pull_request_review.submitted.json"), event="pull_request_review"
    )
    assert x.drafts == [] and x.ignored == "a review without a body (commented)"


def test_a_review_with_a_body_is_a_comment_to_the_pull_requests_author() -> None:
    body = load("github/pull_request_review.submitted.json")
    body["review"]["user"] = {"login": "octocat", "type": "User"}  # the requested reviewer
    body["review"]["body"] = "Looks right; one question about the README wording, @hubot?"
    x = run("github", body, event="pull_request_review")
    assert triples(x) == [
        ("comment", "github:octocat", "github:codertocat"),
        ("mention", "github:octocat", "github:hubot"),
    ]
    assert x.drafts[0].thread_id == "github:Codertocat/Hello-World#2"


def test_the_other_discussion_actions_are_acknowledged_not_stored() -> None:
    spec = SOURCES["github"]
    for action in ("created", "labeled", "pinned", "transferred", "unanswered"):
        parsed = spec.payload.validate_python(load(f"github/discussion.{action}.json"))
        assert isinstance(parsed, Ignored)  # ingest answers 202 "ignored"


def test_every_slack_event_type_in_slacks_spec_is_read_or_acknowledged() -> None:
    """The 66 event types of Slack's Events API spec (AsyncAPI), each delivered in an
    ``event_callback`` with the fields every event has: never refused."""
    spec = SOURCES["slack"]
    types = load("slack/event_types.asyncapi.json")["event_types"]
    assert len(types) == 66
    for name in types:
        inner = {"type": name.split(".")[0], "event_ts": "1355517523.000005"}
        body = {"type": "event_callback", "team_id": "T123ABC456", "event": inner}
        x = spec.extract(spec.payload.validate_python(body), META)
        assert x.ignored, name  # nothing about a person in these bare events
    # Slack's own envelopes other than event_callback: acknowledged
    limited = spec.payload.validate_python(load("slack/app_rate_limited.docs.json"))
    assert isinstance(limited, Ignored) and limited.kind == "app_rate_limited"


def test_slack_events_with_objects_where_messages_have_ids_are_acknowledged() -> None:
    """``channel_created`` and ``team_join`` carry objects in ``channel`` / ``user``, where a
    message has ids: they were refused (422) before."""
    spec = SOURCES["slack"]
    for inner in (
        {"type": "channel_created", "channel": {"id": "C024BE91L", "name": "fun", "created": 1}},
        {"type": "team_join", "user": {"id": "U2147483697", "name": "spengler"}},
    ):
        body = {"type": "event_callback", "team_id": "T1", "event": inner}
        assert isinstance(spec.payload.validate_python(body), Ignored)


def test_fields_realconnect_does_not_need_never_refuse_a_delivery() -> None:
    # a Slack message with a numeric bot_id, an attachment of an older shape and a bad
    # channel_type: read, with those fields left unread
    body = load("slack/event_callback.message.mpim.docs.json")
    body["event"].update(channel_type=None, bot_id=12, attachments=[{"is_share": "x"}, 7])
    assert run("slack", body).drafts == []  # a channel message without replies or mentions
    # Discord ids sent as numbers, mentions of another shape
    dispatch = {
        "op": 0,
        "t": "MESSAGE_CREATE",
        "d": {
            "id": 1,
            "channel_id": 2,
            "author": {"id": 3},
            "content": "hi <@4>",
            "timestamp": "2026-07-04T12:00:00+00:00",
            "mentions": [{"id": 4}, "5"],
            "flags": None,
        },
    }
    assert triples(run("discord", dispatch)) == [("mention", "discord:3", "discord:4")]
    # a Mastodon fork's quote: the quoted status itself
    quoted = {
        "id": "1",
        "created_at": "2026-07-04T12:00:00Z",
        "account": {"id": "9", "acct": "bo@b.example"},
        "content": "<p>original</p>",
    }
    status = {**quoted, "id": "2", "account": {"id": "8", "acct": "al@a.example"}, "quote": quoted}
    assert triples(run("mastodon", status)) == [
        ("share", "mastodon:@al@a.example", "mastodon:@bo@b.example")
    ]


def test_bad_input_is_still_refused() -> None:
    for source, body in (
        ("slack", {"type": "event_callback", "team_id": "T1"}),  # no event
        ("slack", [1, 2]),
        ("discord", {"d": {}}),  # neither a dispatch nor an opcode
        ("github", ["not", "an", "event"]),
        ("discord", {"op": 0, "t": "MESSAGE_CREATE", "d": {"id": "1"}}),  # read, but no author
    ):
        with pytest.raises(ValidationError):
            SOURCES[source].payload.validate_python(body)


# --- group DMs ------------------------------------------------------------------------------


def test_a_slack_group_dm_is_a_message_to_each_other_member() -> None:
    x = run("slack", load("slack/event_callback.message.mpim.docs.json"))
    conversation = "members:T123ABC456:G024BE91L"
    assert [(d.kind, d.members_ref) for d in x.drafts] == [("message", conversation)]
    # the author and the person the delivery was for are members
    assert x.members == {
        conversation: ("slack:T123ABC456:U2147483697", "slack:T123ABC456:U123ABC456")
    }
    # with three members known, two interactions; the installation's bot is left out
    members = {conversation: {*x.members[conversation], "slack:T123ABC456:U3", "slack:T1:BOT"}}
    drafts = expand(x.drafts, members, bots=("slack:T1:BOT",))
    assert [(d.kind, d.target) for d in drafts] == [
        ("message", "slack:T123ABC456:U123ABC456"),
        ("message", "slack:T123ABC456:U3"),
    ]
    out = to_interactions("slack", Extraction(drafts=drafts), {}, lambda h: None)
    assert [i.recipients for i in out.interactions] == [2, 2]  # one message to two people
    assert len({i.event_id for i in out.interactions}) == 2


def test_a_group_message_with_no_other_member_known_stays_unresolved() -> None:
    d = Draft(
        event_id="slack:T:G:1/message/members:T:G",
        kind="message",
        actor="slack:T:A",
        occurred_at=AT,
        members_ref="members:T:G",
    )
    (left,) = expand([d], {"members:T:G": {"slack:T:A"}})
    assert left.target is None and left.target_ref == "members:T:G"
    out = to_interactions("slack", Extraction(drafts=[left]), {}, lambda h: None)
    assert out.unresolved == [left]  # dead-lettered (replayable), never dropped


def test_a_thread_reply_in_a_group_dm_answers_the_parent_and_tells_the_others() -> None:
    body = load("slack/event_callback.message.mpim.docs.json")
    body["event"].update(
        thread_ts="1355517500.000001",
        parent_user_id="U3",
        ts="1355517523.000009",
        text="agreed <@U123ABC456>",
    )
    x = run("slack", body)
    conversation = "members:T123ABC456:G024BE91L"
    members = {conversation: {"slack:T123ABC456:" + u for u in ("U2147483697", "U123ABC456", "U3")}}
    assert triples(Extraction(drafts=expand(x.drafts, members))) == [
        ("reply", "slack:T123ABC456:U2147483697", "slack:T123ABC456:U3"),
        ("message", "slack:T123ABC456:U2147483697", "slack:T123ABC456:U123ABC456"),
    ]  # the mention of a member is not counted again beside the message


# --- the installation's own bot -------------------------------------------------------------


def _app(body: dict[str, Any]) -> dict[str, Any]:
    body["authorizations"] = [{"user_id": "UBOT", "is_bot": True}]
    return body


def test_the_installations_bot_is_nobody_in_every_slack_path() -> None:
    base = load("slack/event_callback.message.mpim.docs.json")
    base["event"]["channel_type"] = "channel"
    # its own message: remembered as gone, so a reply in its thread is no exchange
    own = _app(json.loads(json.dumps(base)))
    own["event"]["user"] = "UBOT"
    x = run("slack", own)
    assert x.drafts == [] and x.learned == {"msg:T123ABC456:G024BE91L:1355517523.000005": GONE}
    # a thread reply to it
    reply = _app(json.loads(json.dumps(base)))
    reply["event"].update(thread_ts="1355517500.000001", parent_user_id="UBOT")
    assert run("slack", reply).drafts == []
    # a reaction to its message
    reaction = _app(
        {
            "type": "event_callback",
            "team_id": "T123ABC456",
            "event": {
                "type": "reaction_added",
                "user": "U2147483697",
                "item": {"type": "message", "channel": "G024BE91L", "ts": "1355517523.000005"},
                "item_user": "UBOT",
                "reaction": "thumbsup",
                "event_ts": "1355517600.000001",
            },
        }
    )
    assert run("slack", reaction).drafts == []
    # in a group DM, the bot is no member to write to
    group = _app(load("slack/event_callback.message.mpim.docs.json"))
    x = run("slack", group)
    assert x.bots == ("slack:T123ABC456:UBOT",)
    conversation = "members:T123ABC456:G024BE91L"
    members = {conversation: {"slack:T123ABC456:U2147483697", "slack:T123ABC456:UBOT"}}
    assert expand(x.drafts, members, x.bots)[0].target is None  # nobody else: unresolved


def test_payloads_name_the_accounts_their_platform_flags_as_bots() -> None:
    """What the normalizer remembers, so that a later reaction naming only an id is no
    exchange (tests/integration/test_sources_iii.py checks it end to end)."""
    answer = {
        "op": 0,
        "t": "MESSAGE_CREATE",
        "d": {
            "id": "13",
            "channel_id": "12",
            "type": 20,  # an app's answer to a slash command: read as nothing
            "author": {"id": "999", "bot": True},
            "content": "done",
            "timestamp": "2026-07-04T12:00:00+00:00",
            "mentions": [{"id": "7", "bot": False}],
        },
    }
    x = run("discord", answer)
    assert x.drafts == [] and x.bots == ("discord:999",)
    status = {
        "id": "1",
        "created_at": "2026-07-04T12:00:00Z",
        "account": {"id": "9", "acct": "news@bots.example", "bot": True},
        "content": "<p>hello @al</p>",
        "mentions": [{"id": "8", "acct": "al@a.example"}],
    }
    x = run("mastodon", status)
    assert x.bots == ("mastodon:@news@bots.example",)
    assert [(d.kind, d.actor_bot) for d in x.drafts] == [("mention", True)]


def test_every_documented_mastodon_notification_type_is_read_or_acknowledged() -> None:
    """The 16 notification types of Mastodon's docs (up to 4.6's collections), each as a
    server sends it: with the documented status (Gargron's, from the Status entity's page)
    and the account that caused it. The four read ones are exchanges with the status's
    author; the other twelve are acknowledged without being stored."""
    spec = SOURCES["mastodon"]
    status = load("mastodon/status.docs.json")
    types = load("mastodon/notification_types.docs.json")["notification_types"]
    assert len(types) == 16
    someone = {"id": "297420", "username": "haskal", "acct": "haskal@cybre.space", "bot": False}
    read = {}
    for kind in types:
        note = {
            "id": "34975535",
            "type": kind,
            "created_at": "2019-11-23T07:29:18.903Z",
            "account": someone,
            "status": status,
            "report": {"id": "48914", "category": "spam"},  # admin.report's
        }
        parsed = spec.payload.validate_python(note)
        if isinstance(parsed, Ignored):
            assert parsed.kind == kind
            continue
        x = spec.extract(parsed, META)
        read[kind] = triples(x)
    haskal, gargron = "mastodon:@haskal@cybre.space", "mastodon:@gargron@mastodon.social"
    assert read == {
        "favourite": [("like", haskal, gargron)],
        "reblog": [("share", haskal, gargron)],
        # a mention or quote notification carries the status that mentions or quotes the
        # reader; this documented status mentions nobody, so there is nothing to read
        "mention": [],
        "quote": [],
    }


def test_the_documented_mastodon_status_is_read_field_for_field() -> None:
    x = run("mastodon", load("mastodon/status.docs.json"))
    assert x.drafts == [] and x.ignored == "no interaction between two people"
    # the author is learnt under the server the profile URL names
    assert "mastodon:@gargron@mastodon.social" in x.learned.values()


def test_every_discord_receive_event_of_the_docs_is_read_or_acknowledged() -> None:
    """The 82 receive events of Discord's gateway docs: the two read (MESSAGE_CREATE,
    MESSAGE_REACTION_ADD, checked on real dispatches elsewhere) and 80 acknowledged, whatever
    their ``d``; the opcodes the gateway sends with ``t`` null (Hello...) too."""
    spec = SOURCES["discord"]
    names = load("discord/receive_events.docs.json")["receive_events"]
    assert len(names) == 82
    other = [n for n in names if n not in ("MESSAGE_CREATE", "MESSAGE_REACTION_ADD")]
    for name in other:
        parsed = spec.payload.validate_python({"op": 0, "t": name, "s": 42, "d": {"id": 1}})
        assert isinstance(parsed, Ignored) and parsed.kind == name
    hello = spec.payload.validate_python({"op": 10, "t": None, "d": {"heartbeat_interval": 1}})
    assert isinstance(hello, Ignored) and hello.kind == "op/10"


def test_partial_references_are_read_as_unknown_not_refused() -> None:
    # a Bluesky reply whose record names the parent but not the thread's root
    post = {
        "did": "did:plc:aaaa",
        "time_us": 1783175888085434,
        "kind": "commit",
        "commit": {
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": "3k",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "agreed, see you there",
                "createdAt": "2026-07-04T14:38:08.999Z",
                "reply": {"parent": {"uri": "at://did:plc:bbbb/app.bsky.feed.post/3j"}},
            },
        },
    }
    x = run("bluesky", post)
    assert triples(x) == [("reply", "bluesky:did:plc:aaaa", "bluesky:did:plc:bbbb")]
    assert x.drafts[0].thread_id is None
    # a Discord reply whose referenced_message is a partial copy without its author: the
    # author comes from the directory, as for a reply with no copy at all
    reply = {
        "op": 0,
        "t": "MESSAGE_CREATE",
        "d": {
            "id": "20",
            "channel_id": "12",
            "type": 19,
            "author": {"id": "5"},
            "content": "yes, Friday",
            "timestamp": "2026-07-04T12:00:00+00:00",
            "message_reference": {"message_id": "19"},
            "referenced_message": {"id": "19", "content": "Friday?"},
        },
    }
    assert triples(run("discord", reply)) == [("reply", "discord:5", "?msg:19")]


def test_a_time_without_an_offset_is_read_as_utc() -> None:
    """Some servers and forks (and old SDK fixtures) send times without an offset."""
    status = {
        "id": "2",
        "created_at": "2026-07-04T12:00:00",
        "account": {"id": "8", "acct": "al@a.example"},
        "content": "<p>hi @bo</p>",
        "mentions": [{"id": "9", "acct": "bo@b.example"}],
    }
    (d,) = run("mastodon", status).drafts
    assert d.occurred_at == AT


def test_payloads_name_people_as_their_platform_shows_them() -> None:
    """Issue 41 (5): the name a platform shows for an account travels with the extraction;
    the normalizer keeps it for people without a profile here (test_sources_iii end to end).
    An empty name is no name."""
    status = load("mastodon/status.docs.json")  # Mastodon's documented status: Eugen's
    x = run("mastodon", status)
    assert x.names == {"mastodon:@gargron@mastodon.social": "Eugen"}
    quiet = {**status, "account": {**status["account"], "display_name": "  "}}
    assert run("mastodon", quiet).names == {}
    odd = {**status, "account": {**status["account"], "display_name": {"not": "a string"}}}
    assert run("mastodon", odd).names == {}  # read as absent, the status still read
    message = {
        "op": 0,
        "t": "MESSAGE_CREATE",
        "d": {
            "id": "21",
            "channel_id": "12",
            "type": 0,
            "author": {"id": "7", "username": "ann_l", "global_name": "Ann Lee"},
            "content": "see you at the meetup, <@8>?",
            "timestamp": "2026-07-04T12:00:00+00:00",
            "mentions": [{"id": "8", "username": "ben", "global_name": None}],
        },
    }
    x = run("discord", message)
    assert x.names == {"discord:7": "Ann Lee"}
    assert [d.kind for d in x.drafts] == ["mention"]
