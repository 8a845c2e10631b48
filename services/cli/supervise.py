"""Supervision for `vtx up`: every service a child in its own process group, restarted
with backoff when it dies, and all of them stopped in order.

Each child is forked with a parent-death signal (so it never outlives `vtx up`, even a
SIGKILLed one) and in its own process group (so a terminal's Ctrl-C reaches only `vtx
up`, which then stops the children in order). A child that dies is taken down with its
whole group (uvicorn's worker processes too, which would hold its port), then started
again after a delay that doubles while it keeps dying.

`vtx up` stays single-threaded: a `preexec_fn` is only safe in a process without
other threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Literal

PR_SET_PDEATHSIG = 1
POLL_S = 0.2
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None

State = Literal["starting", "running", "restarting", "stopping", "stopped"]


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> None:
    """Have the kernel send `sig` when the parent exits; if `parent` is gone already, now.

    Linux only (prctl); elsewhere a child may outlive a parent that was SIGKILLed."""
    if _libc is None:
        return
    if _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)


def spawn(
    command: Sequence[str], env: dict[str, str] | None = None, stdout: IO[bytes] | int | None = None
) -> subprocess.Popen[bytes]:
    """A child in a process group of its own, which gets SIGTERM when this process ends."""
    return subprocess.Popen(
        list(command),
        env=env,
        stdout=stdout,
        process_group=0,
        preexec_fn=functools.partial(die_with_parent, signal.SIGTERM, os.getpid()),
    )


def kill_group(pgid: int) -> None:
    """SIGKILL every process left in a child's group (its own pid is the group's id)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass
class Backoff:
    """Seconds before the next start: doubles per crash, forgiven after a stable run."""

    first_s: float = 1.0
    max_s: float = 30.0
    stable_s: float = 60.0
    crashes: int = 0

    def next_delay(self) -> float:
        self.crashes += 1
        return min(self.max_s, self.first_s * 2.0 ** (self.crashes - 1))

    def ran_for(self, seconds: float) -> None:
        if seconds >= self.stable_s:
            self.crashes = 0


@dataclass
class Child:
    """One supervised service: how to start it, how to tell it is ready, its history."""

    name: str
    command: list[str]
    env: dict[str, str]
    ready: Callable[[], bool]
    stop_grace_s: float = 30.0
    quiet: bool = False  # its output goes to its own log file, not vtx up's
    process: subprocess.Popen[bytes] | None = None
    state: State = "stopped"
    restarts: int = 0
    last_exit: int | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    backoff: Backoff = field(default_factory=Backoff)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        self.process = spawn(self.command, self.env, subprocess.DEVNULL if self.quiet else None)
        self.state = "starting"
        self.started_at = time.monotonic()

    def exited(self) -> bool:
        """Whether the service's process has ended, without reaping it: until it is reaped
        its pid cannot be reused, so its group can still be killed safely."""
        if self.process is None or self.process.returncode is not None:
            return True
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.process.pid, flags) is not None

    def take_down(self) -> int | None:
        """Kill whatever is left of the service's group, then reap it: its exit code."""
        if self.process is None:
            return None
        if self.process.returncode is None:  # not reaped yet: the group id is still its own
            kill_group(self.process.pid)
        return self.process.wait()

    def terminate(self) -> None:
        """SIGTERM to the service's own process: uvicorn drains, then stops its workers."""
        if self.process is not None and not self.exited():
            self.state = "stopping"
            self.process.send_signal(signal.SIGTERM)

    def reap(self, deadline: float, forced: Callable[[], bool]) -> int | None:
        """Wait for the stop until `deadline` (or a forced stop), then kill what is left."""
        if self.process is None:
            return None
        while not self.exited() and time.monotonic() < deadline and not forced():
            time.sleep(POLL_S)
        code = self.take_down()
        self.state = "stopped"
        return code


class StopRequest:
    """SIGINT and SIGTERM ask `vtx up` to stop; a second one asks it to stop now."""

    def __init__(self) -> None:
        self.signals = 0

    def install(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.signals += 1

    @property
    def requested(self) -> bool:
        return self.signals > 0

    @property
    def forced(self) -> bool:
        return self.signals > 1


Say = Callable[[str], None]
Record = Callable[[Child], None]


class Supervisor:
    """Starts the children, keeps them running and stops them, stage by stage."""

    def __init__(
        self, children: Iterable[Child], stop: StopRequest, say: Say, record: Record
    ) -> None:
        self.children = {child.name: child for child in children}
        self.stop_request = stop
        self.say = say
        self.record = record

    def start(self, names: Iterable[str] | None = None) -> None:
        """Start these children (all by default) that are not started yet."""
        for name in self.children if names is None else names:
            child = self.children[name]
            if child.state == "stopped":
                child.start()
                self.record(child)

    def wait_ready(self, timeout_s: float, names: Iterable[str] | None = None) -> bool:
        """True once these children (all by default) are ready; False if a stop was
        asked for meanwhile."""
        deadline = time.monotonic() + timeout_s
        pending = set(self.children if names is None else names)
        while pending and not self.stop_request.requested:
            for name in sorted(pending):
                child = self.children[name]
                if child.exited():
                    child.take_down()
                    raise RuntimeError(f"the {name} exited while starting; see its log above")
                if child.ready():
                    pending.discard(name)
                    self._running(child)
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout_s:g} s: {sorted(pending)}")
            time.sleep(POLL_S)
        return not pending

    def run(self, refresh_s: float = 10.0) -> None:
        """Watch until a stop is asked for: restart whatever dies, keep the records fresh."""
        refreshed = time.monotonic()
        while not self.stop_request.requested:
            for child in self.children.values():
                self._step(child)
            if time.monotonic() - refreshed > refresh_s:
                for child in self.children.values():
                    self.record(child)
                refreshed = time.monotonic()
            time.sleep(POLL_S)

    def _step(self, child: Child) -> None:
        now = time.monotonic()
        if child.state in ("starting", "running") and child.exited():
            self._died(child)
            return
        if child.state == "restarting" and now >= child.restart_at:
            child.start()
            self.record(child)
        if child.state == "starting" and child.ready():
            self.say(f"the {child.name} is back (restart {child.restarts})")
            self._running(child)
        if child.state == "running":
            child.backoff.ran_for(now - child.started_at)

    def _died(self, child: Child) -> None:
        code = child.take_down()  # its workers die with it and free the port
        delay = child.backoff.next_delay()
        child.restarts += 1
        child.last_exit = code
        child.state = "restarting"
        child.restart_at = time.monotonic() + delay
        self.say(f"[red]the {child.name} exited with code {code}; restarting in {delay:g} s[/red]")
        self.record(child)

    def _running(self, child: Child) -> None:
        child.state = "running"
        self.record(child)

    def stop(self, stages: Sequence[Sequence[str]]) -> None:
        """Stop stage by stage, each stage's children at once; each given its grace."""
        for stage in stages:
            children = [self.children[name] for name in stage if name in self.children]
            for child in children:
                self.say(f"stopping the {child.name} ...")
                child.terminate()
                self.record(child)
            for child in children:
                deadline = time.monotonic() + child.stop_grace_s
                code = child.reap(deadline, lambda: self.stop_request.forced)
                self.record(child)
                self.say(f"stopped the {child.name} (exit code {code})")
