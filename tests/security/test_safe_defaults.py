"""Safe by default: production refuses to start with a development secret, an empty one or
one under 32 bytes, and says which setting is wrong; the image and compose run prod."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from services.common.settings import Settings
from tests.stack import BIN

ROOT = Path(__file__).parents[2]
GOOD = "a-production-secret-of-enough-length-01"


def prod(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "prod",
        "admin_token": GOOD,
        "notifier": {"webhook_key": GOOD},
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_real_secrets_start() -> None:
    assert prod().env == "prod"


@pytest.mark.parametrize(
    ("overrides", "named", "why"),
    [
        ({"admin_token": "dev-admin-token"}, "REALCONNECT_ADMIN_TOKEN", "development default"),
        ({"admin_token": "x"}, "REALCONNECT_ADMIN_TOKEN", "too short"),
        ({"admin_token": ""}, "REALCONNECT_ADMIN_TOKEN", "empty"),
        ({"notifier": {"webhook_key": "dev-webhook-key"}}, "WEBHOOK_KEY", "development default"),
        ({"sources": {"slack": {"secrets": [""]}}}, "SOURCES__SLACK__SECRETS[0]", "empty"),
        ({"sources": {"slack": {"secrets": ["dev-slack-secret"]}}}, "SLACK", "development default"),
        ({"sources": {"github": {"secrets": [GOOD, "short"]}}}, "GITHUB__SECRETS[1]", "too short"),
        ({"admin_token": "dev-producer-token" + "x" * 20}, "ADMIN_TOKEN", "development default"),
        ({"admin_tokens": {"console": "short"}}, "ADMIN_TOKENS[console]", "too short"),
    ],
)
def test_prod_refuses_weak_secrets_and_names_them(
    overrides: dict[str, object], named: str, why: str
) -> None:
    with pytest.raises(ValidationError, match=r".*") as err:
        prod(**overrides)
    text = str(err.value)
    assert named in text and why in text


def test_a_service_started_in_prod_with_dev_defaults_exits_saying_why(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "REALCONNECT_ENV": "prod", "HOME": str(tmp_path)}
    out = subprocess.run(
        [str(BIN), "serve", "ingest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "REALCONNECT_ADMIN_TOKEN is a development default" in out.stdout + out.stderr


def test_the_image_and_compose_run_prod() -> None:
    dockerfile = (ROOT / "deploy/docker/Dockerfile").read_text()
    assert "REALCONNECT_ENV=prod" in dockerfile
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["x-realconnect"]["environment"]
    assert env["REALCONNECT_ENV"] == "${REALCONNECT_ENV:-prod}"
    # compose refuses to start without real secrets rather than fall back to dev ones
    assert env["REALCONNECT_ADMIN_TOKEN"].startswith("${REALCONNECT_ADMIN_TOKEN:?")
    assert env["REALCONNECT_NOTIFIER__WEBHOOK_KEY"].startswith(
        "${REALCONNECT_NOTIFIER__WEBHOOK_KEY:?"
    )
