"""The detector itself: a blocking call on the loop fails a test; in a thread it does not."""

from __future__ import annotations

import asyncio
import time

import pytest
from blockbuster import BlockingError

from shared import secrets
from shared.blocking import detecting
from shared.config import Settings


async def test_sleep_in_a_coroutine_is_caught() -> None:
    with detecting([__name__]), pytest.raises(BlockingError, match=r"time\.sleep"):
        time.sleep(0.001)


async def test_blocking_in_the_suites_code_is_caught(settings: Settings) -> None:
    """The autouse detector alone: `secret` reads (and may write) a file."""
    with pytest.raises(BlockingError):
        secrets.secret(settings, "media")


async def test_the_same_call_in_a_thread_passes(settings: Settings) -> None:
    value = await asyncio.to_thread(secrets.secret, settings, "media")
    assert len(value) > 20
