"""A blocking-call detector (blockbuster) for tests: the integration tests' fixture,
and the services of the end-to-end tests when VTX_DETECT_BLOCKING is set.

While it is on, any file I/O, `time.sleep`, socket or sqlite3 call made on an event
loop from the suite's own code (`services/`, `shared/`) raises `BlockingError`, so a
blocking call cannot creep back onto a loop unseen. Work done in a thread (the
executor, `anyio.to_thread`) is not on a loop and is never flagged. blockbuster is in
the dev extra only, so it is imported when the detector is switched on, never else.

ALLOWED is the reviewed list of places that may block on a loop; each says why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from blockbuster import BlockBuster

App = TypeVar("App")

SCANNED = ("services", "shared")  # tests themselves may block: they set the scene

# (file name ending, functions in it) -> why blocking there is acceptable
ALLOWED: dict[tuple[str, tuple[str, ...]], str] = {
    # Log records are written to stderr synchronously by every logging library.
    ("logging/__init__.py", ("emit", "flush")): "stdlib logging handlers write to stderr",
    ("structlog/_output.py", ("msg",)): "structlog's PrintLogger writes to stderr",
    # Start-up, once per process, before anything is served.
    ("shared/db.py", ("create_engine",)): "makes the SQLite folder when the engine is made",
    ("shared/service.py", ("service_app",)): "builds the app: reads package metadata",
    ("alembic/command.py", ("upgrade", "downgrade", "check")): "alembic reads its scripts",
    # A new PostgreSQL connection (a pool opens few, and keeps them).
    ("asyncpg/connect_utils.py", ("_parse_connect_dsn_and_args",)): "looks for ~/.pgpass",
    # Imports read module files once; the modules are cached after the first.
    ("<frozen importlib._bootstrap>", ("_find_and_load",)): "first import of a module",
    ("<frozen importlib._bootstrap_external>", ("get_data", "path_stats")): "first import",
}


@contextmanager
def detecting(scanned: Sequence[str] = SCANNED) -> Iterator[BlockBuster]:
    """Raise on blocking calls made on an event loop from the `scanned` packages."""
    from blockbuster import BlockBuster

    detector = BlockBuster(list(scanned))
    for (file, functions), _why in ALLOWED.items():
        for wrapped in detector.functions.values():
            wrapped.can_block_in(file, set(functions))
    detector.activate()
    try:
        yield detector
    finally:
        detector.deactivate()


def detected(
    lifespan: Callable[[App], AbstractAsyncContextManager[None]],
) -> Callable[[App], AbstractAsyncContextManager[None]]:
    """A service's lifespan with the detector on for as long as the service runs."""

    @asynccontextmanager
    async def watched(app: App) -> AsyncIterator[None]:
        with detecting():
            async with lifespan(app):
                yield

    return watched
