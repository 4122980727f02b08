"""SigV4 request signing with botocore: the one signer of the CLI and of the tests.

:func:`sign_request` signs with botocore's own :class:`~botocore.auth.SigV4Auth`, exactly like an AWS SDK
client calling API Gateway would. The CLI's transport (:mod:`medsum_cli.transport`) signs every API call
with it; :mod:`medsum_local.testing` re-exports it for tests that talk to the local stack. Verifying
signatures is the local gateway's business (:mod:`medsum_local.gateway`), not this module's; webhook
signatures (Standard Webhooks) are another thing altogether, in :mod:`medsum.signing`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from unittest import mock

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE_NAME = "execute-api"

__all__ = ["SERVICE_NAME", "sign_request"]


def sign_request(
    method: str,
    url: str,
    *,
    credentials: Credentials,
    region: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    service: str = SERVICE_NAME,
    at: dt.datetime | None = None,
) -> dict[str, str]:
    """Sign a request with SigV4 and return every header to send with it.

    Parameters
    ----------
    method
        HTTP method.
    url
        Full URL, query string included, exactly as it will be sent.
    credentials
        botocore credentials (static or refreshable); a session token is sent as
        ``X-Amz-Security-Token``.
    region
        Signing region.
    body
        Exact body bytes (``None`` or empty for no body).
    headers
        Headers to send; all of them are signed (botocore leaves out the few it never signs, such as
        ``User-Agent``).
    service
        Signing service (API Gateway: ``execute-api``).
    at
        Sign as if the clock said this (a UTC time; tests of expired signatures); default: now.

    Returns
    -------
    dict
        ``headers`` plus ``X-Amz-Date``, ``Authorization``, ``X-Amz-Security-Token`` for temporary
        credentials, and ``Host`` (the value signed) unless ``headers`` set it.
    """
    request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers or {}))
    signer = SigV4Auth(credentials, service, region)
    if at is None:
        signer.add_auth(request)
    else:
        if at.tzinfo is not None:
            at = at.astimezone(dt.UTC)
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at.replace(tzinfo=None)):
            signer.add_auth(request)
    signed = {str(name): str(value) for name, value in request.headers.items()}
    if not any(name.lower() == "host" for name in signed):
        # botocore signs the host of the URL when no Host header is given: send exactly that one.
        signed["Host"] = str(signer.headers_to_sign(request)["host"])
    return signed
