"""Fair order between tenants on one arq queue: start-time fair queueing by owner.

arq workers take due jobs by ascending score (`zrangebyscore(queue, -inf, now)`).
Scored with "now", a 6-hour upload's 360 chunks would all run before another key's
10-second clip. Instead each job gets a virtual start time: the later of the queue's
virtual clock and the end of its owner's earlier work, where a job's cost is its
seconds of audio. Owners with work waiting take turns in proportion to cost, a new
or returning owner starts at the clock (no credit saved while idle), and one owner's
own jobs keep their order. Jobs without a key share one tenant, `open`.

The clock is the start time of the first job still waiting (running jobs, whose
in-progress key exists, are passed over); with nothing waiting it moves up to the
furthest end handed out, the moment everything queued so far has started.

Scores count in milliseconds from 1 s after the Unix epoch: always in the past, so a
job is due at once, and always below the real-time scores arq gives deferred jobs
(a retry's `Retry(defer=...)`), which keep arq's own order. The whole computation is
one Lua script, atomic in Redis whichever process enqueues.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import cast

from arq import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix

OPEN_TENANT = "open"
EPOCH_MS = 1000
# Fair scores stay below this (2001-09-09 in ms), real-time scores above: ~31 years of
# audio served before the two could meet.
CEILING_MS = 10**12
FIRST_MS = 1  # for work that completes a job (a merge): ahead of every chunk
STATE_PREFIX = "vtx:fair:"
WAITING_SCAN = 64  # entries looked at to pass over the running ones

# KEYS: queue, state hash, arq job key.  ARGV: owner field, cost ms, epoch, ceiling,
# in-progress key prefix, scan limit.  Returns the score, or false if the job exists.
_SCRIPT = """
local queue, state, job = KEYS[1], KEYS[2], KEYS[3]
local owner, cost = ARGV[1], tonumber(ARGV[2])
local epoch, ceiling = tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', job) == 1 then return false end
local clock = tonumber(redis.call('HGET', state, 'clock') or epoch)
local horizon = tonumber(redis.call('HGET', state, 'horizon') or epoch)
local head = nil
local entries = redis.call('ZRANGEBYSCORE', queue, epoch, ceiling, 'WITHSCORES',
                           'LIMIT', 0, tonumber(ARGV[6]))
for i = 1, #entries, 2 do
  if redis.call('EXISTS', ARGV[5] .. entries[i]) == 0 then
    head = tonumber(entries[i + 1])
    break
  end
end
clock = math.max(clock, head or horizon)
local start = math.max(clock, tonumber(redis.call('HGET', state, owner) or epoch))
local finish = start + cost
redis.call('HSET', state, 'clock', clock, 'horizon', math.max(horizon, finish), owner, finish)
return start
"""


@dataclass(frozen=True)
class Share:
    """Whose work a job is and what it costs, in seconds of audio."""

    owner: str | None
    cost_s: float

    @property
    def field(self) -> str:
        return f"owner:{self.owner or OPEN_TENANT}"

    @property
    def cost_ms(self) -> int:
        return max(1, round(self.cost_s * 1000))


def state_key(queue: str) -> str:
    return f"{STATE_PREFIX}{queue}"


async def fair_score(redis: ArqRedis, queue: str, arq_id: str, share: Share) -> int | None:
    """The score to enqueue `arq_id` with, charged to its owner; None if it is queued
    already (then nothing is charged: the reconciler re-enqueues freely)."""
    keys = [queue, state_key(queue), f"{job_key_prefix}{arq_id}"]
    args = [share.field, share.cost_ms, EPOCH_MS, CEILING_MS, in_progress_key_prefix, WAITING_SCAN]
    reply = redis.eval(_SCRIPT, len(keys), *keys, *map(str, args))
    score = await cast(Awaitable[int | None], reply)
    return None if score is None else int(score)
