"""Each platform's rules for what an event means (issue 19), one test per rule, from a real
payload of ``../shared/fixtures/payloads`` or the variant the platform documents (the
documentation page is named beside each). Expected results are worked out by hand from the
payload's fields."""

from __future__ import annotations

from typing import Any

from tests.unit.sources.test_adapters import run, triples

# --- Bluesky --------------------------------------------------------------------------------

DID_A = "did:plc:o2rolxey6s5k7d4lxcz3inl4"
DID_B = "did:plc:i5y2f3gtpjxs3qg6fwgb6jb4"


def _commit(collection: str, record: dict[str, Any], operation: str = "create") -> dict[str, Any]:
    return {
        "did": DID_A,
        "time_us": 1783175888130414,
        "kind": "commit",
        "commit": {
            "rev": "3mptbypnxeq2i",
            "operation": operation,
            "collection": collection,
            "rkey": "3mptbyp7lu223",
            "record": record,
            "cid": "bafyrei",
        },
    }


def test_bluesky_records_not_read_are_acknowledged_not_refused() -> None:
    # app.bsky.graph.follow / block / listitem name their subject by a DID string, not a
    # strong ref (lexicons app.bsky.graph.*): valid, and not an exchange
    for collection in ("app.bsky.graph.follow", "app.bsky.graph.block", "app.bsky.graph.listitem"):
        record = {"$type": collection, "subject": DID_B, "createdAt": "2026-07-04T14:38:07.112Z"}
        x = run("bluesky", _commit(collection, record))
        assert x.drafts == [] and x.ignored == f"collection {collection} (not read)"
    profile = {"$type": "app.bsky.actor.profile", "displayName": "Ann", "avatar": {"ref": 1}}
    assert run("bluesky", _commit("app.bsky.actor.profile", profile, "update")).ignored


def test_bluesky_post_with_a_naive_time_is_read_as_utc(payload) -> None:
    body = payload("bluesky/commit.post.create.reply.json")
    body["commit"]["record"]["createdAt"] = "2026-07-04T14:38:07"  # no offset, as some apps write
    (d,) = run("bluesky", body).drafts
    assert d.occurred_at.isoformat() == "2026-07-04T14:38:07+00:00"
    body["commit"]["record"]["createdAt"] = "yesterday"  # not a time at all: the event's time_us
    (d,) = run("bluesky", body).drafts
    assert d.occurred_at.timestamp() == 1783175888.130414


def test_bluesky_quote_post_is_a_share_of_the_quoted_author(payload) -> None:
    # app.bsky.embed.record / app.bsky.embed.recordWithMedia (lexicons app.bsky.embed.*)
    body = payload("bluesky/commit.post.create.root_with_link_facet.json")
    quoted = f"at://{DID_B}/app.bsky.feed.post/3lquoted"
    body["commit"]["record"]["embed"] = {
        "$type": "app.bsky.embed.record",
        "record": {"uri": quoted, "cid": "bafyreiquoted"},
    }
    x = run("bluesky", body)
    assert triples(x) == [("share", f"bluesky:{body['did']}", f"bluesky:{DID_B}")]
    assert x.drafts[0].in_reply_to == quoted
    body["commit"]["record"]["embed"] = {
        "$type": "app.bsky.embed.recordWithMedia",
        "record": {"record": {"uri": quoted, "cid": "bafyreiquoted"}},
        "media": {"$type": "app.bsky.embed.images", "images": []},
    }
    assert triples(run("bluesky", body))[0][0] == "share"


# --- Discord --------------------------------------------------------------------------------
# https://discord.com/developers/docs/resources/message (message types, message reference
# types, flags, webhook_id) and /events/gateway-events#message-reaction-add


def test_discord_forward_is_a_share_of_the_original_author(payload) -> None:
    body = payload("discord/gateway.MESSAGE_CREATE.guild_message.json")
    body["d"]["message_reference"] = {
        "type": 1,
        "message_id": "775214933398782002",
        "channel_id": "563557393640849437",
    }
    body["d"]["message_snapshots"] = [{"message": {"content": "the original", "type": 0}}]
    body["d"]["content"] = ""
    x = run("discord", body)
    # the snapshot names no author: the directory resolves the original message's author
    assert triples(x) == [("share", "discord:562268917771413264", "?msg:775214933398782002")]


def test_discord_reply_needs_the_reply_type(payload) -> None:
    body = payload("discord/gateway.MESSAGE_CREATE.reply.json")
    body["d"]["referenced_message"]["author"]["bot"] = False
    assert triples(run("discord", body))[0][0] == "reply"
    body["d"]["type"] = 0  # a DEFAULT message that carries a reference (e.g. a crosspost's)
    assert [k for k, _, _ in triples(run("discord", body))] != ["reply"]


def test_discord_reply_to_a_deleted_message_is_skipped(payload) -> None:
    # "If the field exists but is null, the referenced message was deleted" (message object)
    body = payload("discord/gateway.MESSAGE_CREATE.reply.json")
    body["d"]["referenced_message"] = None
    x = run("discord", body)
    assert not [k for k, _, _ in triples(x) if k == "reply"]
    del body["d"]["referenced_message"]  # absent: not sent, so the directory is asked
    assert triples(run("discord", body))[0][2] == "?msg:775214933398782002"


def test_discord_system_app_webhook_and_crosspost_messages_are_not_people(payload) -> None:
    base = payload("discord/gateway.MESSAGE_CREATE.guild_message.json")
    base["d"]["mentions"] = [{"id": "42", "username": "someone"}]
    assert triples(run("discord", base)) == [
        ("mention", "discord:562268917771413264", "discord:42")
    ]
    for change, why in [
        ({"type": 6}, "message type 6"),  # CHANNEL_PINNED_MESSAGE
        ({"type": 21}, "message type 21"),  # THREAD_STARTER_MESSAGE
        ({"type": 20}, "message type 20"),  # CHAT_INPUT_COMMAND (an app's answer)
        ({"webhook_id": "123"}, "webhook"),
        ({"flags": 2}, "crossposted"),  # IS_CROSSPOST
        ({"author": {**base["d"]["author"], "system": True}}, "Discord itself"),
    ]:
        x = run("discord", {**base, "d": {**base["d"], **change}})
        assert x.drafts == [] and why in (x.ignored or ""), change


def test_discord_mentioning_a_bot_is_not_an_exchange_and_a_bots_reaction_is_flagged(
    payload,
) -> None:
    body = payload("discord/gateway.MESSAGE_CREATE.guild_message.json")
    body["d"]["mentions"] = [
        {"id": "42", "username": "helper", "bot": True},
        {"id": "43", "username": "person"},
    ]
    assert [t for _, _, t in triples(run("discord", body))] == ["discord:43"]
    reaction = payload("discord/gateway.MESSAGE_REACTION_ADD.json")
    reaction["d"]["message_author_id"] = "555"
    assert run("discord", reaction).drafts[0].actor_bot is False
    reaction["d"]["member"]["user"]["bot"] = True
    assert run("discord", reaction).drafts[0].actor_bot is True


# --- Mastodon -------------------------------------------------------------------------------
# https://docs.joinmastodon.org/methods/grouped_notifications/ (partial_accounts),
# /entities/Notification (types), /entities/Quote, /entities/Account (id: local to the server)


def test_mastodon_grouped_notifications_with_partial_accounts(payload) -> None:
    body = payload("mastodon/grouped_notifications.favourite.json")
    # requested with expand_accounts=partial_avatars: one sampled account arrives partial
    partial = body["accounts"].pop(0)
    body["partial_accounts"] = [
        {k: partial[k] for k in ("id", "acct", "url", "avatar", "avatar_static", "locked", "bot")}
    ]
    likes = sorted(triples(run("mastodon", body)))
    assert likes == [
        ("like", "mastodon:@admin@localhost:3000", "mastodon:@mastodonpy_test@localhost:3000"),
        (
            "like",
            "mastodon:@mastodonpy_test_2@localhost:3000",
            "mastodon:@mastodonpy_test@localhost:3000",
        ),
    ]


def test_mastodon_notifications_without_an_account_are_acknowledged() -> None:
    severed = {
        "id": "99",
        "type": "severed_relationships",
        "created_at": "2026-08-01T00:00:00Z",
        "event": {
            "id": "1",
            "type": "domain_block",
            "purged": False,
            "target_name": "bad.example",
            "created_at": "2026-08-01T00:00:00Z",
        },
    }
    x = run("mastodon", severed)
    assert x.drafts == [] and x.ignored == "severed_relationships"  # acknowledged, not stored


def test_mastodon_quote_post_is_a_share_of_the_quoted_author(payload) -> None:
    quoting = payload("mastodon/status.reply_with_mention.json")
    quoted = payload("mastodon/status.direct_message.json")
    quoted["visibility"] = "public"
    quoting["in_reply_to_id"] = quoting["in_reply_to_account_id"] = None
    quoting["mentions"] = []
    quoting["quote"] = {"state": "accepted", "quoted_status": quoted}
    x = run("mastodon", quoting)
    author = f"mastodon:@{quoted['account']['acct']}@localhost:3000"
    assert ("share", "mastodon:@admin@localhost:3000", author) in triples(x)
    quoting["quote"]["state"] = "revoked"  # the quoted author withdrew it: no share
    assert not any(k == "share" for k, _, _ in triples(run("mastodon", quoting)))


def test_mastodon_account_ids_belong_to_the_server_that_answered(payload) -> None:
    from services.sources import SOURCES, Meta
    from tests.unit.sources.test_adapters import NOW

    body = payload("mastodon/status.reply_with_mention.json")
    body["mentions"] = []  # the replied-to account is known only by its id
    spec = SOURCES["mastodon"]

    def extract(origin: str | None) -> Any:
        meta = Meta(delivery_id="d", received_at=NOW, origin=origin)
        return spec.extract(spec.payload.validate_python(body), meta)

    # the author is local (acct without a host): its server answered
    x = extract(None)
    assert x.drafts[0].target_ref == "account:localhost:3000:117020566092212359"
    assert x.learned == {
        "account:localhost:3000:117020565693913441": "mastodon:@admin@localhost:3000"
    }
    # fetched through another server: ids are that server's, and so are the keys
    body["account"]["acct"] = "admin@localhost:3000"
    x = extract("other.example")
    assert x.drafts[0].target_ref == "account:other.example:117020566092212359"
    assert set(x.learned) == {"account:other.example:117020565693913441"}
    # no local account and no origin: no key could be trusted, so none is learned or used
    x = extract(None)
    assert x.learned == {} and x.drafts[0].target_ref == "account:?"


# --- Reddit ---------------------------------------------------------------------------------
# https://www.reddit.com/dev/api#GET_message_inbox (types comment_reply, post_reply,
# username_mention), reddit.com/wiki/commenting (``u/name`` notifies the user)


def test_reddit_username_mention_in_the_inbox_is_a_mention(payload) -> None:
    body = payload("reddit/inbox.comment_reply.json")
    body["data"]["type"] = "username_mention"
    body["data"]["subject"] = "username mention"
    assert triples(run("reddit", body)) == [
        ("mention", "reddit:u/lil_spazbot", "reddit:u/<username>")
    ]


def test_reddit_u_name_in_text_is_a_mention(payload) -> None:
    body = payload("reddit/comment.info_single.json")
    body["data"]["children"][0]["data"]["body"] = "ask u/Kemitche or /u/spez_ about it, not bboe"
    x = run("reddit", body)
    assert sorted(triples(x)) == [
        ("mention", "reddit:u/bboe", "reddit:u/kemitche"),
        ("mention", "reddit:u/bboe", "reddit:u/spez_"),
        ("reply", "reddit:u/bboe", "?thing:t1_cklfmye"),
    ]


def test_reddit_reply_under_a_deleted_parent_is_skipped_not_dead_lettered(payload) -> None:
    from services.normalizer.normalize import to_interactions
    from services.sources.base import GONE

    thread = payload("reddit/thread.submission_with_comment_and_reply.json")
    top = thread[1]["data"]["children"][0]["data"]
    top["author"] = "[deleted]"  # the comment was deleted; its reply stays
    x = run("reddit", thread)
    assert x.learned[f"thing:{top['name']}"] == GONE
    assert all(t != GONE for _, _, t in triples(x))  # the reply to it made no draft
    # the same reply arriving alone: its parent resolves from the directory to GONE
    reply = top["replies"]["data"]["children"][0]
    alone = run("reddit", reply)
    out = to_interactions("reddit", alone, {f"thing:{top['name']}": GONE}, lambda h: None)
    assert out.interactions == [] and out.unresolved == [] and out.not_to_a_person == 1


# --- Slack ----------------------------------------------------------------------------------
SLACK_THREAD = "slack/event_callback.message.thread_reply_channel.json"
# https://api.slack.com/events/message/thread_broadcast (``root``),
# https://api.slack.com/changelog/2020-09-15-events-api-truncate-authed-users (authorizations)


def test_slack_thread_broadcast_answers_the_roots_author(payload) -> None:
    body = payload("slack/event_callback.message.thread_reply_channel.json")
    e = body["event"]
    e.pop("parent_user_id")
    e["subtype"] = "thread_broadcast"
    e["root"] = {"user": "W333", "ts": e["thread_ts"], "text": "the question", "type": "message"}
    assert triples(run("slack", body)) == [("reply", "slack:T111:W222", "slack:T111:W333")]


def test_slack_shared_message_is_a_share_of_its_author(payload) -> None:
    # https://api.slack.com/reference/messaging/attachments: a shared message is an
    # attachment with is_share, author_id, channel_id and ts
    body = payload("slack/event_callback.message.channel.json")
    e = body["event"]
    e["attachments"] = [
        {
            "is_share": True,
            "author_id": "U0SHARED",
            "channel_id": "C0ORIG",
            "ts": "1726133600.000100",
            "text": "the original words",
        }
    ]
    team = body["team_id"]
    (d,) = run("slack", body).drafts
    assert (d.kind, d.target) == ("share", f"slack:{team}:U0SHARED")
    assert d.in_reply_to == f"slack:{team}:C0ORIG:1726133600.000100"


def test_slack_the_apps_own_bot_user_is_not_a_person(payload) -> None:
    body = payload("slack/event_callback.message.thread_reply_channel.json")
    bot = body["authorizations"][0]["user_id"]  # W111, is_bot: the installation's bot user
    body["event"]["parent_user_id"] = "W333"
    body["event"]["text"] = f"<@{bot}> and <@W444>, see this"
    # mentioning the app is not an exchange; mentioning W444 is
    assert sorted(triples(run("slack", body))) == [
        ("mention", "slack:T111:W222", "slack:T111:W444"),
        ("reply", "slack:T111:W222", "slack:T111:W333"),
    ]
    body["event"]["user"] = bot  # the app's own message
    x = run("slack", body)
    assert x.drafts == [] and x.ignored == "a message by the app's own bot user"


# --- GitHub ---------------------------------------------------------------------------------
# https://docs.github.com/en/rest/issues/comments (performed_via_github_app), user ``type``


def test_github_apps_are_flagged_and_their_threads_are_not_people(payload) -> None:
    body = payload("github/issue_comment.created.json")
    body["issue"]["user"]["login"] = "Octocat"  # someone else's issue: a comment to its author
    (d,) = run("github", body, "issue_comment").drafts
    assert (d.kind, d.target, d.actor_bot) == ("comment", "github:octocat", False)
    body["comment"]["performed_via_github_app"] = {"id": 1, "slug": "triage-bot"}
    assert run("github", body, "issue_comment").drafts[0].actor_bot is True
    del body["comment"]["performed_via_github_app"]
    body["issue"]["user"] = {"login": "dependabot[bot]", "type": "Bot"}  # a bot's pull request
    assert run("github", body, "issue_comment").drafts == []


# --- every source ---------------------------------------------------------------------------


def test_known_automated_accounts() -> None:
    from services.sources.automated import is_automated

    assert is_automated("reddit:u/automoderator")
    assert is_automated("github:renovate[bot]") and not is_automated("github:talbot")
    assert is_automated("slack:T111:USLACKBOT")
    assert not is_automated("discord:42") and is_automated("discord:42", {"discord:42"})


def test_messages_to_automated_accounts_are_left_out_and_from_them_flagged() -> None:
    from services.normalizer.normalize import to_interactions
    from services.sources.base import Draft, Extraction
    from tests.unit.sources.test_adapters import NOW

    def draft(actor: str, target: str) -> Draft:
        return Draft(
            event_id=f"e/{actor}/{target}",
            kind="reply",
            actor=actor,
            target=target,
            occurred_at=NOW,
        )

    ex = Extraction(
        drafts=[
            draft("reddit:u/ann", "reddit:u/automoderator"),
            draft("reddit:u/helperbot", "reddit:u/ann"),
            draft("reddit:u/ann", "reddit:u/ben"),
        ]
    )

    def listed(h: str) -> bool:
        return h in {"reddit:u/automoderator", "reddit:u/helperbot"}

    out = to_interactions("reddit", ex, {}, lambda h: None, listed)
    assert [(i.actor, i.target, i.actor_bot) for i in out.interactions] == [
        ("reddit:u/helperbot", "reddit:u/ann", True),
        ("reddit:u/ann", "reddit:u/ben", False),
    ]
    assert out.not_to_a_person == 1


def test_one_case_rule_for_handles(payload) -> None:
    """Names people type are case-folded (Mastodon, Reddit, GitHub); ids a platform issues
    are kept as issued (Bluesky DIDs, Slack and Discord ids). Linking a handle as a person
    types it gives the handle the adapter writes."""
    from services.sources import SOURCES

    cases = [
        (
            "mastodon",
            "@MastodonPy_Test@LocalHost:3000",
            run("mastodon", payload("mastodon/notification.mention.json")).drafts[0].target,
        ),
        (
            "reddit",
            "u/BBoe",
            run("reddit", payload("reddit/comment.info_single.json")).drafts[0].actor,
        ),
        (
            "github",
            "@CoderTocat"[1:],
            run(
                "github", payload("github/issue_comment.created.json"), "issue_comment"
            ).learned.popitem()[1],
        ),
        (
            "bluesky",
            "did:plc:o2rolxey6s5k7d4lxcz3inl4",
            run("bluesky", payload("bluesky/commit.post.create.reply.json")).drafts[0].actor,
        ),
        (
            "slack",
            "T111:W222",
            # (a reply in its author's own thread: no draft, but the author is learned)
            next(iter(run("slack", payload(SLACK_THREAD)).learned.values())),
        ),
    ]
    for source, typed, written in cases:
        qualify = SOURCES[source].qualify
        assert qualify(typed) == written, (source, typed, written)
        assert qualify(written) == written  # a qualified handle stays as it is
