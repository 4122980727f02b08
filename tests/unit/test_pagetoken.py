"""The page-token codec: opaque, tamper-evident, bound to its listing and its deployment."""

from __future__ import annotations

import base64

import pytest
from medsum.errors import InvalidPageTokenError
from medsum.pagetoken import MAX_TOKEN_CHARS, PageTokenCodec

OWNER = "arn:aws:iam::123456789012:user/clinic-a"
SCOPE = f"reports:{OWNER}#pt-001"
POSITION = {"report_id": "01JDQ3Z6W5Y7K8M9N0P1Q2R3S4", "created_at": "2026-11-30T10:00:00.000000Z"}


def unpadded_bytes(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_a_token_round_trips_within_its_scope() -> None:
    # Given the codec of a deployment
    codec = PageTokenCodec.derived_from("medsum-PatientReports-1ABC")
    # When a position is encoded and decoded by another instance of the same deployment
    token = codec.encode(SCOPE, POSITION)
    # Then the position comes back, and the token is URL-safe
    assert PageTokenCodec.derived_from("medsum-PatientReports-1ABC").decode(SCOPE, token) == POSITION
    assert token.replace("-", "").replace("_", "").isalnum()


def test_a_token_reveals_neither_scope_nor_position() -> None:
    # Given a token
    token = PageTokenCodec.derived_from("t").encode(SCOPE, POSITION)
    # Then neither the owner ARN nor any key value can be read from it
    raw = unpadded_bytes(token)
    for value in (OWNER, "clinic-a", "pt-001", POSITION["report_id"], "2026-11-30"):
        assert value not in token and value.encode() not in raw
    # And the same position gives a different token each time (no correlation across pages)
    assert PageTokenCodec.derived_from("t").encode(SCOPE, POSITION) != token


@pytest.mark.parametrize(
    "scope", [f"reports:{OWNER}#pt-002", "reports:arn:aws:iam::123456789012:user/clinic-b#pt-001", "batches"]
)
def test_a_token_of_another_listing_or_owner_is_refused(scope: str) -> None:
    codec = PageTokenCodec.derived_from("t")
    token = codec.encode(SCOPE, POSITION)
    with pytest.raises(InvalidPageTokenError):
        codec.decode(scope, token)


def test_a_token_of_another_deployment_is_refused() -> None:
    token = PageTokenCodec.derived_from("stack-a").encode(SCOPE, POSITION)
    with pytest.raises(InvalidPageTokenError):
        PageTokenCodec.derived_from("stack-b").decode(SCOPE, token)


def test_every_single_byte_change_is_detected() -> None:
    # Given a token
    codec = PageTokenCodec.derived_from("t")
    raw = bytearray(unpadded_bytes(codec.encode(SCOPE, POSITION)))
    # When any one byte of it is changed
    for index in range(len(raw)):
        changed = bytearray(raw)
        changed[index] ^= 0x01
        token = base64.urlsafe_b64encode(bytes(changed)).decode().rstrip("=")
        # Then it is refused
        with pytest.raises(InvalidPageTokenError):
            codec.decode(SCOPE, token)


@pytest.mark.parametrize(
    "token",
    ["", "@@@", "eyJvd25lciI6ICJ4In0", "AQ", "A" * (MAX_TOKEN_CHARS + 1)],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidPageTokenError):
        PageTokenCodec.derived_from("t").decode(SCOPE, token)


def test_a_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PageTokenCodec(b"short")


LAST_KEY = {
    "owner_patient": {"S": f"{OWNER}#pt-001"},
    "report_id": {"S": POSITION["report_id"]},
    "created_at": {"S": POSITION["created_at"]},
}
KEY_NAMES = {"owner_patient", "report_id", "created_at"}


def test_a_dynamodb_key_round_trips_with_the_callers_own_partition() -> None:
    # Given DynamoDB's LastEvaluatedKey of a page
    codec = PageTokenCodec.derived_from("t")
    token = codec.encode_key(SCOPE, LAST_KEY, "owner_patient")
    # Then the token does not carry the partition, and the next request's partition fills it in again
    assert OWNER.encode() not in unpadded_bytes(token)
    start = codec.decode_key(SCOPE, token, KEY_NAMES, "owner_patient", f"{OWNER}#pt-001")
    assert start == LAST_KEY


@pytest.mark.parametrize(
    "position",
    [
        {"report_id": "r"},  # a key attribute missing
        {**POSITION, "owner_patient": "arn:aws:iam::123456789012:user/clinic-b#pt-001"},  # the partition
        {**POSITION, "extra": "x"},
    ],
)
def test_a_token_that_is_not_exactly_the_listings_key_is_refused(position: dict[str, str]) -> None:
    codec = PageTokenCodec.derived_from("t")
    token = codec.encode(SCOPE, position)
    with pytest.raises(InvalidPageTokenError):
        codec.decode_key(SCOPE, token, KEY_NAMES, "owner_patient", f"{OWNER}#pt-001")
