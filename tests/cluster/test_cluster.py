"""The Helm chart on a real Kubernetes node (the k8s lab): one scenario, step by step.

Install with `--wait` (the services migrate before they serve), `helm test`, no secret in
any process's arguments, a real job through the Services and pods, a transcriber killed
mid-job, three transcribers sharing a job, an upgrade (helm 4) while a job runs, a refused
upgrade and a rollback, a backup restored by the runbook after the database was dropped,
and an uninstall that leaves only what the chart says it keeps. The steps run in file
order and build on each other (run.sh passes -x: the first failure stops the scenario).
"""

from __future__ import annotations

import base64
import json
import re
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.wer import word_error_rate
from tests.cluster.lab import CHART, RELEASE, SERVICES, Api, Lab, LabError, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MAX_WER = 0.3
CREDENTIALS_IN_URL = re.compile(r"://[^\s/@:]+:[^\s/@]+@")
# Transcripts of undisturbed runs, kept for the runs that are disturbed.
REFERENCE: dict[str, str] = {}

pytestmark = pytest.mark.timeout(1200)


def chunk_pods(lab: Lab, job_id: str) -> dict[str, set[int]]:
    """transcriber pod -> the chunks of this job it finished, from the pods' own logs."""
    done: dict[str, set[int]] = {}
    for pod in lab.pods("transcriber"):
        name = pod["metadata"]["name"]
        for line in lab.logs(name, "transcriber").splitlines():
            if job_id not in line or '"chunk.done"' not in line:
                continue
            event = json.loads(line)
            if event.get("event") == "chunk.done" and event.get("job_id") == job_id:
                done.setdefault(name, set()).add(int(event["chunk"]))
    return done


def wait_started(api: Api, job_id: str, done_at_least: int = 1) -> dict[str, Any]:
    """Wait until some chunks are done and some are not: the job is in flight."""

    def started() -> dict[str, Any] | None:
        job = api.job(job_id)
        progress = job["progress"]
        assert job["status"] not in ("completed", "failed"), f"job ended too soon: {job}"
        return job if progress["chunks_done"] >= done_at_least else None

    return wait_for(f"job {job_id} to be under way", started, 300, every=0.3)


def no_pods(lab: Lab, component: str) -> bool:
    return not lab.pods(component)


def secret_values(lab: Lab) -> dict[str, str]:
    secret = json.loads(lab.kubectl("get", "secret", f"{RELEASE}-secret", "-o", "json"))
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


# ---------------------------------------------------------------- install


def test_install_waits_and_migrates_before_any_service_serves(
    lab: Lab, volumes: dict[str, Path]
) -> None:
    out = lab.helm("install", RELEASE, *lab.chart_args(), "--wait", "--timeout", "15m")
    assert "STATUS: deployed" in out
    for component in SERVICES:
        pods = lab.ready_pods(component)
        assert pods, component
        for pod in pods:
            name, status = pod["metadata"]["name"], pod["status"]
            (migrate,) = [s for s in status["initContainerStatuses"] if s["name"] == "migrate"]
            finished = migrate["state"]["terminated"]
            assert finished["exitCode"] == 0, (name, finished)
            (main,) = [s for s in status["containerStatuses"] if s["name"] == component]
            # It never started on an old (here: empty) schema and crashed.
            assert main["restartCount"] == 0, (name, main)
            assert main["state"]["running"]["startedAt"] >= finished["finishedAt"], name
            log = lab.logs(name, "migrate")
            assert re.search(r"database revision: (\w+) \(this code needs \1\)", log), log
            assert "duplicate key" not in log, f"{name}: concurrent migrations raced:\n{log}"
    version = lab.kubectl(
        "exec", f"{RELEASE}-postgresql-0", "--", "psql", "-U", "vtx", "-d", "vtx", "-tAc",
        "SELECT version_num FROM alembic_version",
    ).strip()  # fmt: skip
    assert re.fullmatch(r"\w+", version), version


def test_services_find_each_other_without_cluster_dns(lab: Lab) -> None:
    """The lab has no DNS: every address a pod uses came from *_SERVICE_HOST."""
    assert "kube-dns" not in lab.run(lab.root / "bin" / "kubectl", "get", "svc", "-A")
    document = httpx.get(f"http://{lab.service_ip('health')}:8003/health/detailed").json()
    assert document["status"] == "ok", document
    for name, service in document["services"].items():
        assert service["status"] == "ok", (name, service)
        assert re.fullmatch(r"http://10\.0\.0\.\d+:\d+", service["url"]), service
    assert {d["status"] for d in document["dependencies"].values()} == {"ok"}


def helm_test(lab: Lab) -> None:
    out = lab.helm("test", RELEASE, "--timeout", "5m")
    assert re.search(r"Phase:\s+Succeeded", out), out


def test_helm_test_passes(lab: Lab) -> None:
    helm_test(lab)


def test_no_secret_reaches_a_process_argument(lab: Lab) -> None:
    secrets = {k: v for k, v in secret_values(lab).items() if len(v) >= 8}
    assert {"postgres-password", "redis-password", "VTX_SECRET_KEY"} <= set(secrets)
    pods = lab.objects("pods", "-l", f"app.kubernetes.io/instance={RELEASE}")
    seen = 0
    for pod in pods:
        if pod["status"].get("phase") != "Running":
            continue
        for container in pod["spec"]["containers"]:
            listing = lab.kubectl(
                "exec", pod["metadata"]["name"], "-c", container["name"], "--", "sh", "-c",
                'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f"; echo; done',
            )  # fmt: skip
            seen += 1
            where = f"{pod['metadata']['name']}/{container['name']}"
            for key, value in secrets.items():
                assert value not in listing, f"{key} in a process argument of {where}"
            assert not CREDENTIALS_IN_URL.search(listing), f"a URL with credentials in {where}"
    assert seen >= 7, "every service, PostgreSQL and Redis were looked at"
    # Each service receives only the keys it needs, one by one.
    for deployment in lab.objects("deployments", "-l", f"app.kubernetes.io/instance={RELEASE}"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert not any("secretRef" in e for e in container.get("envFrom", [])), component
        keys = {
            e["valueFrom"]["secretKeyRef"]["key"]
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        signing = {"VTX_SECRET_KEY", "VTX_WEBHOOK_SECRET"}
        assert (signing <= keys) == (component == "gateway"), (component, keys)
        assert "backup-key" not in keys, component


# ---------------------------------------------------------------- jobs through the cluster


def test_a_job_goes_through_every_pod(lab: Lab, api: Api, speech_text: str) -> None:
    job_id = api.submit(FIXTURES / "speech.mp4")
    job = api.wait(job_id, timeout=300)
    text = api.transcript(job_id)
    assert word_error_rate(speech_text, text) <= MAX_WER, text
    (splitter,) = lab.pods("splitter")
    assert job_id in lab.logs(splitter["metadata"]["name"], "splitter"), "split in the splitter pod"
    spread = chunk_pods(lab, job_id)
    assert len(spread) == 2, f"two transcriber pods share the chunks: {spread}"
    assert set().union(*spread.values()) == set(range(job["progress"]["chunks_total"]))


def test_a_long_job_undisturbed(api: Api, long_media: Path, speech_text: str) -> None:
    job_id = api.submit(long_media)
    job = api.wait(job_id, timeout=600)
    assert job["progress"]["chunks_total"] >= 8, job
    text = api.transcript(job_id)
    assert word_error_rate(" ".join([speech_text] * 4), text) <= MAX_WER, text
    REFERENCE["x4"] = text


def test_a_transcriber_deleted_mid_job_changes_nothing(
    lab: Lab, api: Api, long_media: Path
) -> None:
    job_id = api.submit(long_media)
    job = wait_started(api, job_id)
    total = job["progress"]["chunks_total"]
    working = sorted(chunk_pods(lab, job_id)) or [lab.pods("transcriber")[0]["metadata"]["name"]]
    victim = working[0]  # a pod that has worked on this job
    lab.kubectl("delete", "pod", victim, "--wait=false")
    assert api.job(job_id)["progress"]["chunks_done"] < total, "deleted while chunks were left"
    api.wait(job_id, timeout=600)
    assert api.transcript(job_id) == REFERENCE["x4"]
    lab.wait_rolled_out(["transcriber"])
    assert victim not in {p["metadata"]["name"] for p in lab.pods("transcriber")}


def test_three_transcribers_share_a_job(lab: Lab, api: Api, long_media: Path) -> None:
    lab.kubectl("scale", f"deployment/{RELEASE}-transcriber", "--replicas=3")
    wait_for("three ready transcribers", lambda: len(lab.ready_pods("transcriber")) == 3, 600)
    job_id = api.submit(long_media)
    api.wait(job_id, timeout=600)
    assert api.transcript(job_id) == REFERENCE["x4"]
    spread = chunk_pods(lab, job_id)
    assert len(spread) == 3, f"every transcriber took chunks: {spread}"


# ---------------------------------------------------------------- upgrades


@pytest.fixture(scope="module")
def very_long_media(tmp_path_factory: pytest.TempPathFactory, long_media: Path) -> Path:
    """Six times the long recording (about ten minutes): still running while pods roll."""
    import wave

    with wave.open(str(long_media), "rb") as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
    path = tmp_path_factory.mktemp("media") / "speech-x24.wav"
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(frames * 6)
    return path


def test_upgrade_with_a_job_in_flight(
    lab: Lab, api: Api, very_long_media: Path, speech_text: str
) -> None:
    before = {p["metadata"]["name"] for c in SERVICES for p in lab.pods(c)}
    job_id = api.submit(very_long_media)
    wait_started(api, job_id)
    out = lab.helm(
        "upgrade", RELEASE, *lab.chart_args("--set", "config.logLevel=DEBUG"),
        "--wait", "--timeout", "15m", v4=True,
    )  # fmt: skip
    assert "has been upgraded" in out, out
    job = api.wait(job_id, timeout=900)
    text = api.transcript(job_id)
    assert word_error_rate(" ".join([speech_text] * 24), text) <= MAX_WER, text
    after = {c: lab.ready_pods(c) for c in SERVICES}
    for component, pods in after.items():
        assert pods and not {p["metadata"]["name"] for p in pods} & before, component
        for pod in pods:
            level = lab.kubectl(
                "exec", pod["metadata"]["name"], "-c", component, "--", "printenv", "VTX_LOG_LEVEL"
            )  # fmt: skip
            assert level.strip() == "DEBUG", pod["metadata"]["name"]
    # New transcribers finished chunks the old ones had not: the job crossed the rollout.
    assert chunk_pods(lab, job_id), "no chunk of the job was left for the new pods"
    assert job["progress"]["chunks_done"] == job["progress"]["chunks_total"]


def history(lab: Lab) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(lab.helm("history", RELEASE, "-o", "json"))
    return entries


def test_a_refused_upgrade_then_a_rollback(lab: Lab, api: Api) -> None:
    good = history(lab)[-1]["revision"]
    out = lab.helm(
        "upgrade", RELEASE,
        *lab.chart_args("--set", "config.logLevel=DEBUG", "--set-string",
                        "gateway.podLabels.broken=not a label value!"),
        "--wait", "--timeout", "3m", check=False,
    )  # fmt: skip
    assert "Error" in out and "Invalid value" in out, out
    assert history(lab)[-1]["status"] == "failed"
    assert api.jobs() is not None, "the running release still serves"
    gateway = json.loads(lab.kubectl("get", "deployment", f"{RELEASE}-gateway", "-o", "json"))
    assert "broken" not in gateway["spec"]["template"]["metadata"]["labels"]
    lab.helm("rollback", RELEASE, str(good), "--wait", "--timeout", "10m")
    last = history(lab)[-1]
    assert last["status"] == "deployed" and f"Rollback to {good}" in last["description"], last
    lab.wait_rolled_out()
    helm_test(lab)
    config = json.loads(lab.kubectl("get", "configmap", f"{RELEASE}-config", "-o", "json"))
    assert config["data"]["VTX_LOG_LEVEL"] == "DEBUG"


# ---------------------------------------------------------------- backup and restore


def test_backup_restore_round_trip(lab: Lab, api: Api, volumes: dict[str, Path]) -> None:
    """docs/operations.md, "Backups" and "Restore", step by step, after the database is gone."""
    jobs = {j["id"]: api.transcript(j["id"]) for j in api.jobs() if j["status"] == "completed"}
    assert len(jobs) >= 5
    lab.job_from_cronjob(f"{RELEASE}-backup", "backup-now")
    lab.wait_job("backup-now")
    dumps = sorted((volumes["backup"] / "backups" / "postgresql").glob("vtx-*.dump.enc"))
    assert dumps, "the dump is in the backup volume"
    assert not dumps[-1].read_bytes().startswith(b"PGDMP"), "and encrypted"
    assert not list(volumes["store"].rglob("*.dump*")), "never among the media"

    # Disaster: the database is gone.
    writers = [f"deploy/{RELEASE}-{c}" for c in ("gateway", "splitter", "transcriber")]
    lab.kubectl("scale", *writers, "--replicas=0")
    for component in ("gateway", "splitter", "transcriber"):
        wait_for(f"no {component} pod", partial(no_pods, lab, component), 300)
    lab.kubectl(
        "exec", f"{RELEASE}-postgresql-0", "--", "psql", "-U", "vtx", "-d", "postgres", "-c",
        "DROP DATABASE vtx WITH (FORCE)",
    )  # fmt: skip

    # The runbook: restore the newest dump, then start again with the release's values.
    lab.job_from_cronjob(f"{RELEASE}-restore", "restore-now")
    lab.wait_job("restore-now")
    lab.helm("upgrade", RELEASE, str(CHART), "--reuse-values", "--wait", "--timeout", "15m")
    lab.wait_rolled_out()
    for job_id, text in jobs.items():
        assert api.job(job_id)["status"] == "completed", job_id
        assert api.transcript(job_id) == text, job_id


# ---------------------------------------------------------------- uninstall


def kept_by_notes(notes: str) -> set[tuple[str, str]]:
    """The objects NOTES.txt says `helm uninstall` keeps, as (kind, name)."""
    kinds = {"Secret": "Secret", "PVC": "PersistentVolumeClaim"}
    section = notes.split("`helm uninstall` keeps", 1)[1].split("Delete them by hand", 1)[0]
    found = re.findall(r"^\s+- (Secret|PVC) (\S+)", section, flags=re.M)
    return {(kinds[kind], name) for kind, name in found}


def namespace_objects(lab: Lab) -> set[tuple[str, str]]:
    kinds = lab.run(
        lab.root / "bin" / "kubectl", "api-resources", "--namespaced", "--verbs=list", "-o", "name"
    ).split()
    kinds = [k for k in kinds if not k.startswith("events")]
    items = lab.objects(",".join(kinds))
    return {(i["kind"], i["metadata"]["name"]) for i in items}


# What Kubernetes itself puts in every namespace.
def made_by_kubernetes(kind: str, name: str) -> bool:
    return (kind, name) in {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")} or (
        kind == "Secret" and name.startswith("default-token-")
    )


def test_uninstall_leaves_only_what_the_chart_keeps(lab: Lab) -> None:
    kept = kept_by_notes(lab.helm("get", "notes", RELEASE))
    assert ("Secret", f"{RELEASE}-secret") in kept and len(kept) >= 4, kept
    lab.helm("uninstall", RELEASE, "--wait", "--timeout", "5m")

    def left() -> set[tuple[str, str]] | None:
        objects = {o for o in namespace_objects(lab) if not made_by_kubernetes(*o)}
        return objects if objects <= kept else None

    try:
        remaining = wait_for("only the kept objects", left, 300, every=5)
    except LabError:
        remaining = {o for o in namespace_objects(lab) if not made_by_kubernetes(*o)}
        raise AssertionError(f"left behind: {sorted(remaining - kept)}") from None
    assert remaining == kept
