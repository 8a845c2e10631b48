"""The splitter's decode path, in process, against every case of the hostile corpus.

Probing and decoding all of it takes seconds, so the whole corpus runs here on every
`make test` (the end-to-end campaign splits it into a fast and a long half). For each
case: `probe` and `decode_pcm` raise nothing but MediaError, what is accepted carries the
facts the quotas count, and no file decodes past its budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.splitter.chunking import SAMPLE_RATE
from services.splitter.decode import budget, decode_pcm
from shared.media import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, MediaError, probe
from tests.hostile.corpus import CASES, Case

MAX_S = 6 * 3600.0  # VTX_MAX_DURATION_S's default


def _named(name: str, tmp_path: Path) -> Path:
    case = next(case for case in CASES if case.name == name)
    path = tmp_path / "upload"
    path.write_bytes(case.build())
    return path


def _decoded(path: Path, declared_s: float | None) -> int:
    return sum(len(block) for block in decode_pcm(path, MAX_S, declared_s))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_probe_and_decode_fail_only_as_media_errors_within_the_budget(
    case: Case, tmp_path: Path
) -> None:
    path = tmp_path / "upload"  # stored as uploads are, under a name without extension
    path.write_bytes(case.build())
    try:
        info = probe(path)
    except MediaError as refusal:
        assert str(refusal)
        return
    assert not case.refused, f"accepted: {info}"
    if info.audio_codec is None:
        return
    assert info.duration_s is not None and info.duration_s > 0
    assert info.sample_rate is not None and MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE
    assert info.channels is not None and 1 <= info.channels <= MAX_CHANNELS
    allowed = budget(info.duration_s, MAX_S).seconds * SAMPLE_RATE
    decoded = 0
    try:
        for block in decode_pcm(path, MAX_S, info.duration_s):
            decoded += len(block)
    except MediaError as refusal:
        assert str(refusal)
    assert decoded <= allowed


def test_a_file_declaring_one_second_stops_decoding_at_its_budget(tmp_path: Path) -> None:
    """Two minutes of FLAC silence whose header says one second: decoding stops at the
    budget (the declared length with its margin), not at the end of the file."""
    path = _named("flac/silence-declared-1s", tmp_path)
    info = probe(path)
    assert info.duration_s == pytest.approx(1.0)
    decoded = 0
    with pytest.raises(MediaError, match="decodes to more audio than it declares"):
        for block in decode_pcm(path, MAX_S, info.duration_s):
            decoded += len(block)
    assert decoded <= budget(1.0, MAX_S).seconds * SAMPLE_RATE
    honest = _named("flac/silence-length-unknown", tmp_path)  # counted, then decoded whole
    assert _decoded(honest, probe(honest).duration_s) == pytest.approx(120 * SAMPLE_RATE, rel=0.01)


def test_audio_that_drops_below_8_khz_mid_stream_is_refused_while_decoding(
    tmp_path: Path,
) -> None:
    path = _named("joined/adts-16k-7350", tmp_path)
    info = probe(path)
    assert info.sample_rate == 16_000  # the probe sees only the first part
    with pytest.raises(MediaError, match="sampled at 7,350 Hz"):
        _decoded(path, info.duration_s)


def test_a_rate_that_changes_mid_stream_decodes_both_parts(tmp_path: Path) -> None:
    path = _named("joined/adts-16k-8k", tmp_path)  # 2 s at 16 kHz, then 2 s at 8 kHz
    assert _decoded(path, probe(path).duration_s) / SAMPLE_RATE == pytest.approx(4.2, abs=0.2)


def test_more_channels_than_ffmpeg_can_mix_are_averaged(tmp_path: Path) -> None:
    path = _named("wav/9-channels", tmp_path)
    info = probe(path)
    assert info.channels == 9
    assert _decoded(path, info.duration_s) / SAMPLE_RATE == pytest.approx(info.duration_s, abs=0.01)
