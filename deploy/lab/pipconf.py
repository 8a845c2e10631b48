#!/usr/bin/env python3
"""Hand this machine's pip configuration to a container build.

    pipconf.py OUT.conf

pip inside `buildah bud` reaches the package index only the way the host's pip does:
its config files and `PIP_*` variables (a mirror, a proxy, local wheel folders, a CA
bundle). This merges them into one file to mount at /etc/pip.conf in the build, and
prints the local folders and files that configuration names, to mount read-only at
the same paths.
"""

from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path

CONFIG_FILES = (
    Path("/etc/pip.conf"),
    Path("/etc/xdg/pip/pip.conf"),
    Path.home() / ".pip" / "pip.conf",
    Path.home() / ".config" / "pip" / "pip.conf",
)


def merged() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read([str(path) for path in CONFIG_FILES])
    if "PIP_CONFIG_FILE" in os.environ:
        config.read(os.environ["PIP_CONFIG_FILE"])
    if not config.has_section("global"):
        config.add_section("global")
    for name, value in os.environ.items():
        if name.startswith("PIP_") and name != "PIP_CONFIG_FILE":
            config.set("global", name[4:].lower().replace("_", "-"), value)
    return config


def local_paths(config: configparser.ConfigParser) -> list[str]:
    """Existing local paths the configuration refers to (plain or file:// URLs). A local
    index (`.../simple`) links its files relative to itself, so its parent is mounted."""
    found: set[str] = set()
    for section in config.sections():
        for value in config[section].values():
            for token in value.split():
                path = Path(token.removeprefix("file://"))
                if path.name == "simple":
                    path = path.parent
                if path.is_absolute() and path.exists():
                    found.add(str(path))
    return sorted(found)


def main(argv: list[str]) -> int:
    config = merged()
    with Path(argv[1]).open("w") as out:
        config.write(out)
    for path in local_paths(config):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
