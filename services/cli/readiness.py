"""Waiting for services to be ready: the one probe `vtx up`, the tests and the bench use.

A service is ready when its `/health/ready` answers 200 (shared/health.py); anything
else, a refused connection included, is "not yet". Synchronous on purpose: its callers
are a supervisor loop and test or bench set-ups, none of them on an event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import httpx


class NotReady(RuntimeError):
    """The services did not all become ready: their process ended, or time ran out."""


def is_ready(base_url: str, timeout_s: float = 1.0) -> bool:
    """Whether the service at `base_url` answers its readiness probe with 200 now."""
    try:
        return httpx.get(f"{base_url}/health/ready", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(
    base_urls: Iterable[str],
    timeout_s: float,
    exited: Callable[[], bool] = lambda: False,
    poll_s: float = 0.3,
) -> None:
    """Return once every service is ready; NotReady if `exited()` says the process
    running them is gone (no point waiting out the timeout) or after `timeout_s`."""
    pending = list(base_urls)
    deadline = time.monotonic() + timeout_s
    while True:
        if exited():
            raise NotReady("exited while starting")
        pending = [url for url in pending if not is_ready(url)]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise NotReady(f"not ready after {timeout_s:g} s: {', '.join(pending)}")
        time.sleep(poll_s)
