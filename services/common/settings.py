"""Settings from the environment (pydantic-settings): one source of truth for every service.

Every variable starts with ``REALCONNECT_``; nested sections use ``__``, for example
``REALCONNECT_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9092`` or
``REALCONNECT_MATCHER__MIN_EXCHANGES_PER_DIRECTION=3``.
Build it once, in a service's wiring function, never at import time.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

_FROZEN = ConfigDict(frozen=True)


class KafkaSettings(BaseModel):
    model_config = _FROZEN

    bootstrap_servers: str = "127.0.0.1:9092"
    #: Partitions of every topic the stack creates; the unit of parallelism of matcher and notifier.
    partitions: int = Field(default=12, ge=1, le=1000)
    replication_factor: int = Field(default=1, ge=1)
    #: How long the raw topics (``interactions.raw.<source>``: the only ones that carry
    #: message text) keep a delivery: set on them when the stack creates or checks its topics
    raw_retention_hours: float = Field(default=24.0, gt=0)
    #: Producer batching: a few ms of linger trades a little latency for much larger batches.
    linger_ms: int = Field(default=5, ge=0)
    #: Interactions packed into one ``interactions`` record (an array of one partition's
    #: interactions; see services/common/records.py). 1 = one keyed record per interaction.
    interactions_per_record: int = Field(default=500, ge=1, le=5000)

    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    #: A worker that dies is noticed after this long and its partitions move on
    #: (faust's default, 60 s, stalls a partition for a minute after a crash).
    session_timeout_s: float = Field(default=10.0, ge=6, le=300)
    heartbeat_interval_s: float = Field(default=3.0, gt=0)
    #: A worker's input partition with records waiting and no commit for this long is
    #: resumed, and after twice this long the worker exits (70) to be restarted fresh; so
    #: does a worker holding no input partition while its group's input waits with no
    #: progress (services/common/worker.py: add_stall_watchdog, IdleWatch).
    stall_timeout_s: float = Field(default=120.0, ge=5)
    #: An HTTP request that writes to Kafka (ingest, the people and feed APIs) waits this long
    #: for the acknowledgement, then answers 503 with Retry-After. Without a deadline a broker
    #: that died while the client still takes it for the leader holds requests for minutes.
    produce_timeout_s: float = Field(default=10.0, gt=0, le=120)


class RedisSettings(BaseModel):
    model_config = _FROZEN

    url: str = "redis://127.0.0.1:6379/0"


#: secrets shorter than this are refused in prod
MIN_SECRET_BYTES = 32
#: well-known development values, refused in prod whatever their setting
_DEV_VALUES = frozenset({"dev-admin-token", "dev-webhook-key", "dev-producer-token", "changeme"})


class IngestSettings(BaseModel):
    model_config = _FROZEN

    host: str = "127.0.0.1"
    port: int = 8080
    #: uvicorn worker processes (each with its own Kafka producer and Redis pool)
    workers: int = Field(default=1, ge=1, le=64)
    #: linger of ingest's producer. A request waits for Kafka's ack before its 202, so
    #: lingering is pure latency: records batch anyway while a produce request is in flight
    #: (the idempotent producer keeps one in flight per broker). 0 measured 5,250-6,166
    #: single-event requests/s against 4,509-4,860 at 5 ms (64 connections).
    linger_ms: int = Field(default=0, ge=0)
    max_batch_events: int = Field(default=5000, ge=1)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    #: Body limit of the source webhooks (one platform delivery each).
    source_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: Signed timestamps older or newer than this are refused; also the replay window.
    signature_tolerance_s: int = Field(default=300, ge=1)
    #: A canonical event id seen within this many days is acknowledged, not produced again.
    event_dedupe_days: int = Field(default=7, ge=1)
    #: Trusted producers (POST /v1/interactions[:batch]): requests per second per producer
    #: token and ingest process, and the burst above it (a flood guard, not a quota)
    producer_rate_per_s: float = Field(default=20_000.0, gt=0)
    producer_burst: int = Field(default=40_000, ge=1)


class SourceSettings(BaseModel):
    """Per source: ``REALCONNECT_SOURCES__SLACK__SECRETS='["new","old"]'`` (two for rotation)."""

    model_config = _FROZEN

    secrets: list[SecretStr] = Field(default_factory=list, max_length=2)
    #: Token bucket: sustained deliveries per second and the burst allowed above it.
    rate_per_s: float = Field(default=500.0, gt=0)
    burst: int = Field(default=2000, ge=1)
    #: The platform's API, for what a payload does not name: Slack's bot token (scope
    #: ``mpim:read``) lists the members of a group DM (``conversations.members``). Unset:
    #: the members are those its messages showed so far (docs/sources.md).
    api_token: SecretStr | None = None
    #: The API's base URL, when it is not the platform's public one (GovSlack, a test server).
    api_url: Annotated[str, Field(pattern=r"^https?://[^\s]+/$", max_length=512)] | None = None


class MatcherSettings(BaseModel):
    """The decision's thresholds (see ``services/matcher/pairs.py`` and docs/matching.md)."""

    model_config = _FROZEN

    #: meaningful exchanges (weight >= 0.3) each way since the last suggestion
    min_exchanges_per_direction: int = Field(default=3, ge=1)
    #: distinct days with a meaningful exchange, within the window
    min_distinct_days: int = Field(default=2, ge=1)
    window_days: float = Field(default=60.0, gt=0)
    #: time-decayed meaningful score each way (1.0 ~ one fully meaningful recent exchange)
    min_decayed_per_direction: float = Field(default=1.0, ge=0)
    half_life_days: float = Field(default=21.0, gt=0)
    max_silence_days: float = Field(default=30.0, gt=0)
    cooldown_days: float = Field(default=30.0, ge=0)
    #: a suggestion the notifier could not deliver because a person had not opted in holds
    #: the pair back this long, not ``cooldown_days`` (outcome ``undelivered``)
    undelivered_retry_days: float = Field(default=1.0, ge=0)
    decline_cooldown_days: float = Field(default=180.0, ge=0)
    #: each extra source lowers the decayed bar by this fraction
    source_bonus: float = Field(default=0.25, ge=0)
    #: only the newest instant waits: an event is applied once something later has been seen
    #: (of its pair or partition), one that arrives after a later one at its own age
    #: (services/matcher/pairs.py); off, every event waits ``lateness_s`` and is applied in
    #: event-time order (exact whatever the arrival order within it, at about two thirds of
    #: the throughput: docs/benchmarks.md)
    apply_in_order: bool = True
    #: with ``apply_in_order`` off: events wait this long (event time) so that late arrivals
    #: are applied in order
    lateness_s: float = Field(default=3600.0, ge=0)
    #: a suggestion does not wait for the lateness: as soon as a pair's buffered events, in
    #: event-time order, qualify, they are applied up to the one that qualified (identical
    #: to waiting when events arrive in time order; services/matcher/pairs.py)
    suggest_early: bool = True
    #: how often buffered events are flushed by a tick, and after how many quiet
    #: (wall-clock) seconds a partition's buffers are flushed completely
    tick_interval_s: float = Field(default=1.0, gt=0)
    idle_flush_s: float = Field(default=5.0, gt=0)
    #: interactions records handled together: a batch closes at this many records or
    #: ``batch_wait_ms`` after its first (services/common/faust_direct.py); grouped by pair,
    #: each pair's state is read, decided on (the pure core once, over its events in arrival
    #: order) and written once per batch, and each batch is one Kafka transaction (about
    #: 20 ms here): the wait keeps a live trickle from paying one per record
    batch_records: int = Field(default=2000, ge=1, le=20_000)
    batch_wait_ms: int = Field(default=100, ge=1, le=1000)
    #: outputs (suggestions, dead letters, pair states) and input offsets committed in one
    #: Kafka transaction per batch; readers read ``read_committed`` (services/common/
    #: transactions.py). Off: at least once, a redelivered suggestion has the same id.
    exactly_once: bool = True
    #: partners kept in each person's circle (services/matcher/circles.py: space-saving, the
    #: 150 layer of the circles people keep); memory per person is bounded by it
    circle_size: int = Field(default=150, ge=1, le=10_000)
    #: keep each person's circle at all (the circle stage and person.activity); off: no
    #: suggestion carries ``around`` (make bench measures the stage's cost with it off)
    circles: bool = True
    #: group meetups (services/matcher/groups.py): 3 to 6 people who are each among the
    #: others' ``group_top`` closest, every tie at least ``group_min_weight`` of decayed
    #: meaningful exchange (about that many thoughtful messages in the last half-life,
    #: both directions counted) in both circles. Needs ``circles``.
    groups: bool = True
    group_top: int = Field(default=5, ge=2, le=15)
    group_min_weight: float = Field(default=3.0, gt=0)
    #: the transactional producer's id: stable per worker, so that a restarted worker fences
    #: its predecessor's open transaction at once (default: app, host name and web port)
    transactional_id: str | None = Field(default=None, min_length=1, max_length=200)
    #: decoded pair states kept in memory (bounded: worker memory does not grow with pairs)
    decoded_cache: int = Field(default=20_000, ge=0)
    #: rocksdb memory of the pair table, for all its partition databases together: one LRU
    #: cache holds data, index and filter blocks and is charged for the memtables
    #: (services.common.rocksdb_store). faust's defaults, a 2 GiB cache and 3 x 64 MiB
    #: memtables per partition, let the worker's RSS grow with the pairs stored.
    rocksdb_memory_mb: int = Field(default=128, ge=8)
    #: Warm copies of other workers' partitions each worker keeps up to date from the
    #: changelog (faust's table_standby_replicas): a failover then resumes from a nearly
    #: current copy instead of restoring the partition from the start (docs/reliability.md).
    standby_replicas: int = Field(default=1, ge=0, le=3)
    #: size of one memtable (two per partition database), within that cap
    rocksdb_write_buffer_mb: int = Field(default=8, ge=1)

    #: the tie-strength model file (None: the one shipped in services/matcher/models/);
    #: a pair is suggested once the rules pass and the model gives at least min_probability.
    #: 0.35 is, for an otherwise average pair, meaningful contact in about six different
    #: weeks (0.25: four weeks, 0.5: nine; docs/evaluation.md); 0 leaves the decision to the
    #: rules alone.
    model_path: Path | None = None
    min_probability: float = Field(default=0.35, ge=0, le=1)
    #: the person-relative decision (issue 38): a pair each of whom is among the other's
    #: closest_top closest partners in their circles is suggested once the model gives at
    #: least closest_min_probability (lower than min_probability). closest_top 0 turns it
    #: off; it needs the circle stage (MATCHER__CIRCLES). docs/matching.md
    closest_top: int = Field(default=3, ge=0, le=150)
    closest_min_probability: float = Field(default=0.25, ge=0, le=1)
    #: learning from answers (services/matcher/learning.py): the shipped model is left alone
    #: until this many labelled answers from this many different people exist
    learn_min_labels: int = Field(default=30, ge=1)
    learn_min_people: int = Field(default=10, ge=1)
    #: how many answers the shipped model is worth (a Gaussian prior around it)
    learn_prior_strength: float = Field(default=50.0, gt=0)
    #: the most one person's answers weigh together, in answers
    learn_max_per_person: float = Field(default=5.0, gt=0)
    #: labelled answers kept (the newest), and how often the model is refitted
    learn_max_labels: int = Field(default=2_000, ge=1, le=50_000)
    learn_refit_s: float = Field(default=30.0, gt=0)

    #: rocksdb (rocksdict) in production; memory for unit tests and throwaway runs.
    store: Literal["rocksdb", "memory"] = "rocksdb"
    data_dir: Path = Path(".run/data/matcher")
    web_port: int = 6066


class NormalizerSettings(BaseModel):
    model_config = _FROZEN

    data_dir: Path = Path(".run/data/normalizer")
    #: raw deliveries normalised together at most (one dedupe round trip and one produce per
    #: batch; the interactions of a batch are spread over the partitions, so a batch of 4,000
    #: makes arrays of ~330 for the matcher). A batch closes early when nothing more waits.
    batch_max: int = Field(default=4000, ge=1, le=10_000)
    #: how long a batch waits for more deliveries once nothing more is buffered (the
    #: latency a lone webhook delivery can gain)
    batch_wait_ms: int = Field(default=50, ge=0, le=10_000)
    web_port: int = 6068


class NotifierSettings(BaseModel):
    model_config = _FROZEN

    data_dir: Path = Path(".run/data/notifier")
    web_port: int = 6067
    #: Items kept per feed; older ones are trimmed.
    feed_cap: int = Field(default=500, ge=1)
    #: How often held deliveries (quiet hours, pause, weekly cap) are decided again.
    release_interval_s: float = Field(default=5.0, gt=0)
    #: Outbound webhooks: each person's signing secret is HMAC(webhook_key, person id).
    webhook_key: SecretStr = SecretStr("dev-webhook-key")
    webhook_attempts: int = Field(default=6, ge=1, le=20)
    #: the n-th retry waits a random time up to backoff * 2**(n-1) (full jitter), or what
    #: the receiver's Retry-After asks, and never more than webhook_max_delay_s
    webhook_backoff_s: float = Field(default=0.5, gt=0)
    webhook_max_delay_s: float = Field(default=60.0, gt=0, le=600)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    #: webhook jobs posted at once (a batch), per notifier process, for first attempts and
    #: for retries each: a dead receiver holds its batch for one timeout, never a partition
    webhook_concurrency: int = Field(default=8, ge=1, le=256)
    #: Refuse loopback and private addresses as webhook targets (SSRF) unless set.
    webhook_allow_private: bool = False


class EmailSettings(BaseModel):
    """The SMTP server the notifier sends email through (``REALCONNECT_EMAIL__*``). The
    default is the local aiosmtpd server ``deploy/stack.sh`` starts (a Maildir under .run)."""

    model_config = _FROZEN

    host: str = "127.0.0.1"
    port: int = Field(default=2525, ge=1, le=65535)
    #: "starttls": upgrade a plain connection (port 587); "tls": TLS from the first byte
    #: (port 465); "none": plain, for a local relay only
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "realconnect <noreply@realconnect.localhost>"
    timeout_s: float = Field(default=10.0, gt=0)
    #: tries per message before it goes to notifications.dlq; the wait doubles each time
    attempts: int = Field(default=5, ge=1, le=20)
    backoff_s: float = Field(default=0.5, gt=0)
    #: how long the sign-in link inside an email works
    link_ttl_s: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)


def _given(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value())


class ChatSettings(BaseModel):
    """Suggestions by direct message with answer buttons, on Slack and Discord
    (``REALCONNECT_CHAT__*``; docs/people.md). A platform with no token is off: nobody can
    choose it, and its interactions endpoint answers 404."""

    model_config = _FROZEN

    #: Slack: the app's bot token (scopes ``chat:write``, ``im:write``) and its signing
    #: secrets (two for rotation), which the interactivity endpoint checks
    slack_token: SecretStr | None = None
    slack_signing_secrets: list[SecretStr] = Field(default_factory=list, max_length=2)
    slack_api_url: str = Field(default="https://slack.com/api/", pattern=r"^https?://[^\s]+/$")
    #: Discord: the bot's token, and the application's public key (hex, from the developer
    #: portal) that signs each interaction
    discord_token: SecretStr | None = None
    discord_public_key: str = Field(default="", pattern=r"^([0-9a-fA-F]{64})?$")
    discord_api_url: str = Field(default="https://discord.com/api/v10", pattern=r"^https?://")
    #: a Slack request older (or newer) than this many seconds is refused (a replay)
    signature_tolerance_s: int = Field(default=300, ge=1, le=3600)
    #: tries per message before it is dead-lettered; the wait is the platform's
    #: ``Retry-After`` on a 429, else full-jitter backoff, at most ``max_delay_s``
    attempts: int = Field(default=6, ge=1, le=20)
    backoff_s: float = Field(default=1.0, gt=0)
    max_delay_s: float = Field(default=120.0, gt=0, le=3600)
    timeout_s: float = Field(default=5.0, gt=0)
    #: linking an account: the code the bot sends works this long, this many tries
    link_code_ttl_s: int = Field(default=600, ge=60, le=3600)
    link_code_tries: int = Field(default=5, ge=1, le=20)
    #: codes sent per person and hour (each is a DM from the bot to an account they name)
    link_codes_per_hour: int = Field(default=5, ge=1, le=100)

    def enabled(self, platform: str) -> bool:
        # empty values (compose passes "" when unset) count as unset
        if platform == "slack":
            return _given(self.slack_token) and any(map(_given, self.slack_signing_secrets))
        if platform == "discord":
            return _given(self.discord_token) and bool(self.discord_public_key)
        return False


class FeedsSettings(BaseModel):
    model_config = _FROZEN

    host: str = "127.0.0.1"
    port: int = 8081
    #: where people reach the feeds service (the links in emails and sign-in links)
    public_url: str = Field(default="http://127.0.0.1:8081", pattern=r"^https?://[^\s/]+")
    #: how long a sign-in link an admin creates works (one use)
    signin_ttl_s: int = Field(default=900, ge=30, le=7 * 24 * 3600)
    #: how long a web session lasts (sign-out ends it at once)
    session_ttl_days: int = Field(default=14, ge=1, le=365)
    #: days a person's bearer token works (POST /v1/people/{id}/tokens?expires_days= can
    #: ask for another number; 0 here: until revoked)
    token_ttl_days: int = Field(default=180, ge=0, le=3650)
    #: live streams (GET /v1/me/feed/stream) open at once per token and in all, per process;
    #: each holds a Redis pub/sub connection
    sse_max_per_token: int = Field(default=3, ge=1)
    sse_max_total: int = Field(default=500, ge=1)
    #: seconds between keep-alives, at each of which the stream's token is checked again
    #: (a revoked token's stream ends within this)
    sse_keepalive_s: float = Field(default=15.0, gt=0, le=60)


class ConsoleSettings(BaseModel):
    model_config = _FROZEN

    host: str = "127.0.0.1"
    port: int = 8082
    #: where the health badges look, per service, when the services are not all on this host
    #: (JSON, e.g. ``{"ingest": "http://ingest:8080/healthz", "matcher":
    #: "http://matcher:6066/metrics"}``); a service not named is looked for on this host
    health_urls: dict[
        Literal["ingest", "feeds", "normalizer", "matcher", "notifier"],
        Annotated[str, Field(pattern=r"^https?://")],
    ] = Field(default_factory=dict)


class BlueskyConnect(BaseModel):
    model_config = _FROZEN

    #: a Jetstream instance (https://github.com/bluesky-social/jetstream#public-instances)
    url: str = Field(default="wss://jetstream2.us-east.bsky.network/subscribe", pattern=r"^wss?://")
    #: filtered at the source: only these collections (Jetstream ``wantedCollections``)
    collections: list[str] = Field(
        default_factory=lambda: [
            "app.bsky.feed.post",
            "app.bsky.feed.like",
            "app.bsky.feed.repost",
        ],
        max_length=100,
    )
    #: only these accounts (``wantedDids``; Jetstream takes up to 10,000). Empty: everyone,
    #: which is the whole network's firehose: set it for a community.
    dids: list[str] = Field(default_factory=list, max_length=10_000)
    #: on reconnect, play back from this many seconds before the stored cursor (Jetstream's
    #: advice for gapless playback; what is seen twice is a duplicate ingest drops)
    rewind_s: float = Field(default=5.0, ge=0, le=3600)


class MastodonConnect(BaseModel):
    model_config = _FROZEN

    #: the instance, e.g. https://example.social
    url: str = Field(default="", pattern=r"^(https?://[^\s/]+)?$")
    #: the streaming server when it is not the instance's own host
    #: (``configuration.urls.streaming`` of ``GET /api/v2/instance``)
    streaming_url: str = Field(default="", pattern=r"^(https?://[^\s/]+)?$")
    #: an access token of the community's account, scope ``read:notifications read:statuses``
    token: SecretStr | None = None
    #: what to follow: ``notifications`` (the account's), ``local`` (the instance's local
    #: timeline), ``list:<id>``, ``hashtag:<tag>``
    streams: list[str] = Field(default_factory=lambda: ["notifications"], min_length=1)


class DiscordConnect(BaseModel):
    model_config = _FROZEN

    api_url: str = Field(default="https://discord.com/api/v10", pattern=r"^https?://")
    #: the bot's token (Bot … in the developer portal)
    token: SecretStr | None = None
    #: GUILDS | GUILD_MESSAGES | GUILD_MESSAGE_REACTIONS | MESSAGE_CONTENT (privileged)
    intents: int = Field(default=(1 << 0) | (1 << 9) | (1 << 10) | (1 << 15), ge=0)
    #: only these guilds' events are forwarded (empty: every guild the bot is in)
    guilds: list[str] = Field(default_factory=list)
    #: only these channels; they are also the channels read to catch up after a new session
    channels: list[str] = Field(default_factory=list)


class RedditConnect(BaseModel):
    model_config = _FROZEN

    auth_url: str = Field(default="https://www.reddit.com", pattern=r"^https?://")
    api_url: str = Field(default="https://oauth.reddit.com", pattern=r"^https?://")
    #: a "script" app's id and secret (https://www.reddit.com/prefs/apps)
    client_id: str = ""
    client_secret: SecretStr | None = None
    #: the account the script app belongs to (password grant); empty: app-only access
    username: str = ""
    password: SecretStr | None = None
    subreddits: list[str] = Field(default_factory=list)
    #: seconds between polls of each subreddit's new posts and comments
    poll_s: float = Field(default=15.0, ge=1)


class ConnectSettings(BaseModel):
    """The connectors (``realconnect connect SOURCE``): ``REALCONNECT_CONNECT__…``."""

    model_config = _FROZEN

    #: where the connector posts what it reads: the ingest service
    ingest_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://")
    #: one connector process per platform account; names its stored position
    account: str = Field(default="default", pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    #: how the connector names itself to the platform (Reddit requires
    #: ``<platform>:<app id>:<version> (by /u/<name>)``)
    user_agent: str = "python:realconnect-connector:0.2.0 (+https://github.com/realconnect)"
    #: Prometheus /metrics of this connector process (0: none). It has no authentication:
    #: keep it on loopback or a private network (compose binds 0.0.0.0 inside its network)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9110, ge=0, le=65535)
    #: reconnect and retry delays: full jitter, doubling from ``backoff_s`` up to the cap
    backoff_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)
    bluesky: BlueskyConnect = BlueskyConnect()
    mastodon: MastodonConnect = MastodonConnect()
    discord: DiscordConnect = DiscordConnect()
    reddit: RedditConnect = RedditConnect()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REALCONNECT_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    #: Prefixes every topic, consumer group and Redis key ("" = no prefix).
    namespace: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$", max_length=64)
    env: Literal["dev", "test", "prod"] = "dev"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    admin_token: SecretStr = SecretStr("dev-admin-token")
    #: tokens that open one admin scope each (services/common/admin.py), beside the master
    admin_tokens: dict[Literal["people", "producers", "feeds", "console", "metrics"], SecretStr] = (
        Field(default_factory=dict)
    )
    #: the body limit of every route whose body FastAPI parses (people, preferences, answers,
    #: producers...; the raw-body routes have their own), and the connections (and live
    #: streams) each HTTP process serves at once before answering 503
    http_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    http_limit_concurrency: int = Field(default=1000, ge=1)
    #: slow clients (services.common.http_server): a request's head must arrive within this
    #: many seconds of the connection's start (or of the previous response), its body within
    #: the next; one address holds at most this many connections at once (0: no bound); a
    #: head (request line and headers) is at most this many bytes (431 past it)
    http_headers_timeout_s: float = Field(default=10.0, gt=0)
    http_body_timeout_s: float = Field(default=60.0, gt=0)
    http_max_connections_per_client: int = Field(default=100, ge=0)
    http_max_head_bytes: int = Field(default=64 * 1024, ge=4096)
    #: uvicorn's keep-alive: an idle connection is closed after this many seconds
    http_keep_alive_s: int = Field(default=5, ge=1)
    #: the deployment's reverse proxies (comma-separated addresses or networks): only their
    #: X-Forwarded-For is believed, and their connections are not bounded per client. Empty
    #: (the default): no proxy, every client is the address it connects from
    http_trusted_proxies: str = ""
    #: requests per second per caller (bearer token, else address) on the feeds, console and
    #: admin routes, per process, and the burst above it (429 past it): a flood guard that
    #: an operator's bulk work (issuing hundreds of tokens) stays under
    http_rate_per_s: float = Field(default=200.0, gt=0)
    http_burst: int = Field(default=1000, ge=1)
    #: the callers whose buckets one process keeps (services.common.rate_limit): past it, a
    #: refilled bucket makes room, and a new caller is refused while none has
    http_rate_max_callers: int = Field(default=50_000, ge=1)
    #: the producer token clients of this project send (realconnect replay over HTTP);
    #: outside prod the well-known dev token works, in prod an admin issues one
    producer_token: SecretStr = SecretStr("dev-producer-token")
    #: ``gc.set_threshold`` of the faust workers and the ingest processes (JSON list, e.g.
    #: ``[50000, 20, 100]``; Python's default is 700, 10, 10; see
    #: services.common.gc_tuning). Pair states are freed by reference counting, so fewer
    #: collections cost little memory.
    gc_thresholds: tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt] = (50_000, 20, 100)
    #: the address the faust workers' web servers (``/metrics``, faust's own pages) listen
    #: on: loopback, as they have no authentication; compose opens them to its own network
    #: so that the console's health badges can reach them
    worker_web_host: str = "127.0.0.1"

    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    ingest: IngestSettings = IngestSettings()
    matcher: MatcherSettings = MatcherSettings()
    normalizer: NormalizerSettings = NormalizerSettings()
    notifier: NotifierSettings = NotifierSettings()
    feeds: FeedsSettings = FeedsSettings()
    chat: ChatSettings = ChatSettings()
    email: EmailSettings = EmailSettings()
    console: ConsoleSettings = ConsoleSettings()
    connect: ConnectSettings = ConnectSettings()
    sources: dict[str, SourceSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_dev_secrets_in_prod(self) -> Settings:
        """In prod, refuse to start with a development default, an empty secret or one
        shorter than 32 bytes, and say which setting is wrong."""
        if self.env != "prod":
            return self
        named: list[tuple[str, SecretStr]] = [
            ("REALCONNECT_ADMIN_TOKEN", self.admin_token),
            ("REALCONNECT_NOTIFIER__WEBHOOK_KEY", self.notifier.webhook_key),
        ]
        for scope, token in self.admin_tokens.items():
            named.append((f"REALCONNECT_ADMIN_TOKENS[{scope}]", token))
        for source, s in self.sources.items():
            for i, secret in enumerate(s.secrets):
                named.append((f"REALCONNECT_SOURCES__{source.upper()}__SECRETS[{i}]", secret))
        for i, secret in enumerate(self.chat.slack_signing_secrets):
            named.append((f"REALCONNECT_CHAT__SLACK_SIGNING_SECRETS[{i}]", secret))
        for name, secret in named:
            value = secret.get_secret_value()
            if value.startswith("dev-") or value in _DEV_VALUES:
                raise ValueError(f"{name} is a development default: set a real secret in prod")
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"{name} is {'empty' if not value else 'too short'}: "
                    f"at least {MIN_SECRET_BYTES} bytes in prod"
                )
        return self

    @field_validator("http_trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, v: str) -> str:
        for p in (p.strip() for p in v.split(",")):
            if p:
                try:
                    ipaddress.ip_network(p, strict=False)
                except ValueError:
                    raise ValueError(f"{p!r} is not an IP address or network") from None
        return v

    @property
    def trusted_proxies(self) -> list[str]:
        """``HTTP_TRUSTED_PROXIES`` as a list of addresses and networks."""
        return [p.strip() for p in self.http_trusted_proxies.split(",") if p.strip()]

    def source(self, name: str) -> SourceSettings:
        """A source's settings. Outside prod, a source with no secret gets the well-known
        ``dev-<source>-secret`` so that local runs work; in prod it stays disabled."""
        s = self.sources.get(name, SourceSettings())
        if not s.secrets and self.env != "prod":
            s = s.model_copy(update={"secrets": [SecretStr(f"dev-{name}-secret")]})
        return s

    def prefixed(self, name: str, sep: str = ".") -> str:
        """``name`` inside this namespace (topics and groups use ".", Redis keys use ":")."""
        return f"{self.namespace}{sep}{name}" if self.namespace else name
