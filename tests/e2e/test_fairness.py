"""Work from different keys takes turns: one key's long file does not hold back another
key's short clip (measured on chunk rows, not on timings)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from sqlmodel import select

from services.splitter.decode import decode_pcm
from shared import db
from shared.config import Settings
from shared.models import Chunk, ChunkStatus, Job, aware
from tests.databases import PostgresServer
from tests.e2e.conftest import Suite, running_suite

ONE_CHUNK_AT_A_TIME = {
    "VTX_TRANSCRIBER_PROCESSES": "1",
    "VTX_TRANSCRIBER_WORKERS": "1",
    "VTX_MAX_UPLOAD_MB": "64",
}


def repeated_wav(source: Path, times: int, path: Path) -> Path:
    """`source`'s audio `times` over, as 16 kHz mono WAV: a long file of real speech."""
    pcm = np.tile(np.concatenate(list(decode_pcm(source, 3600))), times)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=16000)
        stream.layout = "mono"
        for start in range(0, len(pcm), 4096):
            frame = av.AudioFrame.from_ndarray(
                pcm[start : start + 4096].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def keyed(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Suite]:
    root = tmp_path_factory.mktemp("fairness")
    with running_suite(root, postgres, **ONE_CHUNK_AT_A_TIME) as suite:
        yield suite


def key_for(suite: Suite, name: str) -> dict[str, str]:
    made = json.loads(suite.vtx("keys", "create", name, "--json"))
    return {"Authorization": f"Bearer {made['key']}"}


def submit(suite: Suite, path: Path, headers: dict[str, str], chunk_seconds: int) -> str:
    with path.open("rb") as handle:
        response = httpx.post(
            f"{suite.gateway}/v1/jobs",
            files={"file": handle},
            data={"chunk_seconds": str(chunk_seconds)},
            headers=headers,
            timeout=60,
        )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def wait_split(suite: Suite, job_id: str, headers: dict[str, str]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}", headers=headers).json()
        if job["progress"]["chunks_total"]:
            total: int = job["progress"]["chunks_total"]
            return total
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} was not split in 60 s")


def done_by(suite: Suite, job_id: str, moment_of: str) -> int:
    """Chunks of `job_id` done when the job `moment_of` finished (from the database)."""
    return asyncio.run(_done_by(suite, job_id, moment_of))


async def _done_by(suite: Suite, job_id: str, moment_of: str) -> int:
    settings = Settings(data_dir=suite.data_dir, database_url=suite.env.get("VTX_DATABASE_URL"))
    engine = db.create_engine(settings)
    try:
        async with db.session_factory(engine)() as session:
            other = await session.get(Job, moment_of)
            assert other is not None and other.finished_at is not None
            chunks = await session.exec(select(Chunk).where(Chunk.job_id == job_id))
            return sum(
                1
                for c in chunks
                if c.status == ChunkStatus.done and aware(c.updated_at) <= aware(other.finished_at)
            )
    finally:
        await engine.dispose()


def test_a_short_clip_finishes_while_another_keys_long_file_waits(
    keyed: Suite, tmp_path: Path, speech_mp4: Path
) -> None:
    alice, bob = key_for(keyed, "alice"), key_for(keyed, "bob")
    long_file = repeated_wav(speech_mp4, 6, tmp_path / "long.wav")  # ~150 s: ~30 chunks
    long_job = submit(keyed, long_file, alice, chunk_seconds=5)
    total = wait_split(keyed, long_job, alice)  # every chunk of it is queued now
    short_job = submit(keyed, speech_mp4, bob, chunk_seconds=60)
    assert keyed.wait_for(short_job, timeout=300, headers=bob)["status"] == "completed"
    done = done_by(keyed, long_job, moment_of=short_job)
    assert done <= total // 2, f"{done} of {total} chunks of the long job ran first"
    assert keyed.wait_for(long_job, timeout=600, headers=alice)["status"] == "completed"
