"""The SSRF guard: hostile webhook URLs are refused before any connection is made."""

from __future__ import annotations

import inspect
import ipaddress
import re
import socket
from typing import Any

import pytest
from medsum import netguard
from medsum.netguard import UnsafeUrlError, parse_target, resolve_public

# ipaddress's own classification, whose tables differ between Python versions: the guard must not use it.
_STDLIB_CLASSIFIERS = (
    "is_global",
    "is_private",
    "is_reserved",
    "is_multicast",
    "is_loopback",
    "is_link_local",
    "is_site_local",
    "is_unspecified",
)


@pytest.fixture(autouse=True)
def _no_stdlib_classification(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_: object) -> bool:
        raise AssertionError("netguard must not use ipaddress's version-dependent classification")

    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        for name in _STDLIB_CLASSIFIERS:
            if hasattr(cls, name):
                monkeypatch.setattr(cls, name, property(refuse))


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


def no_resolution(*_: Any, **__: Any) -> Any:
    raise AssertionError("an IP literal must not be resolved")


PUBLIC_V4 = ("93.184.216.34",)
HOOK = "https://hooks.example.com/x"

# (url, DNS answers for a host name (None: an IP literal, or refused before resolution), expected code
# or None for accepted). Every refused block is probed at its edges, next to an accepted neighbour.
URL_TABLE: list[tuple[str, tuple[str, ...] | None, str | None]] = [
    # IPv4: the special-purpose blocks, their edges and their public neighbours
    ("https://0.0.0.0/x", None, "url_address"),
    ("https://0.255.255.255/x", None, "url_address"),
    ("https://1.0.0.1/x", None, None),
    ("https://9.255.255.255/x", None, None),
    ("https://10.0.0.0/x", None, "url_address"),
    ("https://10.255.255.255/x", None, "url_address"),
    ("https://11.0.0.0/x", None, None),
    ("https://100.63.255.255/x", None, None),
    ("https://100.64.0.0/x", None, "url_address"),
    ("https://100.100.100.200/x", None, "url_address"),  # a cloud metadata address in CGNAT space
    ("https://100.127.255.255/x", None, "url_address"),
    ("https://100.128.0.0/x", None, None),
    ("https://126.255.255.255/x", None, None),
    ("https://127.0.0.1/x", None, "url_address"),
    ("https://127.255.255.254/x", None, "url_address"),
    ("https://128.0.0.1/x", None, None),
    ("https://169.253.255.255/x", None, None),
    ("https://169.254.0.1/x", None, "url_address"),
    ("https://169.254.169.254/latest/meta-data/", None, "url_address"),
    ("https://169.254.170.2/v2/credentials", None, "url_address"),  # ECS task metadata
    ("https://169.255.0.1/x", None, None),
    ("https://172.15.255.255/x", None, None),
    ("https://172.16.0.1/x", None, "url_address"),
    ("https://172.31.255.255/x", None, "url_address"),
    ("https://172.32.0.0/x", None, None),
    ("https://192.0.0.8/x", None, "url_address"),
    ("https://192.0.0.9/x", None, "url_address"),  # PCP anycast: globally reachable, still refused
    ("https://192.0.0.170/x", None, "url_address"),
    ("https://192.0.1.1/x", None, None),
    ("https://192.0.2.1/x", None, "url_address"),
    ("https://192.0.3.0/x", None, None),
    ("https://192.31.196.1/x", None, None),  # AS112: globally reachable in the registry
    ("https://192.52.193.1/x", None, None),  # AMT: globally reachable in the registry
    ("https://192.88.98.255/x", None, None),
    ("https://192.88.99.1/x", None, "url_address"),
    ("https://192.167.255.255/x", None, None),
    ("https://192.168.0.1/x", None, "url_address"),
    ("https://192.168.255.255/x", None, "url_address"),
    ("https://192.169.0.1/x", None, None),
    ("https://198.17.255.255/x", None, None),
    ("https://198.18.0.1/x", None, "url_address"),
    ("https://198.19.255.255/x", None, "url_address"),
    ("https://198.20.0.0/x", None, None),
    ("https://198.51.100.7/x", None, "url_address"),
    ("https://203.0.113.9/x", None, "url_address"),
    ("https://223.255.255.255/x", None, None),
    ("https://224.0.0.1/x", None, "url_address"),
    ("https://239.255.255.250/x", None, "url_address"),
    ("https://240.0.0.1/x", None, "url_address"),
    ("https://255.255.255.255/x", None, "url_address"),
    # IPv6 outside 2000::/3
    ("https://[::]/x", None, "url_address"),
    ("https://[::1]/x", None, "url_address"),
    ("https://[::ffff:127.0.0.1]/x", None, "url_address"),
    ("https://[::ffff:7f00:1]/x", None, "url_address"),
    ("https://[0:0:0:0:0:ffff:a00:1]/x", None, "url_address"),
    ("https://[::ffff:169.254.169.254]/x", None, "url_address"),
    ("https://[::ffff:8.8.8.8]/x", None, "url_address"),  # mapped: refused whatever the IPv4
    ("https://[::127.0.0.1]/x", None, "url_address"),  # IPv4-compatible
    ("https://[::8.8.8.8]/x", None, "url_address"),
    ("https://[64:ff9b::7f00:1]/x", None, "url_address"),
    ("https://[64:ff9b::a9fe:a9fe]/x", None, "url_address"),
    ("https://[64:ff9b::10.0.0.1]/x", None, "url_address"),
    ("https://[64:ff9b::808:808]/x", None, None),  # NAT64 of 8.8.8.8
    ("https://[64:ff9b::8.8.8.8]/x", None, None),
    ("https://[64:ff9b::1:0:808:808]/x", None, "url_address"),  # outside the /96
    ("https://[64:ff9b:1::808:808]/x", None, "url_address"),  # local-use NAT64
    ("https://[100::1]/x", None, "url_address"),
    ("https://[1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]/x", None, "url_address"),
    ("https://[4000::1]/x", None, "url_address"),
    ("https://[5f00::1]/x", None, "url_address"),
    ("https://[fc00::1]/x", None, "url_address"),
    ("https://[fd00:ec2::254]/latest/meta-data/", None, "url_address"),  # IPv6 instance metadata
    ("https://[fec0::1]/x", None, "url_address"),
    ("https://[FEC0::1]/x", None, "url_address"),
    ("https://[feff:ffff::1]/x", None, "url_address"),
    ("https://[fe80::1]/x", None, "url_address"),
    ("https://[febf:ffff::1]/x", None, "url_address"),
    ("https://[ff02::1]/x", None, "url_address"),
    ("https://[ff0e::1]/x", None, "url_address"),
    # IPv6 inside 2000::/3: the special ranges and their neighbours
    ("https://[2000::1]/x", None, None),
    ("https://[2001::1]/x", None, "url_address"),
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x", None, "url_address"),  # Teredo
    ("https://[2001:1::1]/x", None, "url_address"),
    ("https://[2001:2::1]/x", None, "url_address"),
    ("https://[2001:3::1]/x", None, "url_address"),
    ("https://[2001:4:112::1]/x", None, "url_address"),
    ("https://[2001:10::1]/x", None, "url_address"),
    ("https://[2001:20::1]/x", None, "url_address"),
    ("https://[2001:30::1]/x", None, "url_address"),
    ("https://[2001:1ff:ffff:ffff::1]/x", None, "url_address"),
    ("https://[2001:200::1]/x", None, None),
    ("https://[2001:4860:4860::8888]/x", None, None),
    ("https://[2001:db7:ffff::1]/x", None, None),
    ("https://[2001:db8::1]/x", None, "url_address"),
    ("https://[2001:db8:ffff:ffff::1]/x", None, "url_address"),
    ("https://[2001:db9::1]/x", None, None),
    ("https://[2002:7f00:1::1]/x", None, "url_address"),  # 6to4 of 127.0.0.1
    ("https://[2002:a9fe:a9fe::1]/x", None, "url_address"),
    ("https://[2002:a00:1::1]/x", None, "url_address"),
    ("https://[2002::1]/x", None, "url_address"),  # 6to4 of 0.0.0.0
    ("https://[2002:c058:6301::1]/x", None, "url_address"),  # 6to4 of the 6to4 relay 192.88.99.1
    ("https://[2002:808:808::1]/x", None, None),  # 6to4 of 8.8.8.8
    ("https://[2600:1F18::1]/x", None, None),
    ("https://[2606:4700:4700::1111]/x", None, None),
    ("https://[3ffe::1]/x", None, None),
    ("https://[3fff::1]/x", None, "url_address"),
    ("https://[3fff:fff:ffff::1]/x", None, "url_address"),
    ("https://[3fff:1000::1]/x", None, None),
    # Zone ids and brackets
    ("https://[fe80::1%25eth0]/x", None, "url_address"),
    ("https://[fe80::1%eth0]/x", None, "url_address"),
    ("https://[2606:4700:4700::1111%25eth0]/x", None, "url_address"),  # a zone on a public address
    ("https://[2001:db8::1%]/x", None, "invalid_url"),
    ("https://[127.0.0.1]/x", None, "invalid_url"),
    ("https://[hooks.example.com]/x", None, "invalid_url"),
    ("https://[::1]evil.example/x", None, "invalid_url"),
    ("https://[::1]./x", None, "invalid_url"),
    ("https://[::1/x", None, "invalid_url"),
    ("https://::1/x", None, "invalid_url"),
    # Ports
    ("https://[::1]:x/", None, "invalid_url"),
    ("https://hooks.example.com:+443/x", None, "invalid_url"),
    ("https://hooks.example.com:99999/x", None, "invalid_url"),
    ("https://1.1.1.1:\u0664\u0664\u0663/x", None, "invalid_url"),  # Arabic-Indic digits
    ("https://1.1.1.1:0443/x", None, None),
    ("https://127.0.0.1:443/x", None, "url_address"),
    # Numeric and encoded host forms that resolvers turn into an address
    ("https://2130706433/x", None, "url_host"),
    ("https://0x7f000001/x", None, "url_host"),
    ("https://017700000001/x", None, "url_host"),
    ("https://0177.0.0.1/x", None, "url_host"),
    ("https://0x7f.0.0.1/x", None, "url_host"),
    ("https://0x7f.1/x", None, "url_host"),
    ("https://127.1/x", None, "url_host"),
    ("https://127.0.1/x", None, "url_host"),
    ("https://127.0.0.01/x", None, "url_host"),
    ("https://127.0.0.1./x", None, "url_host"),
    ("https://8.8.8.8./x", None, "url_host"),
    ("https://0/x", None, "url_host"),
    ("https://1.2.3.4.5/x", None, "url_host"),
    ("https://%31%32%37.0.0.1/x", None, "url_host"),
    ("https://127.0.0.%31/x", None, "url_host"),
    ("https://loc%61lhost/x", None, "url_host"),
    ("https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/x", None, "url_host"),  # fullwidth digits
    ("https://localhost/x", None, "url_host"),
    ("https://LOCALHOST/x", None, "url_host"),
    ("https://localhost./x", None, "url_host"),
    ("https://app.localhost/x", None, "url_host"),
    ("https://evil.example%40127.0.0.1/x", None, "url_host"),
    # Userinfo tricks and schemes
    ("https://evil@127.0.0.1/x", None, "url_credentials"),
    ("https://127.0.0.1@evil.example/x", None, "url_credentials"),
    ("https://evil.example\\@127.0.0.1/x", None, "url_credentials"),
    ("https://:@127.0.0.1/x", None, "url_credentials"),
    ("https://user:pw@[::1]/x", None, "url_credentials"),
    ("HTTP://127.0.0.1/x", None, "url_scheme"),
    ("http://8.8.8.8/x", None, "url_scheme"),
    ("gopher://127.0.0.1:70/x", None, "url_scheme"),
    ("file:///etc/passwd", None, "invalid_url"),
    ("HTTPS://1.1.1.1/x", None, None),
    # Host names: every DNS answer must pass
    (HOOK, PUBLIC_V4, None),
    ("https://HOOKS.Example.COM./in", PUBLIC_V4, None),
    ("https://xn--bcher-kva.example/x", PUBLIC_V4, None),
    (HOOK, ("93.184.216.34", "2606:2800:220:1::1"), None),
    (HOOK, ("64:ff9b::5db8:d822",), None),  # DNS64 answer for a public IPv4-only host
    (HOOK, ("10.0.0.1",), "url_address"),
    (HOOK, ("127.0.0.1",), "url_address"),
    (HOOK, ("0.0.0.0",), "url_address"),  # noqa: S104
    (HOOK, ("169.254.169.254",), "url_address"),
    (HOOK, ("100.64.1.1",), "url_address"),
    (HOOK, ("192.0.2.10",), "url_address"),
    (HOOK, ("93.184.216.34", "127.0.0.1"), "url_address"),
    (HOOK, ("2606:2800:220:1::1", "fd00:ec2::254"), "url_address"),
    (HOOK, ("::1",), "url_address"),
    (HOOK, ("fec0::1",), "url_address"),
    (HOOK, ("fc00::1",), "url_address"),
    (HOOK, ("fe80::1%eth0",), "url_address"),
    (HOOK, ("::ffff:127.0.0.1",), "url_address"),
    (HOOK, ("::ffff:93.184.216.34",), "url_address"),
    (HOOK, ("64:ff9b::a9fe:a9fe",), "url_address"),
    (HOOK, ("2002:a9fe:a9fe::1",), "url_address"),
    (HOOK, ("2001:0:4136:e378:8000:63bf:3fff:fdd2",), "url_address"),
    (HOOK, ("2001:db8::1",), "url_address"),
    (HOOK, ("3fff::1",), "url_address"),
    (HOOK, ("ff02::1",), "url_address"),
    (HOOK, ("not-an-address",), "url_address"),
    (HOOK, (), "url_unresolvable"),
]


@pytest.mark.parametrize(("url", "answers", "expected"), URL_TABLE)
def test_url_table(url: str, answers: tuple[str, ...] | None, expected: str | None) -> None:
    resolver = no_resolution if answers is None else resolver_of(*answers)
    if expected is None:
        assert resolve_public(parse_target(url), resolver)
        return
    with pytest.raises(UnsafeUrlError) as refused:
        resolve_public(parse_target(url), resolver)
    assert refused.value.code == expected


def test_the_table_is_large_and_unique() -> None:
    assert len(URL_TABLE) >= 50
    assert len({(url, answers) for url, answers, _ in URL_TABLE}) == len(URL_TABLE)


def test_accepted_literals_are_connected_to_as_written() -> None:
    assert resolve_public(parse_target("https://[2002:808:808::1]/x"), no_resolution) == ["2002:808:808::1"]
    assert resolve_public(parse_target("https://[64:ff9b::8.8.8.8]/x"), no_resolution) == ["64:ff9b::808:808"]
    target = parse_target("https://[2600:1F18::1]/x")
    assert (target.host, target.host_header) == ("2600:1f18::1", "[2600:1f18::1]")
    assert parse_target("https://HOOKS.Example.COM./in").host == "hooks.example.com"


def test_the_guard_does_not_use_the_stdlib_classification() -> None:
    source = inspect.getsource(netguard)
    used = re.findall(r"\.(" + "|".join(_STDLIB_CLASSIFIERS) + r"|ipv4_mapped|sixtofour|teredo)\b", source)
    assert used == []
