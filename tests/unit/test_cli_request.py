"""The form `vtx transcribe` sends: only the options given, so the server's defaults hold."""

from __future__ import annotations

import pytest

from services.cli.client import JobRequest


def test_nothing_given_sends_no_field() -> None:
    assert JobRequest().form() == {}


@pytest.mark.parametrize(("vad", "sent"), [(True, "true"), (False, "false")])
def test_vad_is_sent_as_the_word_the_gateway_reads(vad: bool, sent: str) -> None:
    assert JobRequest(vad=vad).form() == {"vad": sent}


def test_every_option_given_is_sent() -> None:
    form = JobRequest(language="de", chunk_seconds=30.0, vad=False, hotwords="ComfyUI").form()
    assert form == {
        "language": "de",
        "chunk_seconds": "30.0",
        "vad": "false",
        "hotwords": "ComfyUI",
    }


def test_speakers_are_sent_as_given_and_bounds_alone_mean_auto() -> None:
    assert JobRequest(speakers="2").form() == {"speakers": "2"}
    assert JobRequest(speakers="auto", min_speakers=2, max_speakers=4).form() == {
        "speakers": "auto",
        "min_speakers": "2",
        "max_speakers": "4",
    }
    assert JobRequest(max_speakers=3).form() == {"speakers": "auto", "max_speakers": "3"}
    assert JobRequest(speakers="off").form() == {"speakers": "off"}
