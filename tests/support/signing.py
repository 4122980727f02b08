"""SigV4 for tests that send raw requests to the local stack: a ``requests`` auth that signs each
prepared request as one of the stack's identities. The one call site of the signer for them
(``medsum_cli.signing.sign_request``, re-exported by ``medsum_local.testing``)."""

from __future__ import annotations

import re

import requests
from medsum_local.stack import StackInfo
from medsum_local.testing import sign_request

#: An HTTP header name (RFC 9110 token) without ``_``. The server drops other names (a fuzzer makes
#: them; WSGI servers drop ``_`` because the environ cannot tell it from ``-``) before the gateway sees
#: them, so they must not be signed either.
_TOKEN = re.compile(r"^[!#$%&'*+.^`|~0-9A-Za-z-]+$")


class SignedAs(requests.auth.AuthBase):
    """``session.auth = SignedAs(info, "clinic-a")``: every request is signed after it is prepared, so
    the signature covers exactly the bytes, headers and URL that are sent."""

    def __init__(self, info: StackInfo, identity: str) -> None:
        self._info, self._who = info, info.identity(identity)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        assert request.url is not None and request.method is not None
        body = request.body or b""
        request.headers.pop("Authorization", None)
        request.headers.update(
            sign_request(
                request.method,
                request.url,
                credentials=self._who.credentials(),
                region=self._info.region,
                body=body.encode() if isinstance(body, str) else body,
                headers={k: v for k, v in request.headers.items() if _TOKEN.match(k)},
            )
        )
        return request


def session_as(info: StackInfo, identity: str) -> requests.Session:
    """A ``requests.Session`` signing as ``identity``."""
    session = requests.Session()
    session.auth = SignedAs(info, identity)
    return session
