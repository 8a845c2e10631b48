"""Host headers, origins and bind addresses: what the gateway answers and what it refuses."""

from __future__ import annotations

import pytest

from services.gateway.exposure import is_loopback, refusal
from services.gateway.hosts import HostGuard, host_allowed, same_origin, split_host
from shared.config import LOOPBACK_HOSTS, Settings


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("LocalHost", ("localhost", None)),
        ("localhost.:80", ("localhost", 80)),
        ("[::1]:8000", ("::1", 8000)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("[0:0:0:0:0:0:0:1]:80", ("::1", 80)),
        ("vtx-gateway.default.svc", ("vtx-gateway.default.svc", None)),
    ],
)
def test_a_host_header_gives_its_name_and_port(header: str, parsed: tuple[str, int]) -> None:
    assert split_host(header) == parsed


@pytest.mark.parametrize(
    "header",
    [
        "",
        "evil example",
        "evil.example:",
        "evil.example:80x",
        "evil.example:99999",
        "evil.example:" + "9" * 5000,
        "evil.example:\u0668\u0660",  # Arabic-Indic digits are no port
        "[::1",
        "[evil.example]:80",
        "user@127.0.0.1",
        "127.0.0.1/path",
        "\u0661\u0662\u0667.0.0.1",
        "..",
    ],
)
def test_a_malformed_host_header_parses_to_nothing(header: str) -> None:
    assert split_host(header) is None


def test_the_allow_list_takes_exact_names_subdomain_patterns_and_a_star() -> None:
    assert all(host_allowed(name, LOOPBACK_HOSTS) for name in ("127.0.0.1", "localhost", "::1"))
    assert not host_allowed("evil.example", LOOPBACK_HOSTS)
    assert host_allowed("::1", ["[::1]"])
    assert host_allowed("vtx.example", ["VTX.example:443"])
    assert host_allowed("a.vtx.example", ["*.vtx.example"])
    assert not host_allowed("vtx.example", ["*.vtx.example"])
    assert not host_allowed("evilvtx.example", ["*.vtx.example"])
    assert host_allowed("anything.at.all", ["*"])


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("https://vtx.example", "vtx.example", True),
        ("https://vtx.example", "vtx.example:443", True),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("http://127.0.0.1:3000", "127.0.0.1:8000", False),  # same site, another origin
        ("http://vtx.example:8080", "vtx.example", False),
        ("http://evil.example", "127.0.0.1:8000", False),
        ("null", "127.0.0.1:8000", False),
        ("file://", "127.0.0.1:8000", False),
        ("http://127.0.0.1:8000/path", "127.0.0.1:8000", False),
    ],
)
def test_an_origin_is_the_same_only_for_the_same_name_and_port(
    origin: str, host: str, same: bool
) -> None:
    assert same_origin(origin, host) is same


def scope(method: str, path: str, **headers: str) -> dict[str, object]:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": method, "path": path, "headers": raw}


async def app(_scope: object, _receive: object, _send: object) -> None:
    """The guarded application: never reached by these tests."""


GUARD = HostGuard(app, LOOPBACK_HOSTS)


def test_a_foreign_host_is_refused_except_on_probes_and_metrics() -> None:
    refused = GUARD.refusal(scope("GET", "/v1/jobs", host="evil.example"))
    assert refused is not None and refused[0] == 400
    assert "VTX_ALLOWED_HOSTS" in refused[1] and "evil.example" in refused[1]
    no_host = GUARD.refusal(scope("GET", "/"))
    assert no_host is not None and no_host[0] == 400
    for path in ("/health", "/health/ready", "/health/live", "/metrics"):
        assert GUARD.refusal(scope("GET", path, host="10.1.2.3:8000")) is None, path
    assert GUARD.refusal(scope("GET", "/healthz", host="10.1.2.3")) is not None
    assert HostGuard(app, ["*"]).refusal(scope("GET", "/", host="evil.example")) is None


def test_a_cross_origin_change_without_a_key_is_refused() -> None:
    here = {"host": "127.0.0.1:8000"}
    evil = {**here, "origin": "http://evil.example"}
    refused = GUARD.refusal(scope("POST", "/v1/jobs", **evil))
    assert refused is not None and refused[0] == 403 and "evil.example" in refused[1]
    for method in ("PUT", "PATCH", "DELETE"):
        assert GUARD.refusal(scope(method, "/v1/jobs/x", **evil)) is not None, method
    site = GUARD.refusal(scope("POST", "/v1/jobs", **here, sec_fetch_site="cross-site"))
    assert site is not None and site[0] == 403
    # Reading is not changing; a key is no browser's ambient credential; no Origin, no browser.
    assert GUARD.refusal(scope("GET", "/v1/jobs", **evil)) is None
    assert GUARD.refusal(scope("POST", "/v1/jobs", **evil, authorization="Bearer k")) is None
    assert GUARD.refusal(scope("POST", "/v1/jobs", **here)) is None
    own = {**here, "origin": "http://127.0.0.1:8000", "sec_fetch_site": "same-origin"}
    assert GUARD.refusal(scope("POST", "/v1/jobs", **own)) is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("vtx.example", False),
        ("::ffff:127.0.0.1", False),  # mapped: refused rather than guessed
    ],
)
def test_only_loopback_bind_addresses_count_as_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_an_open_api_beyond_loopback_is_refused_with_what_to_do() -> None:
    message = refusal(Settings(host="0.0.0.0"), key_made=False)
    assert message is not None
    assert "vtx keys create NAME" in message and "VTX_AUTH=off" in message
    assert refusal(Settings(host="0.0.0.0"), key_made=True) is None
    assert refusal(Settings(host="0.0.0.0", auth="off"), key_made=False) is None
    assert refusal(Settings(host="0.0.0.0", auth="required"), key_made=False) is None
    assert refusal(Settings(host="127.0.0.1"), key_made=False) is None
