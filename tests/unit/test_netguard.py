"""The address check behind every outbound request a client chose: IPv6 forms that lead
into IPv4, prefixes that hide other networks, and refusals that keep addresses quiet."""

from __future__ import annotations

import ipaddress

import pytest

from shared import netguard


def public(address: str, allow: tuple[str, ...] = ()) -> bool:
    networks = [ipaddress.ip_network(n) for n in allow]
    return netguard.is_public(ipaddress.ip_address(address), networks)


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::808:808",  # NAT64 of a public address: the gateway's network is unseen
        "64:ff9b:1::a00:1",  # NAT64, local-use prefix
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:808:808::1",  # 6to4 of a public address
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "::127.0.0.1",  # IPv4-compatible loopback
        "::10.0.0.1",  # IPv4-compatible private
        "::ffff:10.0.0.1",  # IPv4-mapped private
        "::ffff:169.254.169.254",  # IPv4-mapped cloud metadata
        "::ffff:0:7f00:1",  # IPv4-translated loopback
        "::ffff:0:a9fe:a9fe",  # IPv4-translated cloud metadata
        "fec0::1",  # site-local
        "3fff::1",  # documentation
        "5f00::1",  # SRv6 segment identifiers
        "ff0e::1",  # global-scope multicast
        "::",
    ],
)
def test_ipv6_forms_that_hide_or_embed_other_networks_are_refused(address: str) -> None:
    assert not public(address)


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2606:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8", "::8.8.8.8"],
)
def test_public_addresses_in_every_form_pass(address: str) -> None:
    assert public(address)


def test_an_exempt_network_covers_its_embedded_forms_only() -> None:
    loopback = ("127.0.0.1/32",)
    assert public("::ffff:127.0.0.1", loopback)
    assert public("::ffff:0:7f00:1", loopback)
    assert not public("::ffff:127.0.0.2", loopback)
    assert not public("64:ff9b::7f00:1", loopback)  # NAT64 leads elsewhere than loopback
    assert public("64:ff9b::808:808", ("64:ff9b::/96",))  # an IPv6-only cluster's choice


async def test_a_refusal_names_the_host_never_what_it_resolved_to() -> None:
    with pytest.raises(netguard.Refused) as refused:
        await netguard.resolve("localhost", 80, [])
    message = str(refused.value)
    assert "'localhost' is not public" in message and "only public addresses" in message
    assert "127.0.0.1" not in message
