"""How a job ends, in one place for every worker: the state change, the metric, and what
follows it (the chunks' clean-up, the media's where nothing is retained, the callback).

Only the state change is retried, as one transaction. What follows it is idempotent
and runs whenever the job is found in the state the call meant to reach, whether this
call won the change or an earlier one did: a call that repeats one whose clean-up
broke after its commit (a retry, a redelivered task) finishes that clean-up.
"""

from __future__ import annotations

import structlog
from arq import Retry

from shared.metrics import JOBS, STAGE_SECONDS
from shared.models import Job, JobStatus, Transcript, aware, utcnow
from shared.pipeline import retention, transitions, webhooks
from shared.pipeline.leases import Lease
from shared.retry import is_transient, transient
from shared.runtime import Resources

log = structlog.get_logger(__name__)


async def fail_job(res: Resources, job_id: str, reason: str) -> bool:
    """Fail an unfinished job with a reason for a person; False if it had already ended."""
    failed = await _fail(res, job_id, reason)
    if failed:
        JOBS.labels("failed").inc()
        log.info("job.failed", job_id=job_id, reason=reason)
    await settle(res, job_id, JobStatus.failed)
    return failed


async def complete_job(res: Resources, job: Job, transcript: Transcript, merge_s: float) -> bool:
    """Complete a transcribing job with its transcript; False if it was not transcribing.

    The job's metrics move the moment its row does, before the clean-up: a client that
    sees the job completed finds it counted, however long the clean-up takes."""
    completed = await _complete(res, job.id, transcript)
    if completed:
        JOBS.labels("completed").inc()
        STAGE_SECONDS.labels("merge").observe(merge_s)
        age_s = (utcnow() - aware(job.created_at)).total_seconds()
        STAGE_SECONDS.labels("end_to_end").observe(age_s)
    await settle(res, job.id, JobStatus.completed)
    return completed


async def retry_or_fail(
    res: Resources, job_id: str, attempts: int, exc: Exception, failure: str
) -> None:
    """Retry a transient error (arq's Retry, with backoff) while tries remain; fail the
    job at once on a permanent one, which no retry can mend (audio that is not samples,
    a model that will not load). `failure` says what could not be done, for the person
    who sent the file: "Chunk 3 could not be transcribed"."""
    if not is_transient(exc):
        await fail_job(res, job_id, f"{failure}: {exc}")
    elif attempts < res.settings.max_tries:
        raise Retry(defer=backoff_s(attempts)) from exc
    else:
        await fail_job(res, job_id, f"{failure} after {attempts} tries: {exc}")


async def gave_up(
    res: Resources, job_id: str, lease: Lease, attempts: int, work: str, holder: str
) -> bool:
    """Fail the job when this start of its work is one more than VTX_MAX_TRIES; True if
    so. Every start counts, finished or not, so work that kills its worker (`holder`
    crashed or was stopped each time) cannot be handed on for ever."""
    if attempts <= res.settings.max_tries:
        return False
    await fail_job(
        res,
        job_id,
        f"{work} was started {attempts} times without finishing "
        f"({holder} crashed or was stopped each time).",
    )
    await lease.release()
    return True


def backoff_s(attempts: int) -> float:
    return min(2.0**attempts, 30.0)


async def settle(res: Resources, job_id: str, status: JobStatus) -> None:
    """What follows a job's end, if it ended as `status`; safe to run any number of times.

    The row is read once, here, for every step: the clean-up takes it as it is, and a
    job without a callback (or whose callback has started) costs no write at all.
    The callback is started even when the clean-up fails; the clean-up's error is then
    raised, for the caller to retry or report."""
    job = await _load(res, job_id)
    if job is None or JobStatus(job.status) != status:
        return
    try:
        await retention.job_ended(res, job)
    finally:
        if webhooks.not_started(job):
            await webhooks.job_ended(res, job_id)


@transient
async def _fail(res: Resources, job_id: str, reason: str) -> bool:
    async with res.sessions() as session:
        failed = await transitions.fail(session, job_id, reason)
        await session.commit()
    return failed


@transient
async def _complete(res: Resources, job_id: str, transcript: Transcript) -> bool:
    """The state change and the transcript in one transaction: both or neither."""
    async with res.sessions() as session:
        moved = await transitions.move(
            session, job_id, JobStatus.completed, from_=[JobStatus.transcribing]
        )
        if not moved:
            return False
        session.add(transcript)
        await session.commit()
    return True


@transient
async def _load(res: Resources, job_id: str) -> Job | None:
    async with res.sessions() as session:
        return await session.get(Job, job_id)
