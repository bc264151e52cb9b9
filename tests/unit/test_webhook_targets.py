"""Where a webhook may point (pure): public unicast addresses only, in every disguise."""

from __future__ import annotations

import ipaddress

import pytest

from schemas.webhook_targets import TargetError, check_url, is_public


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.100.100.200",  # shared address space (a cloud metadata address)
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1", "not a valid URL"),
        ("https://example.org:99999/hook", "not a valid URL"),
        ("https://example.org:0/hook", "port 0"),
        ("ftp://example.org/hook", "https://"),
        ("https://user:pw@example.org/hook", "credentials"),
        ("https:///hook", "no host"),
        ("https://" + "a" * 64 + ".org/hook", "host name"),
        ("https://exa_mple.org/hook", "host name"),
        ("https://127.0.0.1/hook", "not a public address"),
        ("https://[fe80::1%25eth0]/hook", "not a public address"),
        ("https://100.100.100.200/latest/meta-data", "not a public address"),
        ("https://printer.local/hook", "not a public name"),
        ("http://example.org/hook", "https"),
    ],
)
def test_bad_targets_are_refused_with_a_reason(url: str, why: str) -> None:
    with pytest.raises(TargetError, match=why):
        check_url(url, require_https=True, allow_private=False)


def test_good_targets_pass() -> None:
    assert check_url(
        "https://hooks.example.org:8443/rc?x=1", require_https=True, allow_private=False
    )
    assert check_url("https://8.8.8.8/hook", require_https=True, allow_private=False)
    # local development (webhook_allow_private): loopback and plain http are fine
    assert check_url("http://127.0.0.1:9000/hook", require_https=False, allow_private=True)
