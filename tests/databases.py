"""Database backends for the tests: SQLite files by default, a real PostgreSQL on demand.

`VTX_TEST_DATABASE=postgres pytest ...` runs the same tests on a PostgreSQL server
that the tests start themselves (as the `postgres` user when running as root,
since initdb refuses root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

BACKEND = os.environ.get("VTX_TEST_DATABASE", "sqlite")


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (make test installs it)")
    return found[-1]


class PostgresServer:
    """initdb + pg_ctl in a temporary folder, trust auth on loopback, fsync off."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="vtx-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self._as_root = os.geteuid() == 0

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, cwd=self.root)

    def start(self) -> None:
        self.data.mkdir()
        self.sockets.mkdir()
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
            for path in (self.data, self.sockets):
                shutil.chown(path, "postgres", "postgres")
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        self.pg_ctl("start", "-w", "-l", str(self.data / "server.log"), "-o",
                    f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")  # fmt: skip

    def pg_ctl(self, action: str, *options: str) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), action, *options)

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "fast", "-w")
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        # -l again: without it the server would write into (and hold open) our capture pipe.
        self.pg_ctl("restart", "-m", "fast", "-w", "-l", str(self.data / "server.log"))

    def create_database(self) -> str:
        name = f"vtx_{uuid.uuid4().hex[:12]}"
        for _ in range(50):
            result = subprocess.run(
                [_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
                capture_output=True,
            )
            if result.returncode == 0:
                return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"
            time.sleep(0.1)
        raise RuntimeError(result.stderr.decode())
