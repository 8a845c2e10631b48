from __future__ import annotations

import pytest

from services.gateway.api.routes.audio import TRANSCRIBE_FORM, TRANSLATE_FORM
from services.gateway.errors import status_of
from services.gateway.options import (
    JOB_FORM,
    SPEAKERS_CEILING,
    Form,
    JobOptions,
    parse_options,
    parse_subtitles,
)
from services.gateway.problems import InvalidField, Problem
from services.gateway.uploads import FILE_FIELD
from shared.config import Settings


def test_language_is_normalised_and_checked() -> None:
    assert parse_options({"language": " EN "}).language == "en"
    with pytest.raises(Problem, match="not a language code") as info:
        parse_options({"language": "klingon"})
    assert status_of(info.value) == 422


def test_chunk_seconds_bounds() -> None:
    assert parse_options({"chunk_seconds": "30"}).chunk_seconds == 30
    with pytest.raises(Problem, match="chunk_seconds"):
        parse_options({"chunk_seconds": "1"})
    with pytest.raises(Problem, match="chunk_seconds"):
        parse_options({"chunk_seconds": "soon"})


@pytest.mark.parametrize("name", ["chunk_seconds", "temperature"])
@pytest.mark.parametrize(
    "text", ["nan", "inf", "-inf", "\u0661\u0662", "1_0", "0x1", " 1", "9" * 5000]
)
def test_odd_numbers_are_refused_with_the_field_named(name: str, text: str) -> None:
    with pytest.raises(Problem, match=name) as info:
        parse_options({name: text})
    assert status_of(info.value) == 422
    assert len(info.value.message) < 300


def test_numbers_as_sdks_write_them() -> None:
    options = parse_options({"temperature": "0.0", "chunk_seconds": "12.5"})
    assert (options.temperature, options.chunk_seconds) == (0.0, 12.5)
    assert parse_options({"temperature": "1e-05"}).temperature == 1e-05


@pytest.mark.parametrize("name", ["prompt", "hotwords", "model", "language", "url", "callback_url"])
def test_control_characters_in_text_are_refused(name: str) -> None:
    with pytest.raises(Problem, match=rf"{name}: holds a control character \(U\+0000\)"):
        parse_options({name: "a\x00b"})


def test_a_prompt_may_have_lines_and_tabs() -> None:
    assert parse_options({"prompt": "Ann,\tBob\nCarol"}).prompt == "Ann,\tBob\nCarol"


def test_empty_fields_count_as_absent_and_other_forms_fields_are_not_options() -> None:
    options = parse_options({"language": "", "response_format": "srt"}, TRANSCRIBE_FORM)
    assert options.language is None and options.chunk_seconds is None


def test_a_form_names_only_job_options() -> None:
    with pytest.raises(ValueError, match="colour"):
        Form(options=("language", "colour"))


@pytest.mark.parametrize("form", [JOB_FORM, TRANSCRIBE_FORM, TRANSLATE_FORM])
def test_the_openapi_body_lists_exactly_the_fields_the_parser_takes(form: Form) -> None:
    schema = form.openapi()["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert tuple(schema["properties"]) == form.names
    assert schema["additionalProperties"] is False
    assert form.names[0] == FILE_FIELD


def test_job_form_takes_every_option_with_its_bounds() -> None:
    assert JOB_FORM.names == (FILE_FIELD, *JobOptions.model_fields)
    properties = JOB_FORM.openapi()["requestBody"]["content"]["multipart/form-data"]["schema"][
        "properties"
    ]
    assert properties["chunk_seconds"] == {
        "type": "number",
        "minimum": 5,
        "maximum": 3600,
        "description": JobOptions.model_fields["chunk_seconds"].description,
    }
    assert properties["task"]["enum"] == ["transcribe", "translate"]
    assert properties["url"]["format"] == "uri"


def test_openai_forms_take_the_documented_fields() -> None:
    translate = {"file", "model", "prompt", "hotwords", "response_format", "temperature", "vad"}
    translate |= {"max_line_width", "max_line_count", "max_cue_seconds"}
    translate |= {"speakers", "min_speakers", "max_speakers"}
    assert set(TRANSLATE_FORM.names) == translate
    documented = {
        "file",
        "model",
        "language",
        "prompt",
        "hotwords",
        "speakers",
        "min_speakers",
        "max_speakers",
        "response_format",
        "temperature",
        "timestamp_granularities[]",
        "include[]",
        "stream",
        "chunking_strategy",
        "known_speaker_names[]",
        "known_speaker_references[]",
    }
    assert documented <= set(TRANSCRIBE_FORM.names)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("True", True), ("1", True), ("on", True), ("yes", True),
     ("false", False), ("FALSE", False), ("0", False), ("off", False), ("no", False)],
)  # fmt: skip
def test_vad_reads_the_words_forms_and_sdks_write(text: str, expected: bool) -> None:
    assert parse_options({"vad": text}).vad is expected


def test_vad_absent_or_empty_leaves_it_to_the_server() -> None:
    assert parse_options({}).vad is None
    assert parse_options({"vad": ""}).vad is None


@pytest.mark.parametrize("text", ["maybe", "t", "y", "2", " true", "true\x00", "\u0661"])
def test_vad_refuses_anything_else_with_the_field_named(text: str) -> None:
    with pytest.raises(Problem, match=r"vad: '.*' is not a boolean: send true or false") as info:
        parse_options({"vad": text})
    assert status_of(info.value) == 422
    assert info.value.param == "vad"


@pytest.mark.parametrize("form", [JOB_FORM, TRANSCRIBE_FORM, TRANSLATE_FORM])
def test_every_upload_form_documents_vad_as_a_boolean(form: Form) -> None:
    schema = form.openapi()["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["vad"] == {
        "type": "boolean",
        "description": JobOptions.model_fields["vad"].description,
    }
    assert parse_options({"vad": "false"}, form).vad is False


def test_subtitle_fields_read_numbers_strictly_and_name_the_field() -> None:
    rules = parse_subtitles({"max_line_width": "30", "max_cue_seconds": "2.5", "model": "x"})
    assert (rules.max_line_width, rules.max_line_count, rules.max_cue_seconds) == (30, 2, 2.5)
    assert parse_subtitles({"max_line_count": ""}).max_line_count == 2
    for name, value in [
        ("max_line_width", "\u0661\u0662"),
        ("max_line_count", "1_0"),
        ("max_cue_seconds", "nan"),
        ("max_cue_seconds", "61"),
    ]:
        with pytest.raises(InvalidField, match=name) as refused:
            parse_subtitles({name: value})
        assert refused.value.param == name


def test_subtitle_fields_are_in_both_openai_form_documents() -> None:
    for form in (TRANSCRIBE_FORM, TRANSLATE_FORM):
        body = form.openapi()["requestBody"]["content"]["multipart/form-data"]["schema"]
        width = body["properties"]["max_line_width"]
        assert (width["type"], width["minimum"], width["maximum"], width["default"]) == (
            "integer",
            10,
            200,
            42,
        )


@pytest.mark.parametrize(
    ("fields", "stored"),
    [
        ({}, (None, None, None)),
        ({"speakers": ""}, (None, None, None)),
        ({"speakers": "off"}, (None, None, None)),
        ({"speakers": "auto"}, ("auto", None, None)),
        ({"speakers": "auto", "min_speakers": "2", "max_speakers": "4"}, ("auto", 2, 4)),
        ({"speakers": "auto", "min_speakers": "3", "max_speakers": "3"}, ("auto", 3, 3)),
        ({"speakers": "auto", "max_speakers": "20"}, ("auto", None, 20)),
        ({"speakers": "2"}, ("2", None, None)),
        ({"speakers": "02"}, ("2", None, None)),
        ({"speakers": "1"}, ("1", None, None)),
        ({"speakers": "20"}, ("20", None, None)),
        ({"speakers": "3", "min_speakers": "2", "max_speakers": "3"}, ("3", 2, 3)),
    ],
)
def test_speakers_are_stored_as_none_auto_or_the_digits(
    fields: dict[str, str], stored: tuple[str | None, int | None, int | None]
) -> None:
    options = parse_options(fields)
    assert (options.speakers, options.min_speakers, options.max_speakers) == stored


@pytest.mark.parametrize(
    ("fields", "param", "says"),
    [
        ({"speakers": "many"}, "speakers", "'many' is not off, auto or a number of speakers"),
        ({"speakers": "Auto"}, "speakers", "is not off, auto or a number"),
        ({"speakers": "-1"}, "speakers", "is not off, auto or a number"),
        ({"speakers": "2.5"}, "speakers", "is not off, auto or a number"),
        ({"speakers": "\u0662"}, "speakers", "is not off, auto or a number"),
        ({"speakers": "1234"}, "speakers", "at most 8 characters|is not off, auto"),
        ({"speakers": "0"}, "speakers", "0 is not from 1 to 20 \\(VTX_MAX_SPEAKERS\\)"),
        ({"speakers": "21"}, "speakers", "21 is not from 1 to 20"),
        ({"min_speakers": "2"}, "min_speakers", "taken only with speakers=auto"),
        ({"speakers": "off", "max_speakers": "2"}, "max_speakers", "only with speakers=auto"),
        ({"speakers": "auto", "min_speakers": "0"}, "min_speakers", "greater than or equal to 1"),
        ({"speakers": "auto", "min_speakers": "x"}, "min_speakers", "not a whole number"),
        ({"speakers": "auto", "max_speakers": "21"}, "max_speakers", "VTX_MAX_SPEAKERS \\(20\\)"),
        ({"speakers": "auto", "max_speakers": "101"}, "max_speakers", "less than or equal"),
        (
            {"speakers": "auto", "min_speakers": "4", "max_speakers": "2"},
            "min_speakers",
            "min_speakers \\(4\\) is more than max_speakers \\(2\\)",
        ),
        ({"speakers": "5", "max_speakers": "4"}, "speakers", "speakers=5 is outside"),
        ({"speakers": "2", "min_speakers": "3"}, "speakers", "send a count within them"),
    ],
)
def test_impossible_speakers_are_a_422_naming_the_field(
    fields: dict[str, str], param: str, says: str
) -> None:
    with pytest.raises(InvalidField, match=says) as refused:
        parse_options(fields)
    assert status_of(refused.value) == 422
    assert refused.value.param == param
    assert len(refused.value.message) < 300


def test_the_servers_speaker_limit_bounds_every_speaker_field() -> None:
    assert parse_options({"speakers": "50"}, max_speakers=50).speakers == "50"
    assert parse_options({"speakers": "auto", "max_speakers": "5"}, max_speakers=5).max_speakers
    with pytest.raises(InvalidField, match="6 is not from 1 to 5"):
        parse_options({"speakers": "6"}, max_speakers=5)
    with pytest.raises(InvalidField, match="VTX_MAX_SPEAKERS \\(5\\)"):
        parse_options({"speakers": "auto", "min_speakers": "6"}, max_speakers=5)


def test_no_server_may_allow_more_speakers_than_the_form_documents() -> None:
    field = Settings.model_fields["max_speakers"]
    assert [m.le for m in field.metadata if hasattr(m, "le")] == [SPEAKERS_CEILING]
    assert Settings().max_speakers == 20


@pytest.mark.parametrize("form", [JOB_FORM, TRANSCRIBE_FORM, TRANSLATE_FORM])
def test_every_upload_form_documents_the_speaker_fields(form: Form) -> None:
    properties = form.openapi()["requestBody"]["content"]["multipart/form-data"]["schema"][
        "properties"
    ]
    assert properties["speakers"]["type"] == "string"
    assert properties["speakers"]["pattern"] == "^(off|auto|[0-9]{1,3})$"
    assert "vtx[speakers]" in properties["speakers"]["description"]
    for name in ("min_speakers", "max_speakers"):
        assert (properties[name]["type"], properties[name]["minimum"]) == ("integer", 1)
        assert properties[name]["maximum"] == SPEAKERS_CEILING
    assert parse_options({"speakers": "auto"}, form).speakers == "auto"
