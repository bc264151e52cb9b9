"""Redis client and the key layout (every key carries the namespace)."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.settings import Settings


def new_redis(settings: Settings) -> aioredis.Redis:
    """A client that survives a Redis restart: a pooled connection the server closed fails
    its next command, which is then retried (backing off) on a fresh connection. Every
    command we send is safe to repeat (idempotent writes and Lua scripts; counters are
    operational figures)."""
    return aioredis.Redis.from_url(
        settings.redis.url,
        decode_responses=False,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=5),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=15,
    )


@dataclass(frozen=True)
class Keys:
    """Every Redis key the services use, in one place."""

    settings: Settings
    _prefix: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # every key starts the same way: built once (a key is built per event on hot paths)
        object.__setattr__(self, "_prefix", self.settings.prefixed("rc", sep=":"))

    def _k(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    def feed(self, person_id: str) -> str:
        """ZSET item_id -> suggested_at (epoch ms): the feed's order."""
        return self._k("feed", person_id)

    def feed_items(self, person_id: str) -> str:
        """HASH item_id -> item JSON. Every person key ends with the id, after a fixed word
        that no other key family shares, so that no id can reach another key (it was
        ``feed:<id>:items``: the id ``alice:items`` named alice's items)."""
        return self._k("feeditems", person_id)

    def feed_events(self, person_id: str) -> str:
        """Pub/sub channel: new items of this person's feed (for the SSE stream)."""
        return self._k("feedevents", person_id)

    def delivery_decision(self, pair_key: str) -> str:
        """STRING: the notifier's decision about the pair's latest suggestion (deliver, hold
        or drop, every gate with its value: issue 39), for operators; expires."""
        return self._k("deliverydecision", pair_key)

    def delivery_decisions_of(self, person_id: str) -> str:
        """SET of the pair keys whose delivery record names this person (forgetting)."""
        return self._k("deliverydecisions", person_id)

    def about(self, person_id: str) -> str:
        """SET of "owner|item_id" of items in other people's feeds that name this person."""
        return self._k("about", person_id)

    def sent(self, person_id: str) -> str:
        """Suggestions delivered to this person, by ISO week (a hash holding the current
        week only; the weekly cap). One key per person: forgetting finds it without a scan."""
        return self._k("sent", person_id)

    @property
    def prefs(self) -> str:
        """HASH person -> preferences JSON."""
        return self._k("prefs")

    @property
    def held(self) -> str:
        """ZSET suggestion JSON -> release time (epoch s): held deliveries of versions before
        holds were kept per partition (moved to `held_in` by the notifier)."""
        return self._k("held")

    def held_in(self, partition: int) -> str:
        """ZSET suggestion JSON -> release time (epoch s): the deliveries held for later of
        one ``meetup.suggestions`` partition (released by the notifier that owns it; a view
        of ``notifications.held``)."""
        return self._k("held", str(partition))

    def token(self, token_hash: str) -> str:
        return self._k("token", token_hash)

    def signin(self, link_hash: str) -> str:
        """A one-time sign-in link (sha256 of its token) -> person id, expiring."""
        return self._k("signin", link_hash)

    def session(self, session_hash: str) -> str:
        """A web session (sha256 of its cookie) -> {person, csrf}, expiring."""
        return self._k("session", session_hash)

    def sessions_of(self, person_id: str) -> str:
        """SET of a person's session hashes (sign-out everywhere, forgetting)."""
        return self._k("sessions", person_id)

    def mail_sent(self, message_id: str) -> str:
        """Marker that the email with this Message-ID reached the SMTP server."""
        return self._k("mailsent", message_id)

    def identities_of(self, person_id: str) -> str:
        """SET of the source-qualified handles linked to a person (for deletion)."""
        return self._k("identities", person_id)

    @property
    def linked(self) -> str:
        """HASH source-qualified handle -> the person who linked it (a chat button's
        presser, a link's owner)."""
        return self._k("linked")

    def chat_sent(self, platform: str, person_id: str, item_id: str) -> str:
        """The chat message of a person's item (JSON: where it is, to update it after an
        answer): set once it is posted, so a redelivered job posts nothing again."""
        return self._k("chatsent", platform, person_id, item_id)

    def answering(self, item_id: str) -> str:
        """A lock held while one answer to an item is recorded, whoever gives it: a pair's
        or a group's people answer their copies of one item one at a time, so the last yes
        sees the others and announces the meetup once."""
        return self._k("answering", item_id)

    def link_code(self, person_id: str) -> str:
        """HASH of the one pending link code of a person: its hash, the handle, tries."""
        return self._k("linkcode", person_id)

    def link_codes_sent(self, person_id: str) -> str:
        """Codes sent to a person's accounts this hour (a counter that expires)."""
        return self._k("linkcodes", person_id)

    def tokens_of(self, person_id: str) -> str:
        return self._k("tokens", person_id)

    @property
    def forgotten(self) -> str:
        """SET of sha256(person id) of people who asked to be forgotten."""
        return self._k("forgotten")

    @property
    def forgotten_names(self) -> str:
        """SET of hashes of every form a forgotten person's id and handles take in raw
        payloads (the console withholds dead letters naming any)."""
        return self._k("forgotten_names")

    def suggestion_seen(self, suggestion_id: str) -> str:
        """Marker that a suggestion was delivered (idempotence, and the suggestions count)."""
        return self._k("suggestion", suggestion_id)

    def delivery(self, source: str, delivery_id: str) -> str:
        """A webhook delivery seen within the replay window."""
        return self._k("delivery", source, delivery_id)

    def rate_limit(self, source: str) -> str:
        return self._k("ratelimit", source)

    def event_seen(self, source: str, event_id: str) -> str:
        """A canonical event id produced within the dedupe window."""
        return self._k("event", source, event_id)

    def members(self, source: str, conversation: str, *, listed: bool = False) -> str:
        """SET of the handles in a group conversation (``members:<team>:<channel>``): as
        learnt from its payloads, or (``listed``) as the platform's API listed them."""
        return self._k("members_listed" if listed else "members", source, conversation)

    def members_pattern(self) -> str:
        """Every conversation's member sets (forgetting a person scans them)."""
        return self._k("members*")

    def directory(self, source: str) -> str:
        """HASH platform reference (``account:host:id``, ``thing:t1_x``...) -> handle."""
        return self._k("directory", source)

    @property
    def producers(self) -> str:
        """HASH sha256(producer token) -> the producer (id, name, scope, expiry)."""
        return self._k("producers")

    @property
    def producer_ids(self) -> str:
        """HASH producer id -> sha256 of its token (to revoke by id)."""
        return self._k("producer_ids")

    @property
    def model(self) -> str:
        """The matcher's active tie-strength model: version and answers it learnt from."""
        return self._k("model")

    def labels(self, outcome: str) -> str:
        """HASH explanation signal -> how many suggestions with it got ``outcome``."""
        return self._k("labels", outcome)

    def rate(self, second: int) -> str:
        """HASH source -> interactions accepted in that epoch second (the console's chart)."""
        return self._k("rate", str(second))

    @property
    def stats(self) -> str:
        """HASH of counters: suggestions_delivered, feed_items, transaction_aborts (the
        matcher's transactions that failed to commit, counted as its worker stops)."""
        return self._k("stats")

    @property
    def pairs_tracked(self) -> str:
        """HASH partition -> pairs tracked in that matcher partition."""
        return self._k("stats", "pairs_tracked")

    @property
    def matcher_counts(self) -> str:
        """HASH "<counter>:<partition>" -> the matcher's funnel counter of that partition
        (meaningful_interactions, candidate_pairs, interactions_processed,
        suggestions_emitted): absolute values kept in the matcher's table with its pair
        states, so that a redelivered record is never counted twice."""
        return self._k("stats", "matcher")

    @property
    def pairs_pending(self) -> str:
        """HASH partition -> pairs with events buffered for lateness in that partition."""
        return self._k("stats", "pairs_pending")

    def connector(self, source: str, account: str) -> str:
        """HASH of a connector's positions in its platform's stream (a Jetstream cursor, a
        Mastodon id per stream, a Discord session and sequence, a Reddit fullname per
        listing), written only after ingest answered. Redis keeps it with AOF."""
        return self._k("connector", source, account)

    @property
    def connectors(self) -> str:
        """HASH "<source>:<account>" -> the connector's status JSON (the console's table)."""
        return self._k("connectors")

    def connector_rejected(self, source: str, account: str) -> str:
        """LIST of payloads ingest refused (422/413) with the reason: newest first, capped."""
        return self._k("connector_rejected", source, account)

    @property
    def names(self) -> str:
        """HASH person id -> the display name of their profile (``PUT /v1/people/{id}``):
        what the page, emails and invites call them. A copy of ``people.profiles``."""
        return self._k("names")

    @property
    def platform_names(self) -> str:
        """HASH handle -> the name its platform shows for it (Mastodon's display_name,
        Discord's global_name), written by the normalizer: how the page, emails and invites
        name someone without a profile here. A profile's name comes first (`names`)."""
        return self._k("platform_names")

    @property
    def automated_flagged(self) -> str:
        """SET of source-qualified handles the platforms' payloads flagged as bots (Discord's
        and Mastodon's ``bot``, the Slack installation's bot user), kept 30 days."""
        return self._k("automated_flagged")

    @property
    def automated(self) -> str:
        """SET of source-qualified handles operators marked as automated accounts
        (``/v1/automated-accounts``), beside the built-in ones (services/sources/automated.py)."""
        return self._k("automated")
