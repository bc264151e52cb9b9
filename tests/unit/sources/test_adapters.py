"""Every adapter against the platforms' real payloads (../shared/fixtures) and variants."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.sources import SOURCES, Meta
from services.sources.base import Extraction
from tests.unit.sources.conftest import raw

NOW = datetime(2026, 7, 4, 12, 0, tzinfo=UTC)


def run(source: str, body: Any, event: str | None = None) -> Extraction:
    spec = SOURCES[source]
    parsed = spec.payload.validate_json(raw(body) if not isinstance(body, bytes) else body)
    return spec.extract(parsed, Meta(delivery_id="d1", received_at=NOW, event=event))


def triples(x: Extraction) -> list[tuple[str, str, str]]:
    return [(d.kind, d.actor, d.target or f"?{d.target_ref}") for d in x.drafts]


# --- Mastodon -------------------------------------------------------------------------------


def test_mastodon_reply_counterpart_comes_from_the_mentions(payload) -> None:
    x = run("mastodon", payload("mastodon/status.reply_with_mention.json"))
    assert triples(x) == [
        ("reply", "mastodon:@admin@localhost:3000", "mastodon:@mastodonpy_test_2@localhost:3000")
    ]
    d = x.drafts[0]
    assert d.text == "@mastodonpy_test_2 same!"  # HTML stripped
    assert d.occurred_at == datetime(2026, 8, 1, 13, 53, 15, 910000, tzinfo=UTC)
    assert d.in_reply_to == "mastodon:117020583245459824"


def test_mastodon_reply_to_someone_not_mentioned_is_resolved_later(payload) -> None:
    status = payload("mastodon/status.reply_with_mention.json")
    status["mentions"] = []
    x = run("mastodon", status)
    assert triples(x) == [
        ("reply", "mastodon:@admin@localhost:3000", "?account:localhost:3000:117020566092212359")
    ]
    assert (
        x.learned["account:localhost:3000:117020565693913441"] == "mastodon:@admin@localhost:3000"
    )


def test_mastodon_reply_that_also_mentions_two_others_gives_three_interactions(payload) -> None:
    status = payload("mastodon/status.reply_with_mention.json")
    status["mentions"] += [
        {
            "id": "9",
            "username": "cat",
            "acct": "cat@other.example",
            "url": "https://other.example/@cat",
        },
        {"id": "10", "username": "dan", "acct": "dan", "url": "http://localhost:3000/@dan"},
    ]
    x = run("mastodon", status)
    assert [k for k, _, _ in triples(x)] == ["reply", "mention", "mention"]
    assert [t for _, _, t in triples(x)][1:] == [
        "mastodon:@cat@other.example",
        "mastodon:@dan@localhost:3000",
    ]
    assert len({d.event_id for d in x.drafts}) == 3


def test_mastodon_direct_message_is_a_message(payload) -> None:
    x = run("mastodon", payload("mastodon/status.direct_message.json"))
    assert triples(x) == [
        ("message", "mastodon:@mastodonpy_test_2@localhost:3000", "mastodon:@admin@localhost:3000")
    ]


def test_mastodon_notifications_mention_and_favourite(payload) -> None:
    mention = run("mastodon", payload("mastodon/notification.mention.json"))
    assert triples(mention) == [
        ("mention", "mastodon:@admin@localhost:3000", "mastodon:@mastodonpy_test@localhost:3000")
    ]
    fav = run("mastodon", payload("mastodon/notification.favourite.docs_abbreviated.json"))
    assert triples(fav) == [("like", "mastodon:@haskal@cybre.space", "mastodon:@trwnh")]


def test_mastodon_reblog_notification_is_a_share(payload) -> None:
    n = payload("mastodon/notification.favourite.docs_abbreviated.json")
    n["type"] = "reblog"
    assert triples(run("mastodon", n))[0][0] == "share"


def test_mastodon_grouped_favourites_give_one_like_per_account(payload) -> None:
    x = run("mastodon", payload("mastodon/grouped_notifications.favourite.json"))
    assert {k for k, _, _ in triples(x)} == {"like"}
    assert len(x.drafts) == 2
    assert {t for _, _, t in triples(x)} == {"mastodon:@mastodonpy_test@localhost:3000"}


def test_mastodon_self_reblog_and_self_thread_are_not_interactions(payload) -> None:
    assert run("mastodon", payload("mastodon/status.reblog.json")).drafts == []
    assert run("mastodon", payload("mastodon/context.reply_thread.json")).drafts == []


def test_mastodon_reblog_of_someone_else_is_a_share(payload) -> None:
    s = payload("mastodon/status.reblog.json")
    s["reblog"]["account"] = {
        "id": "77",
        "acct": "eve@else.where",
        "url": "https://else.where/@eve",
    }
    assert triples(run("mastodon", s)) == [
        ("share", "mastodon:@mastodonpy_test@localhost:3000", "mastodon:@eve@else.where")
    ]


# --- Bluesky --------------------------------------------------------------------------------


def test_bluesky_like_repost_and_reply(payload) -> None:
    like = run("bluesky", payload("bluesky/commit.like.create.json"))
    assert triples(like) == [
        (
            "like",
            "bluesky:did:plc:wq4aajammjtxdomz3e23667t",
            "bluesky:did:plc:r2zybk6op3ymzpz6jhqpkoy5",
        )
    ]
    repost = run("bluesky", payload("bluesky/commit.repost.create.json"))
    assert triples(repost)[0][0] == "share"
    reply = run("bluesky", payload("bluesky/commit.post.create.reply.json"))
    assert triples(reply) == [
        (
            "reply",
            "bluesky:did:plc:o2rolxey6s5k7d4lxcz3inl4",
            "bluesky:did:plc:i5y2f3gtpjxs3qg6fwgb6jb4",
        )
    ]
    d = reply.drafts[0]
    assert d.text == "이쁘시네용~~~"
    assert d.thread_id == "at://did:plc:i5y2f3gtpjxs3qg6fwgb6jb4/app.bsky.feed.post/3mpt7u2vlgs2c"


def test_bluesky_mention_facets_are_mentions(payload) -> None:
    record = payload("bluesky/record.post.with_mention_facet.docs.json")
    event = {
        "did": "did:plc:author",
        "time_us": 1783175888130414,
        "kind": "commit",
        "commit": {
            "rev": "r",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": "k1",
            "record": record,
            "cid": "c",
        },
    }
    assert triples(run("bluesky", event)) == [
        ("mention", "bluesky:did:plc:author", "bluesky:did:plc:ewvi7nxzyoun6zhxrhs64oiz")
    ]


def test_bluesky_deletes_self_replies_and_plain_posts_are_ignored(payload) -> None:
    for f in (
        "commit.post.delete.json",
        "commit.post.create.reply.self_thread_1.json",
        "commit.post.create.root_with_link_facet.json",
    ):
        x = run("bluesky", payload(f"bluesky/{f}"))
        assert x.drafts == [] and x.ignored, f


# --- Reddit ---------------------------------------------------------------------------------


def test_reddit_thread_resolves_parents_within_the_payload(payload) -> None:
    x = run("reddit", payload("reddit/thread.submission_with_comment_and_reply.json"))
    assert triples(x) == [
        ("comment", "reddit:u/paneer_burrito", "reddit:u/bboe"),
        ("reply", "reddit:u/bboe", "reddit:u/paneer_burrito"),
    ]
    assert (
        x.drafts[1].text
        and x.drafts[1].thread_id
        and x.drafts[1].thread_id.startswith("reddit:t3_")
    )


def test_reddit_nested_replies_are_walked(payload) -> None:
    x = run("reddit", payload("reddit/thread.comment_with_nested_replies_and_more.json"))
    assert len(x.drafts) >= 4
    assert all(d.target for d in x.drafts)  # every parent is in the thread


def test_reddit_single_comment_needs_the_directory(payload) -> None:
    x = run("reddit", payload("reddit/comment.info_single.json"))
    assert triples(x) == [("reply", "reddit:u/bboe", "?thing:t1_cklfmye")]
    assert x.learned == {"thing:t1_cklhv0f": "reddit:u/bboe"}


def test_reddit_top_level_comment_listed_alone_names_the_post_author(payload) -> None:
    """``/r/{sub}/comments`` lists comments without their thread, with ``link_author``."""
    thread = payload("reddit/thread.submission_with_comment_and_reply.json")
    comment = thread[1]["data"]["children"][0]
    comment["data"]["replies"] = ""
    assert triples(run("reddit", comment)) == [
        ("comment", "reddit:u/paneer_burrito", "?thing:t3_2gmzqe")
    ]
    comment["data"]["link_author"] = "BBoe"
    assert triples(run("reddit", comment)) == [
        ("comment", "reddit:u/paneer_burrito", "reddit:u/bboe")
    ]
    comment["data"]["link_author"] = "[deleted]"
    assert triples(run("reddit", comment))[0][2] == "?thing:t3_2gmzqe"


def test_reddit_inbox_items_name_the_recipient(payload) -> None:
    x = run("reddit", payload("reddit/inbox.comment_reply.json"))
    assert triples(x) == [("reply", "reddit:u/lil_spazbot", "reddit:u/<username>")]
    post = run("reddit", payload("reddit/inbox.post_reply.json"))
    assert triples(post)[0][0] == "comment"


def test_reddit_private_message_to_a_person(payload) -> None:
    pm = payload("reddit/private_message.single.json")
    assert run("reddit", pm).drafts == []  # modmail to a subreddit is not a person
    pm["data"]["children"][0]["data"]["dest"] = "SomeOne"
    assert triples(run("reddit", pm)) == [("message", "reddit:u/lil_spaztest", "reddit:u/someone")]


# --- Slack ----------------------------------------------------------------------------------


def envelope(inner: dict[str, Any], team: str = "T1") -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": team,
        "event_id": "Ev1",
        "event": inner,
        "authorizations": [{"user_id": "UBOT", "is_bot": True}],
    }


def test_slack_thread_reply_to_someone_else(payload) -> None:
    body = payload("slack/event_callback.message.thread_reply_channel.json")
    assert run("slack", body).drafts == []  # W222 answering their own thread
    body["event"]["parent_user_id"] = "W333"
    assert triples(run("slack", body)) == [("reply", "slack:T111:W222", "slack:T111:W333")]


def test_slack_thread_reply_without_parent_user_is_resolved_from_the_thread(payload) -> None:
    body = payload("slack/event_callback.message.thread_reply_channel.json")
    del body["event"]["parent_user_id"]
    x = run("slack", body)
    assert triples(x) == [("reply", "slack:T111:W222", "?msg:T111:C111:1726133698.626339")]


def test_slack_mentions_in_channel_messages(payload) -> None:
    inner = payload("slack/event.app_mention.inner.json")
    x = run("slack", envelope(inner))
    assert triples(x) == [("mention", "slack:T1:U061F7AUR", "slack:T1:U0LAN0Z89")]
    # the message event of the same message gives the same interaction id
    inner["type"] = "message"
    assert run("slack", envelope(inner)).drafts[0].event_id == x.drafts[0].event_id


def test_slack_dm_counterpart_from_authorizations_or_the_directory(payload) -> None:
    body = payload("slack/event_callback.message.im.json")
    # captured: a direct message to the app, authorized by its bot user alone: not people
    assert body["authorizations"][0]["is_bot"] is True
    x = run("slack", body)
    assert x.drafts == [] and x.ignored == "a direct message with the app"
    # authorized by the sender's own user token: the peer is not in the event
    body["authorizations"] = [{"user_id": "U043H11ES4V", "is_bot": False}]
    x = run("slack", body)
    assert triples(x) == [
        (
            "message",
            "slack:T043DB835ML:U043H11ES4V",
            "?im:T043DB835ML:D0442US94JD:peer-of:U043H11ES4V",
        )
    ]
    body["authorizations"] = [{"user_id": "U0PEER", "is_bot": False}]
    x = run("slack", body)
    assert triples(x) == [("message", "slack:T043DB835ML:U043H11ES4V", "slack:T043DB835ML:U0PEER")]
    assert x.learned["im:T043DB835ML:D0442US94JD:peer-of:U0PEER"] == "slack:T043DB835ML:U043H11ES4V"


def test_slack_reaction_is_a_like_and_url_verification_is_not_an_interaction(payload) -> None:
    x = run("slack", payload("slack/event_callback.reaction_added.im_message.json"))
    assert triples(x) == [("like", "slack:T0JFD6M53:U27FFLNF4", "slack:T0JFD6M53:U299ATJ2X")]
    assert run("slack", payload("slack/url_verification.json")).ignored == "url_verification"


def test_slack_edits_and_bot_messages_are_ignored(payload) -> None:
    body = payload("slack/event_callback.message.channel.json")
    body["event"]["subtype"] = "message_changed"
    assert run("slack", body).ignored


# --- Discord --------------------------------------------------------------------------------


def test_discord_reply_mention_and_reaction(payload) -> None:
    body = payload("discord/gateway.MESSAGE_CREATE.reply.json")
    # the captured reply answers a bot ("Reacton", bot: true): not an exchange with a person
    assert body["d"]["referenced_message"]["author"]["bot"] is True
    assert run("discord", body).drafts == []
    body["d"]["referenced_message"]["author"]["bot"] = False
    reply = run("discord", body)
    assert triples(reply) == [("reply", "discord:134127815531560960", "discord:344487830824943618")]
    assert reply.drafts[0].text == "cool."
    reaction = run("discord", payload("discord/gateway.MESSAGE_REACTION_ADD.json"))
    assert triples(reaction) == [("like", "discord:123456789012345678", "?msg:679003565884440580")]
    assert reaction.drafts[0].occurred_at == NOW  # reactions carry no time: received time
    body = payload("discord/gateway.MESSAGE_REACTION_ADD.json")
    body["d"]["message_author_id"] = "555"
    assert triples(run("discord", body))[0][2] == "discord:555"


def test_discord_guild_message_with_mentions(payload) -> None:
    body = payload("discord/gateway.MESSAGE_CREATE.guild_message.json")
    assert run("discord", body).drafts == []
    body["d"]["mentions"] = [{"id": "42", "username": "x"}, {"id": "42", "username": "x"}]
    x = run("discord", body)
    assert [k for k, _, _ in triples(x)] == ["mention"]
    assert x.learned == {f"msg:{body['d']['id']}": f"discord:{body['d']['author']['id']}"}


def test_discord_other_dispatches_are_ignored() -> None:
    assert run("discord", {"op": 0, "t": "GUILD_CREATE", "d": {}}).ignored


# --- GitHub ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "kind_of_parent"),
    [
        ("issue_comment", "issue"),
        ("pull_request_review_comment", "pull_request"),
        ("discussion_comment", "discussion"),
    ],
)
def test_github_comment_answers_the_parent_author(payload, event: str, kind_of_parent: str) -> None:
    body = payload(f"github/{event}.created.json")
    assert run("github", body, event).drafts == []  # Codertocat commenting on their own
    body["comment"]["user"]["login"] = "Octo-Cat"
    body["comment"]["body"] = "Thanks @Codertocat and @hubot, see @octo-cat"
    body["comment"].pop("in_reply_to_id", None)
    x = run("github", body, event)
    assert triples(x) == [
        ("comment", "github:octo-cat", "github:codertocat"),
        ("mention", "github:octo-cat", "github:hubot"),
    ]
    assert (
        x.drafts[0].thread_id == f"github:Codertocat/Hello-World#{body[kind_of_parent]['number']}"
    )


def test_github_review_reply_is_resolved_from_the_directory(payload) -> None:
    body = payload("github/pull_request_review_comment.created.json")
    body["comment"]["in_reply_to_id"] = 99
    x = run("github", body, "pull_request_review_comment")
    assert triples(x) == [
        (
            "reply",
            "github:codertocat",
            "?comment:Codertocat/Hello-World:pull_request_review_comment:99",
        )
    ]


def test_github_edits_and_deletions_do_not_count(payload) -> None:
    for f in (
        "issue_comment.edited.json",
        "issue_comment.deleted.json",
        "discussion_comment.edited.json",
    ):
        x = run("github", payload(f"github/{f}"), f.split(".")[0])
        assert x.drafts == [] and x.ignored


# --- Phone and generic ----------------------------------------------------------------------


def test_phone_calls_and_sms() -> None:
    x = run(
        "phone",
        {
            "records": [
                {
                    "type": "call",
                    "id": "c1",
                    "from": "+4511",
                    "to": "+4522",
                    "started_at": "2026-03-01T09:00:00+01:00",
                    "duration_s": 62,
                    "status": "answered",
                },
                {
                    "type": "call",
                    "id": "c2",
                    "from": "+4522",
                    "to": "+4511",
                    "started_at": "2026-03-01T10:00:00+01:00",
                    "duration_s": 40,
                    "status": "missed",
                },
                {
                    "type": "sms",
                    "id": "s1",
                    "from": "+4511",
                    "to": "+4522",
                    "sent_at": "2026-03-01T11:00:00+01:00",
                    "text": "on my way",
                },
            ]
        },
    )
    assert [(d.kind, d.duration_s) for d in x.drafts] == [
        ("call", 62),
        ("call", 0.0),
        ("message", None),
    ]
    assert x.drafts[0].actor == "phone:+4511"


def test_generic_accepts_one_or_many_canonical_interactions() -> None:
    one = {
        "source": "generic",
        "event_id": "e1",
        "kind": "reply",
        "actor": "a",
        "target": "b",
        "occurred_at": "2026-03-01T09:00:00+00:00",
    }
    assert len(run("generic", one).drafts) == 1
    assert len(run("generic", [one, {**one, "event_id": "e2"}]).drafts) == 2


# --- every adapter: hostile input is a validation error, never a crash ----------------------


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b"{}",
        b'"x"',
        b"\xff\xfe",
        b"[" * 5000 + b"]" * 5000,
        b'{"a": "' + b"x" * 500_000 + b'"}',
    ],
)
def test_bad_payloads_are_validation_errors(source: str, body: bytes) -> None:
    spec = SOURCES[source]
    try:
        parsed = spec.payload.validate_json(body)
    except ValidationError:
        return
    # a few shapes are valid-but-empty (an empty list of statuses, say): they extract nothing
    x = spec.extract(parsed, Meta(delivery_id="d", received_at=NOW, event="issue_comment"))
    assert x.drafts == []
