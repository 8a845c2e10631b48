"""The Helm chart: lint, Kubernetes schemas, and what the rendered objects promise."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    CHART,
    KUBE_VERSION,
    RELEASE,
    SCENARIOS,
    by_kind,
    env_of,
    pod_labels,
    pod_spec,
    run_helm,
    tool,
)

SERVICES = ("gateway", "splitter", "transcriber", "health")
WORKERS = {"splitter": "vtx:queue:split", "transcriber": "vtx:queue:transcribe"}
PORTS = {"gateway": 8000, "splitter": 8001, "transcriber": 8002, "health": 8003}
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"}
VERSION_LABELS = {"helm.sh/chart", "app.kubernetes.io/version"}


def name(component: str) -> str:
    return f"{RELEASE}-vtx-{component}"


# ---------------------------------------------------------------- lint and schemas


@pytest.mark.parametrize("values", sorted((CHART / "ci").glob("*.yaml")), ids=lambda p: p.stem)
def test_helm_lint_strict(helm: Path, values: Path) -> None:
    proc = run_helm(
        helm, "lint", "--strict", str(CHART), "-f", str(values), "--kube-version", KUBE_VERSION
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_helm_lint_strict_defaults(helm: Path) -> None:
    proc = run_helm(helm, "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_kubernetes_validate(renders: dict[str, str], scenario: str, tmp_path: Path) -> None:
    manifest = tmp_path / f"{scenario}.yaml"
    manifest.write_text(renders[scenario])
    proc = subprocess.run(
        [str(tool("kubernetes-validate")), "--strict", "-k", KUBE_VERSION, str(manifest)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for line in out.splitlines():
        if line.startswith("INFO") or not line.strip():
            continue
        # Custom resources have no upstream schema: a warning naming one of ours is fine.
        assert line.startswith("WARN") and "Couldn't find schema for kind" in line, line
        kind = line.split("for kind ")[1].split()[0]
        assert kind in CRD_KINDS, line


BAD_VALUES = {
    "unknown top-level key": ["--set", "replicas=3"],
    "unknown nested key": ["--set", "gateway.replicas=3"],
    "port as string": ["--set-string", "gateway.port=http"],
    "switch as string": ["--set-string", "transcriber.gpu.enabled=yes"],
    "negative replicas": ["--set", "gateway.replicaCount=-1"],
    "log format": ["--set", "config.logFormat=xml"],
    "store scheme": ["--set", "objectStore.url=http://minio:9000/bucket"],
    "cpu percent": ["--set", "gateway.autoscaling.targetCPUUtilizationPercentage=150"],
    "device": ["--set", "transcriber.device=tpu"],
    "scale to zero without KEDA": ["--set", "transcriber.autoscaling.scaleToZero=true"],
    "external database without host": ["--set", "postgresql.enabled=false"],
    "model init without image": ["--set", "models.init.enabled=true"],
}


@pytest.mark.parametrize("args", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_values_are_refused(template: Any, args: list[str]) -> None:
    proc = template(*args)
    assert proc.returncode != 0, f"helm template accepted {args}"
    assert proc.stderr.strip()


def test_lint_refuses_schema_violation(helm: Path) -> None:
    proc = run_helm(helm, "lint", "--strict", str(CHART), "--set-string", "health.port=x")
    assert proc.returncode != 0


# ---------------------------------------------------------------- workloads


def workloads(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in documents if pod_spec(d) is not None]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_one_deployment_per_service(docs: dict[str, list[dict[str, Any]]], scenario: str) -> None:
    deployments = by_kind(docs[scenario], "Deployment")
    assert set(deployments) == {name(s) for s in SERVICES}
    for service in SERVICES:
        container = deployments[name(service)]["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["vtx", service]
        assert container["ports"][0]["containerPort"] == PORTS[service]
    services = by_kind(docs[scenario], "Service")
    for service in SERVICES:
        assert services[name(service)]["spec"]["ports"][0]["port"] == PORTS[service]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_long_running_containers_have_probes_and_resources(
    docs: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    for doc in docs[scenario]:
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for c in doc["spec"]["template"]["spec"]["containers"]:
            where = f"{doc['metadata']['name']}/{c['name']}"
            assert c.get("livenessProbe"), f"{where}: no liveness probe"
            assert c.get("readinessProbe"), f"{where}: no readiness probe"
            assert c["resources"]["requests"]["cpu"], where
            assert c["resources"]["requests"]["memory"], where
            assert c["resources"]["limits"]["memory"], where


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_pod_is_hardened(docs: dict[str, list[dict[str, Any]]], scenario: str) -> None:
    for doc in workloads(docs[scenario]):
        spec = pod_spec(doc)
        assert spec is not None
        where = doc["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, where
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc["runAsUser"] != 0, where
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
        mounts_tmp = False
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (where, c["name"])
            assert sc["readOnlyRootFilesystem"] is True, (where, c["name"])
            assert sc["runAsNonRoot"] is True, (where, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"], (where, c["name"])
            assert "add" not in sc["capabilities"], (where, c["name"])
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", (where, c["name"])
            assert c.get("resources", {}).get("limits", {}).get("memory"), (where, c["name"])
            mounts_tmp |= any(m["mountPath"] == "/tmp" for m in c.get("volumeMounts", []))
        assert mounts_tmp, f"{where}: no writable /tmp"
        tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert tmp and "emptyDir" in tmp[0], where


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_selectors_are_stable(docs: dict[str, list[dict[str, Any]]], scenario: str) -> None:
    """Selectors never carry the chart or app version: they must survive upgrades."""
    for doc in docs[scenario]:
        kind = doc["kind"]
        selector: dict[str, str] | None = None
        if kind in ("Deployment", "StatefulSet", "PodDisruptionBudget"):
            selector = doc["spec"]["selector"]["matchLabels"]
        elif kind == "Service":
            selector = doc["spec"]["selector"]
        elif kind == "NetworkPolicy":
            selector = doc["spec"]["podSelector"]["matchLabels"]
        if selector is None:
            continue
        assert not VERSION_LABELS & set(selector), (kind, doc["metadata"]["name"], selector)
        assert {"app.kubernetes.io/name", "app.kubernetes.io/instance"} <= set(selector)
        if kind in ("Deployment", "StatefulSet"):
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items()


def test_selectors_do_not_change_with_versions(template: Any) -> None:
    def selectors(text: str) -> dict[str, Any]:
        return {
            d["metadata"]["name"]: d["spec"]["selector"]
            for d in yaml.safe_load_all(text)
            if d and d["kind"] in ("Deployment", "StatefulSet", "Service")
        }

    a = template("--set", "image.tag=1.0.0")
    b = template("--set", "image.tag=2.0.0")
    assert a.returncode == b.returncode == 0
    assert selectors(a.stdout) == selectors(b.stdout)


def test_transcriber_waits_for_its_model(docs: dict[str, list[dict[str, Any]]]) -> None:
    deployment = by_kind(docs["default"], "Deployment")[name("transcriber")]
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    startup = c["startupProbe"]
    assert startup["httpGet"]["path"] == "/health/live"
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 300
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_grace_periods(docs: dict[str, list[dict[str, Any]]], scenario: str) -> None:
    config = by_kind(docs[scenario], "ConfigMap")[f"{RELEASE}-vtx-config"]["data"]
    shutdown = int(config["VTX_SHUTDOWN_GRACE_S"])
    deployments = by_kind(docs[scenario], "Deployment")
    for service in SERVICES:
        spec = deployments[name(service)]["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] > shutdown, service
    gateway = deployments[name("gateway")]["spec"]["template"]["spec"]
    pre_stop = gateway["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert gateway["terminationGracePeriodSeconds"] > shutdown + int(pre_stop[1])


# ---------------------------------------------------------------- settings


def test_config_and_secret(docs: dict[str, list[dict[str, Any]]]) -> None:
    import base64

    config = by_kind(docs["default"], "ConfigMap")[f"{RELEASE}-vtx-config"]["data"]
    assert config["VTX_HOST"] == "0.0.0.0"
    assert config["VTX_STORE_URL"] == "file:///data/store"
    assert json.loads(config["VTX_HEALTH_SERVICES"]) == {
        "gateway": f"http://{name('gateway')}:8000",
        "splitter": f"http://{name('splitter')}:8001",
        "transcriber": f"http://{name('transcriber')}:8002",
    }
    secret = by_kind(docs["default"], "Secret")[f"{RELEASE}-vtx-secret"]["data"]
    db = base64.b64decode(secret["VTX_DATABASE_URL"]).decode()
    redis = base64.b64decode(secret["VTX_REDIS_URL"]).decode()
    password = base64.b64decode(secret["redis-password"]).decode()
    assert db.startswith("postgresql+asyncpg://vtx:") and db.endswith(
        f"@{name('postgresql')}:5432/vtx"
    )
    assert redis == f"redis://:{password}@{name('redis')}:6379/0"
    # One signing key for media links and one for callbacks, shared by every replica.
    for key in ("VTX_SECRET_KEY", "VTX_WEBHOOK_SECRET"):
        assert len(base64.b64decode(secret[key])) >= 32


def test_external_services_by_url(docs: dict[str, list[dict[str, Any]]]) -> None:
    import base64

    documents = docs["aws"]
    assert not by_kind(documents, "StatefulSet"), "aws uses managed Redis and PostgreSQL"
    secret = by_kind(documents, "Secret")[f"{RELEASE}-vtx-secret"]["data"]
    db = base64.b64decode(secret["VTX_DATABASE_URL"]).decode()
    redis = base64.b64decode(secret["VTX_REDIS_URL"]).decode()
    assert db == (
        "postgresql+asyncpg://vtx:change-me@vtx.cluster-abc.eu-west-1.rds.amazonaws.com:5432/vtx"
        "?ssl=require"
    )
    assert redis == "rediss://:change-me@vtx.abc.cache.amazonaws.com:6379/0"


def test_existing_secret_is_used(docs: dict[str, list[dict[str, Any]]]) -> None:
    documents = docs["production"]
    assert not by_kind(documents, "Secret")
    for deployment in by_kind(documents, "Deployment").values():
        env_from = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"secretRef": {"name": "vtx-production"}} in env_from


def test_migrations_hook(docs: dict[str, list[dict[str, Any]]]) -> None:
    def job(scenario: str) -> dict[str, Any]:
        return by_kind(docs[scenario], "Job")[name("migrations")]

    assert job("production")["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job("default")["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    c = job("default")["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["vtx", "db", "upgrade"]
    assert {"VTX_DATABASE_URL", "VTX_DATA_DIR"} <= set(env_of(c))


def test_migrations_switch(template: Any) -> None:
    proc = template("--set", "migrations.enabled=false")
    assert proc.returncode == 0, proc.stderr
    documents = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert not by_kind(documents, "Job")
    assert name("migrations") not in by_kind(documents, "NetworkPolicy")


# ---------------------------------------------------------------- storage and models


def test_store_and_model_volumes(docs: dict[str, list[dict[str, Any]]]) -> None:
    deployments = by_kind(docs["default"], "Deployment")
    for service in SERVICES:
        spec = deployments[name(service)]["spec"]["template"]["spec"]
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        }
        assert claims["store"] == name("store"), service
        mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert {"/tmp", "/data", "/data/store"} <= mounts
    transcriber = deployments[name("transcriber")]["spec"]["template"]["spec"]
    assert any(m["mountPath"] == "/models" for m in transcriber["containers"][0]["volumeMounts"])
    pvcs = by_kind(docs["default"], "PersistentVolumeClaim")
    assert set(pvcs) == {name("store"), name("models")}
    statefulsets = by_kind(docs["default"], "StatefulSet")
    assert set(statefulsets) == {name("redis"), name("postgresql")}
    redis = statefulsets[name("redis")]["spec"]
    assert redis["replicas"] == 1
    assert "--appendonly" in redis["template"]["spec"]["containers"][0]["args"]
    assert redis["volumeClaimTemplates"]
    # A cloud store needs no shared volume.
    aws = by_kind(docs["aws"], "Deployment")[name("gateway")]["spec"]["template"]["spec"]
    assert not any(v["name"] == "store" for v in aws["volumes"])


def test_model_init_container(template: Any) -> None:
    proc = template(
        "--set", "models.init.enabled=true",
        "--set", "models.init.image.repository=registry.local/whisper-large-v3",
        "--set", "models.init.image.tag=v1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    documents = [d for d in yaml.safe_load_all(proc.stdout) if d]
    spec = by_kind(documents, "Deployment")[name("transcriber")]["spec"]["template"]["spec"]
    init = spec["initContainers"][0]
    assert init["image"] == "registry.local/whisper-large-v3:v1"
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]
    config = by_kind(documents, "ConfigMap")[f"{RELEASE}-vtx-config"]["data"]
    assert config["VTX_MODEL"] == "/models/whisper-model"
    assert config["VTX_MODEL_DIR"] == "/models"


# ---------------------------------------------------------------- GPU


def test_gpu_transcriber(docs: dict[str, list[dict[str, Any]]]) -> None:
    deployments = by_kind(docs["gpu"], "Deployment")
    spec = deployments[name("transcriber")]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert spec["runtimeClassName"] == "nvidia"
    assert c["image"].endswith("-gpu")
    env = env_of(c)
    assert env["VTX_DEVICE"] == "cuda"
    assert env["VTX_COMPUTE_TYPE"] == "float16"
    for service in ("gateway", "splitter", "health"):
        other = deployments[name(service)]["spec"]["template"]["spec"]
        assert "nvidia.com/gpu" not in other["containers"][0]["resources"].get("limits", {})
        assert not other["containers"][0]["image"].endswith("-gpu")


def test_cpu_transcriber_has_no_gpu(docs: dict[str, list[dict[str, Any]]]) -> None:
    spec = by_kind(docs["default"], "Deployment")[name("transcriber")]["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in spec["containers"][0]["resources"]["limits"]
    assert "nodeSelector" not in spec
    assert env_of(spec["containers"][0])["VTX_DEVICE"] == "cpu"


# ---------------------------------------------------------------- scaling


@pytest.mark.parametrize("scenario", ["production", "gpu", "full"])
def test_keda_scales_workers_on_their_queues(
    docs: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    documents = docs[scenario]
    deployments = by_kind(documents, "Deployment")
    scaled = by_kind(documents, "ScaledObject")
    assert set(scaled) == {name(w) for w in WORKERS}
    for worker, queue in WORKERS.items():
        so = scaled[name(worker)]["spec"]
        assert so["scaleTargetRef"]["name"] == name(worker) in deployments
        assert "replicas" not in deployments[name(worker)]["spec"], "the autoscaler owns replicas"
        (trigger,) = so["triggers"]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == queue
        assert int(trigger["metadata"]["listLength"]) >= 1
        assert so["maxReplicaCount"] >= so["minReplicaCount"]
    hpas = by_kind(documents, "HorizontalPodAutoscaler")
    assert set(hpas) == {name("gateway")}, "KEDA owns the workers' HPAs"
    assert hpas[name("gateway")]["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_keda_scale_to_zero_and_auth(docs: dict[str, list[dict[str, Any]]]) -> None:
    import base64

    documents = docs["full"]
    scaled = by_kind(documents, "ScaledObject")
    assert scaled[name("splitter")]["spec"]["minReplicaCount"] == 0
    assert scaled[name("transcriber")]["spec"]["minReplicaCount"] == 1
    trigger = scaled[name("transcriber")]["spec"]["triggers"][0]
    assert trigger["metadata"]["address"] == f"{name('redis')}:6379"
    auth = by_kind(documents, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    (ref,) = auth["spec"]["secretTargetRef"]
    secret = by_kind(documents, "Secret")[ref["name"]]
    assert ref["parameter"] == "password"
    assert base64.b64decode(secret["data"][ref["key"]])
    # The GPU scenario scales the transcriber to zero.
    gpu = by_kind(docs["gpu"], "ScaledObject")[name("transcriber")]["spec"]
    assert gpu["minReplicaCount"] == 0


def test_hpa_fallback_without_keda(docs: dict[str, list[dict[str, Any]]]) -> None:
    documents = docs["default"]
    assert not by_kind(documents, "ScaledObject")
    hpas = by_kind(documents, "HorizontalPodAutoscaler")
    assert set(hpas) == {name("gateway"), name("splitter"), name("transcriber")}
    for hpa in hpas.values():
        assert hpa["spec"]["minReplicas"] >= 1
        assert hpa["spec"]["scaleTargetRef"]["name"] == hpa["metadata"]["name"]


def test_fixed_replicas_without_autoscaling(docs: dict[str, list[dict[str, Any]]]) -> None:
    documents = docs["minimal"]
    assert not by_kind(documents, "HorizontalPodAutoscaler")
    for deployment in by_kind(documents, "Deployment").values():
        assert deployment["spec"]["replicas"] >= 1


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_disruption_budgets_select_deployments(
    docs: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    deployments = by_kind(docs[scenario], "Deployment")
    pdbs = by_kind(docs[scenario], "PodDisruptionBudget")
    assert {name(s) for s in ("gateway", "splitter", "transcriber")} <= set(pdbs)
    for pdb_name, pdb in pdbs.items():
        assert (
            pdb["spec"]["selector"]["matchLabels"]
            == deployments[pdb_name]["spec"]["selector"]["matchLabels"]
        )
        assert "maxUnavailable" in pdb["spec"], (
            "minAvailable would block drains of 1-replica workers"
        )


# ---------------------------------------------------------------- edge


def test_ingress_only_for_the_gateway(docs: dict[str, list[dict[str, Any]]]) -> None:
    ingresses = by_kind(docs["production"], "Ingress")
    assert set(ingresses) == {name("gateway")}
    ing = ingresses[name("gateway")]
    annotations = ing["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    body = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert body.endswith("m") and int(body[:-1]) >= 2048
    assert ing["spec"]["tls"][0]["hosts"] == ["vtx.example.com"]
    backends = {
        p["backend"]["service"]["name"]
        for rule in ing["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert backends == {name("gateway")}
    assert not any(
        s["spec"]["type"] != "ClusterIP" for s in by_kind(docs["production"], "Service").values()
    )


def test_service_account(docs: dict[str, list[dict[str, Any]]]) -> None:
    sa = by_kind(docs["default"], "ServiceAccount")[f"{RELEASE}-vtx"]
    assert sa["automountServiceAccountToken"] is False
    aws = by_kind(docs["aws"], "ServiceAccount")[f"{RELEASE}-vtx"]
    assert aws["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    gcp = by_kind(docs["gcp"], "ServiceAccount")[f"{RELEASE}-vtx"]
    assert gcp["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(
        ".iam.gserviceaccount.com"
    )
    azure = by_kind(docs["azure"], "ServiceAccount")[f"{RELEASE}-vtx"]
    assert "azure.workload.identity/client-id" in azure["metadata"]["annotations"]
    for deployment in by_kind(docs["azure"], "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["azure.workload.identity/use"] == "true"
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == f"{RELEASE}-vtx"


@pytest.mark.parametrize(
    ("scenario", "url"),
    [("aws", "s3://"), ("gcp", "gs://"), ("azure", "az://"), ("default", "file:///data/store")],
)
def test_store_urls(docs: dict[str, list[dict[str, Any]]], scenario: str, url: str) -> None:
    config = by_kind(docs[scenario], "ConfigMap")[f"{RELEASE}-vtx-config"]["data"]
    assert config["VTX_STORE_URL"].startswith(url)


def test_helm_test_pod(docs: dict[str, list[dict[str, Any]]]) -> None:
    pods = by_kind(docs["default"], "Pod")
    (pod,) = pods.values()
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][-1]
    assert f"http://{name('gateway')}:8000/health/ready" in script


# ---------------------------------------------------------------- network policies


def peers_match(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = peer.get("podSelector")
    if selector is None or "namespaceSelector" in peer:
        return False
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def policy_for(policies: dict[str, dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        p
        for p in policies.values()
        if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    ]


def component_labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "vtx",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": component,
    }


def egress_ports(policy: dict[str, Any]) -> set[int]:
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_pod_has_exactly_one_policy(
    docs: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    policies = by_kind(docs[scenario], "NetworkPolicy")
    for doc in workloads(docs[scenario]):
        matching = policy_for(policies, pod_labels(doc))
        assert len(matching) == 1, (
            doc["kind"],
            doc["metadata"]["name"],
            [p["metadata"]["name"] for p in matching],
        )
        assert matching[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    for policy in policies.values():
        for rule in policy["spec"]["egress"]:
            assert rule.get("to"), f"{policy['metadata']['name']}: egress to anywhere"
            assert rule.get("ports"), f"{policy['metadata']['name']}: egress on any port"


def test_network_policies_allow_only_what_the_suite_needs(
    docs: dict[str, list[dict[str, Any]]],
) -> None:
    policies = by_kind(docs["full"], "NetworkPolicy")
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }

    # Only the gateway takes traffic from anywhere, and only on its port.
    gateway = policies[name("gateway")]["spec"]
    assert gateway["ingress"] == [{"ports": [{"port": 8000, "protocol": "TCP"}]}]
    for component in ("splitter", "transcriber", "health"):
        ingress = policies[name(component)]["spec"]["ingress"]
        for rule in ingress:
            assert rule["from"], component
            assert rule["ports"] == [{"port": PORTS[component], "protocol": "TCP"}]
        sources = [peer for rule in ingress for peer in rule["from"]]
        health_peers = [p for p in sources if peers_match(p, component_labels("health"))]
        others = [p for p in sources if p not in health_peers]
        assert others == [monitoring], (component, others)
        assert bool(health_peers) == (component != "health")
        # Nobody else in the release may call a worker.
        for other in ("gateway", "splitter", "transcriber", "redis", "postgresql"):
            assert not any(peers_match(p, component_labels(other)) for p in sources)

    # Workers reach DNS, Redis and PostgreSQL, nothing else.
    for component in ("splitter", "transcriber", "gateway"):
        policy = policies[name(component)]
        assert egress_ports(policy) == {53, 6379, 5432}, component
        targets = [peer for rule in policy["spec"]["egress"] for peer in rule["to"]]
        pod_targets = [p for p in targets if "podSelector" in p]
        assert all(
            peers_match(p, component_labels("redis"))
            or peers_match(p, component_labels("postgresql"))
            for p in pod_targets
        )
    # Health also reaches the services' ports.
    assert egress_ports(policies[name("health")]) == {53, 6379, 5432, 8000, 8001, 8002}

    # Redis: vtx pods and KEDA's operator only; PostgreSQL: vtx pods, migrations, backup.
    redis = policies[name("redis")]["spec"]
    assert redis["egress"] == []
    (rule,) = redis["ingress"]
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
    for component in ("gateway", "splitter", "transcriber", "health"):
        assert any(peers_match(p, component_labels(component)) for p in rule["from"])
    for component in ("migrations", "backup", "test", "postgresql"):
        assert not any(peers_match(p, component_labels(component)) for p in rule["from"])
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}} in rule[
        "from"
    ]
    postgres = policies[name("postgresql")]["spec"]
    (rule,) = postgres["ingress"]
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]
    for component in ("gateway", "splitter", "transcriber", "health", "migrations", "backup"):
        assert any(peers_match(p, component_labels(component)) for p in rule["from"])
    for component in ("test", "redis"):
        assert not any(peers_match(p, component_labels(component)) for p in rule["from"])

    # One-shot pods take no traffic.
    for component in ("migrations", "backup", "test"):
        assert policies[name(component)]["spec"]["ingress"] == []
    assert egress_ports(policies[name("migrations")]) == {53, 5432}
    assert egress_ports(policies[name("test")]) == {53, 8000}


def test_cloud_store_egress(docs: dict[str, list[dict[str, Any]]]) -> None:
    policies = by_kind(docs["aws"], "NetworkPolicy")
    for component in ("gateway", "splitter", "transcriber", "health"):
        assert egress_ports(policies[name(component)]) >= {53, 443, 5432, 6379}
    gcp = by_kind(docs["gcp"], "NetworkPolicy")[name("transcriber")]
    assert any(
        peer.get("ipBlock", {}).get("cidr") == "169.254.169.254/32"
        for rule in gcp["spec"]["egress"]
        for peer in rule["to"]
    )


def test_gateway_sources_can_be_restricted(template: Any) -> None:
    proc = template(
        "--set-json",
        'networkPolicy.gatewayFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"ingress-nginx"}}}]',
    )
    assert proc.returncode == 0, proc.stderr
    documents = [d for d in yaml.safe_load_all(proc.stdout) if d]
    (rule,) = by_kind(documents, "NetworkPolicy")[name("gateway")]["spec"]["ingress"]
    sources = rule["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in sources
    assert any(peers_match(p, component_labels("test")) for p in sources), "helm test must reach it"
    assert any(peers_match(p, component_labels("health")) for p in sources)


# ---------------------------------------------------------------- monitoring and backup


def test_monitoring_objects(docs: dict[str, list[dict[str, Any]]]) -> None:
    documents = docs["full"]
    (rule,) = by_kind(documents, "PrometheusRule").values()
    source = yaml.safe_load((CHART / "files" / "vtx-alerts.yaml").read_text())
    assert rule["spec"]["groups"] == source["groups"]
    (monitor,) = by_kind(documents, "ServiceMonitor").values()
    assert monitor["spec"]["selector"]["matchLabels"]["vtx.io/metrics"] == "true"
    relabel = monitor["spec"]["endpoints"][0]["relabelings"][0]
    assert relabel["targetLabel"] == "job" and relabel["replacement"] == "vtx-$1"
    scraped = [
        s for s in by_kind(documents, "Service").values()
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]  # fmt: skip
    assert {s["metadata"]["name"] for s in scraped} == {name(s) for s in SERVICES}
    dashboard = by_kind(documents, "ConfigMap")[f"{RELEASE}-vtx-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["vtx-dashboard.json"])["uid"] == "vtx-overview"
    # Switched off by default.
    for kind in ("PrometheusRule", "ServiceMonitor"):
        assert not by_kind(docs["default"], kind)


def test_backup_cronjob(docs: dict[str, list[dict[str, Any]]]) -> None:
    (cron,) = by_kind(docs["full"], "CronJob").values()
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    dump = spec["initContainers"][0]
    upload = spec["containers"][0]
    assert dump["command"] == ["bash", "/scripts/backup.sh", "/backup"]
    assert upload["command"] == ["python", "/scripts/backup_upload.py", "/backup"]
    env = env_of(upload)
    assert env["VTX_STORE_URL"] == "file:///data/store"
    assert int(env["BACKUP_RETENTION_DAYS"]) >= 1
    scripts = by_kind(docs["full"], "ConfigMap")[f"{RELEASE}-vtx-backup-scripts"]["data"]
    assert scripts["backup.sh"] == (CHART / "files" / "backup.sh").read_text().rstrip("\n")
    assert scripts["backup_upload.py"] == (CHART / "files" / "backup_upload.py").read_text().rstrip(
        "\n"
    )
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def test_every_values_key_is_documented() -> None:
    """Each key has a comment right above it, unless it sits inside a block value that is
    documented as a whole (a "# --" comment: resources, probes, selectors ...)."""
    import re

    undocumented = []
    stack: list[tuple[int, bool]] = []  # (indent, inside a documented block)
    previous = ""
    for number, line in enumerate((CHART / "values.yaml").read_text().splitlines(), 1):
        if not line.strip():
            previous = ""
            continue
        if line.strip().startswith("#"):
            previous = line.strip()
            continue
        match = re.match(r"^(\s*)([A-Za-z][\w./-]*):(\s|$)", line)
        if match is None:  # list items and scalars of a block value
            previous = ""
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        inherited = any(block for _, block in stack)
        if not previous.startswith("#") and not inherited:
            undocumented.append(f"{number}: {line.strip()}")
        stack.append((indent, inherited or previous.startswith("# --")))
        previous = ""
    assert not undocumented, undocumented


def test_values_schema_closes_every_object() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) == set(schema["properties"])


def test_notes_render(helm: Path) -> None:
    proc = run_helm(
        helm, "install", RELEASE, str(CHART), "--dry-run=client", "--namespace", "vtx",
        "-f", str(CHART / "ci" / "production-values.yaml"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "https://vtx.example.com/v1/jobs" in notes
    assert "helm test rel -n vtx" in notes
    assert "KEDA" in notes
