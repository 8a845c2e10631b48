"""`vtx up`'s embedded Redis under the supervisor, with a real redis-server: killed, it
is started again on the same port with the data it had."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from services.cli.embedded_redis import NAME, EmbeddedRedis
from services.cli.supervise import Child, StopRequest, Supervisor
from tests.conftest import free_port


def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def ignore(child: Child) -> None:
    """The supervisor's records go to Redis under `vtx up`; nowhere here."""


def test_a_killed_embedded_redis_comes_back_with_its_data(tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path, free_port())
    said: list[str] = []
    stop = StopRequest()
    supervisor = Supervisor([embedded.child(dict(os.environ))], stop, said.append, ignore)
    supervisor.start()
    watching = threading.Thread(target=supervisor.run)
    try:
        assert supervisor.wait_ready(10)
        client = redis.Redis(host="127.0.0.1", port=embedded.port)
        client.set("queued", "kept")  # written to the append-only file before the reply
        first = supervisor.children[NAME].pid
        assert first is not None
        watching.start()
        os.kill(first, signal.SIGKILL)
        until(lambda: supervisor.children[NAME].restarts == 1 and embedded.answers())
        assert supervisor.children[NAME].pid != first
        assert client.get("queued") == b"kept"
        assert f"the {NAME} exited with code -9; restarting in 1 s" in said[0]
    finally:
        stop.signals = 1
        if watching.is_alive():
            watching.join(10)
        supervisor.stop(((NAME,),))
    assert not embedded.answers()
    assert said[-1] == f"stopped the {NAME} (exit code 0)"


def test_a_port_already_answering_is_refused_before_anything_starts(tmp_path: Path) -> None:
    running = EmbeddedRedis(tmp_path / "first", free_port())
    supervisor = Supervisor([running.child(dict(os.environ))], StopRequest(), print, ignore)
    supervisor.start()
    try:
        assert supervisor.wait_ready(10)
        with pytest.raises(RuntimeError, match="Something already answers"):
            EmbeddedRedis(tmp_path / "second", running.port).child(dict(os.environ))
    finally:
        supervisor.stop(((NAME,),))
