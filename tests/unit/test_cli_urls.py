"""Where `vtx transcribe` finds the local gateway when no --server is given."""

from __future__ import annotations

import pytest

from services.cli import local_gateway
from shared.config import Settings


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),  # a wildcard bind is reached over loopback
        ("::", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000"),
        ("vtx.internal", "http://vtx.internal:8000"),
    ],
)
def test_the_local_gateway_is_reached_by_an_address_it_answers(host: str, url: str) -> None:
    assert local_gateway(Settings(host=host)) == url
