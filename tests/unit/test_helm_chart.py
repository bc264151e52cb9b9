"""The Helm chart (deploy/helm/realconnect), tested without a cluster: ``helm lint`` and
``helm template`` (Helm built from its Go module by ``make setup``) for the default values and
both example value sets, every rendered object validated against Kubernetes' own schemas
(``kubernetes-validate``, strict, the newest Kubernetes it knows), and the rendered objects
asserted: ports, probes, disruption budgets, the secrets' source, the policies, no moving
image tag, and the renders the chart must refuse."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import IN_CI

ROOT = Path(__file__).parents[2]
CHART = ROOT / "deploy" / "helm" / "realconnect"
HELM = ROOT / ".cache" / "bin" / "helm"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
#: objects of other projects' resources (CRDs), which Kubernetes' schemas do not hold
CUSTOM = ("kafka.strimzi.io/", "keda.sh/")
K8S = kubernetes_validate.latest_version()


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if not HELM.exists():
        if IN_CI:
            pytest.fail("helm is not built (make setup builds it into .cache/bin)")
        pytest.skip("helm is not built (run deploy/stack.sh setup)")
    done = subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def render(*args: str) -> list[dict[str, Any]]:
    out = helm("template", "rc", str(CHART), "--namespace", "realconnect", *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def container(obj: dict[str, Any]) -> dict[str, Any]:
    [c] = obj["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c.get("env", [])}


VALUE_SETS = [[], *(["-f", str(p)] for p in EXAMPLES)]


@pytest.mark.parametrize("values", VALUE_SETS, ids=["default", *(p.stem for p in EXAMPLES)])
def test_the_chart_lints_renders_and_every_object_is_valid_kubernetes(values: list[str]) -> None:
    lint = helm("lint", "--strict", str(CHART), *values)
    assert "0 chart(s) failed" in lint.stdout
    objects = render(*values)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    for obj in objects:
        if obj["apiVersion"].startswith(CUSTOM):
            continue  # asserted in their own test below
        try:
            kubernetes_validate.validate(obj, K8S, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{obj['kind']} {obj['metadata']['name']}: {exc.message} at {list(exc.path)}"
            )


def test_http_services_have_ports_probes_and_disruption_budgets() -> None:
    objects = render()
    deployments, services, pdbs = (
        by(objects, k) for k in ("Deployment", "Service", "PodDisruptionBudget")
    )
    for name, port in (("ingest", 8080), ("feeds", 8081), ("console", 8082)):
        d = deployments[f"rc-realconnect-{name}"]
        c = container(d)
        assert c["args"] == ["serve", name]
        assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        # alive while it accepts connections: a Redis outage restarts nothing
        assert c["livenessProbe"]["tcpSocket"] == {"port": "http"}
        assert env_of(c)[f"REALCONNECT_{name.upper()}__HOST"] == "0.0.0.0"  # noqa: S104
        assert env_of(c)[f"REALCONNECT_{name.upper()}__PORT"] == str(port)
        svc = services[f"rc-realconnect-{name}"]
        assert svc["spec"]["ports"][0]["port"] == port
        assert svc["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]
        assert pdbs[f"rc-realconnect-{name}"]["spec"]["selector"] == d["spec"]["selector"]
        assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_workers_are_sized_by_partitions_and_the_matcher_keeps_rocksdb_on_a_volume() -> None:
    objects = render()
    [matcher] = by(objects, "StatefulSet").values()
    assert matcher["metadata"]["name"] == "rc-realconnect-matcher"
    [claim] = matcher["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    c = container(matcher)
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert (
        mounts["data"]
        == env_of(c)["REALCONNECT_MATCHER__DATA_DIR"]
        == "/home/realconnect/data/matcher"
    )
    assert env_of(c)["REALCONNECT_MATCHER__STANDBY_REPLICAS"] == "1"
    for name, port in (("normalizer", 6068), ("matcher", 6066), ("notifier", 6067)):
        w = {**by(objects, "Deployment"), **by(objects, "StatefulSet")}[f"rc-realconnect-{name}"]
        c = container(w)
        assert c["args"] == ["worker", name]
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "web"}
        assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 1800
        assert env_of(c)[f"REALCONNECT_{name.upper()}__WEB_PORT"] == str(port)
        assert env_of(c)["REALCONNECT_KAFKA__PARTITIONS"] == "12"
    # more processes than partitions is refused, with the reason
    refused = helm("template", "rc", str(CHART), "--set", "matcher.replicas=13", check=False)
    assert refused.returncode != 0
    assert "matcher.replicas (13) is more than kafka.partitions (12)" in refused.stderr


def test_secrets_come_only_from_a_secret_and_prod_is_the_default() -> None:
    objects = render()
    pods = [
        *by(objects, "Deployment").values(),
        *by(objects, "StatefulSet").values(),
        *by(objects, "Job").values(),
    ]
    assert len(pods) == 7  # ingest, feeds, console, normalizer, notifier, matcher, topics
    for obj in pods:
        c = container(obj)
        env = env_of(c)
        assert env["REALCONNECT_ENV"] == "prod"  # the services' own check of dev secrets
        assert c["envFrom"] == [{"secretRef": {"name": "realconnect"}}]
        for name in env:
            assert not any(w in name for w in ("TOKEN", "SECRET", "PASSWORD", "KEY")), name
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert obj["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    # a secret's value has no place in values: refused by the schema
    for bad in ("adminToken=x", "extraEnv.REALCONNECT_ADMIN_TOKEN=x", "secrets.existingSecret="):
        assert helm("template", "rc", str(CHART), "--set", bad, check=False).returncode != 0, bad


def test_images_never_use_a_moving_tag() -> None:
    for values in VALUE_SETS:
        for obj in render(*values):
            spec = obj.get("spec", {}).get("template", {}).get("spec", {})
            for c in spec.get("containers", []):
                assert not c["image"].endswith((":latest", ":")), c["image"]
                assert ":" in c["image"].rsplit("/", 1)[-1]
    assert container(by(render(), "Deployment")["rc-realconnect-ingest"])["image"].endswith(
        ":0.2.0"
    )
    refused = helm("template", "rc", str(CHART), "--set", "image.tag=latest", check=False)
    assert refused.returncode != 0


def test_network_policies_expose_only_what_security_md_calls_public() -> None:
    policies = by(render(), "NetworkPolicy")
    deny = policies["rc-realconnect-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress"] and deny["ingress"] == []
    public = {
        n for n, p in policies.items() if any("from" not in r for r in p["spec"].get("ingress", []))
    }
    assert public == {"rc-realconnect-ingest-public", "rc-realconnect-feeds-public"}
    console = policies["rc-realconnect-console-operators"]["spec"]["ingress"][0]
    assert console["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    matcher = policies["rc-realconnect-matcher-web"]["spec"]["ingress"][0]
    assert matcher["ports"] == [{"port": 6066, "protocol": "TCP"}]
    assert {"app.kubernetes.io/component": "console"}.items() <= matcher["from"][0]["podSelector"][
        "matchLabels"
    ].items()
    assert not by(render("--set", "networkPolicy.enabled=false"), "NetworkPolicy")


def test_the_strimzi_example_renders_a_kraft_cluster_and_keda_scales_on_lag() -> None:
    objects = render("-f", str(CHART / "examples" / "strimzi.yaml"))
    kafka = by(objects, "Kafka")["rc-realconnect"]
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["spec"]["kafka"]["config"]["transaction.state.log.min.isr"] == 2
    pool = by(objects, "KafkaNodePool")["rc-realconnect-nodes"]
    assert pool["spec"]["roles"] == ["controller", "broker"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "rc-realconnect"
    ingest = container(by(objects, "Deployment")["rc-realconnect-ingest"])
    assert (
        env_of(ingest)["REALCONNECT_KAFKA__BOOTSTRAP_SERVERS"]
        == "rc-realconnect-kafka-bootstrap:9092"
    )
    scaled = by(objects, "ScaledObject")
    assert set(scaled) == {"rc-realconnect-matcher", "rc-realconnect-notifier"}
    m = scaled["rc-realconnect-matcher"]["spec"]
    assert m["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "rc-realconnect-matcher",
    }
    assert m["maxReplicaCount"] == 24  # kafka.partitions
    [trigger] = m["triggers"]
    assert (
        trigger["type"] == "kafka" and trigger["metadata"]["consumerGroup"] == "realconnect-matcher"
    )
    # KEDA owns the replicas of what it scales
    assert "replicas" not in by(objects, "StatefulSet")["rc-realconnect-matcher"]["spec"]


def test_the_managed_redis_example_takes_its_url_from_the_secret() -> None:
    objects = render("-f", str(CHART / "examples" / "managed-redis.yaml"))
    for obj in by(objects, "Deployment").values():
        c = container(obj)
        assert "REALCONNECT_REDIS__URL" not in env_of(c)  # the Secret's, with its password
        assert c["envFrom"] == [{"secretRef": {"name": "realconnect-prod"}}]
