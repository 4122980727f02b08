"""SSRF guard for webhook URLs: what we accept at registration, and where we may connect at delivery.

Two checks, both pure (the resolver is injected):

* :func:`parse_target` — the URL itself: ``https`` only (plain ``http`` only for ``127.0.0.1`` when the
  local stack's explicit flag is on), no credentials, no fragment, the default port unless configured,
  no IP literal outside public unicast space, no non-canonical numeric host (``2130706433``,
  ``0177.0.0.1``, ``0x7f.1``: forms that resolvers turn into loopback addresses), no IPv6 zone id. The
  authority (``host[:port]``) is parsed here, strictly, not by ``urllib.parse``, whose leniency differs
  between Python versions (``[::1]junk``, bracketed IPv4, ``:+443``).
* :func:`resolve_public` — every address the host resolves to must be public unicast. The delivery
  adapter connects to one of exactly these addresses (resolve once, check, connect to the checked IP with
  the original Host/SNI), so a DNS answer that changes between check and connect (rebinding) cannot
  redirect it.

"Public unicast" is an explicit allow-list (:func:`is_public_address`), read from the IANA IPv4 and
IPv6 Special-Purpose Address Registries (RFC 6890 and later entries) and the address-space registries.
It does not use ``ipaddress``'s ``is_global``/``is_private`` family: its tables differ between Python
releases (3.11 and 3.13 disagree on 2002::/16 and parts of 2001::/23) and both call site-local
``fec0::1``, documentation ``3fff::1`` and the 6to4 relay ``192.88.99.1`` global. The table below gives
the same answer on the local stack's 3.11 and Lambda's 3.13.

IPv4 — every address is public except (``_IPV4_DENIED``):

=================  ==========================================================================
0.0.0.0/8          "this network" (RFC 791); 0.0.0.0 reaches the local host on Linux
10.0.0.0/8         private use (RFC 1918)
100.64.0.0/10      shared address space, CGNAT (RFC 6598)
127.0.0.0/8        loopback (RFC 1122)
169.254.0.0/16     link local (RFC 3927), incl. the instance metadata address 169.254.169.254
172.16.0.0/12      private use (RFC 1918)
192.0.0.0/24       IETF protocol assignments (RFC 6890): DS-Lite, dummy, NAT64 discovery; the two
                   globally reachable anycast hosts in it (PCP .9, TURN .10) are denied too
192.0.2.0/24       documentation TEST-NET-1 (RFC 5737)
192.88.99.0/24     6to4 relay anycast, deprecated (RFC 7526)
192.168.0.0/16     private use (RFC 1918)
198.18.0.0/15      benchmarking (RFC 2544)
198.51.100.0/24    documentation TEST-NET-2 (RFC 5737)
203.0.113.0/24     documentation TEST-NET-3 (RFC 5737)
224.0.0.0/4        multicast (RFC 5771)
240.0.0.0/4        reserved (RFC 1112), incl. limited broadcast 255.255.255.255 (RFC 919)
=================  ==========================================================================

The registry's globally reachable entries (AS112 192.31.196.0/24 and 192.175.48.0/24, AMT
192.52.193.0/24) are ordinary public addresses here.

IPv6 — only global unicast 2000::/3 (RFC 4291) is public, except (``_IPV6_DENIED``):

=================  ==========================================================================
2001::/23          IETF protocol assignments (RFC 2928), all of it: Teredo 2001::/32 (embeds
                   IPv4 addresses and is relayed), PCP/TURN/DNS-SD anycast 2001:1::1-3,
                   benchmarking 2001:2::/48, AMT 2001:3::/32, AS112 2001:4:112::/48, ORCHID
                   2001:10::/28, ORCHIDv2 2001:20::/28, Drone Remote ID 2001:30::/28
2001:db8::/32      documentation (RFC 3849)
3fff::/20          documentation (RFC 9637)
=================  ==========================================================================

and two prefixes that embed an IPv4 address are judged by that address (the IPv4 table above):

* 2002::/16, 6to4 (RFC 3056): the packet goes to the embedded IPv4 (bits 16-47) through a relay, so
  ``2002:a9fe:a9fe::1`` is the metadata address and is denied, ``2002:808:808::1`` is allowed.
* 64:ff9b::/96, the well-known NAT64 prefix (RFC 6052), outside 2000::/3 but globally reachable: an
  IPv6-only network with DNS64 answers ``64:ff9b::<IPv4>`` for IPv4-only hosts, so it is allowed
  exactly when the embedded IPv4 (the low 32 bits) is. The local-use NAT64 prefix 64:ff9b:1::/48
  (RFC 8215) is denied.

Everything else outside 2000::/3 is denied, including ``::`` and ``::1``, IPv4-mapped ``::ffff:0:0/96``
and IPv4-compatible ``::/96`` (whatever the IPv4: a mapped address is only another spelling of an IPv4
address, which a URL or a DNS AAAA answer has no reason to use), discard-only 100::/64, SRv6 SIDs
5f00::/16, unique local fc00::/7 (incl. the instance metadata address fd00:ec2::254), site local
fec0::/10, link local fe80::/10 and multicast ff00::/8. A literal with a zone id (``fe80::1%eth0``) is
refused whatever its address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from medsum.errors import MedsumError

MAX_URL_LENGTH = 2048
LOCAL_HOST = "127.0.0.1"
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")
# host[:port] after the scheme; userinfo is refused before this. The port is ASCII digits only.
_BRACKETED_AUTHORITY = re.compile(r"\[([^\[\]]*)\](?::([0-9]*))?")
_PLAIN_AUTHORITY = re.compile(r"([^\[\]:]*)(?::([0-9]*))?")
Resolver = Callable[..., Sequence[tuple[Any, ...]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_IPV4_DENIED = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_IPV6_DENIED = tuple(ipaddress.IPv6Network(block) for block in ("2001::/23", "2001:db8::/32", "3fff::/20"))
_IPV6_6TO4 = ipaddress.IPv6Network("2002::/16")
_IPV6_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeUrlError(MedsumError):
    """A webhook URL we refuse to register or contact. ``code`` and ``message`` are fixed strings; a
    client that sends one gets ``400`` with them."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Target:
    """A checked URL, split the way the delivery adapter needs it."""

    scheme: str
    host: str  # lowercase hostname or IP literal (no brackets)
    port: int
    request_target: str  # path and query
    host_header: str  # what goes in Host (and, for https, SNI is ``host``)
    local: bool  # the local-only http://127.0.0.1 exception


def is_public_address(address: IPAddress) -> bool:
    """Public unicast only, by the explicit tables above (no ``ipaddress`` classification property).
    An IPv6 zone id is ignored here: :func:`parse_target` refuses scoped literals."""
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in block for block in _IPV4_DENIED)
    plain = ipaddress.IPv6Address(int(address))  # drops a zone id
    if plain in _IPV6_NAT64:
        return is_public_address(ipaddress.IPv4Address(int(plain) & 0xFFFFFFFF))
    if plain not in _IPV6_GLOBAL_UNICAST or any(plain in block for block in _IPV6_DENIED):
        return False
    if plain in _IPV6_6TO4:
        return is_public_address(ipaddress.IPv4Address((int(plain) >> 80) & 0xFFFFFFFF))
    return True


def parse_target(url: str, *, allow_local_http: bool = False, allowed_ports: Collection[int] = ()) -> Target:
    """Check a webhook URL without touching the network. Raises ``UnsafeUrlError``."""
    if not url or len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise UnsafeUrlError("invalid_url", "the URL is empty, too long or contains whitespace")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UnsafeUrlError("invalid_url", "the URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if "@" in parts.netloc:
        raise UnsafeUrlError("url_credentials", "credentials in the URL are not allowed")
    if parts.fragment:
        raise UnsafeUrlError("invalid_url", "the URL must not have a fragment")
    host, explicit_port, address = _split_authority(parts.netloc)
    if not host:
        raise UnsafeUrlError("invalid_url", "the URL has no host")
    local = allow_local_http and scheme == "http" and host == LOCAL_HOST
    if scheme != "https" and not local:
        raise UnsafeUrlError("url_scheme", "only https:// URLs are allowed")
    default_port = 80 if scheme == "http" else 443
    port = explicit_port if explicit_port is not None else default_port
    if not local and port != default_port and port not in allowed_ports:
        raise UnsafeUrlError("url_port", "only the default port (443) is allowed")
    if address is None:
        name = host.rstrip(".")
        labels = name.split(".")
        if all(_NUMERIC_LABEL.match(label) for label in labels) or _NUMERIC_LABEL.match(labels[-1]):
            raise UnsafeUrlError("url_host", "numeric host names other than a canonical IP are not allowed")
        if not _HOSTNAME.match(name) or name == "localhost" or name.endswith(".localhost"):
            raise UnsafeUrlError("url_host", "the host name is not allowed")
    elif not local and (not is_public_address(address) or _has_zone(address)):
        raise UnsafeUrlError("url_address", "the URL points at a private or reserved address")
    request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    shown_host = f"[{host}]" if address is not None and address.version == 6 else host
    host_header = shown_host if explicit_port is None or port == default_port else f"{shown_host}:{port}"
    return Target(
        scheme=scheme,
        host=host.rstrip("."),
        port=port,
        request_target=request_target,
        host_header=host_header,
        local=local,
    )


def resolve_public(target: Target, resolver: Resolver = socket.getaddrinfo) -> list[str]:
    """Every address ``target.host`` resolves to, all checked public. Raises ``UnsafeUrlError``."""
    literal = _ip_literal(target.host)
    if literal is not None:
        if target.local or is_public_address(literal):
            return [str(literal)]
        raise UnsafeUrlError("url_address", "the URL points at a private or reserved address")
    try:
        answers = resolver(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrlError("url_unresolvable", "the URL's host does not resolve") from None
    addresses: list[str] = []
    for answer in answers:
        try:
            address = ipaddress.ip_address(str(answer[4][0]).split("%", 1)[0])
        except (ValueError, IndexError, TypeError):
            raise UnsafeUrlError("url_address", "the URL's host resolves to an unreadable address") from None
        if not is_public_address(address):
            raise UnsafeUrlError("url_address", "the URL's host resolves to a private or reserved address")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise UnsafeUrlError("url_unresolvable", "the URL's host does not resolve")
    return addresses


def _split_authority(netloc: str) -> tuple[str, int | None, IPAddress | None]:
    """``host[:port]`` (no userinfo) → lowercase host, explicit port, IP literal. Brackets hold an IPv6
    address only (zone id allowed here, refused by the caller); outside brackets the only literal is a
    canonical dotted-quad IPv4 address."""
    bracketed = netloc.startswith("[")
    match = (_BRACKETED_AUTHORITY if bracketed else _PLAIN_AUTHORITY).fullmatch(netloc)
    if match is None:
        raise UnsafeUrlError("invalid_url", "the URL's host or port cannot be parsed")
    host, port_text = match.group(1).lower(), match.group(2)
    port = int(port_text) if port_text else None
    if port is not None and port > 65535:
        raise UnsafeUrlError("invalid_url", "the URL's port is out of range")
    address: IPAddress | None
    try:
        address = ipaddress.IPv6Address(host) if bracketed else ipaddress.IPv4Address(host)
    except ValueError:
        if bracketed:
            raise UnsafeUrlError("invalid_url", "only an IPv6 address may be written in brackets") from None
        address = None
    return host, port, address


def _has_zone(address: IPAddress) -> bool:
    return isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
