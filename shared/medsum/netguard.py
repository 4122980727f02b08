"""SSRF guard for webhook URLs: what we accept at registration, and where we may connect at delivery.

Two checks, both pure (the resolver is injected):

* :func:`parse_target` — the URL itself: ``https`` only (plain ``http`` only for ``127.0.0.1`` when the
  local stack's explicit flag is on), no credentials, no fragment, the default port unless configured,
  no IP literal outside public unicast space, no non-canonical numeric host (``2130706433``,
  ``0177.0.0.1``, ``0x7f.1``: forms that resolvers turn into loopback addresses).
* :func:`resolve_public` — every address the host resolves to must be public unicast (IPv4 and IPv6,
  ``::ffff:`` mapped, 6to4, Teredo and NAT64 forms unwrapped). The delivery adapter connects to one of
  exactly these addresses (resolve once, check, connect to the checked IP with the original Host/SNI),
  so a DNS answer that changes between check and connect (rebinding) cannot redirect it.
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
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
Resolver = Callable[..., Sequence[tuple[Any, ...]]]


class UnsafeUrlError(MedsumError):
    """A webhook URL we refuse to register or contact. ``code`` and ``message`` are fixed strings."""

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


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Public unicast only: not private, loopback, link-local, multicast, reserved, shared or
    unspecified; IPv6 forms that embed an IPv4 address are judged by that address too."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if address.ipv4_mapped is not None:
            embedded.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if embedded:
            return all(is_public_address(e) for e in embedded) and address.ipv4_mapped is None
    return bool(address.is_global) and not address.is_multicast and not address.is_reserved


def parse_target(url: str, *, allow_local_http: bool = False, allowed_ports: Collection[int] = ()) -> Target:
    """Check a webhook URL without touching the network. Raises ``UnsafeUrlError``."""
    if not url or len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise UnsafeUrlError("invalid_url", "the URL is empty, too long or contains whitespace")
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError:
        raise UnsafeUrlError("invalid_url", "the URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeUrlError("url_credentials", "credentials in the URL are not allowed")
    if parts.fragment:
        raise UnsafeUrlError("invalid_url", "the URL must not have a fragment")
    if not host:
        raise UnsafeUrlError("invalid_url", "the URL has no host")
    local = allow_local_http and scheme == "http" and host == LOCAL_HOST and "[" not in parts.netloc
    if scheme != "https" and not local:
        raise UnsafeUrlError("url_scheme", "only https:// URLs are allowed")
    default_port = 80 if scheme == "http" else 443
    port = explicit_port if explicit_port is not None else default_port
    if not local and port != default_port and port not in allowed_ports:
        raise UnsafeUrlError("url_port", "only the default port (443) is allowed")
    address = _ip_literal(host)
    if address is None:
        labels = host.rstrip(".").split(".")
        if all(_NUMERIC_LABEL.match(label) for label in labels) or _NUMERIC_LABEL.match(labels[-1]):
            raise UnsafeUrlError("url_host", "numeric host names other than a canonical IP are not allowed")
        if not _HOSTNAME.match(host.rstrip(".")) or host.rstrip(".") == "localhost":
            raise UnsafeUrlError("url_host", "the host name is not allowed")
    elif not local and not is_public_address(address):
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
        raw = str(answer[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(raw)
        if not is_public_address(address):
            raise UnsafeUrlError("url_address", "the URL's host resolves to a private or reserved address")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise UnsafeUrlError("url_unresolvable", "the URL's host does not resolve")
    return addresses


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
