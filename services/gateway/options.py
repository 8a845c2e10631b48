"""The form fields of a new job: what each endpoint's form takes, checked before any work.

One table is the truth for every upload form: `JobOptions` declares each option once
(type, bounds, description), and a `Form` names which of them an endpoint takes, plus
the fields it reads itself and those it accepts only to ignore. The streaming parser
refuses any other field name, and the OpenAPI body is generated from the same `Form`,
so the document and the checks cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from services.gateway.numbers import READ_DECIMAL, READ_INTEGER, decimal, integer
from services.gateway.problems import InvalidField
from services.gateway.speakers import check_request
from services.gateway.uploads import FILE_FIELD
from shared.languages import WHISPER_LANGUAGES
from shared.netguard import Refused, check_url
from shared.speaker_count import DEFAULT_LIMIT, read_speakers
from shared.subtitles import CueRules

# C0 controls but tab and line breaks, DEL and C1: no text field has a use for them
# (and PostgreSQL refuses NUL in text).
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# The words a form or an SDK writes for a boolean (an HTML checkbox sends "on");
# pydantic's lax mode would also take "t", "y" and the like.
_FLAGS = {"true": True, "1": True, "on": True, "yes": True}
_FLAGS |= {"false": False, "0": False, "off": False, "no": False}
# The most speakers any server may allow (VTX_MAX_SPEAKERS is checked after parsing).
SPEAKERS_CEILING = 100  # the upper bound of Settings.max_speakers (a unit test holds them equal)


class JobOptions(BaseModel):
    """Every option a job may be given, as form fields of text."""

    url: str | None = Field(
        default=None,
        max_length=2048,
        description="http(s) URL the server downloads the media from (public addresses "
        "only), instead of `file`",
        json_schema_extra={"format": "uri"},
    )
    language: str | None = Field(
        default=None, max_length=16, description="ISO 639-1 code, e.g. en; detected if absent"
    )
    chunk_seconds: Annotated[float | None, READ_DECIMAL] = Field(
        default=None, ge=5, le=3600, description="About how long each piece transcribed is"
    )
    model: str | None = Field(
        default=None, max_length=255, description="One of GET /v1/models; default: the server's"
    )
    task: Literal["transcribe", "translate"] = Field(
        default="transcribe", description="translate: into English"
    )
    prompt: str | None = Field(
        default=None,
        max_length=2000,
        description="Words and spellings to expect (names, jargon)",
    )
    hotwords: str | None = Field(
        default=None,
        max_length=500,
        description="Words to favour while decoding (faster-whisper's hotwords), e.g. "
        "names the model would otherwise misspell",
    )
    temperature: Annotated[float | None, READ_DECIMAL] = Field(
        default=None, ge=0, le=1, description="Sampling temperature; 0 is the most certain"
    )
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Receives a signed POST when the job ends",
        json_schema_extra={"format": "uri"},
    )
    vad: bool | None = Field(
        default=None,
        description="true: find speech first (silero VAD) and decode only it, in batched "
        "windows; false: decode all the audio in order. Default: the server's VTX_VAD",
    )

    speakers: str | None = Field(
        default=None,
        max_length=8,
        description="Who speaks when: off (default), auto, or how many people speak "
        "(1 to VTX_MAX_SPEAKERS, default 20). Each segment and word then carries its "
        "speaker (S1, S2, ... in order of first appearance). Needs the speakers service "
        "(the vtx[speakers] extra): without a running speakers worker the answer is 503",
        json_schema_extra={"pattern": "^(off|auto|[0-9]{1,3})$"},
    )
    min_speakers: Annotated[int | None, READ_INTEGER] = Field(
        default=None,
        ge=1,
        le=SPEAKERS_CEILING,
        description="With speakers=auto: at least this many speakers (at most VTX_MAX_SPEAKERS)",
    )
    max_speakers: Annotated[int | None, READ_INTEGER] = Field(
        default=None,
        ge=1,
        le=SPEAKERS_CEILING,
        description="With speakers=auto: at most this many speakers (at most VTX_MAX_SPEAKERS)",
    )

    @field_validator(
        "url", "language", "model", "prompt", "hotwords", "callback_url", mode="before"
    )
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        if isinstance(value, str) and (found := _CONTROL_IN_TEXT.search(value)):
            raise ValueError(f"holds a control character (U+{ord(found.group()):04X})")
        return value

    @field_validator("vad", mode="before")
    @classmethod
    def _flag(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        flag = _FLAGS.get(value.lower())
        if flag is None:
            shown = value[:24].encode("ascii", "backslashreplace").decode("ascii")
            raise ValueError(f"'{shown}' is not a boolean: send true or false")
        return flag

    @field_validator("speakers", mode="before")
    @classmethod
    def _speakers(cls, value: object) -> object:
        return read_speakers(value) if isinstance(value, str) else value

    @field_validator("callback_url", "url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            check_url(value.strip())
        except Refused as exc:
            raise ValueError(str(exc)) from exc
        return value.strip()

    @field_validator("language")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if not value:
            return None
        code = value.strip().lower()
        if code not in WHISPER_LANGUAGES:
            raise ValueError(f"'{value}' is not a language code Whisper knows (e.g. en, de, fr)")
        return code


IGNORED = "Accepted for compatibility with OpenAI's API, and ignored."
FORM_LIMITS = (
    "Besides the file, at most VTX_MAX_FORM_FIELDS parts (default 32) holding at most "
    "VTX_MAX_FORM_BYTES (default 32 KiB) of headers and values together; any other field "
    "name, or more, is refused (422) as soon as it arrives."
)


@dataclass(frozen=True)
class Form:
    """The multipart form of one endpoint: the fields it takes besides `file`."""

    options: tuple[str, ...]  # JobOptions fields, under the same names
    own: dict[str, dict[str, Any]] = field(default_factory=dict)  # read by the route
    ignored: tuple[str, ...] = ()  # taken and dropped, for another API's clients
    required: tuple[str, ...] = ()
    file_description: str = "The media: any audio or video file"
    by_url: bool = False  # `url` may stand in for `file`

    def __post_init__(self) -> None:
        unknown = set(self.options) - set(JobOptions.model_fields)
        if unknown:
            raise ValueError(f"not JobOptions fields: {sorted(unknown)}")

    @property
    def names(self) -> tuple[str, ...]:
        """Every field name the form takes, `file` first, in the document's order."""
        return (FILE_FIELD, *self.options, *self.own, *self.ignored)

    def openapi(self) -> dict[str, Any]:
        """The `requestBody` for `openapi_extra`: the same fields the parser accepts."""
        properties: dict[str, Any] = {
            FILE_FIELD: {
                "type": "string",
                "format": "binary",
                "description": self.file_description,
            },
            **{name: option_schema(name) for name in self.options},
            **self.own,
            **{name: _ignored_schema(name) for name in self.ignored},
        }
        schema: dict[str, Any] = {
            "type": "object",
            "description": FORM_LIMITS,
            "properties": properties,
            "additionalProperties": False,
        }
        if self.by_url:
            schema["anyOf"] = [{"required": [FILE_FIELD]}, {"required": ["url"]}]
        else:
            schema["required"] = [FILE_FIELD, *self.required]
        content = {"multipart/form-data": {"schema": schema}}
        return {"requestBody": {"required": True, "content": content}}


def option_schema(name: str) -> dict[str, Any]:
    """One JobOptions field as a form property: its type, bounds and description.

    A form field is absent rather than null, so `X | None` shows as plain X.
    """
    prop: dict[str, Any] = _options_schema()["properties"][name]
    branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
    schema = {k: v for k, v in branches[0].items() if k not in ("title", "default")}
    for key in ("description", "format", "pattern"):
        if key in prop:
            schema[key] = prop[key]
    if prop.get("default") is not None:
        schema["default"] = prop["default"]
    return schema


@cache
def _options_schema() -> dict[str, Any]:
    return JobOptions.model_json_schema()


def _ignored_schema(name: str) -> dict[str, Any]:
    if name.endswith("[]"):
        return {"type": "array", "items": {"type": "string"}, "description": IGNORED}
    return {"type": "string", "description": IGNORED}


JOB_FORM = Form(
    options=tuple(JobOptions.model_fields),
    file_description="The media; or send `url` instead.",
    by_url=True,
)


def parse_options(
    fields: dict[str, str], form: Form = JOB_FORM, max_speakers: int = DEFAULT_LIMIT
) -> JobOptions:
    """The form's option fields as JobOptions; an empty field counts as absent.

    `max_speakers` is the server's VTX_MAX_SPEAKERS: the speaker fields are checked
    against it and against each other here, before any media is looked at."""
    data = {k: v for k, v in fields.items() if k in form.options and v != ""}
    try:
        options = JobOptions.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        first = exc.errors()[0]["loc"] if exc.errors() else ()
        param = ".".join(str(part) for part in first) or None
        raise InvalidField(f"Invalid form field: {problems}.", param=param) from exc
    check_request(options.speakers, options.min_speakers, options.max_speakers, max_speakers)
    return options


class SubtitleOptions(CueRules):
    """The subtitle rules as a request sends them (query or form): numbers read the one
    strict way, bounds and defaults those of `CueRules`."""

    @field_validator("max_line_width", "max_line_count", mode="before")
    @classmethod
    def _whole(cls, value: object) -> object:
        return integer(value) if isinstance(value, str) else value

    @field_validator("max_cue_seconds", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        return decimal(value) if isinstance(value, str) else value


def subtitle_fields() -> dict[str, dict[str, Any]]:
    """The rules as form properties, for a `Form`'s own fields."""
    schema = SubtitleOptions.model_json_schema()["properties"]
    return {name: {k: v for k, v in prop.items() if k != "title"} for name, prop in schema.items()}


def parse_subtitles(fields: dict[str, str]) -> SubtitleOptions:
    """The form's subtitle fields; an empty field counts as absent."""
    data = {k: v for k, v in fields.items() if k in SubtitleOptions.model_fields and v != ""}
    try:
        return SubtitleOptions.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidField(f"Invalid form field: {name}: {message}.", param=name) from exc
