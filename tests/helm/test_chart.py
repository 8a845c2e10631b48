"""The Helm chart: lint, Kubernetes schemas, and what the rendered objects promise."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import Settings

from .conftest import (
    ALL_SCENARIOS,
    CHART,
    KUBE_VERSION,
    OLD_KUBE_VERSION,
    RELEASE,
    REPO,
    SCENARIOS,
    SPEAKER_SCENARIOS,
    by_kind,
    containers_of,
    env_of,
    parse,
    pod_labels,
    pod_spec,
    run_helm,
    secret_keys_of,
    tool,
)

SERVICES = ("gateway", "splitter", "transcriber", "health")
WORKERS = {"splitter": "vtx:queue:split", "transcriber": "vtx:queue:transcribe"}
PORTS = {"gateway": 8000, "splitter": 8001, "transcriber": 8002, "health": 8003, "speakers": 8004}
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"}
VERSION_LABELS = {"helm.sh/chart", "app.kubernetes.io/version"}


def name(component: str) -> str:
    return f"{RELEASE}-vtx-{component}"


def services_of(scenario: str) -> tuple[str, ...]:
    """The services a scenario deploys: the four, and speakers where it is switched on."""
    return SERVICES + ("speakers",) * (scenario in SPEAKER_SCENARIOS)


def workers_of(scenario: str) -> dict[str, str]:
    extra = {"speakers": "vtx:queue:speakers"} if scenario in SPEAKER_SCENARIOS else {}
    return WORKERS | extra


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
    "password that breaks a URL": ["--set", "postgresql.auth.password=p@ss/word"],
    "redis password that breaks a URL": ["--set", "redis.auth.password=a b"],
    "auth mode": ["--set", "config.auth=sometimes"],
    "allowed host with a comma": ["--set-json", 'config.allowedHosts=["a,b"]'],
    "addressing": ["--set", "addressing=hosts"],
    "external database without egress CIDRs": [
        "--set",
        "postgresql.enabled=false",
        "--set",
        "externalDatabase.host=db.internal",
    ],
    "external Redis without egress CIDRs": [
        "--set",
        "redis.enabled=false",
        "--set",
        "externalRedis.host=redis.internal",
    ],
    "cloud store without egress CIDRs": ["--set", "objectStore.url=s3://media/vtx"],
    "backups inside the media store": [
        "--set",
        "backup.enabled=true",
        "--set",
        "objectStore.url=s3://media/vtx",
        "--set",
        "backup.storeUrl=s3://media/vtx/backups",
        "--set-json",
        'networkPolicy.egress.objectStoreCidrs=["0.0.0.0/0"]',
    ],
    "backups in an emptyDir": [
        "--set",
        "backup.enabled=true",
        "--set",
        "backup.persistence.enabled=false",
    ],
    "backup time zone on 1.20": [
        "--set",
        "backup.enabled=true",
        "--set",
        "backup.timeZone=Europe/Paris",
        "--kube-version",
        OLD_KUBE_VERSION,
    ],
    "ingress host path without type": [
        "--set-json",
        'ingress.hosts=[{"host":"a","paths":[{"path":"/"}]}]',
    ],
    "kubernetes too old": ["--kube-version", "1.19.0"],
    "batch size over 64": ["--set", "config.batchSize=65"],
    "vad not a boolean": ["--set-string", "config.vad=maybe"],
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


@pytest.mark.parametrize("scenario", sorted(ALL_SCENARIOS))
def test_one_deployment_per_service(docs: dict[str, list[dict[str, Any]]], scenario: str) -> None:
    deployments = by_kind(docs[scenario], "Deployment")
    assert set(deployments) == {name(s) for s in services_of(scenario)}
    for service in services_of(scenario):
        container = deployments[name(service)]["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["vtx", service]
        assert container["ports"][0]["containerPort"] == PORTS[service]
    services = by_kind(docs[scenario], "Service")
    for service in services_of(scenario):
        assert services[name(service)]["spec"]["ports"][0]["port"] == PORTS[service]


@pytest.mark.parametrize("scenario", sorted(ALL_SCENARIOS))
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


@pytest.mark.parametrize("scenario", sorted(ALL_SCENARIOS))
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


@pytest.mark.parametrize("scenario", sorted(ALL_SCENARIOS))
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


@pytest.mark.parametrize("scenario", sorted(ALL_SCENARIOS))
def test_grace_periods(docs: dict[str, list[dict[str, Any]]], scenario: str) -> None:
    config = by_kind(docs[scenario], "ConfigMap")[f"{RELEASE}-vtx-config"]["data"]
    shutdown = int(config["VTX_SHUTDOWN_GRACE_S"])
    deployments = by_kind(docs[scenario], "Deployment")
    for service in services_of(scenario):
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
    assert config["VTX_AUTH"] == "required"
    health = by_kind(docs["default"], "Deployment")[name("health")]
    assert json.loads(env_of(health["spec"]["template"]["spec"]["containers"][0])[
        "VTX_HEALTH_SERVICES"
    ]) == {
        "gateway": f"http://{name('gateway')}:8000",
        "splitter": f"http://{name('splitter')}:8001",
        "transcriber": f"http://{name('transcriber')}:8002",
    }  # fmt: skip
    secret_doc = by_kind(docs["default"], "Secret")[f"{RELEASE}-vtx-secret"]
    secret = secret_doc["data"]
    db = base64.b64decode(secret["VTX_DATABASE_URL"]).decode()
    redis = base64.b64decode(secret["VTX_REDIS_URL"]).decode()
    password = base64.b64decode(secret["redis-password"]).decode()
    fqdn = "vtx.svc.cluster.local"
    assert db.startswith("postgresql+asyncpg://vtx:") and db.endswith(
        f"@{name('postgresql')}.{fqdn}:5432/vtx"
    )
    assert redis == f"redis://:{password}@{name('redis')}.{fqdn}:6379/0"
    # One signing key for media links and one for callbacks, shared by every replica, and
    # the backup passphrase; the Secret outlives an uninstall (the database volume does).
    for key in ("VTX_SECRET_KEY", "VTX_WEBHOOK_SECRET", "backup-key"):
        assert len(base64.b64decode(secret[key])) >= 32
    assert secret_doc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_decoding_settings_reach_every_service(template: Any) -> None:
    """The ConfigMap's decoding values are what Settings reads, with the chart's types."""
    proc = template("--set", "config.vad=false", "--set", "config.batchSize=16")
    assert proc.returncode == 0, proc.stderr
    config = by_kind(parse(proc.stdout), "ConfigMap")[f"{RELEASE}-vtx-config"]["data"]
    wanted = ("VTX_VAD", "VTX_BATCH_SIZE", "VTX_BATCH_WAIT_MS")
    settings = Settings.model_validate({k[4:].lower(): config[k] for k in wanted})
    assert (settings.vad, settings.batch_size, settings.batch_wait_ms) == (False, 16, 50.0)


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
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
        assert refs and {r["name"] for r in refs} == {"vtx-production"}
        assert {r["key"] for r in refs} >= {"VTX_DATABASE_URL", "VTX_REDIS_URL"}


def test_migrations_hook(docs: dict[str, list[dict[str, Any]]]) -> None:
    def job(scenario: str) -> dict[str, Any]:
        return by_kind(docs[scenario], "Job")[name("migrations")]

    assert job("production")["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    # No post-install hook: it would run only after `helm install --wait` gave up waiting
    # for services that need the schema. On install the init containers migrate.
    assert job("default")["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    c = job("default")["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["vtx", "db", "upgrade"]
    assert {"VTX_DATABASE_URL", "VTX_DATA_DIR"} <= set(env_of(c))
    assert secret_keys_of(c) == {"postgres-password"}


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
    assert "--appendonly yes" in redis["template"]["spec"]["containers"][0]["command"][-1]
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
    (init,) = [c for c in spec["initContainers"] if c["name"] == "model-init"]
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
    assert set(scaled) == {name(w) for w in workers_of(scenario)}
    for worker, queue in workers_of(scenario).items():
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
    # KEDA's operator lives in another namespace: the fully qualified name.
    assert trigger["metadata"]["address"] == f"{name('redis')}.vtx.svc.cluster.local:6379"
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


@pytest.mark.parametrize("scenario", sorted(ALL_SCENARIOS))
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
    container = pod["spec"]["containers"][0]
    script = container["command"][-1]
    assert '"/health/ready"' in script and '"/v1/jobs"' in script
    env = env_of(container)
    assert env["GATEWAY"] == f"http://{name('gateway')}:8000"
    assert env["EXPECT_API"] == "401", "the API asks for a key"
    (lab,) = by_kind(docs["lab"], "Pod").values()
    assert (
        env_of(lab["spec"]["containers"][0])["GATEWAY"]
        == "http://$(REL_VTX_GATEWAY_SERVICE_HOST):8000"
    )


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


@pytest.mark.parametrize("scenario", sorted(ALL_SCENARIOS))
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
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }

    # Only the gateway takes traffic from anywhere, and only on its port.
    gateway = policies[name("gateway")]["spec"]
    assert gateway["ingress"] == [{"ports": [{"port": 8000, "protocol": "TCP"}]}]
    for component in ("splitter", "transcriber", "speakers", "health"):
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
        for other in ("gateway", "splitter", "transcriber", "speakers", "redis", "postgresql"):
            assert not any(peers_match(p, component_labels(other)) for p in sources)

    # Workers reach DNS, Redis and PostgreSQL, nothing else; the gateway also the internet.
    for component in ("splitter", "transcriber", "speakers", "gateway"):
        policy = policies[name(component)]
        extra = {80, 443} if component == "gateway" else set()
        assert egress_ports(policy) == {53, 6379, 5432} | extra, component
        targets = [peer for rule in policy["spec"]["egress"] for peer in rule["to"]]
        pod_targets = [p for p in targets if "podSelector" in p]
        assert all(
            peers_match(p, component_labels("redis"))
            or peers_match(p, component_labels("postgresql"))
            for p in pod_targets
        )
    # Health also reaches the services' ports.
    assert egress_ports(policies[name("health")]) == {53, 6379, 5432, 8000, 8001, 8002, 8004}

    # Redis: vtx pods and KEDA's operator only; PostgreSQL: vtx pods, migrations, backup.
    redis = policies[name("redis")]["spec"]
    assert redis["egress"] == []
    (rule,) = redis["ingress"]
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
    for component in ("gateway", "splitter", "transcriber", "speakers", "health"):
        assert any(peers_match(p, component_labels(component)) for p in rule["from"])
    for component in ("migrations", "backup", "test", "postgresql"):
        assert not any(peers_match(p, component_labels(component)) for p in rule["from"])
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}},
        "podSelector": {"matchLabels": {"app": "keda-operator"}},
    } in rule["from"]
    postgres = policies[name("postgresql")]["spec"]
    (rule,) = postgres["ingress"]
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]
    for component in (
        "gateway", "splitter", "transcriber", "speakers", "health", "migrations", "backup",
        "restore",
    ):  # fmt: skip
        assert any(peers_match(p, component_labels(component)) for p in rule["from"])
    for component in ("test", "redis"):
        assert not any(peers_match(p, component_labels(component)) for p in rule["from"])

    # One-shot pods take no traffic; backups go to their own volume here (no egress for it).
    for component in ("migrations", "backup", "restore", "test"):
        assert policies[name(component)]["spec"]["ingress"] == []
    assert egress_ports(policies[name("migrations")]) == {53, 5432}
    assert egress_ports(policies[name("backup")]) == {53, 5432}
    assert egress_ports(policies[name("restore")]) == {53, 5432}
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
    assert {s["metadata"]["name"] for s in scraped} == {name(s) for s in services_of("full")}
    dashboard = by_kind(documents, "ConfigMap")[f"{RELEASE}-vtx-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["vtx-dashboard.json"])["uid"] == "vtx-overview"
    # Switched off by default.
    for kind in ("PrometheusRule", "ServiceMonitor"):
        assert not by_kind(docs["default"], kind)


def test_backup_cronjob(docs: dict[str, list[dict[str, Any]]]) -> None:
    cronjobs = by_kind(docs["full"], "CronJob")
    assert set(cronjobs) == {name("backup"), name("restore")}
    cron = cronjobs[name("backup")]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (dump,) = spec["initContainers"]
    (upload,) = spec["containers"]
    assert dump["command"] == ["bash", "/scripts/backup.sh", "dump", "/backup"]
    assert upload["command"] == ["python", "/scripts/backup_store.py", "upload", "/backup"]
    env = env_of(upload)
    # Apart from the media: its own volume, never the media store's.
    assert env["BACKUP_STORE_URL"] == "file:///backup-store"
    claims = {
        v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in spec["volumes"]
    }
    assert claims["backup-store"] == name("backup")
    assert name("store") not in claims.values()
    assert int(env["BACKUP_RETENTION_DAYS"]) >= 1
    # Encrypted: the dump container reads the passphrase from a file, and only that key.
    assert env_of(dump)["BACKUP_KEY_FILE"] == "/secrets/backup-key"
    (key_volume,) = [v for v in spec["volumes"] if v["name"] == "backup-key"]
    assert key_volume["secret"]["items"] == [{"key": "backup-key", "path": "backup-key"}]
    assert secret_keys_of(dump) == {"postgres-password"}
    assert secret_keys_of(upload) == set()
    scripts = by_kind(docs["full"], "ConfigMap")[f"{RELEASE}-vtx-backup-scripts"]["data"]
    for file in ("backup.sh", "backup_store.py"):
        assert scripts[file] == (CHART / "files" / file).read_text().rstrip("\n")
    pvc = by_kind(docs["full"], "PersistentVolumeClaim")[name("backup")]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_restore_template_never_runs_by_itself(docs: dict[str, list[dict[str, Any]]]) -> None:
    restore = by_kind(docs["full"], "CronJob")[name("restore")]
    assert restore["spec"]["suspend"] is True
    assert restore["spec"]["schedule"] == "0 0 31 2 *", "February 31st"
    spec = restore["spec"]["jobTemplate"]["spec"]
    assert spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    (fetch,) = pod["initContainers"]
    (restore_container,) = pod["containers"]
    assert fetch["command"] == ["python", "/scripts/backup_store.py", "fetch", "/backup"]
    assert env_of(fetch)["BACKUP_NAME"] == ""
    assert restore_container["command"] == ["bash", "/scripts/backup.sh", "restore", "/backup"]


def test_backups_in_another_bucket(template: Any) -> None:
    proc = template(
        "-f", str(CHART / "ci" / "aws-values.yaml"), "--set", "backup.enabled=true",
        "--set", "backup.storeUrl=s3://vtx-backups/prod",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    documents = parse(proc.stdout)
    assert name("backup") not in by_kind(documents, "PersistentVolumeClaim")
    cron = by_kind(documents, "CronJob")[name("backup")]
    upload = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert env_of(upload)["BACKUP_STORE_URL"] == "s3://vtx-backups/prod"
    policy = by_kind(documents, "NetworkPolicy")[name("backup")]
    assert egress_ports(policy) == {53, 443, 5432}


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
    assert "kubectl -n vtx exec deploy/rel-vtx-gateway -c gateway -- vtx keys create NAME" in notes
    assert "vtx.example.com" in notes.split("answers only to these names", 1)[1]


# ---------------------------------------------------------------- exposure (issue 11)


SIGNING_KEYS = {"VTX_SECRET_KEY", "VTX_WEBHOOK_SECRET"}
STORE_KEYS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


@pytest.mark.parametrize("scenario", sorted(ALL_SCENARIOS))
def test_no_pod_receives_the_whole_secret(
    docs: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    for doc in workloads(docs[scenario]):
        for c in containers_of(doc):
            assert not any("secretRef" in e for e in c.get("envFrom", [])), (
                doc["metadata"]["name"],
                c["name"],
            )


def test_each_service_gets_only_the_keys_it_uses(template: Any) -> None:
    proc = template(
        "--set", "secrets.extra.AWS_ACCESS_KEY_ID=id",
        "--set", "secrets.extra.AWS_SECRET_ACCESS_KEY=k",
        "--set", "backup.enabled=true",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    documents = parse(proc.stdout)
    database, redis = {"postgres-password"}, {"redis-password"}
    for service in SERVICES:
        spec = by_kind(documents, "Deployment")[name(service)]["spec"]["template"]["spec"]
        keys = secret_keys_of(spec["containers"][0])
        expected = database | redis | STORE_KEYS
        if service == "gateway":
            expected |= SIGNING_KEYS  # media links, and it delivers (signs) callbacks
        assert keys == expected, (service, keys)
        (migrate,) = [c for c in spec["initContainers"] if c["name"] == "migrate"]
        assert secret_keys_of(migrate) == database, service
    cron = by_kind(documents, "CronJob")[name("backup")]["spec"]["jobTemplate"]["spec"]
    dump, upload = (
        cron["template"]["spec"]["initContainers"][0],
        cron["template"]["spec"]["containers"][0],
    )
    assert secret_keys_of(dump) == database
    assert secret_keys_of(upload) == STORE_KEYS
    for doc in workloads(documents):
        for c in containers_of(doc):
            assert "backup-key" not in secret_keys_of(c), "the backup key is a file, for two pods"
    (test_pod,) = by_kind(documents, "Pod").values()
    assert secret_keys_of(test_pod["spec"]["containers"][0]) == set()


def test_existing_secret_names_its_store_credentials(template: Any) -> None:
    proc = template(
        "-f", str(CHART / "ci" / "production-values.yaml"),
        "--set-json", 'secrets.storeCredentialKeys=["AWS_ACCESS_KEY_ID"]',
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    spec = by_kind(parse(proc.stdout), "Deployment")[name("splitter")]["spec"]["template"]["spec"]
    assert secret_keys_of(spec["containers"][0]) == {
        "VTX_DATABASE_URL", "VTX_REDIS_URL", "AWS_ACCESS_KEY_ID",
    }  # fmt: skip


@pytest.mark.parametrize("scenario", sorted(ALL_SCENARIOS))
def test_no_secret_in_any_argument(
    renders: dict[str, str], docs: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    """Commands and arguments (the process list) never hold a secret: not a value of the
    Secret, not a $(VAR) reference to one, not a URL with credentials."""
    import base64

    values = {
        base64.b64decode(v).decode()
        for secret in by_kind(docs[scenario], "Secret").values()
        for v in secret.get("data", {}).values()
    }
    values = {v for v in values if len(v) >= 8}
    for doc in workloads(docs[scenario]):
        for c in containers_of(doc):
            words = " ".join(c.get("command", []) + c.get("args", []))
            where = (doc["metadata"]["name"], c["name"])
            for e in c.get("env", []):
                if "secretKeyRef" in e.get("valueFrom", {}):
                    assert f"$({e['name']})" not in words, where
            assert not any(v in words for v in values), where
            assert not re.search(r"://[^\s/@:]+:[^\s/@]+@", words), where
        spec = pod_spec(doc)
        assert spec is not None
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            for c in spec["containers"]:
                command = " ".join(c.get(probe, {}).get("exec", {}).get("command", []))
                assert "PASSWORD" not in command.replace("REDISCLI_AUTH", ""), (where, probe)


def test_redis_password_reaches_redis_by_file(docs: dict[str, list[dict[str, Any]]]) -> None:
    redis = by_kind(docs["default"], "StatefulSet")[name("redis")]
    c = redis["spec"]["template"]["spec"]["containers"][0]
    assert c["command"][:2] == ["sh", "-c"]
    assert "args" not in c
    script = c["command"][2]
    assert "requirepass" in script and '"$REDIS_PASSWORD" > /tmp/redis.conf' in script
    assert "exec redis-server /tmp/redis.conf" in script


def test_auth_is_required_by_default(docs: dict[str, list[dict[str, Any]]]) -> None:
    for scenario in ALL_SCENARIOS:
        config = by_kind(docs[scenario], "ConfigMap")[f"{RELEASE}-vtx-config"]["data"]
        assert config["VTX_AUTH"] == "required", scenario


def allowed_hosts(documents: list[dict[str, Any]]) -> list[str]:
    gateway = by_kind(documents, "Deployment")[name("gateway")]["spec"]["template"]["spec"]
    value: str = env_of(gateway["containers"][0])["VTX_ALLOWED_HOSTS"]
    return value.split(",")


def test_allowed_hosts_name_the_gateway_everywhere(docs: dict[str, list[dict[str, Any]]]) -> None:
    service = name("gateway")
    names = [
        service, f"{service}.vtx", f"{service}.vtx.svc", f"{service}.vtx.svc.cluster.local",
        "$(REL_VTX_GATEWAY_SERVICE_HOST)", "localhost", "127.0.0.1",
    ]  # fmt: skip
    default = allowed_hosts(docs["default"])
    assert set(names) <= set(default)
    assert "vtx.example.com" not in default, "no Ingress, no Ingress host"
    production = allowed_hosts(docs["production"])
    assert {"vtx.example.com", *names} <= set(production)
    assert "*" not in default + production
    # Only the gateway checks Host; the others never see a browser.
    for service_name in ("splitter", "transcriber", "health"):
        spec = by_kind(docs["default"], "Deployment")[name(service_name)]["spec"]["template"]
        assert "VTX_ALLOWED_HOSTS" not in env_of(spec["spec"]["containers"][0])


def test_allowed_hosts_take_extra_names(template: Any) -> None:
    proc = template("--set-json", 'config.allowedHosts=["vtx.internal","*.corp.example"]')
    assert proc.returncode == 0, proc.stderr
    assert {"vtx.internal", "*.corp.example"} <= set(allowed_hosts(parse(proc.stdout)))


def test_ingress_routes_the_api_not_metrics_or_docs(
    docs: dict[str, list[dict[str, Any]]], template: Any
) -> None:
    def paths(documents: list[dict[str, Any]]) -> set[tuple[str, str]]:
        (ingress,) = by_kind(documents, "Ingress").values()
        return {
            (p["path"], p["pathType"])
            for rule in ingress["spec"]["rules"]
            for p in rule["http"]["paths"]
        }

    routed = paths(docs["full"])
    assert routed == {("/v1", "Prefix"), ("/", "Exact"), ("/static", "Prefix")}
    docs_too = template("--set", "ingress.enabled=true", "--set", "ingress.exposeDocs=true")
    assert docs_too.returncode == 0, docs_too.stderr
    exposed = paths(parse(docs_too.stdout))
    assert {("/docs", "Exact"), ("/openapi.json", "Exact")} <= exposed
    for routes in (routed, exposed):
        assert not any(p.startswith(("/metrics", "/health")) for p, _ in routes)


def test_only_the_gateway_reaches_the_internet(docs: dict[str, list[dict[str, Any]]]) -> None:
    private = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}
    for scenario in ("default", "aws", "full"):
        policies = by_kind(docs[scenario], "NetworkPolicy")
        for policy_name, policy in policies.items():
            for rule in policy["spec"]["egress"]:
                for peer in rule["to"]:
                    block = peer.get("ipBlock", {})
                    if block.get("cidr") not in ("0.0.0.0/0", "::/0"):
                        continue
                    ports = {p["port"] for p in rule["ports"]}
                    if policy_name == name("gateway") and ports == {80, 443}:
                        if block["cidr"] == "0.0.0.0/0":
                            assert private <= set(block["except"]), scenario
                        continue
                    # Any other reach to everywhere is the object store's HTTPS, by value.
                    assert scenario == "aws" and ports == {443}, (scenario, policy_name, rule)
        gateway = policies[name("gateway")]
        assert {80, 443} <= egress_ports(gateway), scenario
    quiet = by_kind(docs["default"], "NetworkPolicy")
    for component in ("splitter", "transcriber", "health", "migrations", "test"):
        assert not {80, 443} & egress_ports(quiet[name(component)]), component


def test_public_egress_can_be_switched_off(template: Any) -> None:
    proc = template("--set", "networkPolicy.publicEgress.enabled=false")
    assert proc.returncode == 0, proc.stderr
    gateway = by_kind(parse(proc.stdout), "NetworkPolicy")[name("gateway")]
    assert egress_ports(gateway) == {53, 6379, 5432}


def test_external_services_are_reached_only_by_their_cidrs(
    docs: dict[str, list[dict[str, Any]]],
) -> None:
    policy = by_kind(docs["gcp"], "NetworkPolicy")[name("splitter")]
    targets = {
        (peer["ipBlock"]["cidr"], port["port"])
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
        for port in rule["ports"]
    }
    assert ("10.20.0.3/32", 5432) in targets and ("10.20.0.4/32", 6379) in targets
    assert ("0.0.0.0/0", 5432) not in targets and ("0.0.0.0/0", 6379) not in targets


def test_metrics_and_keda_come_from_selected_pods(docs: dict[str, list[dict[str, Any]]]) -> None:
    policies = by_kind(docs["full"], "NetworkPolicy")
    for policy in policies.values():
        for rule in policy["spec"]["ingress"]:
            for peer in rule.get("from", []):
                if "namespaceSelector" in peer:
                    assert peer.get("podSelector", {}).get("matchLabels"), (
                        policy["metadata"]["name"],
                        "a whole namespace may not reach vtx pods",
                    )


# ---------------------------------------------------------------- clusters (issue 15)


@pytest.mark.parametrize(
    ("scenario", "versions"),
    [
        ("full", {"PodDisruptionBudget": "policy/v1", "HorizontalPodAutoscaler": "autoscaling/v2",
                  "CronJob": "batch/v1"}),
        ("full@1.20", {"PodDisruptionBudget": "policy/v1beta1", "CronJob": "batch/v1beta1",
                       "HorizontalPodAutoscaler": "autoscaling/v2beta2"}),
    ],
)  # fmt: skip
def test_api_versions_follow_the_cluster(
    docs: dict[str, list[dict[str, Any]]], scenario: str, versions: dict[str, str]
) -> None:
    for kind, api_version in versions.items():
        objects = [d for d in docs[scenario] if d["kind"] == kind]
        assert objects, (scenario, kind)
        assert {d["apiVersion"] for d in objects} == {api_version}, (scenario, kind)


def test_api_versions_from_the_servers_list(template: Any) -> None:
    """Against a cluster, helm knows each served kind: that wins over the version number."""
    proc = template(
        "--set", "backup.enabled=true", "--kube-version", "1.25.0",
        "--api-versions", "policy/v1beta1/PodDisruptionBudget",
        "--api-versions", "batch/v1beta1/CronJob",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    documents = parse(proc.stdout)
    assert {d["apiVersion"] for d in documents if d["kind"] == "PodDisruptionBudget"} == {
        "policy/v1beta1"
    }
    assert {d["apiVersion"] for d in documents if d["kind"] == "CronJob"} == {"batch/v1beta1"}


def test_custom_resources_only_where_served(docs: dict[str, list[dict[str, Any]]]) -> None:
    old = docs["full@1.20"]
    assert not [d for d in old if d["kind"] in CRD_KINDS]
    hpas = by_kind(old, "HorizontalPodAutoscaler")
    assert {name("splitter"), name("transcriber")} <= set(hpas), "the CPU fallback"
    assert {d["kind"] for d in docs["full"]} >= CRD_KINDS


def test_keda_warning_in_notes(helm: Path) -> None:
    proc = run_helm(
        helm, "install", RELEASE, str(CHART), "--dry-run=client", "--namespace", "vtx",
        "--set", "autoscaling.keda.enabled=true", "--set", "metrics.serviceMonitor.enabled=true",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "serves no keda.sh/v1alpha1 API" in notes
    assert "serves no monitoring.coreos.com/v1 API" in notes


def test_kube_version_range() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.20.0-0"


@pytest.mark.parametrize("scenario", sorted(ALL_SCENARIOS))
def test_every_service_port_names_its_protocol(
    docs: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    """helm 4 applies server-side; a 1.20 server refuses Service ports without protocol."""
    for service in by_kind(docs[scenario], "Service").values():
        for port in service["spec"]["ports"]:
            assert port["protocol"] == "TCP", (service["metadata"]["name"], port)
    for doc in workloads(docs[scenario]):
        for c in containers_of(doc):
            for port in c.get("ports", []):
                assert port["protocol"] == "TCP", (doc["metadata"]["name"], port)


def test_addresses_without_cluster_dns(docs: dict[str, list[dict[str, Any]]]) -> None:
    """addressing: env (the lab): every in-chart address is a $(*_SERVICE_HOST) variable,
    expanded by Kubernetes in env values only (never in the ConfigMap)."""
    documents = docs["lab"]
    host = "$(REL_VTX_{}_SERVICE_HOST)".format
    deployments = by_kind(documents, "Deployment")
    for service in SERVICES:
        spec = deployments[name(service)]["spec"]["template"]["spec"]
        assert spec["enableServiceLinks"] is True
        for c in [*spec["initContainers"], spec["containers"][0]]:
            env = env_of(c)
            where = (service, c["name"])
            assert f"@{host('POSTGRESQL')}:5432/vtx" in env["VTX_DATABASE_URL"], where
            names = [e["name"] for e in c["env"]]
            assert names.index("DATABASE_PASSWORD") < names.index("VTX_DATABASE_URL")
        env = env_of(spec["containers"][0])
        assert env["VTX_REDIS_URL"] == f"redis://:$(REDIS_PASSWORD)@{host('REDIS')}:6379/0"
    health = env_of(deployments[name("health")]["spec"]["template"]["spec"]["containers"][0])
    assert json.loads(health["VTX_HEALTH_SERVICES"]) == {
        s: f"http://{host(s.upper())}:{PORTS[s]}" for s in ("gateway", "splitter", "transcriber")
    }
    config = by_kind(documents, "ConfigMap")[f"{RELEASE}-vtx-config"]["data"]
    assert not any("$(" in v for v in config.values()), "the ConfigMap is not expanded"
    # DNS names by default.
    default = by_kind(docs["default"], "Deployment")[name("gateway")]["spec"]["template"]["spec"]
    url = env_of(default["containers"][0])["VTX_DATABASE_URL"]
    assert url == f"postgresql+asyncpg://vtx:$(DATABASE_PASSWORD)@{name('postgresql')}:5432/vtx"


@pytest.mark.parametrize("scenario", sorted(ALL_SCENARIOS))
def test_services_migrate_before_they_start(
    docs: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    for service in services_of(scenario):
        deployment = by_kind(docs[scenario], "Deployment")[name(service)]
        spec = deployment["spec"]["template"]["spec"]
        migrate = spec["initContainers"][0]
        assert migrate["name"] == "migrate", service
        assert migrate["command"][:2] == ["sh", "-c"] and "vtx db upgrade" in migrate["command"][2]
        # The settings as the service sees them (service links named VTX_* stay overridden).
        assert migrate["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-vtx-config"}}]
        # The default image migrates; the GPU and speakers images are other tags of it.
        own = spec["containers"][0]["image"]
        assert migrate["image"] == own or service in ("transcriber", "speakers"), service
        assert own.startswith(migrate["image"]), (service, own)


def test_migrate_init_container_can_be_switched_off(template: Any) -> None:
    proc = template("--set", "migrations.initContainer=false")
    assert proc.returncode == 0, proc.stderr
    for deployment in by_kind(parse(proc.stdout), "Deployment").values():
        assert "initContainers" not in deployment["spec"]["template"]["spec"]


def test_the_lab_values(docs: dict[str, list[dict[str, Any]]]) -> None:
    """What tests/cluster installs: local images never pulled, small requests for 2 cores."""
    documents = docs["lab@1.20"]
    for doc in workloads(documents):
        for c in containers_of(doc):
            assert c["image"].startswith("localhost/"), (doc["metadata"]["name"], c["image"])
            assert c["imagePullPolicy"] == "Never", (doc["metadata"]["name"], c["name"])
    deployments = by_kind(documents, "Deployment")
    assert deployments[name("transcriber")]["spec"]["replicas"] == 2
    requested = sum(
        int(c["resources"]["requests"]["cpu"].rstrip("m"))
        for d in deployments.values()
        for c in d["spec"]["template"]["spec"]["containers"]
    )
    assert requested <= 500, "room for a third transcriber and a rolling update on 2 cores"


def test_uninstall_keeps_what_notes_promise(helm: Path) -> None:
    proc = run_helm(
        helm, "install", RELEASE, str(CHART), "--dry-run=client", "--namespace", "vtx",
        "-f", str(REPO / "deploy" / "lab" / "values.yaml"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    manifest, notes = proc.stdout.split("NOTES:", 1)
    kept = {
        (d["kind"], d["metadata"]["name"])
        for d in parse(manifest.split("MANIFEST:", 1)[1])
        if d.get("metadata", {}).get("annotations", {}).get("helm.sh/resource-policy") == "keep"
    }
    promised = notes.split("`helm uninstall` keeps", 1)[1]
    for kind, object_name in kept:
        shown = {"PersistentVolumeClaim": "PVC"}.get(kind, kind)
        assert f"- {shown} {object_name} " in promised, (kind, object_name)
    assert f"- PVC data-{name('postgresql')}-0 " in promised
