"""`/v1/usage`: what the caller holds now against each of its limits, so a client can
pace itself instead of learning the limits from refusals."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway import quotas
from services.gateway.auth import CallerDep
from services.gateway.deps import ResourcesDep
from services.gateway.errors import AUTH_ERRORS
from services.gateway.schemas import AmountOut, CountOut, UsageOut

router = APIRouter(prefix="/v1", tags=["usage"], responses=AUTH_ERRORS)


def _limit(value: float) -> float | None:
    return value if value > 0 else None


@router.get("/usage", response_model=UsageOut, summary="This caller's usage and limits")
async def get_usage(res: ResourcesDep, caller: CallerDep) -> UsageOut:
    limits = await quotas.limits_for(res, caller)
    held = await quotas.usage_of(res, caller)
    requests = await quotas.requests_this_minute(res, caller)
    rate = res.settings.rate_limit_per_minute
    return UsageOut(
        key_id=caller.key_id,
        active_jobs=CountOut(used=held.active_jobs, limit=limits.active_jobs or None),
        audio_seconds_in_flight=AmountOut(used=held.audio_s, limit=_limit(limits.audio_s)),
        stored_bytes=CountOut(used=held.stored_bytes, limit=limits.storage_bytes or None),
        requests_this_minute=None
        if requests is None
        else CountOut(used=requests, limit=rate or None),
    )
