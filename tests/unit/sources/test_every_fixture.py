"""Every payload in ``../shared/fixtures/payloads``, checked for what it means, not only that
it does not crash. The expected interactions were worked out by hand from each payload's
fields (who wrote it, to whom, in answer to what); a fixture added to the folder fails this
test until its meaning is written here.

Fixtures that are not a delivery by themselves (a bare Bluesky record, a REST message, a
Slack inner event) are wrapped in the envelope the platform delivers them in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.sources.conftest import FIXTURES
from tests.unit.sources.test_adapters import run, triples

Expected = list[tuple[str, str, str]] | str  # the interactions, or why there are none

EXPECTED: dict[str, Expected] = {
    # Bluesky (Jetstream commits)
    "bluesky/commit.like.create.json": [
        (
            "like",
            "bluesky:did:plc:wq4aajammjtxdomz3e23667t",
            "bluesky:did:plc:r2zybk6op3ymzpz6jhqpkoy5",
        ),
    ],
    "bluesky/commit.post.create.reply.json": [
        (
            "reply",
            "bluesky:did:plc:o2rolxey6s5k7d4lxcz3inl4",
            "bluesky:did:plc:i5y2f3gtpjxs3qg6fwgb6jb4",
        ),
    ],
    "bluesky/commit.post.create.reply.self_thread_1.json": "no interaction between two people",
    "bluesky/commit.post.create.reply.with_external_embed.json": [
        (
            "reply",
            "bluesky:did:plc:ajg5c7huhiibhwandhdscpdq",
            "bluesky:did:plc:ippiobxpsddnkzd6ms2dbpcy",
        ),
    ],
    "bluesky/commit.post.create.root_with_link_facet.json": "no interaction between two people",
    "bluesky/commit.post.delete.json": "delete of app.bsky.feed.post",
    "bluesky/commit.repost.create.json": [
        (
            "share",
            "bluesky:did:plc:uz2xaaib233fhkdlg2mi3e66",
            "bluesky:did:plc:pzrujnasfa4wgmel5737kfya",
        ),
    ],
    # a bare record from the docs, in a commit by did:plc:author
    "bluesky/record.post.with_mention_facet.docs.json": [
        ("mention", "bluesky:did:plc:author", "bluesky:did:plc:ewvi7nxzyoun6zhxrhs64oiz"),
    ],
    # Discord
    "discord/docs.gateway_event_payload.envelope.json": "GATEWAY_EVENT_NAME",
    "discord/docs.message.example.json": "no interaction between two people",  # no one named
    "discord/gateway.MESSAGE_CREATE.guild_message.json": "no interaction between two people",
    # both replies answer the bot "Reacton" (bot: true)
    "discord/gateway.MESSAGE_CREATE.reply.json": "no interaction between two people",
    "discord/gateway.MESSAGE_REACTION_ADD.json": [
        ("like", "discord:123456789012345678", "?msg:679003565884440580"),  # author "0": unknown
    ],
    "discord/rest.message.reply.json": "no interaction between two people",
    # GitHub: each comment is Codertocat's on Codertocat's own issue, PR or discussion
    "github/discussion_comment.created.json": "no interaction between two people",
    "github/discussion_comment.edited.json": "discussion_comment.edited",
    "github/issue_comment.created.json": "no interaction between two people",
    "github/issue_comment.deleted.json": "issue_comment.deleted",
    "github/issue_comment.edited.json": "issue_comment.edited",
    "github/pull_request_review_comment.created.json": "no interaction between two people",
    "github/pull_request_review_comment.deleted.json": "pull_request_review_comment.deleted",
    # Mastodon
    "mastodon/context.reply_thread.json": "no interaction between two people",  # halcy to self
    "mastodon/grouped_notifications.favourite.json": [
        (
            "like",
            "mastodon:@mastodonpy_test_2@localhost:3000",
            "mastodon:@mastodonpy_test@localhost:3000",
        ),
        ("like", "mastodon:@admin@localhost:3000", "mastodon:@mastodonpy_test@localhost:3000"),
    ],
    "mastodon/notification.favourite.docs_abbreviated.json": [
        ("like", "mastodon:@haskal@cybre.space", "mastodon:@trwnh"),  # no url: host unknown
    ],
    "mastodon/notification.mention.json": [
        ("mention", "mastodon:@admin@localhost:3000", "mastodon:@mastodonpy_test@localhost:3000"),
    ],
    "mastodon/status.direct_message.json": [
        ("message", "mastodon:@mastodonpy_test_2@localhost:3000", "mastodon:@admin@localhost:3000"),
    ],
    "mastodon/status.reblog.json": "no interaction between two people",  # a boost of one's own
    "mastodon/status.reply_with_mention.json": [
        ("reply", "mastodon:@admin@localhost:3000", "mastodon:@mastodonpy_test_2@localhost:3000"),
    ],
    # Reddit
    "reddit/comment.info_single.json": [("reply", "reddit:u/bboe", "?thing:t1_cklfmye")],
    "reddit/comment.reply_create_response.json": [
        ("reply", "reddit:u/<username>", "?thing:t1_d1616q2"),
    ],
    "reddit/inbox.comment_reply.json": [("reply", "reddit:u/lil_spazbot", "reddit:u/<username>")],
    "reddit/inbox.post_reply.json": [
        ("comment", "reddit:u/command3r_isa", "reddit:u/<username>"),
    ],
    "reddit/private_message.single.json": "no interaction between two people",  # to modmail
    "reddit/thread.comment_with_nested_replies_and_more.json": [
        ("comment", "reddit:u/sporkicide", "reddit:u/kemitche"),
        ("reply", "reddit:u/swineflupandemic", "reddit:u/sporkicide"),
        ("reply", "reddit:u/v2blast", "reddit:u/sporkicide"),
        ("reply", "reddit:u/sporkicide", "reddit:u/v2blast"),
    ],
    "reddit/thread.submission_with_comment_and_reply.json": [
        ("comment", "reddit:u/paneer_burrito", "reddit:u/bboe"),
        ("reply", "reddit:u/bboe", "reddit:u/paneer_burrito"),
    ],
    # Slack
    # the app's own bot user (U0LAN0Z89, in authorizations) is the one mentioned
    "slack/event.app_mention.inner.json": "no interaction between two people",
    "slack/event.message_replied.inner.json": "message/message_replied",
    "slack/event_callback.message.channel.json": "no interaction between two people",
    "slack/event_callback.message.im.json": "a direct message with the app",
    # W222 answers in W222's own thread
    "slack/event_callback.message.thread_reply_channel.json": "no interaction between two people",
    "slack/event_callback.reaction_added.im_message.json": [
        ("like", "slack:T0JFD6M53:U27FFLNF4", "slack:T0JFD6M53:U299ATJ2X"),
    ],
    "slack/url_verification.json": "url_verification",
}


def _delivery(name: str, body: Any) -> Any:
    """The fixture as its platform delivers it."""
    if name == "bluesky/record.post.with_mention_facet.docs.json":
        return {
            "did": "did:plc:author",
            "time_us": 1691456621157302,
            "kind": "commit",
            "commit": {
                "rev": "r1",
                "operation": "create",
                "collection": "app.bsky.feed.post",
                "rkey": "k1",
                "record": body,
            },
        }
    if name in ("discord/docs.message.example.json", "discord/rest.message.reply.json"):
        return {"op": 0, "t": "MESSAGE_CREATE", "s": 1, "d": body}
    if name == "slack/event.app_mention.inner.json":
        return {
            "type": "event_callback",
            "team_id": "T0LAN",
            "event": body,
            "authorizations": [{"user_id": "U0LAN0Z89", "is_bot": True}],
        }
    if name == "slack/event.message_replied.inner.json":
        return {"type": "event_callback", "team_id": "T123", "event": body}
    return body


def test_every_fixture_has_its_meaning_written_down(payload) -> None:
    payload  # noqa: B018 - fails in CI, skips elsewhere, when the fixtures are not there
    found = {str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*.json")}
    assert found == set(EXPECTED), (
        f"new fixtures: {sorted(found - set(EXPECTED))}; gone: {sorted(set(EXPECTED) - found)}"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_means_what_it_says(payload, name: str) -> None:
    event = name.split("/")[1].split(".")[0] if name.startswith("github/") else None
    x = run(name.split("/")[0], _delivery(name, payload(name)), event)
    expected = EXPECTED[name]
    if isinstance(expected, str):
        assert x.drafts == [] and x.ignored == expected
    else:
        assert sorted(triples(x)) == sorted(expected)
