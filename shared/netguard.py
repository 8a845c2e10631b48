"""Outbound requests to addresses a client chose (media URLs, callbacks), made safely.

A client must not make the server reach its own network: loopback, private,
link-local (cloud metadata at 169.254.169.254), shared or reserved addresses are
refused. The name is resolved here, every address it resolves to is checked, and
the connection goes to that checked address (with the original Host header and
TLS server name), so a second, different DNS answer cannot slip past the check.
Redirects are never followed by the client library: each hop is checked again by
whoever follows it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from shared.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = ("http", "https")


class Refused(ValueError):
    """The URL or the address it leads to may not be fetched; the message says why."""


def allowed_networks(settings: Settings) -> list[Network]:
    """`VTX_URL_ALLOW_NETWORKS`: exemptions for tests (or a deliberate intranet)."""
    return [ipaddress.ip_network(n, strict=False) for n in settings.url_allow_networks]


def is_public(address: IPAddress, allow: list[Network]) -> bool:
    if any(address in network for network in allow):
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped, allow)
    return address.is_global and not address.is_multicast


def check_url(url: str) -> httpx.URL:
    """An absolute http(s) URL with a host and no credentials, or Refused."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise Refused(f"'{url[:200]}' is not a valid URL.") from exc
    if parsed.scheme not in SCHEMES or not parsed.host:
        raise Refused("Only absolute http:// and https:// URLs are accepted.")
    if parsed.userinfo:
        raise Refused("URLs with a user name or password are not accepted.")
    return parsed


async def resolve(host: str, port: int, allow: list[Network]) -> str:
    """The address to connect to: every address the name has must be public."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Refused(f"The host '{host}' could not be resolved.") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise Refused(f"The host '{host}' has no address.")
    for address in addresses:
        if not is_public(address, allow):
            raise Refused(
                f"'{host}' leads to {address}, a private, loopback, link-local or reserved "
                "address; only public addresses may be fetched."
            )
    return str(addresses[0])


def client(timeout_s: float) -> httpx.AsyncClient:
    """No proxies from the environment, no automatic redirects, no cookies kept."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
        follow_redirects=False,
        trust_env=False,
    )


@asynccontextmanager
async def pinned(
    http: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    allow: list[Network],
    **kwargs: Any,
) -> AsyncIterator[httpx.Response]:
    """Send one request to the checked address of `url`'s host; the response streams."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    address = await resolve(host, port, allow)
    headers = dict(kwargs.pop("headers", None) or {})
    headers["Host"] = url.netloc.decode("ascii")
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    request = http.build_request(
        method, url.copy_with(host=address), headers=headers, extensions=extensions, **kwargs
    )
    response = await http.send(request, stream=True)
    try:
        yield response
    finally:
        await response.aclose()
