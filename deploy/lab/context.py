#!/usr/bin/env python3
"""Copy the image's build context out of the working tree, and print its fingerprint.

    context.py REPO DEST IGNOREFILE [EXCLUDE ...]

The context is what git would hand over (tracked and untracked-but-not-ignored files,
as they are on disk now, so uncommitted work is in the image), minus the Dockerfile's
ignore patterns and the EXCLUDE patterns (parts of the repository the image does not
use, such as tests/, so that editing them does not rebuild it). The fingerprint
(sha256 over names, modes and contents) lets deploy/lab/images.sh skip a build whose
inputs did not change.
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path


def patterns(ignorefile: Path) -> list[str]:
    lines = (line.strip() for line in ignorefile.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def ignored(path: str, rules: list[str]) -> bool:
    """Docker-style: a pattern matches the path or any folder above it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for rule in rules:
        bare = rule.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, rule) or fnmatch.fnmatch(prefix.split("/")[-1], bare):
                return True
    return False


def files(repo: Path, rules: list[str]) -> list[str]:
    listing = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    names = sorted({name for name in listing.split("\0") if name})
    return [n for n in names if (repo / n).is_file() and not ignored(n, rules)]


def main(argv: list[str]) -> int:
    repo, dest, ignorefile = Path(argv[1]), Path(argv[2]), Path(argv[3])
    rules = patterns(ignorefile) + [rule.rstrip("/") for rule in argv[4:]]
    if dest.exists():
        shutil.rmtree(dest)
    digest = hashlib.sha256()
    for name in files(repo, rules):
        source = repo / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        digest.update(f"{name}\0{source.stat().st_mode & 0o777:o}\0".encode())
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    print(digest.hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
