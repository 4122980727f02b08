"""Request validation rules and HTTP helpers."""

from __future__ import annotations

import pytest
from medsum.http import body_size, error_body, is_json_content_type, owner_from_identity
from medsum.logic.batches import INGEST_FAILED, UPLOAD_EXPIRED
from medsum.logic.dlq import PURGED
from medsum.logic.ingest import ITEM_NOT_INGESTED
from medsum.logic.reports import ENQUEUE_FAILED
from medsum.models import SummarizeRequest
from pydantic import BaseModel, ValidationError


@pytest.mark.parametrize(
    "body",
    [
        {"patient_id": "", "report_text": "x"},
        {"patient_id": "a" * 65, "report_text": "x"},
        {"patient_id": "bad id!", "report_text": "x"},
        {"patient_id": "p", "report_text": ""},
        {"patient_id": "p", "report_text": "   \n"},
        {"patient_id": "p", "report_text": "x" * 100_001},
        {"patient_id": "p", "report_text": "x", "report_type": "poetry"},
        {"patient_id": "p", "report_text": "x", "metadata": {str(i): "v" for i in range(17)}},
        {"patient_id": "p", "report_text": "x", "metadata": {"k" * 65: "v"}},
        {"patient_id": "p", "report_text": "x", "metadata": {"k": "v" * 513}},
        {"patient_id": "p", "report_text": "x", "metadata": {"k": 1}},
        {"patient_id": "p", "report_text": "x", "unexpected": True},
        {"report_text": "x"},
    ],
)
def test_invalid_requests_are_rejected(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SummarizeRequest.model_validate(body)


def test_valid_request_at_the_limits() -> None:
    request = SummarizeRequest.model_validate(
        {
            "patient_id": "A-z_0.9" + "x" * 57,
            "report_text": "é" * 100_000,
            "report_type": "discharge",
            "metadata": {"k" * 64: "v" * 512, **{str(i): "" for i in range(15)}},
        }
    )
    assert len(request.report_text) == 100_000


def test_owner_from_identity() -> None:
    assert owner_from_identity({"userArn": "arn:aws:iam::123456789012:user/clinic-a"}) == (
        "arn:aws:iam::123456789012:user/clinic-a"
    )
    session = "arn:aws:sts::123456789012:assumed-role/Ingest/session-42"
    assert owner_from_identity({"userArn": session}) == "arn:aws:sts::123456789012:assumed-role/Ingest"
    assert owner_from_identity({}) is None
    assert owner_from_identity(None) is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("text/plain", False),
        (None, False),
    ],
)
def test_json_content_type(value: str | None, ok: bool) -> None:
    assert is_json_content_type(value) is ok


def test_body_size_and_error_body() -> None:
    assert body_size({"body": "é"}) == 2
    assert body_size({"body": "AAAA", "isBase64Encoded": True}) == 3
    assert error_body("c", "m") == '{"error": {"code": "c", "message": "m"}}'


@pytest.mark.parametrize(
    "constant",
    [ENQUEUE_FAILED, ITEM_NOT_INGESTED, PURGED, INGEST_FAILED, UPLOAD_EXPIRED],
    ids=["enqueue_failed", "item_not_ingested", "purged", "ingest_failed", "upload_expired"],
)
def test_error_constants_are_valid_models(constant: BaseModel) -> None:
    # They are made with model_construct (no schema is built at import, docs/decisions.md "Cold start"),
    # which skips validation: each must still be exactly what validation would have made.
    assert type(constant).model_validate(constant.model_dump()) == constant
    assert constant.model_fields_set == set(type(constant).model_fields) - {"custom_id"}
