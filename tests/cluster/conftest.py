"""Fixtures of the cluster tests: the running lab, its release, media long enough to spread.

These tests need a lab started by deploy/lab/run.sh (`make test-cluster`), which sets
VTX_CLUSTER_TESTS=1; anywhere else (`make test`, `pytest tests`) they are not collected.
"""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from tests.cluster.lab import NAMESPACE, RELEASE, Api, Lab

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

if os.environ.get("VTX_CLUSTER_TESTS") != "1":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def lab() -> Lab:
    root = Path(os.environ.get("VTX_LAB_DIR", Path.home() / ".cache" / "vtx-k8s-lab"))
    if not (root / "state" / "lab.pid").exists():
        pytest.fail(f"no lab is running under {root}: run `make test-cluster`", pytrace=False)
    helm4 = os.environ.get("VTX_HELM4")
    return Lab(root=root, helm4=Path(helm4) if helm4 else None)


@pytest.fixture(scope="session")
def speech_text() -> str:
    return (FIXTURES / "speech.txt").read_text()


def speech_pcm() -> np.ndarray:
    """The fixture recording as 16 kHz mono 16-bit samples (decoded by PyAV)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
    parts = []
    with av.open(str(FIXTURES / "speech.mp4")) as container:
        for frame in container.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts)


@pytest.fixture(scope="session")
def long_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recording four times over with a second of silence between: about 1:45, so
    with the lab's 10-second chunks about ten chunks to share among transcribers."""
    pcm = speech_pcm()
    gap = np.zeros(16000, dtype=pcm.dtype)
    audio = np.concatenate([part for _ in range(4) for part in (pcm, gap)])
    path = tmp_path_factory.mktemp("media") / "speech-x4.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(audio.astype("<i2").tobytes())
    return path


@pytest.fixture(scope="session")
def volumes(lab: Lab) -> dict[str, Path]:
    """Static volumes for the claims the lab values make (name -> folder on the host)."""
    lab.run(lab.root / "bin" / "kubectl", "create", "namespace", NAMESPACE)
    return {
        "store": lab.static_volume("store", f"{RELEASE}-store", owner=10001),
        "postgresql": lab.static_volume("postgresql", f"data-{RELEASE}-postgresql-0", owner=999),
        "backup": lab.static_volume("backup", f"{RELEASE}-backup", owner=10001),
    }


@pytest.fixture(scope="session")
def api_key(lab: Lab) -> str:
    """A key made the way NOTES.txt says: `vtx keys create` in the gateway pod."""
    out = lab.kubectl(
        "exec", f"deploy/{RELEASE}-gateway", "-c", "gateway", "--", "vtx", "keys", "create",
        "cluster-tests", "--json",
    )  # fmt: skip
    return str(json.loads(out.strip().splitlines()[-1])["key"])


@pytest.fixture(scope="session")
def api(lab: Lab, api_key: str) -> Api:
    return Api(f"http://{lab.service_ip('gateway')}:8000", api_key)
