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
