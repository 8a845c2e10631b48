"""Fixtures every test layer shares: a real Redis server, settings in a temp folder, media."""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import redis

from services.cli.embedded_redis import redis_binary
from tests.databases import BACKEND, PostgresServer

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A throwaway redis-server on a free port, without persistence."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        options = f"--port {self.port} --bind 127.0.0.1 --save '' --appendonly no"
        self.process = subprocess.Popen(
            [redis_binary(), *shlex.split(options), "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.025)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def flush(self) -> None:
        redis.Redis(port=self.port).flushall()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    """The PostgreSQL server when the tests run on PostgreSQL (VTX_TEST_DATABASE=postgres)."""
    if BACKEND != "postgres":
        yield None
        return
    server = PostgresServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def database_url(postgres: PostgresServer | None) -> str | None:
    """A fresh database per test on PostgreSQL; None means SQLite in the test's data folder."""
    return postgres.create_database() if postgres is not None else None


@pytest.fixture(scope="session")
def speech_mp4() -> Path:
    return FIXTURES / "speech.mp4"


@pytest.fixture(scope="session")
def speech_words() -> list[str]:
    return words((FIXTURES / "speech.txt").read_text())


def words(text: str) -> list[str]:
    return [w.strip(".,!?;:\"'").lower() for w in text.split() if w.strip(".,!?;:\"'")]


def recall(reference: list[str], hypothesis: str) -> float:
    """Share of reference words found in the hypothesis (order-free, a coarse check)."""
    found = set(words(hypothesis))
    return sum(w in found for w in reference) / len(reference)


def make_silent_video(path: Path, seconds: int = 2) -> Path:
    """An MP4 with an H.264 track and no audio at all."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(seconds * 5):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 5)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def make_playlist_attack(directory: Path, target: Path) -> Path:
    """An HLS playlist whose only segment is another local media file."""
    victim = directory / "victim.mp4"
    shutil.copy(target, victim)
    playlist = directory / "playlist.m3u8"
    playlist.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:30\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:25.0,\n{victim}\n#EXT-X-ENDLIST\n"
    )
    return playlist
