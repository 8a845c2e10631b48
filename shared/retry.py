"""Which errors are worth retrying, and the one retry policy for them.

Transient: the network, the database or the store hiccupped (a restart, a lock, a
dropped connection). Permanent: the input itself is wrong; retrying cannot help,
so those fail the job at once with its reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import stamina
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

P = ParamSpec("P")
T = TypeVar("T")

_PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, _PERMANENT_OS_ERRORS):
        return False
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, OSError | RedisConnectionError | RedisTimeoutError)


def transient(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Retry an idempotent step on transient errors: backoff with jitter, at most ~60 s.

    Wrap one step that is safe to repeat whole (one transaction, one store call), never
    a function that does more after a commit: its retry would find the change made and
    skip the rest (shared.pipeline.outcomes runs what follows a job's end outside any retry)."""
    wrapped: Callable[P, Awaitable[T]] = stamina.retry(
        on=is_transient, attempts=8, wait_initial=0.2, wait_max=5.0, timeout=60.0
    )(func)
    return wrapped
