"""`hotwords`: taken by the gateway, stored on the job, and heard by the real model.

hotwords.mp3 says "ComfyUI" twice; tiny.en writes "comfy eye" without the hotword and
"ComfyUI" with it, on the sequential path and on the batched one alike (measured).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.splitter.tasks import split_job
from services.transcriber.worker import transcriber_worker
from shared.models import Job, JobStatus, Transcript
from shared.runtime import Resources
from shared.worker import running
from tests.conftest import SHARED_MEDIA
from tests.integration.test_pipeline import reload, submit

HOTWORDS_MP3 = SHARED_MEDIA / "hotwords.mp3"
needs_recording = pytest.mark.skipif(not HOTWORDS_MP3.is_file(), reason="hotwords.mp3 is absent")


async def transcript_text(ctx: dict[str, Any], res: Resources, job: Job) -> str:
    """The job through the real splitter and transcriber workers, as its text."""
    extra = {"engine": ctx["engine"], "executor": ctx["executor"], "layout": ctx["layout"]}
    async with running(res, "transcriber", lambda c: transcriber_worker(res, c), extra):
        await split_job(ctx, {"job_id": job.id})
        for _ in range(600):
            if (await reload(res, job.id)).status in (JobStatus.completed, JobStatus.failed):
                break
            await asyncio.sleep(0.1)
    done = await reload(res, job.id)
    assert done.status == JobStatus.completed, done.error
    async with res.sessions() as session:
        transcript = await session.get(Transcript, job.id)
    assert transcript is not None
    return " ".join(s["text"] for s in transcript.segments)


@needs_recording
@pytest.mark.parametrize("vad", [True, False], ids=["batched", "sequential"])
async def test_the_hotword_is_written_as_asked_and_not_without_it(
    ctx: dict[str, Any], resources: Resources, vad: bool
) -> None:
    plain = await submit(resources, HOTWORDS_MP3, language="en", vad=vad)
    helped = await submit(resources, HOTWORDS_MP3, language="en", vad=vad, hotwords="ComfyUI")
    without, with_hotword = [await transcript_text(ctx, resources, j) for j in (plain, helped)]
    assert "ComfyUI" in with_hotword, with_hotword
    assert "ComfyUI" not in without, without


async def test_hotwords_are_stored_and_echoed(
    gateway: tuple[FastAPI, httpx.AsyncClient], speech_mp4: Path
) -> None:
    app, client = gateway
    response = await client.post(
        "/v1/jobs",
        files={"file": ("talk.mp4", speech_mp4.read_bytes())},
        data={"hotwords": "ComfyUI Kubernetes"},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["hotwords"] == "ComfyUI Kubernetes"
    assert (await client.get(f"/v1/jobs/{job_id}")).json()["hotwords"] == "ComfyUI Kubernetes"
    async with app.state.resources.sessions() as session:
        row = await session.get(Job, job_id)
    assert row is not None and row.hotwords == "ComfyUI Kubernetes"


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/audio/transcriptions"])
async def test_over_long_hotwords_are_refused_naming_the_field(
    gateway: tuple[FastAPI, httpx.AsyncClient], speech_mp4: Path, path: str
) -> None:
    _, client = gateway
    response = await client.post(
        path,
        files={"file": ("talk.mp4", speech_mp4.read_bytes())},
        data={"hotwords": "x" * 501, "model": "whisper-1"},
    )
    assert response.status_code == 422, response.text
    body = response.json()
    problem = body["detail"] if path == "/v1/jobs" else body["error"]["message"]
    assert "hotwords" in problem
    assert (await client.get("/v1/jobs")).json()["total"] == 0
