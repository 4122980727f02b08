"""The one SigV4 signer (``medsum_cli.signing``): what it returns, and that the local gateway verifies it."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.credentials import Credentials
from medsum_cli.signing import sign_request
from medsum_local.gateway import AuthError, verify_sigv4
from medsum_local.identities import Identity, IdentityRegistry

CLINIC_A = Identity(
    name="clinic-a",
    role="client",
    access_key_id="AKIAEXAMPLECLINICA00",
    secret_access_key="secret-of-clinic-a",
    arn="arn:aws:iam::123456789012:user/clinic-a",
    user_id="AIDAEXAMPLECLINICA00",
    account_id="123456789012",
)


def verify(headers: dict[str, str], body: bytes, now: dt.datetime) -> str:
    return verify_sigv4(
        method="POST",
        raw_path="/summarize",
        raw_query="b=2&a=1",
        headers=list(headers.items()),
        body=body,
        identities=IdentityRegistry([CLINIC_A]),
        region="us-east-1",
        now=now,
    ).name


def test_signed_headers_alone_verify_at_the_local_gateway() -> None:
    # Given a request signed at 13:00 in UTC+1 (12:00 UTC)
    body = b'{"a": 1}'
    headers = sign_request(
        "POST",
        "http://127.0.0.1:3000/summarize?b=2&a=1",
        credentials=CLINIC_A.credentials(),
        region="us-east-1",
        body=body,
        headers={"Content-Type": "application/json"},
        at=dt.datetime(2026, 1, 1, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    )

    # Then the headers hold everything that was signed, Host included
    assert headers["Host"] == "127.0.0.1:3000"
    assert headers["X-Amz-Date"] == "20260101T120000Z"
    assert headers["Content-Type"] == "application/json"
    assert "X-Amz-Security-Token" not in headers
    # And the gateway's verification accepts them, but not over another body
    assert verify(headers, body, now=dt.datetime(2026, 1, 1, 12, 5, tzinfo=dt.UTC)) == "clinic-a"
    with pytest.raises(AuthError, match="does not match"):
        verify(headers, b'{"a": 2}', now=dt.datetime(2026, 1, 1, 12, 5, tzinfo=dt.UTC))


def test_temporary_credentials_send_their_token_and_the_host_is_the_one_signed() -> None:
    headers = sign_request(
        "GET",
        "https://API.example.test:443/reports/r-1",
        credentials=Credentials("ASIAEXAMPLE", "secret", "session-token"),
        region="eu-west-1",
    )

    assert headers["X-Amz-Security-Token"] == "session-token"
    assert headers["Host"] == "api.example.test"  # botocore signs the host without the default port
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in headers["Authorization"]


def test_a_host_header_given_is_the_one_signed_and_sent() -> None:
    headers = sign_request(
        "GET",
        "http://127.0.0.1:3000/reports/r-1",
        credentials=CLINIC_A.credentials(),
        region="us-east-1",
        headers={"Host": "api.internal:8080"},
    )

    assert [name for name in headers if name.lower() == "host"] == ["Host"]
    assert headers["Host"] == "api.internal:8080"
