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
