"""The fair order of shared/pipeline/fairness.py on a real Redis, with a worker that takes jobs
the way arq's does: the lowest score that is due and not running."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from arq import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix

from shared.config import Settings
from shared.pipeline import dispatch
from shared.pipeline.contracts import TRANSCRIBE_QUEUE, transcribe_job_id
from shared.pipeline.fairness import CEILING_MS, EPOCH_MS, state_key
from shared.queue import open_queue
from tests.conftest import RedisServer


@pytest.fixture
async def queue(redis_server: RedisServer) -> AsyncIterator[ArqRedis]:
    redis_server.flush()
    pool = await open_queue(Settings(redis_url=redis_server.url))
    yield pool
    await pool.aclose()


async def chunks(queue: ArqRedis, owner: str, count: int, seconds: float, first: int = 0) -> None:
    """`count` chunks of the job named `owner` (its key too), each `seconds` long."""
    for index in range(first, first + count):
        assert await dispatch.transcribe(queue, owner, index, 0, None, owner, seconds)


async def take(queue: ArqRedis, count: int = 1) -> list[str]:
    """Run and finish the next `count` jobs as a worker would; their owners, in order."""
    owners = []
    for _ in range(count):
        due = await queue.zrangebyscore(TRANSCRIBE_QUEUE, "-inf", time.time() * 1000)
        running = [await queue.exists(in_progress_key_prefix + d.decode()) for d in due]
        arq_id = next(d.decode() for d, busy in zip(due, running, strict=True) if not busy)
        await queue.zrem(TRANSCRIBE_QUEUE, arq_id)
        await queue.delete(job_key_prefix + arq_id)
        owners.append(arq_id.split(":")[1])
    return owners


async def test_a_short_job_goes_ahead_of_another_owners_long_queue(queue: ArqRedis) -> None:
    await chunks(queue, "a", 30, 5.0)
    assert await take(queue, 10) == ["a"] * 10
    await chunks(queue, "b", 2, 10.0)
    # b's chunks cost twice a's: b gets one turn for two of a's, not a place after 20.
    assert await take(queue, 5) == ["a", "b", "a", "a", "b"]
    assert await take(queue, 17) == ["a"] * 17


async def test_an_owner_back_from_idle_takes_turns_without_saved_credit(
    queue: ArqRedis,
) -> None:
    await chunks(queue, "b", 1, 5.0)
    assert await take(queue) == ["b"]
    await chunks(queue, "a", 20, 5.0)
    await take(queue, 10)
    await chunks(queue, "b", 3, 5.0, first=1)
    assert await take(queue, 6) == ["a", "b", "a", "b", "a", "b"]


async def test_a_job_that_never_finishes_does_not_hold_the_clock_back(queue: ArqRedis) -> None:
    await chunks(queue, "a", 12, 5.0)
    stuck = transcribe_job_id("a", 0, 0)
    await queue.set(in_progress_key_prefix + stuck, b"1")  # its worker was SIGKILLed
    assert await take(queue, 6) == ["a"] * 6
    await chunks(queue, "b", 4, 5.0)
    assert await take(queue, 8) == ["a", "b", "a", "b", "a", "b", "a", "b"]


async def test_the_same_job_queued_twice_is_charged_once(queue: ArqRedis) -> None:
    assert await dispatch.transcribe(queue, "a", 0, 0, None, "a", 5.0)
    charged = await queue.hget(state_key(TRANSCRIBE_QUEUE), "owner:a")
    assert not await dispatch.transcribe(queue, "a", 0, 0, None, "a", 5.0)
    assert await queue.hget(state_key(TRANSCRIBE_QUEUE), "owner:a") == charged
    assert await queue.zcard(TRANSCRIBE_QUEUE) == 1


async def test_fair_scores_are_due_below_real_time_and_keep_arqs_expiry(
    queue: ArqRedis,
) -> None:
    await chunks(queue, "a", 3, 60.0)
    scores = [s for _, s in await queue.zrange(TRANSCRIBE_QUEUE, 0, -1, withscores=True)]
    assert all(EPOCH_MS <= s < CEILING_MS < time.time() * 1000 for s in scores)
    ttl_ms = await queue.pttl(job_key_prefix + transcribe_job_id("a", 0, 0))
    assert 23 * 3600 * 1000 < ttl_ms <= 24 * 3600 * 1000


async def test_a_merge_goes_before_every_chunk(queue: ArqRedis) -> None:
    await chunks(queue, "a", 3, 5.0)
    assert await dispatch.merge(queue, "m", None)
    first = await queue.zrange(TRANSCRIBE_QUEUE, 0, 0)
    assert first == [b"merge:m"]


async def test_keyless_jobs_share_one_tenant(queue: ArqRedis) -> None:
    for job in ("x", "y"):
        for index in range(3):
            assert await dispatch.transcribe(queue, job, index, 0, None, None, 5.0)
    assert await take(queue, 6) == ["x", "x", "x", "y", "y", "y"]
