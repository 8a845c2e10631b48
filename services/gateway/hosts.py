"""Which `Host` the gateway answers, and which cross-origin requests may change state.

A page on another site can reach a gateway on 127.0.0.1 in two ways: by DNS
rebinding (its own name resolving to 127.0.0.1, so the browser sends `Host:
evil.example`), and by a plain cross-site form POST, which a browser sends without
asking. `HostGuard` refuses the first with 400 unless the Host is in
`VTX_ALLOWED_HOSTS`, and the second with 403: a state-changing request without an
`Authorization` header whose `Origin` (or `Sec-Fetch-Site`) shows another origin.
Probes and `/metrics` answer any Host, since kubelet and Prometheus use the pod IP.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.errors import OPENAI_PATHS, openai_error

ANY = "*"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}

_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_PORT = re.compile(r"[0-9]{1,5}")


def split_host(value: str) -> tuple[str, int | None] | None:
    """`name[:port]` of a Host header or an Origin's authority, lower case, IPv6 without
    brackets; None when malformed (missing, bad characters, a port that is no port)."""
    try:
        return _split(value.strip().lower())
    except ValueError:
        return None


def _split(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError(text)
        ipaddress.IPv6Address(name)
    elif text.count(":") > 1:  # a bare IPv6 address, as some clients send it
        name, rest = text, ""
    else:
        name, colon, port_text = text.partition(":")
        rest = colon + port_text
    port = _port(rest)
    name = name.removesuffix(".")
    if ":" in name:
        return str(ipaddress.IPv6Address(name)), port
    if not _NAME.fullmatch(name):
        raise ValueError(name)
    return name, port


def _port(rest: str) -> int | None:
    """The port after a name (`:8000`), None when there is none."""
    if not rest:
        return None
    if not rest.startswith(":") or not _PORT.fullmatch(rest[1:]) or int(rest[1:]) > 65535:
        raise ValueError(rest)
    return int(rest[1:])


def host_allowed(name: str, allowed: Sequence[str]) -> bool:
    """Whether a Host's name is in the list: exact names, `*.domain` for its subdomains,
    `*` for any."""
    for pattern in allowed:
        entry = pattern.strip().lower()
        if entry == ANY:
            return True
        if entry.startswith("*."):
            if name.endswith(entry[1:]):
                return True
            continue
        parsed = split_host(entry)
        if parsed is not None and parsed[0] == name:
            return True
    return False


def cross_origin(headers: Headers) -> str | None:
    """The other origin a browser says this request comes from, or None for a request
    from the server's own pages or from a client that is no browser."""
    origin = headers.get("origin")
    if origin is not None and not same_origin(origin, headers.get("host", "")):
        return f"a page at {origin[:100]}"
    site = headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        return f"a page of another origin (Sec-Fetch-Site: {site})"
    return None


def same_origin(origin: str, host: str) -> bool:
    """Whether `Origin: scheme://name[:port]` names the host this request was sent to
    (`null`, other schemes and anything malformed do not)."""
    scheme, sep, authority = origin.strip().lower().partition("://")
    default = DEFAULT_PORTS.get(scheme)
    theirs, ours = split_host(authority), split_host(host)
    if not sep or default is None or theirs is None or ours is None:
        return False
    return (theirs[0], theirs[1] or default) == (ours[0], ours[1] or default)


def exempt(path: str) -> bool:
    """Probes and metrics: reached by pod IP (kubelet, Prometheus), so by any Host."""
    return path in ("/health", "/metrics") or path.startswith("/health/")


class HostGuard:
    """Pure ASGI middleware: the Host allow-list and the cross-origin refusal."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allowed = tuple(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        code, message = refusal
        path: str = scope["path"]
        if path.startswith(OPENAI_PATHS):
            response = openai_error(code, message)
        else:
            response = JSONResponse({"detail": message}, status_code=code)
        await response(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """The status and message to refuse this request with, or None to let it in."""
        headers = Headers(scope=scope)
        if not exempt(scope["path"]) and not self.host_ok(headers.get("host")):
            return 400, self.host_message(headers.get("host"))
        if scope["method"] in SAFE_METHODS or headers.get("authorization"):
            return None
        other = cross_origin(headers)
        if other is None:
            return None
        return 403, (
            f"Refused a cross-origin request from {other}: a page on another site may not "
            "change anything here. Use this server's own page, or send the request with "
            "'Authorization: Bearer <key>'."
        )

    def host_ok(self, host: str | None) -> bool:
        if ANY in self.allowed:
            return True
        parsed = split_host(host or "")
        return parsed is not None and host_allowed(parsed[0], self.allowed)

    def host_message(self, host: str | None) -> str:
        shown = "a request without a Host header" if not host else f"the Host '{host[:100]}'"
        return (
            f"This server does not answer to {shown}. If that is one of its names, an "
            "operator can add it to VTX_ALLOWED_HOSTS (comma-separated names; '*' allows any)."
        )
