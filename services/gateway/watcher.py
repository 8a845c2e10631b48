"""One watcher per gateway process reads the jobs that event streams follow, for all of them.

A poller rather than Redis pub/sub: the database is the source of truth and every kind of
writer changes it (splitter and transcriber workers, the reconciler, a delete through
another gateway replica). Pub/sub would need each of them to publish, and a message lost
with Redis would leave a stream silent; a poller sees whatever reached the database. Each
tick costs one query for the rows of every watched job (streams of one job, and streams of
all the unfinished jobs of an owner, in the same query) and one for their progress, plus
one for callback attempts only when a row with a callback changed, whatever the number
of streams; with nobody watching it costs nothing (the loop is polling.py's).

A job stream's mailbox holds one state: a newer state replaces the one not yet taken, so a
slow reader skips intermediate progress and never holds up the others. A list stream's
holds the latest state of each job in the same way. Streams are counted per holder (a key,
or a client address when the API is open) against `max_event_streams`, in this process:
behind N gateway replicas a key may hold N times as many.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.gateway.polling import Poller
from services.gateway.views import Done, deliveries_by_job, done_by_job
from shared.db import SessionFactory
from shared.models import CallbackDelivery, Job, JobStatus, utcnow

TICK_S = 0.5
MIN_GAP_S = 0.05  # between two ticks, however fast new streams arrive
# A list stream also reads jobs that finished this recently, so that one which starts and
# ends between two ticks (or under a writer whose clock is a little behind) is still told.
RECENT = timedelta(seconds=10)
UNFINISHED = [s.value for s in JobStatus if not s.finished]


@dataclass(frozen=True)
class JobState:
    """A job as last read: its row (None once deleted), progress and callback attempts."""

    job_id: str
    job: Job | None
    done: Done = field(default_factory=Done)
    deliveries: tuple[CallbackDelivery, ...] = ()

    @property
    def key(self) -> tuple[object, ...]:
        """What must change for the state to be read in full and handed out again."""
        if self.job is None:
            return ("deleted",)
        job = self.job
        return (
            job.status,
            job.chunks_total,
            self.done.chunks,
            job.callback_status,
            job.callback_attempts,
        )

    @property
    def finished(self) -> bool:
        return self.job is None or JobStatus(self.job.status).finished


class StreamLimit(Exception):
    """The holder already has as many streams open as it may."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} event streams open")
        self.limit = limit


class Subscription:
    """One stream's view of one job: the latest state it has not taken yet."""

    def __init__(self, watcher: EventWatcher, job_id: str, holder: str) -> None:
        self.job_id = job_id
        self.holder = holder
        self._watcher = watcher
        self._mailbox: asyncio.Queue[JobState] = asyncio.Queue(maxsize=1)

    def offer(self, state: JobState) -> None:
        """Replace what is not taken yet: a reader gets the latest state, never a backlog."""
        if self._mailbox.full():
            self._mailbox.get_nowait()
        self._mailbox.put_nowait(state)

    async def next(self, timeout_s: float) -> JobState | None:
        """The next state, or None when none came within `timeout_s` (0: do not wait)."""
        if not self._mailbox.empty():
            return self._mailbox.get_nowait()
        if timeout_s <= 0:
            return None
        try:
            return await asyncio.wait_for(self._mailbox.get(), timeout_s)
        except TimeoutError:
            return None

    def close(self) -> None:
        """Give the slot back; closing twice is harmless."""
        self._watcher.release(self)


@dataclass(frozen=True)
class Batch:
    """What a list stream has not taken yet: the latest state of each job that changed,
    and whether these are the first read (every unfinished job, then `ready`)."""

    states: tuple[JobState, ...]
    snapshot: bool = False


class ListSubscription:
    """One stream's view of all the unfinished jobs of an owner (None: every job, the open
    API), and of how each of them ends: the latest state per job not taken yet."""

    def __init__(self, watcher: EventWatcher, owner: str | None, holder: str) -> None:
        self.owner = owner
        self.holder = holder
        self.needs_snapshot = True
        self._watcher = watcher
        self._pending: dict[str, JobState] = {}
        self._snapshot = False
        self._arrived = asyncio.Event()

    def sees(self, job: Job) -> bool:
        return self.owner is None or job.owner_id == self.owner

    def offer(self, states: list[JobState], snapshot: bool = False) -> None:
        """Replace the untaken state of each job with its newer one."""
        for state in states:
            self._pending.pop(state.job_id, None)  # keep the order of the changes
            self._pending[state.job_id] = state
        self._snapshot = self._snapshot or snapshot
        if states or snapshot:
            self._arrived.set()

    async def next(self, timeout_s: float) -> Batch | None:
        """Everything not taken yet, or None when nothing came within `timeout_s`."""
        if not self._arrived.is_set():
            if timeout_s <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout_s)
            if not self._arrived.is_set():
                return None
        batch = Batch(tuple(self._pending.values()), self._snapshot)
        self._pending, self._snapshot = {}, False
        self._arrived.clear()
        return batch

    def close(self) -> None:
        """Give the slot back; closing twice is harmless."""
        self._watcher.release(self)


class EventWatcher(Poller):
    """Started and stopped by the gateway's lifespan; streams reach it through `WatcherDep`.
    While the database is away, streams stay on their last state, sending keep-alives."""

    name = "events.watch"

    def __init__(self, sessions: SessionFactory, per_holder: int, tick_s: float = TICK_S) -> None:
        super().__init__(tick_s)
        self.per_holder = per_holder
        self._sessions = sessions
        self._subscribers: dict[str, set[Subscription]] = {}
        self._lists: set[ListSubscription] = set()
        self._held: Counter[str] = Counter()
        self._latest: dict[str, JobState] = {}
        self._listed: dict[str, JobState] = {}  # what list streams were last told, per job

    def streams(self, holder: str) -> int:
        return self._held[holder]

    def _take_slot(self, holder: str) -> None:
        if self._held[holder] >= self.per_holder:
            raise StreamLimit(self.per_holder)
        self._held[holder] += 1

    def _give_slot(self, holder: str) -> None:
        self._held[holder] -= 1
        if self._held[holder] <= 0:
            del self._held[holder]

    def subscribe(self, job_id: str, holder: str) -> Subscription:
        """A new stream of `job_id` for `holder`, or StreamLimit when its slots are taken."""
        self._take_slot(holder)
        subscription = Subscription(self, job_id, holder)
        self._subscribers.setdefault(job_id, set()).add(subscription)
        latest = self._latest.get(job_id)
        if latest is None:
            self.wake()  # a job nobody watched yet: read it now, not a tick later
        else:
            subscription.offer(latest)
        return subscription

    def subscribe_list(self, owner: str | None, holder: str) -> ListSubscription:
        """A new stream of every unfinished job of `owner` (None: all jobs) for `holder`,
        or StreamLimit when its slots are taken; it counts as one stream."""
        self._take_slot(holder)
        subscription = ListSubscription(self, owner, holder)
        self._lists.add(subscription)
        self.wake()  # its first read (the snapshot) now, not a tick later
        return subscription

    def release(self, subscription: Subscription | ListSubscription) -> None:
        if isinstance(subscription, ListSubscription):
            if subscription not in self._lists:
                return
            self._lists.discard(subscription)
            self._give_slot(subscription.holder)
            if not self._lists:
                self._listed.clear()
            return
        subscribers = self._subscribers.get(subscription.job_id)
        if subscribers is None or subscription not in subscribers:
            return
        subscribers.discard(subscription)
        self._give_slot(subscription.holder)
        if not subscribers:
            del self._subscribers[subscription.job_id]
            self._latest.pop(subscription.job_id, None)

    def idle(self) -> bool:
        return not self._subscribers and not self._lists

    async def rest(self) -> None:
        """A tick, cut short by a new stream, but never under MIN_GAP_S."""
        await asyncio.sleep(MIN_GAP_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.tick_s - MIN_GAP_S)

    async def tick(self) -> None:
        """Read every watched job once and hand each changed state to its subscribers."""
        ids = sorted(self._subscribers)
        lists = list(self._lists)
        if not ids and not lists:
            return
        async with self._sessions() as session:
            read = await self._read(session, ids, lists)
            jobs = {job.id: job for job, _ in read}
            done = await done_by_job(session, list(jobs))
            states = {i: JobState(i, job, done.get(i, Done())) for i, job in jobs.items()}
            watched = {i: states.get(i, JobState(i, None)) for i in ids}
            changed = [i for i, state in watched.items() if self._changed(i, state)]
            listed = self._listed_states([job.id for job, in_scope in read if in_scope], states)
            told = [i for i, state in listed.items() if self._listed_changed(i, state)]
            moved = [jobs[i] for i in {*changed, *told} if i in jobs]
            calls = await deliveries_by_job(session, moved)
        for job_id in changed:
            self._publish(job_id, replace(watched[job_id], deliveries=tuple(calls.get(job_id, ()))))
        news = {i: replace(listed[i], deliveries=tuple(calls.get(i, ()))) for i in told}
        self._publish_lists(lists, listed, news)

    async def _read(
        self, session: AsyncSession, ids: list[str], lists: list[ListSubscription]
    ) -> list[tuple[Job, bool]]:
        """The rows of watched jobs in one query, each with whether list streams want it."""
        if not lists:
            return [
                (job, False) for job in await session.exec(select(Job).where(col(Job.id).in_(ids)))
            ]
        scope = self._listed_scope(lists)
        query = select(Job, scope.label("listed")).where(or_(col(Job.id).in_(ids), scope))
        return [(job, bool(listed)) for job, listed in await session.exec(query)]

    def _listed_scope(self, lists: list[ListSubscription]) -> ColumnElement[bool]:
        """The rows list streams read: their owners' unfinished jobs and those that ended
        lately, and the jobs they were told of but not yet of how they ended."""
        scope = or_(col(Job.status).in_(UNFINISHED), col(Job.finished_at) >= utcnow() - RECENT)
        owners = {s.owner for s in lists}
        if None not in owners:
            scope = and_(col(Job.owner_id).in_(owners), scope)
        open_ids = [i for i, state in self._listed.items() if not state.finished]
        return or_(scope, col(Job.id).in_(open_ids)) if open_ids else scope

    def _listed_states(self, ids: list[str], states: dict[str, JobState]) -> dict[str, JobState]:
        """The states list streams care about: the rows read for them, and a deleted
        state for each job they were told of unfinished that is gone."""
        listed = {i: states[i] for i in ids}
        for job_id, told in self._listed.items():
            if job_id not in states and not told.finished:
                listed[job_id] = JobState(job_id, None)
        return listed

    def _changed(self, job_id: str, state: JobState) -> bool:
        latest = self._latest.get(job_id)
        return latest is None or latest.key != state.key

    def _listed_changed(self, job_id: str, state: JobState) -> bool:
        told = self._listed.get(job_id)
        return told is None or told.key != state.key

    def _publish(self, job_id: str, state: JobState) -> None:
        subscribers = self._subscribers.get(job_id)
        if not subscribers:  # every stream of it ended while the tick read
            return
        self._latest[job_id] = state
        for subscription in subscribers:
            subscription.offer(state)

    def _publish_lists(
        self, lists: list[ListSubscription], listed: dict[str, JobState], news: dict[str, JobState]
    ) -> None:
        """Each list stream gets the changes of the jobs it sees; a new one gets all the
        jobs it sees as they are now, as its snapshot."""
        owners = {i: s.job for i, s in self._listed.items()}  # a deleted job's last row
        for state in listed.values():
            owners[state.job_id] = state.job or owners.get(state.job_id)
        # Unchanged jobs keep the state last told, callback attempts included.
        now = {i: news.get(i) or self._listed.get(i) or s for i, s in listed.items() if s.job}
        for subscription in (s for s in lists if s in self._lists):
            if subscription.needs_snapshot:
                subscription.needs_snapshot = False
                mine = [s for s in now.values() if _sees(subscription, owners, s)]
                subscription.offer(mine, snapshot=True)
            else:
                subscription.offer([s for s in news.values() if _sees(subscription, owners, s)])
        self._listed = now
        if not self._lists:
            self._listed.clear()


def _sees(subscription: ListSubscription, rows: dict[str, Job | None], state: JobState) -> bool:
    job = rows.get(state.job_id)
    return job is not None and subscription.sees(job)


def event_watcher(request: Request) -> EventWatcher:
    watcher: EventWatcher = request.app.state.event_watcher
    return watcher


WatcherDep = Annotated[EventWatcher, Depends(event_watcher)]
