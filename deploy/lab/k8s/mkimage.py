#!/usr/bin/env python3
"""Write a docker-archive (`docker save` format) image tarball from listed files, without Docker.

    mkimage.py OUT.tar NAME:TAG --entrypoint JSON --add SRC:DEST[:mode] ... [--link TARGET:DEST ...]

The lab's `pause` and `busybox` images are made this way (setup.sh); the vtx images are
built by buildah from real Dockerfiles (deploy/lab/images.sh).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

EPOCH = "1970-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 0
    return info


def layer(adds: list[str], links: list[str]) -> bytes:
    """One layer holding the files and symlinks asked for, and the folders above them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()

        def folders_of(path: str) -> None:
            parts = path.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folder = "/".join(parts[:i])
                if folder not in made:
                    made.add(folder)
                    tar.addfile(_member(folder, tarfile.DIRTYPE, 0o755))

        for folder in ("tmp/", "etc/", "proc/", "sys/", "dev/"):
            folders_of(folder + "x")
        for spec in adds:
            src, dest, *mode = spec.split(":")
            folders_of(dest)
            data = Path(src).read_bytes()
            default = 0o755 if os.access(src, os.X_OK) else 0o644
            info = _member(dest.lstrip("/"), mode=int(mode[0], 8) if mode else default)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for spec in links:
            target, dest = spec.split(":")
            folders_of(dest)
            info = _member(dest.lstrip("/"), tarfile.SYMTYPE)
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("ref")
    parser.add_argument("--entrypoint", default="null")
    parser.add_argument("--cmd", default="null")
    parser.add_argument("--add", action="append", default=[])
    parser.add_argument("--link", action="append", default=[])
    args = parser.parse_args()
    layer_data = layer(args.add, args.link)
    layer_digest = hashlib.sha256(layer_data).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": EPOCH,
        "config": {
            "Entrypoint": json.loads(args.entrypoint),
            "Cmd": json.loads(args.cmd),
            "Env": [PATH_ENV],
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
        "history": [{"created": EPOCH, "created_by": "mkimage.py"}],
    }
    config_data = json.dumps(config, sort_keys=True).encode()
    config_digest = hashlib.sha256(config_data).hexdigest()
    manifest = [
        {
            "Config": config_digest + ".json",
            "RepoTags": [args.ref],
            "Layers": [layer_digest + "/layer.tar"],
        }
    ]
    with tarfile.open(args.out, "w") as tar:
        for name, data in (
            (config_digest + ".json", config_data),
            (layer_digest + "/layer.tar", layer_data),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = _member(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    print(args.out, args.ref, "sha256:" + config_digest)


if __name__ == "__main__":
    main()
