"""Speakers at the gateway: what a request may ask for, whether anyone can do it, and
the names a user gives the labels.

Three checks, in the order a request meets them:
- `check_request`: `speakers` (off, auto or a count) with `min_speakers` /
  `max_speakers`, bounded by VTX_MAX_SPEAKERS, consistent with each other: a 422 that
  says what to send instead, before any media is looked at (the rule is
  `shared.speaker_count`'s, which the splitter and the speakers service read too).
- `SpeakersWorkers.require`: a job that asks for speakers is accepted only while a
  speakers worker is alive (its heartbeat key, shared/worker.py). Without one the job
  would wait for a diarization nobody makes, so it is refused (503) with what to
  install and start. One SCAN of the heartbeat keys at most every `CACHE_S` per
  process, however many requests come.
- `parse_names` / `merged_names`: a rename (`PATCH /v1/jobs/{id}`) as a JSON merge
  patch of label -> name, read from a bounded body. Downloads show the names through
  `shared.speakers.name_speakers`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable
from typing import Any

from arq import ArqRedis
from fastapi import Request

from services.gateway.problems import InvalidField, NotMedia, TooLarge, Unavailable
from shared.models import Job, Transcript
from shared.speaker_count import SpeakerCount, SpeakerCountError
from shared.worker import WORKERS_KEY

SPEAKERS_SERVICE = "speakers"
CACHE_S = 2.0  # a worker that just started is seen this soon; one gone, 15 s + this
SCAN_COUNT = 1000
NAME_CHARS = 64
NAMES_BODY_BYTES = 16 * 1024  # VTX_MAX_SPEAKERS (at most 100) names of 64 characters fit
LABEL = re.compile(r"S([1-9][0-9]{0,2})")
JSON_TYPES = ("application/json", "application/merge-patch+json")

NO_WORKER = (
    "Speakers were asked for, but no speakers worker is running, so the job could never "
    "finish. Install the extra (pip install 'vtx[speakers]') and start the speakers "
    "service (`vtx up` starts it once the extra is installed; in Kubernetes, deploy the "
    "chart's speakers service), or send speakers=off."
)
NO_QUEUE = (
    "Speakers were asked for, and whether a speakers worker is running cannot be read: "
    "the queue (Redis) does not answer. Try again shortly, or send speakers=off."
)


def check_request(speakers: str | None, low: int | None, high: int | None, limit: int) -> None:
    """Refuse (422) a speaker count out of range or bounds that contradict it."""
    try:
        SpeakerCount.of_request(speakers, low, high, limit)
    except SpeakerCountError as exc:
        raise InvalidField(f"Invalid form field: {exc}", param=exc.field) from None


class SpeakersWorkers:
    """Whether a speakers worker is alive, read from Redis at most once every `cache_s`
    (the answer is shared by every request of this process meanwhile)."""

    def __init__(self, cache_s: float = CACHE_S) -> None:
        self._cache_s = cache_s
        self._alive = False
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()

    async def alive(self, redis: ArqRedis) -> bool:
        if time.monotonic() - self._read_at < self._cache_s:
            return self._alive
        async with self._lock:  # one read at a time; the others take its answer
            if time.monotonic() - self._read_at >= self._cache_s:
                self._alive = await _any_heartbeat(redis)
                self._read_at = time.monotonic()
        return self._alive

    async def require(self, redis: ArqRedis) -> None:
        """Refuse (503) a job that asks for speakers while no worker could make them."""
        try:
            alive = await self.alive(redis)
        except Exception as exc:  # Redis down or refusing: cannot tell, so cannot promise
            raise Unavailable(NO_QUEUE, retry_after_s=5) from exc
        if not alive:
            raise Unavailable(NO_WORKER)


async def _any_heartbeat(redis: ArqRedis) -> bool:
    """True at the first heartbeat key of a speakers worker (SCAN, never KEYS)."""
    pattern = f"{WORKERS_KEY}{SPEAKERS_SERVICE}:*"
    cursor: int = 0
    while True:
        cursor, keys = await redis.scan(cursor=cursor, match=pattern, count=SCAN_COUNT)
        if keys:
            return True
        if cursor == 0:
            return False


async def read_json_body(request: Request, max_bytes: int = NAMES_BODY_BYTES) -> Any:
    """The request's JSON body, read no further than `max_bytes`."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in JSON_TYPES:
        raise NotMedia("Send the body as JSON (Content-Type: application/json).")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > max_bytes:
            raise TooLarge(f"The body is larger than {max_bytes // 1024} KiB.")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidField(f"The body is not valid JSON: {exc}.") from None


def parse_names(body: Any, limit: int) -> dict[str, str | None] | None:
    """`{"speaker_names": {...}}` checked: labels S1..S<limit>, names 1..64 printable
    characters (trimmed), null to forget one; `"speaker_names": null` forgets all."""
    if not isinstance(body, dict) or set(body) != {"speaker_names"}:
        raise InvalidField(
            'Send {"speaker_names": {"S1": "Ana", ...}}: it is the only field a job takes '
            "in a PATCH.",
            param="speaker_names",
        )
    names = body["speaker_names"]
    if names is None:
        return None
    if not isinstance(names, dict):
        raise InvalidField(
            'speaker_names: send an object of label -> name, e.g. {"S1": "Ana"}.',
            param="speaker_names",
        )
    if len(names) > limit:
        raise InvalidField(
            f"speaker_names: at most {limit} names (VTX_MAX_SPEAKERS), not {len(names)}.",
            param="speaker_names",
        )
    return {_label(key, limit): _name(key, value) for key, value in names.items()}


def _label(key: str, limit: int) -> str:
    found = LABEL.fullmatch(key)
    if found is None or int(found.group(1)) > limit:
        shown = key[:16].encode("ascii", "backslashreplace").decode("ascii")
        raise InvalidField(
            f"speaker_names: '{shown}' is not a speaker label: labels are S1 to S{limit}.",
            param="speaker_names",
        )
    return key


def _name(key: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(
            f"speaker_names.{key}: a name is text (or null to forget it).",
            param="speaker_names",
        )
    name = value.strip()
    if not 1 <= len(name) <= NAME_CHARS or not name.isprintable():
        raise InvalidField(
            f"speaker_names.{key}: a name is 1 to {NAME_CHARS} printable characters "
            "(no line breaks, tabs or control characters).",
            param="speaker_names",
        )
    return name


def merged_names(
    stored: dict[str, str] | None, patch: dict[str, str | None] | None
) -> dict[str, str] | None:
    """The names after a merge patch: a name sets, null forgets; nothing left is None."""
    if patch is None:
        return None
    names = dict(stored or {})
    for label, name in patch.items():
        if name is None:
            names.pop(label, None)
        else:
            names[label] = name
    return dict(sorted(names.items(), key=lambda item: int(item[0][1:]))) or None


def labels_of(transcript: Transcript) -> set[str]:
    """Every speaker label the stored transcript's segments and words carry."""
    found: set[str] = set()
    for segment in transcript.segments or []:
        if isinstance(segment, dict):
            found.update(_speakers([segment, *(segment.get("words") or [])]))
    return found


def _speakers(items: Iterable[Any]) -> Iterable[str]:
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("speaker"), str):
            yield item["speaker"]


def unknown_labels(job: Job, transcript: Transcript, patch: dict[str, str | None]) -> None:
    """Refuse (422) a name for a label this transcript does not have."""
    known = labels_of(transcript)
    missing = sorted(k for k, v in patch.items() if v is not None and k not in known)
    if missing:
        has = ", ".join(sorted(known, key=lambda k: int(k[1:]))) or "none"
        raise InvalidField(
            f"speaker_names: {', '.join(missing)} is not a speaker of job {job.id} (it has {has}).",
            param="speaker_names",
        )
