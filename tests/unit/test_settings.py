from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from services.common.kafka import Topics
from services.common.redis import Keys
from services.common.settings import Settings


def test_namespace_prefixes_topics_groups_and_keys() -> None:
    s = Settings(namespace="eval1")
    t, k = Topics(s), Keys(s)
    assert t.interactions == "eval1.interactions"
    assert t.suggestions == "eval1.meetup.suggestions"
    assert t.app_id("matcher") == "eval1.realconnect-matcher"
    assert k.feed("cns:1") == "eval1:rc:feed:cns:1"


def test_no_namespace_means_no_prefix() -> None:
    assert Topics(Settings(namespace="")).interactions == "interactions"


def test_nested_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALCONNECT_MATCHER__MIN_DISTINCT_DAYS", "5")
    monkeypatch.setenv("REALCONNECT_KAFKA__BOOTSTRAP_SERVERS", "k:1")
    s = Settings()
    assert s.matcher.min_distinct_days == 5
    assert s.kafka.bootstrap_servers == "k:1"


def test_prod_refuses_the_dev_admin_token() -> None:
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        Settings(env="prod")
    with pytest.raises(ValidationError, match="WEBHOOK_KEY"):
        Settings(env="prod", admin_token=SecretStr("s3cret-long-token-of-32-bytes-or-more"))
    prod = Settings(
        env="prod",
        admin_token=SecretStr("s3cret-long-token-of-32-bytes-or-more"),
        notifier={"webhook_key": "another-real-secret-of-32-bytes-or-more"},
    )  # type: ignore[arg-type]
    assert prod.env == "prod"


def test_every_source_name_has_an_adapter_and_a_raw_topic() -> None:
    from typing import get_args

    from schemas import topics
    from services.sources import SOURCES, SourceName

    assert set(get_args(SourceName)) == set(SOURCES) == set(topics.RAW_SOURCES)


def test_health_badges_look_on_this_host_unless_told_where() -> None:
    from pydantic import ValidationError

    from services.common.settings import Settings
    from services.console.metrics import health_targets

    local = health_targets(Settings())
    assert local["matcher"] == "http://127.0.0.1:6066/healthz"
    assert local["ingest"] == "http://127.0.0.1:8080/healthz"
    moved = health_targets(Settings(console={"health_urls": {"matcher": "http://m:6066/metrics"}}))
    assert moved["matcher"] == "http://m:6066/metrics" and moved["ingest"] == local["ingest"]
    with pytest.raises(ValidationError):
        Settings(console={"health_urls": {"matcher": "ftp://m/"}})
    with pytest.raises(ValidationError):
        Settings(console={"health_urls": {"kafka": "http://k:9092/"}})
