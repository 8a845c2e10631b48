"""How a job ends, in one place for every worker: the state change, the metric, the
clean-up of what is no longer needed."""

from __future__ import annotations

from shared import retention, transitions, webhooks
from shared.metrics import JOBS
from shared.retry import transient
from shared.runtime import Resources


@transient
async def fail_job(res: Resources, job_id: str, reason: str) -> bool:
    """Fail an unfinished job with a reason for a person; False if it had already ended."""
    async with res.sessions() as session:
        failed = await transitions.fail(session, job_id, reason)
        await session.commit()
    if failed:
        JOBS.labels("failed").inc()
        await retention.job_ended(res, job_id)
        await webhooks.job_ended(res, job_id)
    return failed
