"""What operators see: probes with their Kubernetes meaning, the aggregator's verdict,
metrics that move and parse, a real Prometheus scraping the suite, logs one grep follows."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import free_port
from tests.databases import PostgresServer
from tests.e2e.conftest import Suite
from tests.e2e.harness import Cluster, running_cluster

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def scrape(url: str) -> str:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value, for every sample line."""
    found = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            found[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return found


def value(text: str, series: str) -> float:
    return samples(text).get(series, 0.0)


def run_job(gateway: str, media: Path) -> str:
    with media.open("rb") as handle:
        created = httpx.post(f"{gateway}/v1/jobs", files={"file": handle}, timeout=60).json()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = httpx.get(f"{gateway}/v1/jobs/{created['id']}").json()
        if job["status"] in ("completed", "failed"):
            assert job["status"] == "completed", job
            job_id: str = created["id"]
            return job_id
        time.sleep(0.2)
    raise AssertionError("job did not complete")


# --------------------------------------------------------- metrics, on `vtx up`


def test_a_completed_job_moves_the_metrics_and_every_output_parses(
    suite: Suite, speech_mp4: Path
) -> None:
    before = {name: scrape(url) for name, url in suite.urls.items()}
    run_job(suite.gateway, speech_mp4)
    time.sleep(6)  # the health service refreshes its gauges every 5 s
    after = {name: scrape(url) for name, url in suite.urls.items()}

    def moved(service: str, series: str) -> float:
        return value(after[service], series) - value(before[service], series)

    assert moved("gateway", 'vtx_stage_duration_seconds_count{stage="upload"}') == 1
    assert moved("splitter", 'vtx_stage_duration_seconds_count{stage="split"}') == 1
    assert moved("transcriber", 'vtx_jobs_total{outcome="completed"}') == 1
    assert moved("transcriber", 'vtx_stage_duration_seconds_count{stage="transcribe"}') == 3
    for stage in ("merge", "end_to_end"):
        assert moved("transcriber", f'vtx_stage_duration_seconds_count{{stage="{stage}"}}') == 1
    assert 20 < moved("transcriber", "vtx_audio_seconds_total") < 30
    assert moved("transcriber", "vtx_realtime_factor_count") == 3
    assert value(after["health"], 'vtx_dependency_up{name="redis"}') == 1
    processes = httpx.get(f"{suite.urls['transcriber']}/health").json()["info"]["processes"]
    alive = value(after["health"], 'vtx_workers_alive{service="transcriber"}')
    assert alive == processes
    assert value(after["health"], "vtx_data_dir_free_bytes") > 0
    assert 'vtx_queue_depth{queue="transcribe"}' in samples(after["health"])
    for name, text in after.items():
        assert not re.search(r"[0-9a-f]{32}", text), f"{name} labels carry job ids"
        check = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert check.returncode == 0, (name, check.stdout, check.stderr)


def test_the_dashboard_and_alerts_only_name_metrics_the_suite_exports(
    suite: Suite, speech_mp4: Path
) -> None:
    run_job(suite.gateway, speech_mp4)
    exported = set()
    for url in suite.urls.values():
        exported |= {series.split("{")[0] for series in samples(scrape(url))}
    dashboard = json.loads((DEPLOY / "grafana" / "vtx-dashboard.json").read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "vtx-alerts.yaml").read_text())
    queries += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    named = set()
    for query in queries:
        named |= set(re.findall(r"\b(vtx_[a-z0-9_]+|http_[a-z0-9_]+)", query))
    assert named, "no metric found in the dashboard"
    assert named <= exported, sorted(named - exported)


@pytest.fixture
def prometheus(suite: Suite, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus server scraping the running suite every second."""
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is installed by make test"
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    for job in config["scrape_configs"]:
        service = job["job_name"].removeprefix("vtx-")
        job["static_configs"] = [{"targets": [suite.urls[service].removeprefix("http://")]}]
    config["rule_files"] = [str((DEPLOY / "prometheus" / "vtx-alerts.yaml").resolve())]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address={address}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )  # fmt: skip
    try:
        yield f"http://{address}"
    finally:
        process.terminate()
        process.wait(30)


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5)
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def test_a_real_prometheus_scrapes_the_suite_and_loads_the_rules(
    suite: Suite, speech_mp4: Path, prometheus: str
) -> None:
    run_job(suite.gateway, speech_mp4)
    deadline = time.monotonic() + 60
    completed: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            completed = query(prometheus, 'sum(vtx_jobs_total{outcome="completed"})')
            targets = query(prometheus, 'up{job=~"vtx-.*"}')
        except httpx.HTTPError:
            time.sleep(0.5)
            continue
        if completed and len(targets) == 4:
            break
        time.sleep(0.5)
    assert completed and float(completed[0]["value"][1]) >= 1
    assert {t["metric"]["job"] for t in targets} == {f"vtx-{s}" for s in suite.urls}
    assert all(t["value"][1] == "1" for t in targets)
    groups = httpx.get(f"{prometheus}/api/v1/rules").json()["data"]["groups"]
    assert {g["name"] for g in groups} == {"vtx.availability", "vtx.pipeline", "vtx.capacity"}


def test_one_grep_follows_one_job_through_the_suite(suite: Suite, speech_mp4: Path) -> None:
    job_id = run_job(suite.gateway, speech_mp4)
    time.sleep(0.5)
    lines = [json.loads(line) for line in suite.log.read_text().splitlines() if job_id in line]
    services = {line["service"] for line in lines}
    assert {"gateway", "splitter", "transcriber"} <= services
    assert all(line.get("job_id") == job_id for line in lines if line["service"] != "gateway")
    request_ids = {line["request_id"] for line in lines if "request_id" in line}
    assert len(request_ids) == 1
    for service in ("gateway", "splitter", "transcriber"):
        assert any(line.get("request_id") and line["service"] == service for line in lines)
    chunks = {line["chunk"] for line in lines if "chunk" in line}
    assert chunks == {0, 1, 2}


# ------------------------------------------- probes and verdicts, under faults


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("probes")
    services = ("gateway", "splitter", "transcriber", "health")
    env = {
        "VTX_HEALTH_TIMEOUT_S": "1",
        "VTX_TRANSCRIBER_PROCESSES": "2",
        "VTX_CHUNK_SECONDS": "10",
    }
    with running_cluster(root, postgres, services, **env) as cluster:
        yield cluster


def detailed(cluster: Cluster) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{cluster.url('health')}/health/detailed", timeout=30)
    return response.status_code, response.json()


def wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_metrics_add_up_across_the_processes_of_a_service(
    cluster: Cluster, speech_mp4: Path
) -> None:
    """Two transcriber processes share a port: whichever answers, /metrics counts both."""
    run_job(cluster.gateway, speech_mp4)
    workers = detailed(cluster)[1]["workers"]
    assert len({w["pid"] for w in workers if w["service"] == "transcriber"}) == 2
    for _ in range(6):
        text = scrape(cluster.url("transcriber"))
        assert value(text, 'vtx_stage_duration_seconds_count{stage="transcribe"}') == 3
        assert value(text, 'vtx_jobs_total{outcome="completed"}') == 1


def test_readiness_names_redis_while_it_is_down_and_liveness_stays(cluster: Cluster) -> None:
    code, document = detailed(cluster)
    assert (code, document["status"]) == (200, "ok")
    assert document["model"]["model"] == "tiny.en" and document["model"]["device"] == "cpu"
    assert {w["service"] for w in document["workers"]} == {"splitter", "transcriber"}
    cluster.redis.stop()
    try:
        for name in ("gateway", "splitter", "transcriber"):
            ready = httpx.get(f"{cluster.url(name)}/health/ready", timeout=10)
            assert ready.status_code == 503
            assert ready.json()["failing"] == ["redis"]
            assert httpx.get(f"{cluster.url(name)}/health/live").status_code == 200
        code, document = detailed(cluster)
        assert (code, document["status"]) == (503, "down")
        assert document["dependencies"]["redis"]["status"] == "down"
    finally:
        cluster.redis.start()
    for name in ("gateway", "splitter", "transcriber", "health"):
        wait_for(
            lambda n=name: httpx.get(f"{cluster.url(n)}/health/ready").status_code == 200,
            f"{name} ready again",
        )


def test_a_stopped_service_is_down_and_the_suite_degraded(cluster: Cluster) -> None:
    cluster.terminate("transcriber")
    try:
        code, document = detailed(cluster)
        assert (code, document["status"]) == (200, "degraded")
        assert document["services"]["transcriber"]["status"] == "down"
        assert document["services"]["gateway"]["status"] == "ok"
        cluster.terminate("gateway")
        code, document = detailed(cluster)
        assert (code, document["status"]) == (503, "down")
    finally:
        cluster.start("gateway")
        cluster.start("transcriber")
    wait_for(lambda: detailed(cluster)[1]["status"] == "ok", "the suite ok again")
