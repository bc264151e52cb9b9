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
