"""arq connection helpers: one Redis pool per process, JSON on the wire (never pickle)."""

from __future__ import annotations

import json
from typing import Any

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from pydantic import BaseModel

from shared.config import Settings


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
) -> bool:
    """Enqueue once: False when a job with this id is already queued or running."""
    job = await redis.enqueue_job(
        task,
        payload.model_dump(mode="json"),
        _job_id=job_id,
        _queue_name=queue,
        _defer_by=defer_s,
    )
    return job is not None
