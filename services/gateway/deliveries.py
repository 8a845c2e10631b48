"""The gateway delivers callbacks: an arq worker on their own queue, beside the API.

Why the gateway: it already reaches out (media by `url=`), so only gateway pods need
egress to the internet; and deliveries get their own `VTX_CALLBACK_CONCURRENCY`
slots, never one that transcribes. Each delivery ends within its deadline
(shared.pipeline.webhooks); arq's timeout is only a backstop for a stuck database.

No reconciler runs here (the splitter's and transcriber's put back lost deliveries)
and no heartbeat key: the health service counts the workers of the pipeline queues,
and the gateway's own probes say whether it, and so its deliveries, are up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq.worker import Worker, func

from shared.config import Settings
from shared.pipeline.contracts import CALLBACK_QUEUE, CALLBACK_TASK
from shared.pipeline.leases import worker_identity
from shared.pipeline.webhooks import deliver_callback
from shared.runtime import Resources
from shared.worker import Activity, Supervised, create_worker

BACKSTOP_S = 60.0  # beyond the delivery's own deadline: its database calls, retried


def delivery_worker(settings: Settings, ctx: dict[str, Any]) -> Worker:
    deliver = func(
        deliver_callback, name=CALLBACK_TASK, timeout=settings.callback_timeout_s + BACKSTOP_S
    )
    return create_worker(
        settings, [deliver], CALLBACK_QUEUE, ctx, max_jobs=settings.callback_concurrency
    )


@asynccontextmanager
async def delivering(res: Resources) -> AsyncIterator[None]:
    """Deliver callbacks while the gateway runs; on exit, let those in flight end."""
    worker_id = worker_identity()
    ctx: dict[str, Any] = {
        "resources": res,
        "worker_id": worker_id,
        "activity": Activity("gateway", worker_id),
    }
    supervised = Supervised(lambda: delivery_worker(res.settings, ctx))
    task = asyncio.create_task(supervised.run(), name="callback-worker")
    try:
        yield
    finally:
        grace_s = min(res.settings.shutdown_grace_s, res.settings.callback_timeout_s + 1)
        await supervised.stop(grace_s)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
