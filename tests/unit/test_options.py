from __future__ import annotations

import pytest

from services.gateway.options import parse_options
from services.gateway.uploads import UploadError


def test_language_is_normalised_and_checked() -> None:
    assert parse_options({"language": " EN "}).language == "en"
    with pytest.raises(UploadError, match="not a language code") as info:
        parse_options({"language": "klingon"})
    assert info.value.status_code == 422


def test_chunk_seconds_bounds() -> None:
    assert parse_options({"chunk_seconds": "30"}).chunk_seconds == 30
    with pytest.raises(UploadError, match="chunk_seconds"):
        parse_options({"chunk_seconds": "1"})
    with pytest.raises(UploadError, match="chunk_seconds"):
        parse_options({"chunk_seconds": "soon"})


def test_empty_and_unknown_fields_are_ignored() -> None:
    options = parse_options({"language": "", "colour": "blue"})
    assert options.language is None and options.chunk_seconds is None
