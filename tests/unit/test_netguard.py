"""The SSRF guard: hostile webhook URLs are refused before any connection is made."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from medsum.netguard import UnsafeUrlError, parse_target, resolve_public


def resolver_of(*addresses: str) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    return resolve


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://hooks.example.com/x", "url_scheme"),
        ("ftp://hooks.example.com/x", "url_scheme"),
        ("https://user:pw@hooks.example.com/x", "url_credentials"),
        ("https://user@hooks.example.com/x", "url_credentials"),
        ("https://hooks.example.com:8443/x", "url_port"),
        ("https://hooks.example.com/x#frag", "invalid_url"),
        ("https://10.0.0.1/x", "url_address"),
        ("https://172.16.5.4/x", "url_address"),
        ("https://192.168.1.1/x", "url_address"),
        ("https://127.0.0.1/x", "url_address"),
        ("https://169.254.169.254/latest/meta-data/", "url_address"),
        ("https://100.64.0.1/x", "url_address"),
        ("https://0.0.0.0/x", "url_address"),
        ("https://224.0.0.1/x", "url_address"),
        ("https://240.0.0.1/x", "url_address"),
        ("https://[::1]/x", "url_address"),
        ("https://[fe80::1]/x", "url_address"),
        ("https://[fd00::1]/x", "url_address"),
        ("https://[::ffff:127.0.0.1]/x", "url_address"),
        ("https://[::ffff:169.254.169.254]/x", "url_address"),
        ("https://[::ffff:8.8.8.8]/x", "url_address"),
        ("https://[64:ff9b::a9fe:a9fe]/x", "url_address"),
        ("https://[2002:a9fe:a9fe::1]/x", "url_address"),
        ("https://2130706433/x", "url_host"),
        ("https://0177.0.0.1/x", "url_host"),
        ("https://0x7f.0.0.1/x", "url_host"),
        ("https://0x7f000001/x", "url_host"),
        ("https://127.1/x", "url_host"),
        ("https://localhost/x", "url_host"),
        ("https://exa mple.com/x", "invalid_url"),
        ("http://127.0.0.1:8080/x", "url_scheme"),  # the local-only exception is off by default
    ],
)
def test_hostile_urls_are_refused(url: str, code: str) -> None:
    with pytest.raises(UnsafeUrlError) as refused:
        parse_target(url)
    assert refused.value.code == code


@pytest.mark.parametrize(
    "addresses",
    [
        ("10.1.2.3",),
        ("93.184.216.34", "127.0.0.1"),  # one bad answer among good ones is enough to refuse
        ("169.254.169.254",),
        ("::1",),
        ("::ffff:10.0.0.1",),
        ("fe80::1%eth0",),
    ],
)
def test_hosts_resolving_to_private_addresses_are_refused(addresses: tuple[str, ...]) -> None:
    target = parse_target("https://rebind.example.com/hook")
    with pytest.raises(UnsafeUrlError) as refused:
        resolve_public(target, resolver_of(*addresses))
    assert refused.value.code == "url_address"


def test_public_host_resolves_to_checked_addresses() -> None:
    target = parse_target("https://hooks.example.com/in?x=1")
    assert (target.host, target.port, target.request_target) == ("hooks.example.com", 443, "/in?x=1")
    assert resolve_public(target, resolver_of("93.184.216.34", "2606:2800:220:1::1")) == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]


def test_unresolvable_host_is_refused() -> None:
    def fail(*_: Any, **__: Any) -> Any:
        raise socket.gaierror("nope")

    with pytest.raises(UnsafeUrlError) as refused:
        resolve_public(parse_target("https://nowhere.example/x"), fail)
    assert refused.value.code == "url_unresolvable"


def test_configured_ports_and_the_local_flag() -> None:
    assert parse_target("https://hooks.example.com:8443/x", allowed_ports={8443}).port == 8443
    local = parse_target("http://127.0.0.1:8765/hook", allow_local_http=True)
    assert local.local and local.port == 8765 and local.host_header == "127.0.0.1:8765"
    assert resolve_public(local, resolver_of("10.0.0.1")) == ["127.0.0.1"]
    # The flag allows exactly plain http to 127.0.0.1, nothing else private
    for url in ("http://localhost:8765/", "http://10.0.0.1/", "http://[::1]:8765/", "https://127.0.0.1/"):
        with pytest.raises(UnsafeUrlError):
            parse_target(url, allow_local_http=True)
