"""The channels decision on sounds built to be each case: two talkers, one mix, a silent side."""

from __future__ import annotations

import numpy as np

from services.splitter.channels import ChannelStats, distinct_voices
from services.splitter.chunking import SAMPLE_RATE

RNG = np.random.default_rng(7)


def bursts(pattern: list[int], seconds: float = 0.5) -> np.ndarray:
    """Noise bursts where `pattern` is 1, silence where 0: a stand-in for turns of talk."""
    n = int(seconds * SAMPLE_RATE)
    parts = [RNG.normal(0, 3000 * on, n) for on in pattern]
    return np.concatenate(parts)


def stereo(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.stack([left, right], axis=1).clip(-32768, 32767).astype(np.int16)


def blocks(pairs: np.ndarray, size: int = 4096) -> list[np.ndarray]:
    return [pairs[i : i + size] for i in range(0, len(pairs), size)]


def test_two_talkers_taking_turns_on_their_own_channels_are_two_voices() -> None:
    left = bursts([1, 1, 0, 0, 1, 0, 0, 1])
    right = bursts([0, 0, 1, 1, 0, 1, 1, 0])
    assert distinct_voices(blocks(stereo(left, right)))


def test_crosstalk_a_few_db_down_still_leaves_each_channel_its_own_talker() -> None:
    left = bursts([1, 1, 0, 0, 1, 0])
    right = bursts([0, 0, 1, 1, 0, 1])
    # Each microphone hears the other talker 20 dB down, as two mics in one room do.
    assert distinct_voices(blocks(stereo(left + 0.1 * right, right + 0.1 * left)))


def test_one_mix_copied_to_both_channels_is_one_voice() -> None:
    mix = bursts([1, 0, 1, 1, 0, 1])
    assert not distinct_voices(blocks(stereo(mix, mix)))
    assert not distinct_voices(blocks(stereo(mix, 0.7 * mix)))  # panned, still one mix


def test_a_silent_channel_is_not_a_second_speaker() -> None:
    talk = bursts([1, 0, 1, 1, 0, 1])
    assert not distinct_voices(blocks(stereo(talk, np.zeros_like(talk))))


def test_one_talker_on_each_side_but_always_together_is_one_mix() -> None:
    left = bursts([1, 1, 1, 1])
    right = bursts([1, 1, 1, 1])
    assert not distinct_voices(blocks(stereo(left, right)))  # uncorrelated, never alone


def test_the_statistics_do_not_depend_on_how_the_audio_is_blocked() -> None:
    pairs = stereo(bursts([1, 0, 1]), bursts([0, 1, 1]))
    whole, pieces = ChannelStats(), ChannelStats()
    whole.add(pairs)
    for block in blocks(pairs, size=32_000):  # a multiple of the 20 ms frame
        pieces.add(block)
    assert abs(whole.correlation() - pieces.correlation()) < 1e-9
    assert whole.dominance() == pieces.dominance()


def test_no_audio_at_all_is_one_mix() -> None:
    assert not distinct_voices([])
