"""Docker cannot run here, so the compose file's structure is checked instead."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from services.cli import HttpService, WorkerService, app

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_every_service_and_server_is_there() -> None:
    assert {
        "kafka",
        "redis",
        "ingest",
        "feeds",
        "console",
        "normalizer",
        "matcher",
        "notifier",
    } <= set(SERVICES)


def test_long_running_services_have_healthchecks() -> None:
    for name, svc in SERVICES.items():
        if name == "topics":
            continue
        test = svc["healthcheck"]["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), name


def test_every_long_running_service_and_server_is_started_again_when_it_dies() -> None:
    for name, svc in SERVICES.items():
        expected = "no" if name == "topics" else "unless-stopped"  # topics is a one-off job
        assert svc.get("restart") == expected, name


def test_services_wait_for_healthy_kafka_and_redis() -> None:
    for name in ("ingest", "feeds", "console", "normalizer", "matcher", "notifier", "topics"):
        deps = SERVICES[name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name


def test_commands_exist_in_the_cli() -> None:
    runner = CliRunner()
    for name in ("ingest", "feeds", "console", "normalizer", "matcher", "notifier", "topics"):
        command = SERVICES[name]["command"]
        result = runner.invoke(app, [command[0], "--help"])
        assert result.exit_code == 0, (name, command, result.output)
        if command[0] == "serve":
            assert command[1] in {s.value for s in HttpService}, name
        if command[0] == "worker":
            assert command[1] in {s.value for s in WorkerService}, name
    assert runner.invoke(app, ["nonsense", "--help"]).exit_code != 0  # the check can fail


def test_services_share_one_dockerfile_that_exists() -> None:
    for name in ("ingest", "feeds", "console", "normalizer", "matcher", "notifier"):
        build = SERVICES[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    assert (
        "kafka:9092" in SERVICES["matcher"]["environment"]["REALCONNECT_KAFKA__BOOTSTRAP_SERVERS"]
    )


def test_kafka_runs_in_kraft_mode() -> None:
    env = SERVICES["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:4.")


def test_each_connector_is_a_compose_service_of_its_own_profile() -> None:
    runner = CliRunner()
    for platform in ("bluesky", "mastodon", "discord", "reddit"):
        svc = SERVICES[f"connect-{platform}"]
        assert svc["command"] == ["connect", platform]
        assert svc["profiles"] == [platform]  # started only when asked for
        assert svc["environment"]["REALCONNECT_CONNECT__INGEST_URL"] == "http://ingest:8080"
        assert svc["depends_on"]["ingest"]["condition"] == "service_healthy"
        assert "ports" not in svc  # its /metrics stays inside the compose network
        secrets = f"REALCONNECT_SOURCES__{platform.upper()}__SECRETS"
        assert secrets in svc["environment"] and secrets in SERVICES["ingest"]["environment"]
        assert runner.invoke(app, [*svc["command"][:1], "--help"]).exit_code == 0


def test_the_consoles_health_badges_reach_every_service_in_its_container() -> None:
    import json

    from services.common.settings import Settings
    from services.console.metrics import health_targets

    env = SERVICES["console"]["environment"]
    targets = health_targets(
        Settings(console={"health_urls": json.loads(env["REALCONNECT_CONSOLE__HEALTH_URLS"])})
    )
    for name in ("ingest", "feeds", "normalizer", "matcher", "notifier"):
        url = targets[name]
        assert url.startswith(f"http://{name}:"), url  # the service's own container
        port = url.split(":")[2].split("/")[0]
        assert port in " ".join(SERVICES[name]["healthcheck"]["test"]), (name, url)
    for worker in ("normalizer", "matcher", "notifier"):
        assert SERVICES[worker]["environment"]["REALCONNECT_WORKER_WEB_HOST"] == "0.0.0.0"  # noqa: S104 - inside the compose network
        assert "ports" not in SERVICES[worker]  # faust's pages stay inside the network
