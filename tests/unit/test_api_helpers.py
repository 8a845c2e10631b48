"""Signatures, address checks and model choice: the small pure parts."""

from __future__ import annotations

import ipaddress
import time

import pytest

from shared import netguard
from shared.config import Settings
from shared.pipeline.webhooks import sign, verify_signature
from shared.speech_models import UnknownModel, allowed, choose, is_multilingual


def test_a_signature_verifies_and_a_tampered_body_does_not() -> None:
    body = b'{"event":"job.completed","job":{"id":"abc"}}'
    header = sign(b"secret", body, int(time.time()))
    assert verify_signature("secret", body, header)
    assert verify_signature(b"secret", body, header)
    assert not verify_signature("secret", body.replace(b"abc", b"abd"), header)
    assert not verify_signature("other", body, header)
    assert not verify_signature("secret", body, "t=1,v1=00")
    assert not verify_signature("secret", body, "garbage")


def test_an_old_signature_is_refused_as_a_replay() -> None:
    body = b"{}"
    old = int(time.time()) - 3600
    header = sign(b"secret", body, old)
    assert not verify_signature("secret", body, header)
    assert verify_signature("secret", body, header, now=old + 10)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "224.0.0.1"],
)  # fmt: skip
def test_private_loopback_and_link_local_addresses_are_not_public(address: str) -> None:
    assert not netguard.is_public(ipaddress.ip_address(address), [])


def test_public_addresses_and_exempt_networks_pass() -> None:
    assert netguard.is_public(ipaddress.ip_address("93.184.216.34"), [])
    assert netguard.is_public(ipaddress.ip_address("2606:4700::1111"), [])
    exempt = [ipaddress.ip_network("127.0.0.1/32")]
    assert netguard.is_public(ipaddress.ip_address("127.0.0.1"), exempt)
    assert not netguard.is_public(ipaddress.ip_address("127.0.0.2"), exempt)


async def test_names_are_resolved_and_every_address_checked() -> None:
    with pytest.raises(netguard.Refused, match="only public addresses"):
        await netguard.resolve("localhost", 80, [])
    with pytest.raises(netguard.Refused):
        netguard.check_url("gopher://example.com/")


def test_models_offered_and_the_openai_alias() -> None:
    settings = Settings(model="tiny.en", models=["base", "tiny.en"])
    assert allowed(settings) == ["tiny.en", "base"]
    assert choose(settings, None) == choose(settings, "whisper-1") == "tiny.en"
    assert choose(settings, "base") == "base"
    with pytest.raises(UnknownModel, match=r"whisper-1, tiny\.en, base"):
        choose(settings, "large-v3")


def test_english_only_models_are_told_apart() -> None:
    assert not is_multilingual("tiny.en")  # the bundled model, by its vocabulary
    assert not is_multilingual("base.en")  # by name
    assert is_multilingual("large-v3")
