"""Alert rules, dashboard and the operations guide agree with each other and with the metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from .conftest import CHART, REPO

RULES = CHART / "files" / "vtx-alerts.yaml"
DASHBOARD = CHART / "files" / "vtx-dashboard.json"
OPERATIONS = REPO / "docs" / "operations.md"

# The metrics the services export (the application contract), plus Prometheus' own.
KNOWN_METRICS = {
    "up",
    "vtx_jobs_total",
    "vtx_queue_depth",
    "vtx_stage_duration_seconds_bucket",
    "vtx_stage_duration_seconds_count",
    "vtx_stage_duration_seconds_sum",
    "vtx_audio_seconds_total",
    "vtx_realtime_factor_bucket",
    "vtx_workers_busy",
    "vtx_chunk_retries_total",
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "vtx_data_dir_free_bytes",
    "vtx_data_dir_size_bytes",
    "vtx_dependency_up",
    "vtx_workers_alive",
}
PROMQL_WORDS = {
    "sum", "max", "min", "by", "rate", "increase", "histogram_quantile", "and", "unless",
    "or", "predict_linear", "le", "namespace", "instance", "queue", "job", "outcome", "stage",
    "status", "method", "handler", "service", "label_values", "name", "deriv", "offset",
}  # fmt: skip


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert groups
    return [rule for group in groups for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\boffset\s+\d+[smhdwy]\b", "", expr)  # offsets
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return words - PROMQL_WORDS


def test_rules_are_well_formed(rules: list[dict[str, Any]]) -> None:
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in rules:
        assert re.fullmatch(r"Vtx[A-Za-z0-9]+", rule["alert"])
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
        unknown = metric_names(rule["expr"]) - KNOWN_METRICS
        assert not unknown, (rule["alert"], unknown)


def test_promtool_check_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    proc = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_runbook_section(rules: list[dict[str, Any]]) -> None:
    text = OPERATIONS.read_text()
    headings = set(re.findall(r"^#{2,4} (Vtx[A-Za-z0-9]+)\s*$", text, flags=re.M))
    assert headings == {r["alert"] for r in rules}


def test_operations_guide_covers_the_tasks() -> None:
    text = OPERATIONS.read_text()
    headings = [h.lower() for h in re.findall(r"^##+ (.+)$", text, flags=re.M)]
    for topic in ("install", "upgrade", "scale", "gpu", "backup", "restore", "rotating secrets"):
        assert any(topic in h for h in headings), topic


def test_dashboard(rules: list[dict[str, Any]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "vtx-overview"
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"datasource"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    used: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used |= metric_names(target["expr"].replace("$namespace", ""))
    assert not used - KNOWN_METRICS, used - KNOWN_METRICS
    assert {"vtx_queue_depth", "vtx_jobs_total", "vtx_stage_duration_seconds_bucket"} <= used


def test_promtool_unit_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    tests = REPO / "tests" / "helm" / "vtx-alerts.test.yaml"
    proc = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
