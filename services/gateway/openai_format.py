"""A finished transcript in the response formats of OpenAI's audio API."""

from __future__ import annotations

import json
from enum import StrEnum

from fastapi import Response

from shared.subtitles import CueRules
from shared.transcript import TranscriptDoc, diarized, render_srt, render_vtt


class ResponseFormat(StrEnum):
    json = "json"
    text = "text"
    srt = "srt"
    vtt = "vtt"
    verbose_json = "verbose_json"
    diarized_json = "diarized_json"


def verbose(doc: TranscriptDoc, task: str, words: bool, segments: bool) -> dict[str, object]:
    """OpenAI's verbose_json: language (ISO 639-1 code), duration, segments, words if asked;
    with speakers, `speaker` on segments and words (the name where the user gave one)."""
    body: dict[str, object] = {
        "task": task,
        "language": "en" if task == "translate" else (doc.language or "unknown"),
        "language_probability": None if task == "translate" else doc.language_probability,
        "duration": doc.duration,
        "text": doc.text,
    }
    if segments:
        body["segments"] = [
            {
                "id": s.id,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                **_speaker(doc, s.speaker),
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 0.0,
                "no_speech_prob": 0.0,
            }
            for s in doc.segments
        ]
    if words:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end, **_speaker(doc, w.speaker)}
            for s in doc.segments
            for w in s.words
        ]
    return body


def _speaker(doc: TranscriptDoc, label: str | None) -> dict[str, str]:
    """The `speaker` field, only where there is one: without speakers, as before."""
    return {} if label is None else {"speaker": doc.name_of(label)}


def respond(
    doc: TranscriptDoc,
    fmt: ResponseFormat,
    task: str,
    granularities: set[str],
    rules: CueRules | None = None,
) -> Response:
    if fmt == ResponseFormat.text:
        return Response(doc.text + "\n", media_type="text/plain; charset=utf-8")
    if fmt == ResponseFormat.srt:
        return Response(render_srt(doc, rules), media_type="text/plain; charset=utf-8")
    if fmt == ResponseFormat.vtt:
        return Response(render_vtt(doc, rules), media_type="text/plain; charset=utf-8")
    if fmt == ResponseFormat.verbose_json:
        words = "word" in granularities
        segments = "segment" in granularities or not granularities
        body = verbose(doc, task, words=words, segments=segments)
    elif fmt == ResponseFormat.diarized_json:
        body = diarized(doc, task)
    else:
        body = {"text": doc.text}
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json")
