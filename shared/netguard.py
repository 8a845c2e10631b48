"""Outbound requests to addresses a client chose (media URLs, callbacks), made safely.

A client must not make the server reach its own network: loopback, private,
link-local (cloud metadata at 169.254.169.254), shared or reserved addresses are
refused. The name is resolved here, every address it resolves to is checked, and
the connection goes to that checked address (with the original Host header and
TLS server name), so a second, different DNS answer cannot slip past the check.
Redirects are never followed by the client library: each hop is checked again by
whoever follows it.

IPv6 forms that lead into IPv4 are judged by where they lead: an IPv4-mapped,
-compatible or -translated address by the IPv4 inside it; NAT64, 6to4 and Teredo
prefixes are refused outright (their gateways reach IPv4 networks this check cannot
see; an IPv6-only cluster behind DNS64 exempts its NAT64 prefix on purpose). A
refusal names the host, never the address it resolved to: that would map the
server's network for whoever asks.
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


# Refused whatever `is_global` says (Python 3.11 calls most of these global): they
# lead into other networks, or are not routed on the internet.
NOT_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "64:ff9b::/96",  # NAT64, well-known prefix (RFC 6052)
        "64:ff9b:1::/48",  # NAT64, local use (RFC 8215)
        "2002::/16",  # 6to4 (RFC 3056)
        "2001::/32",  # Teredo (RFC 4380)
        "fec0::/10",  # site-local, deprecated (RFC 3879)
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs (RFC 9602)
    )
)
# IPv6 forms whose last 32 bits are an IPv4 address the packet ends up at.
EMBEDS_V4 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::ffff:0:0/96",  # IPv4-mapped
        "::/96",  # IPv4-compatible, deprecated (also :: and ::1)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT, RFC 2765)
    )
)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if any(address in network for network in EMBEDS_V4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress, allow: list[Network]) -> bool:
    if any(address in network for network in allow):
        return True
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner, allow)
        if any(address in network for network in NOT_PUBLIC_V6):
            return False
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
    if not all(is_public(address, allow) for address in addresses):
        raise Refused(
            f"The host '{host}' is not public: it leads to a private, loopback, link-local "
            "or reserved address; only public addresses may be fetched."
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
