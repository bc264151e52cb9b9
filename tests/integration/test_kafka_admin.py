"""Topic creation, end offsets and group lag against the real broker."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas import topics
from services.common.kafka import (
    LagProbe,
    Topics,
    end_offsets,
    ensure_topics,
    group_lag,
    new_producer,
)
from services.common.settings import Settings


async def topic_config(settings: Settings, topic: str, name: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    entries = response.resources[0][4]
    return str(next(e[1] for e in entries if e[0] == name))


async def cleanup_policy(settings: Settings, topic: str) -> str:
    return await topic_config(settings, topic, "cleanup.policy")


async def test_raw_topics_keep_message_text_for_the_raw_retention_only(
    settings: Settings,
) -> None:
    """The raw topics, the only ones with message text, keep a delivery 24 hours by default;
    the others keep the broker's retention (7 days here). A changed setting reaches topics
    that exist already (the broker applies it within moments)."""
    await ensure_topics(settings)
    t = Topics(settings)
    for source in topics.RAW_SOURCES:
        assert await topic_config(settings, t.raw(source), "retention.ms") == str(24 * 3_600_000)
    assert await topic_config(settings, t.interactions, "retention.ms") == str(168 * 3_600_000)
    shorter = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"raw_retention_hours": 2.0})}
    )
    await ensure_topics(shorter)
    for _ in range(50):
        if await topic_config(settings, t.raw("slack"), "retention.ms") == str(2 * 3_600_000):
            break
        await asyncio.sleep(0.2)
    assert await topic_config(settings, t.raw("slack"), "retention.ms") == str(2 * 3_600_000)


async def test_topics_are_created_once_with_the_configured_partitions(settings: Settings) -> None:
    created = await ensure_topics(settings)
    ns = settings.namespace
    assert {
        f"{ns}.interactions",
        f"{ns}.interactions.dlq",
        f"{ns}.meetup.suggestions",
        f"{ns}.notifications.dlq",
        f"{ns}.people.identities",
        f"{ns}.people.profiles",
        f"{ns}.interactions.raw.mastodon",
        f"{ns}.interactions.raw.github",
    } <= set(created)
    assert len(created) == len(topics.ALL)
    assert await ensure_topics(settings) == []
    assert await cleanup_policy(settings, Topics(settings).identities) == "compact"
    assert await cleanup_policy(settings, Topics(settings).profiles) == "compact"
    assert await cleanup_policy(settings, Topics(settings).interactions) == "delete"
    ends = await end_offsets(settings.kafka.bootstrap_servers, Topics(settings).interactions)
    assert ends == dict.fromkeys(range(settings.kafka.partitions), 0)


async def test_lag_counts_what_a_group_has_not_committed(settings: Settings) -> None:
    await ensure_topics(settings)
    topic = Topics(settings).interactions
    producer = new_producer(settings, client_id="test")
    await producer.start()
    try:
        for i in range(7):
            await producer.send_and_wait(topic, key=f"k{i}".encode(), value=b"{}")
    finally:
        await producer.stop()
    lag = await group_lag(settings.kafka.bootstrap_servers, topic, "nobody-" + settings.namespace)
    assert lag.total_end == 7
    assert lag.lag == 7
    # the long-lived probe of the benchmarks answers the same, question after question
    async with LagProbe(settings.kafka.bootstrap_servers) as probe:
        for _ in range(3):
            again = await probe.lag(topic, "nobody-" + settings.namespace)
            assert (again.end, again.committed) == (lag.end, lag.committed)


async def test_racing_creators_create_each_topic_once(settings: Settings) -> None:
    import asyncio

    first, second = await asyncio.gather(ensure_topics(settings), ensure_topics(settings))
    assert sorted(first + second) == sorted(Topics(settings).name(n) for n in topics.ALL)
