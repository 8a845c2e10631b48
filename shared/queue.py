"""arq on Redis: the queue pool (Resources holds one; an arq worker opens its own from
the same `redis_settings`), JSON on the wire (never pickle), enqueueing once per
deterministic id (shared/pipeline/contracts.py), and releasing a job whose worker died before it
claimed the work."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from pydantic import BaseModel

from shared.config import Settings

# How long a queued job may wait before arq drops it (the reconciler would queue it
# again): arq's own default, given explicitly because arq counts it from the score.
EXPIRES = timedelta(days=1)

log = structlog.get_logger(__name__)


def serialize(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode()


def deserialize(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(data)
    return value


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url)


async def open_queue(settings: Settings) -> ArqRedis:
    return await create_pool(
        redis_settings(settings),
        job_serializer=serialize,
        job_deserializer=deserialize,
        retry=2,
    )


async def enqueue(
    redis: ArqRedis,
    task: str,
    queue: str,
    job_id: str,
    payload: BaseModel,
    defer_s: float | None = None,
    score_ms: int | None = None,
) -> bool:
    """Enqueue once: False when a job with this id is already queued or running.

    `score_ms` places the job in the queue's order (shared/pipeline/fairness.py) instead of
    arq's "now" or "now + defer"."""
    at = None if score_ms is None else datetime.fromtimestamp(score_ms / 1000, UTC)
    job = await redis.enqueue_job(
        task,
        payload.model_dump(mode="json"),
        _job_id=job_id,
        _queue_name=queue,
        _defer_by=defer_s,
        _defer_until=at,
        _expires=EXPIRES if at is not None else None,
    )
    return job is not None


async def release_abandoned(
    redis: ArqRedis, queue: str, job_id: str, in_progress_s: float, after_s: float
) -> bool:
    """Let a job whose worker died before it claimed the work be taken again.

    arq marks a job in progress (for `in_progress_s`, its longest timeout + 10 s) the
    moment a worker takes it; the work's lease in the database comes a moment later. A
    worker killed in between leaves the mark for up to an hour, and the deterministic id
    keeps the reconciler from enqueueing the work again meanwhile. The reconciler knows
    nobody holds the work, so once the mark is older than any live worker takes to
    claim (`after_s`), this drops the job; the caller then enqueues it afresh."""
    remaining_ms = await redis.pttl(in_progress_key_prefix + job_id)
    if remaining_ms <= 0 or in_progress_s * 1000 - remaining_ms < after_s * 1000:
        return False
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(
            in_progress_key_prefix + job_id, job_key_prefix + job_id, retry_key_prefix + job_id
        )
        pipe.zrem(queue, job_id)
        await pipe.execute()
    log.warning("queue.abandoned_job_released", arq_id=job_id, queue=queue)
    return True
