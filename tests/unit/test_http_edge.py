"""The HTTP edge's pure parts: JSON decoding without surprises, validation problems without client
keys, admission before routing, and the one error mapping."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from medsum import safejson
from medsum.errors import (
    BatchInputError,
    EnqueueError,
    InvalidJsonError,
    MedsumError,
    OperatorRequestError,
    PayloadTooLargeError,
    ReportNotFoundError,
    UnsupportedMediaTypeError,
)
from medsum.http import is_json_content_type, is_ndjson_content_type
from medsum.http.edge import admit
from medsum.http.errors import as_medsum_error, error_response
from medsum.logic.webhooks import NoDefaultSecretError, UrlPolicy
from medsum.netguard import UnsafeUrlError
from medsum.validation import problems, safe_location


# --------------------------------------------------------------------------------------------------
# safejson
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        b"\xff\xfe{}",  # not UTF-8
        "[" * 100_000 + "]" * 100_000,  # deeper than the recursion limit
        "1" * 5_000,  # an integer over 4,300 digits
        '{"a": "\\ud800"}',  # a lone high surrogate
        '{"\\udc00": 1}',  # a lone low surrogate, in a key
        "{not json",
        "",
    ],
)
def test_every_decoding_failure_is_a_json_decode_error(text: str | bytes) -> None:
    with pytest.raises(json.JSONDecodeError):
        safejson.loads(text)


def test_valid_json_decodes_as_usual() -> None:
    assert safejson.loads('{"a": "\\ud83d\\ude00", "b": [1, 2.5, null]}') == {"a": "😀", "b": [1, 2.5, None]}
    assert safejson.loads(b'{"t": "caf\xc3\xa9"}') == {"t": "café"}
    assert safejson.loads("[" * 500 + "]" * 500) is not None


# --------------------------------------------------------------------------------------------------
# validation problems
# --------------------------------------------------------------------------------------------------
def test_locations_keep_only_names_the_api_defines() -> None:
    assert safe_location(("body", "patient_id")) == "body.patient_id"
    assert safe_location(("body", "reports", 3, "report_text")) == "body.reports.3.report_text"
    assert safe_location(("body", "metadata", "Jane Doe")) == "body.metadata.*"
    assert safe_location(("body", "metadata", "Jane Doe", "[key]")) == "body.metadata.*.[key]"
    assert safe_location(("body", "Jane Doe"), "extra_forbidden") == "body"
    assert safe_location(("query", "limit")) == "query.limit"


def test_problems_never_quote_the_input_and_are_deduplicated() -> None:
    errors = [
        {
            "type": "extra_forbidden",
            "loc": ("body", "DOB 1970-01-01"),
            "msg": "Extra inputs are not permitted",
        },
        {"type": "extra_forbidden", "loc": ("body", "Jane"), "msg": "Extra inputs are not permitted"},
        {"type": "string_type", "loc": ("body", "metadata", "Jane"), "msg": "Input should be a valid string"},
    ]
    assert problems(errors) == [
        {"location": "body", "problem": "unknown field"},
        {"location": "body.metadata.*", "problem": "Input should be a valid string"},
    ]


# --------------------------------------------------------------------------------------------------
# media types
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "json_type", "ndjson_type"),
    [
        ("application/json", True, False),
        ("APPLICATION/JSON", True, False),
        ("application/json; charset=utf-8", True, False),
        ("application/vnd.api+json", True, False),
        ("application/merge-patch+json;charset=UTF-8", True, False),
        ("application/x-ndjson", False, True),
        ("application/jsonl", False, True),
        ("application/jsonx", False, False),
        ("text/json", False, False),
        ("text/plain", False, False),
        ("", False, False),
        (None, False, False),
    ],
)
def test_media_types(value: str | None, json_type: bool, ndjson_type: bool) -> None:
    assert is_json_content_type(value) is json_type
    assert is_ndjson_content_type(value) is ndjson_type


# --------------------------------------------------------------------------------------------------
# admission
# --------------------------------------------------------------------------------------------------
def event(body: str | None, content_type: str | None = "application/json", **extra: Any) -> dict[str, Any]:
    headers = {"content-type": content_type} if content_type is not None else {}
    return {"httpMethod": "POST", "path": "/summarize", "headers": headers, "body": body, **extra}


def test_a_json_body_is_handed_on_as_text_with_the_canonical_type() -> None:
    original = event(base64.b64encode(b'{"a": 1}').decode(), "Application/Vnd.Api+Json", isBase64Encoded=True)
    admitted = admit(original)
    assert admitted["body"] == '{"a": 1}' and admitted["isBase64Encoded"] is False
    assert admitted["headers"] == {"Content-Type": "application/json"}
    assert admitted["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert original["headers"] == {"content-type": "Application/Vnd.Api+Json"}  # the event is not modified


def test_json_lines_only_where_the_path_takes_them() -> None:
    lines = event("{}\n", "application/x-ndjson", path="/batches")
    assert admit(lines, ndjson_paths={"/batches"})["headers"]["Content-Type"] == "application/x-ndjson"
    with pytest.raises(UnsupportedMediaTypeError):
        admit(event("{}\n", "application/x-ndjson"), ndjson_paths={"/batches"})


@pytest.mark.parametrize(
    ("refused", "error"),
    [
        (event("x" * 1_048_577), PayloadTooLargeError),
        (event(base64.b64encode(b"x" * 1_048_577).decode(), isBase64Encoded=True), PayloadTooLargeError),
        (event("{}", "text/plain"), UnsupportedMediaTypeError),
        (event("{}", None), UnsupportedMediaTypeError),
        (event(base64.b64encode(b"\xff").decode(), isBase64Encoded=True), InvalidJsonError),
        (event("not base64!", isBase64Encoded=True), InvalidJsonError),
    ],
)
def test_what_admission_refuses(refused: dict[str, Any], error: type[MedsumError]) -> None:
    with pytest.raises(error):
        admit(refused)


def test_routes_have_their_own_limits_and_bodiless_requests_pass() -> None:
    assert admit(event("x" * 2_000_000, path="/batches"), limits={"/batches": 5_242_880})["body"]
    assert admit(event(None)) == event(None)
    assert admit({**event("x", "text/plain"), "httpMethod": "GET"})["body"] == "x"  # no route reads it


# --------------------------------------------------------------------------------------------------
# the error mapping
# --------------------------------------------------------------------------------------------------
def answer(exc: Exception) -> tuple[int, dict[str, Any], dict[str, Any]]:
    response = error_response(exc)
    assert isinstance(response.body, str)
    return response.status_code, json.loads(response.body), dict(response.headers)


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ReportNotFoundError("whatever the raiser said"), 404, "not_found"),
        (EnqueueError("queue https://sqs.../x refused"), 503, "unavailable"),
        (BatchInputError("too_many_items", "a batch holds at most 1000 items"), 413, "too_many_items"),
        (BatchInputError("no_valid_items", "no line"), 400, "no_valid_items"),
        (OperatorRequestError("not_failed", "the report is not FAILED", conflict=True), 409, "not_failed"),
        (NoDefaultSecretError("x"), 409, "no_default_secret"),
        (UnsafeUrlError("url_address", "the URL resolves to a private address"), 400, "url_address"),
        (MedsumError("a bug"), 500, "internal_error"),
        (KeyError("Jane Doe"), 500, "internal_error"),
    ],
)
def test_errors_answer_what_their_class_says(exc: Exception, status: int, code: str) -> None:
    got, body, headers = answer(exc)
    assert (got, body["error"]["code"]) == (status, code)
    assert headers["Content-Type"] == "application/json"
    # The public message is the class's fixed text, never the exception's own
    assert "whatever" not in body["error"]["message"] and "Jane" not in json.dumps(body)
    assert "sqs" not in body["error"]["message"]


def test_request_validation_errors_are_ours_and_response_validation_errors_are_bugs() -> None:
    invalid_json = RequestValidationError([{"type": "json_invalid", "loc": ("body", 0), "msg": "x"}])
    missing = RequestValidationError(
        [{"type": "missing", "loc": ("body", "report_text"), "msg": "Field required"}]
    )
    broken_answer = RequestValidationError(
        [{"type": "missing", "loc": ("response", "x"), "msg": "Field required"}]
    )
    assert as_medsum_error(invalid_json).code == "invalid_json"
    error = as_medsum_error(missing)
    assert error.code == "invalid_request"
    assert list(error.details) == [{"location": "body.report_text", "problem": "Field required"}]
    assert as_medsum_error(broken_answer).status == 500


def test_a_refused_webhook_url_is_a_client_error() -> None:
    policy = UrlPolicy(resolver=lambda *_args, **_kw: [])
    with pytest.raises(UnsafeUrlError) as refused:
        policy.check("http://example.com/hook")
    assert refused.value.status == 400 and refused.value.code == "url_scheme"
