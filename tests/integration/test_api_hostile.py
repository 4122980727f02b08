"""Hostile input, at the handler: every case answers a documented 4xx in the error shape, and writes
nothing. Encodings, nesting, huge numbers, sizes, content types, headers, query parameters, page
tokens, paths, methods; on every route that takes a body (JSON and JSON Lines), and the admin edge.

"Documented" means: the status is one the OpenAPI document lists for that operation (unknown routes and
methods answer 404/405, docs/api.md).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from medsum_local.inprocess import Stack, deployed_stack

from scripts.export_openapi import render
from tests.support.events import (
    CLINIC_A,
    OPERATOR,
    FakeLambdaContext,
    Handler,
    admin_handler,
    api_event,
    api_handler,
)

DOCUMENT: dict[str, Any] = json.loads(render())
REPORT = {"patient_id": "pt-001", "report_text": "FINDINGS: Mild cardiomegaly.", "report_type": "radiology"}
ITEM = {**REPORT, "custom_id": "c-1"}
DEEP = "[" * 10_000 + "]" * 10_000
HUGE = "1" + "0" * 5_000
LATIN1 = '{"patient_id": "pt-001", "report_text": "Caf\xe9 au lait"}'.encode("latin-1")


@dataclass(frozen=True)
class Case:
    """One hostile request: what is sent (``raw`` bytes are base64-encoded as API Gateway passes a body
    it cannot decode as UTF-8), and the status and code it must get."""

    name: str
    method: str
    path: str
    status: int
    code: str
    operation: str | None = None  # the OpenAPI path template; None: an unknown route or method
    body: bytes | str | None = None
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] | None = None

    def event(self) -> dict[str, Any]:
        headers = dict(self.headers)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        event = api_event(self.method, self.path, headers=headers, query=self.query)
        if isinstance(self.body, bytes):
            event["body"], event["isBase64Encoded"] = base64.b64encode(self.body).decode(), True
        else:
            event["body"] = self.body
        return event


def j(value: Any) -> str:
    return json.dumps(value)


def ndjson(*lines: str) -> str:
    return "\n".join(lines) + "\n"


BODY_ROUTES = [
    ("/summarize", REPORT),
    ("/batches", {"reports": [ITEM]}),
    ("/webhooks", {"url": "https://x.test"}),
]

CASES: list[Case] = [
    # --- encodings ---
    *[
        Case(f"latin-1 bytes {p}", "POST", p, 400, "invalid_json", p, body=LATIN1)
        for p in ("/summarize", "/batches", "/webhooks")
    ],
    Case(
        "latin-1 bytes ndjson",
        "POST",
        "/batches",
        400,
        "invalid_json",
        "/batches",
        LATIN1,
        "application/x-ndjson",
    ),
    Case("utf-16", "POST", "/summarize", 400, "invalid_json", "/summarize", j(REPORT).encode("utf-16")),
    Case("byte order mark", "POST", "/summarize", 400, "invalid_json", "/summarize", "\ufeff" + j(REPORT)),
    Case("NUL bytes", "POST", "/summarize", 400, "invalid_json", "/summarize", b"\x00\x00\x00"),
    Case(
        "lone surrogate",
        "POST",
        "/summarize",
        400,
        "invalid_json",
        "/summarize",
        '{"patient_id": "p", "report_text": "\\ud800"}',
    ),
    Case(
        "lone surrogate in a batch",
        "POST",
        "/batches",
        400,
        "invalid_json",
        "/batches",
        j({"reports": [ITEM]})[:-2] + ', "metadata": {"\\udfff": "x"}}',
    ),
    Case(
        "lone surrogate line",
        "POST",
        "/batches",
        400,
        "no_valid_items",
        "/batches",
        ndjson('{"custom_id": "a", "patient_id": "p", "report_text": "\\udc00"}'),
        "application/x-ndjson",
    ),
    Case("not json", "POST", "/summarize", 400, "invalid_json", "/summarize", "{not json"),
    Case("truncated", "POST", "/webhooks", 400, "invalid_json", "/webhooks", '{"url": "https://x'),
    # --- nesting ---
    *[
        Case(f"10,000 deep {p}", "POST", p, 400, "invalid_json", p, DEEP)
        for p in ("/summarize", "/batches", "/webhooks")
    ],
    Case(
        "10,000 deep ndjson",
        "POST",
        "/batches",
        400,
        "no_valid_items",
        "/batches",
        ndjson(DEEP),
        "application/x-ndjson",
    ),
    Case(
        "deep metadata",
        "POST",
        "/summarize",
        400,
        "invalid_request",
        "/summarize",
        j({**REPORT, "metadata": {"k": json.loads("[" * 500 + "]" * 500)}}),
    ),
    # --- huge numbers ---
    *[
        Case(f"huge int {p}", "POST", p, 400, "invalid_json", p, '{"x": ' + HUGE + "}")
        for p in ("/summarize", "/batches", "/webhooks")
    ],
    Case(
        "huge int ndjson",
        "POST",
        "/batches",
        400,
        "no_valid_items",
        "/batches",
        ndjson('{"custom_id": ' + HUGE + "}"),
        "application/x-ndjson",
    ),
    Case(
        "huge float",
        "POST",
        "/summarize",
        400,
        "invalid_request",
        "/summarize",
        j(REPORT)[:-1] + ', "metadata": 1e999999}',
    ),
    Case(
        "NaN",
        "POST",
        "/summarize",
        400,
        "invalid_request",
        "/summarize",
        '{"patient_id": NaN, "report_text": "x"}',
    ),
    Case(
        "huge limit", "GET", "/batches", 400, "invalid_request", "/batches", None, None, query={"limit": HUGE}
    ),
    # --- shapes ---
    *[
        Case(f"{kind} body {p}", "POST", p, 400, "invalid_request", p, value)
        for p in ("/summarize", "/webhooks")
        for kind, value in (("array", "[1, 2]"), ("null", "null"), ("string", '"x"'), ("number", "42"))
    ],
    *[
        Case(f"{kind} body batch", "POST", "/batches", 400, "invalid_request", "/batches", value)
        for kind, value in (("array", "[1]"), ("null", "null"), ("number", "1"))
    ],
    Case(
        "unknown field",
        "POST",
        "/summarize",
        400,
        "invalid_request",
        "/summarize",
        j({**REPORT, "Jane Doe DOB 1970": 1}),
    ),
    Case("empty body", "POST", "/summarize", 400, "invalid_request", "/summarize", None),
    Case(
        "empty batch",
        "POST",
        "/batches",
        400,
        "invalid_request",
        "/batches",
        j({"reports": []})[:-1] + ', "x": 1}',
    ),
    Case(
        "no valid line",
        "POST",
        "/batches",
        400,
        "no_valid_items",
        "/batches",
        ndjson("1", '"x"', "[]"),
        "application/x-ndjson",
    ),
    # --- sizes ---
    Case("over 1 MiB", "POST", "/summarize", 413, "payload_too_large", "/summarize", "x" * 1_048_577),
    Case("over 1 MiB base64", "POST", "/webhooks", 413, "payload_too_large", "/webhooks", b"x" * 1_048_577),
    Case(
        "over 5 MiB batch",
        "POST",
        "/batches",
        413,
        "payload_too_large",
        "/batches",
        "x" * 5_242_881,
        "application/x-ndjson",
    ),
    Case(
        "report text over 100,000",
        "POST",
        "/summarize",
        400,
        "invalid_request",
        "/summarize",
        j({**REPORT, "report_text": "é" * 100_001}),
    ),
    Case(
        "1,001 items",
        "POST",
        "/batches",
        413,
        "too_many_items",
        "/batches",
        ndjson(*[j({**ITEM, "custom_id": f"c{i}"}) for i in range(1_001)]),
        "application/x-ndjson",
    ),
    # --- content types ---
    *[
        Case(f"type {t}", "POST", "/summarize", 415, "unsupported_media_type", "/summarize", j(REPORT), t)
        for t in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/x-ndjson",
            "application/jsonx",
            "json",
            "",
        )
    ],
    Case(
        "no content type", "POST", "/summarize", 415, "unsupported_media_type", "/summarize", j(REPORT), None
    ),
    Case(
        "batch as text",
        "POST",
        "/batches",
        415,
        "unsupported_media_type",
        "/batches",
        ndjson(j(ITEM)),
        "text/plain",
    ),
    Case(
        "body to a bodiless route",
        "POST",
        "/batches/uploads",
        415,
        "unsupported_media_type",
        "/batches/uploads",
        "x",
        "text/plain",
    ),
    # --- headers ---
    Case(
        "idempotency key too long",
        "POST",
        "/summarize",
        400,
        "invalid_request",
        "/summarize",
        j(REPORT),
        headers={"Idempotency-Key": "k" * 256},
    ),
    Case(
        "idempotency key empty",
        "POST",
        "/summarize",
        400,
        "invalid_request",
        "/summarize",
        j(REPORT),
        headers={"Idempotency-Key": ""},
    ),
    # --- query parameters ---
    *[
        Case(
            f"limit {v!r}",
            "GET",
            "/batches",
            400,
            "invalid_request",
            "/batches",
            None,
            None,
            query={"limit": v},
        )
        for v in ("0", "-1", "101", "1e3", "ten", "", "1.5")
    ],
    Case(
        "next_token too long",
        "GET",
        "/batches",
        400,
        "invalid_request",
        "/batches",
        None,
        None,
        query={"next_token": "a" * 2049},
    ),
    Case(
        "patient limit",
        "GET",
        "/patients/pt-001/reports",
        400,
        "invalid_request",
        "/patients/{patient_id}/reports",
        None,
        None,
        query={"limit": "0"},
    ),
    # --- page tokens ---
    *[
        Case(
            f"token {t[:12]!r}",
            "GET",
            "/batches",
            400,
            "invalid_next_token",
            "/batches",
            None,
            None,
            query={"next_token": t},
        )
        for t in ("garbage!", "eyJ" + "A" * 80, base64.urlsafe_b64encode(b"\x00" * 64).decode(), "%00", "🦠")
    ],
    Case(
        "report token",
        "GET",
        "/patients/pt-001/reports",
        400,
        "invalid_next_token",
        "/patients/{patient_id}/reports",
        None,
        None,
        query={"next_token": "AAAA" * 20},
    ),
    # --- paths and methods ---
    Case(
        "id too long",
        "GET",
        "/reports/" + "a" * 65,
        400,
        "invalid_request",
        "/reports/{report_id}",
        None,
        None,
    ),
    Case(
        "bad patient id",
        "GET",
        "/patients/a b/reports",
        400,
        "invalid_request",
        "/patients/{patient_id}/reports",
        None,
        None,
    ),
    Case(
        "control characters in an id",
        "GET",
        "/reports/a\x01b",
        400,
        "invalid_request",
        "/reports/{report_id}",
        None,
        None,
    ),
    Case(
        "emoji patient id",
        "GET",
        "/patients/\U0001f9a0\x1b/reports",
        400,
        "invalid_request",
        "/patients/{patient_id}/reports",
        None,
        None,
    ),
    Case("empty id", "DELETE", "/webhooks/", 405, "method_not_allowed", None, None, None),
    Case(
        "slash in a patient id",
        "GET",
        "/patients/a/b/reports",
        404,
        "route_not_found",
        "/patients/{patient_id}/reports",
        None,
        None,
    ),
    Case("unknown route", "GET", "/nope", 404, "route_not_found", None, None, None),
    Case("PUT summarize", "PUT", "/summarize", 405, "method_not_allowed", None, j(REPORT)),
    Case("PATCH report", "PATCH", "/reports/abc", 405, "method_not_allowed", None, j(REPORT)),
    Case("missing report", "GET", "/reports/abc", 404, "not_found", "/reports/{report_id}", None, None),
]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """One deployment for the module: hostile requests must not write anything, so they can share it."""
    with pytest.MonkeyPatch.context() as monkeypatch, deployed_stack(monkeypatch) as deployed:
        yield deployed


@pytest.fixture
def api(stack: Stack) -> Handler:
    return api_handler()


def stored(stack: Stack) -> tuple[int, int, int]:
    """Reports stored, and work messages waiting in each lane."""
    sqs = stack.client("sqs")
    depths = [
        int(
            sqs.get_queue_attributes(
                QueueUrl=stack.resources[queue], AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        for queue in ("WorkQueue", "BulkQueue")
    ]
    reports = stack.client("dynamodb").scan(TableName=stack.resources["PatientReports"], Select="COUNT")
    return reports["Count"], depths[0], depths[1]


def documented(case: Case, status: int) -> bool:
    if case.operation is None:
        return status in (404, 405)
    operation = DOCUMENT["paths"][case.operation][case.method.lower()]
    return str(status) in operation["responses"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request_gets_a_documented_4xx_in_the_error_shape(
    api: Handler, stack: Stack, case: Case
) -> None:
    before = stored(stack)
    response = api.lambda_handler(case.event(), FakeLambdaContext())
    body = json.loads(response["body"])
    assert (response["statusCode"], body["error"]["code"]) == (case.status, case.code)
    assert documented(case, response["statusCode"])
    assert set(body) == {"error"} and set(body["error"]) <= {"code", "message", "details"}
    headers = {
        **{k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()},
        **(response.get("headers") or {}),
    }
    assert headers["Content-Type"] == "application/json"
    # Nothing was stored or queued
    assert stored(stack) == before


def test_details_never_echo_a_clients_own_keys(api: Handler) -> None:
    # Given body keys that carry patient data (an unexpected field, a metadata key)
    secret = "Jane Doe 1970-01-01"
    body = {**REPORT, secret: 1, "metadata": {secret: 42}}
    # When the request is refused
    response = api.lambda_handler(api_event("POST", "/summarize", body=body), FakeLambdaContext())
    # Then the details locate the problems by this API's names only
    error = json.loads(response["body"])["error"]
    assert response["statusCode"] == 400 and secret not in response["body"]
    assert {"location": "body", "problem": "unknown field"} in error["details"]
    assert {"location": "body.metadata.*", "problem": "Input should be a valid string"} in error["details"]


def test_a_batch_line_error_never_echoes_a_clients_own_keys(api: Handler) -> None:
    secret = "Jane Doe 1970-01-01"
    lines = ndjson(j(ITEM), j({**ITEM, "custom_id": "c-2", secret: "x"}))
    event = api_event("POST", "/batches", raw_body=lines, headers={"Content-Type": "application/x-ndjson"})
    response = api.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 202 and secret not in response["body"]
    assert json.loads(response["body"])["errors"][0]["message"] == "invalid fields: *"


@pytest.mark.parametrize(
    "content_type",
    [
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "Application/Json;charset=UTF-8",
        "application/vnd.api+json",
    ],
)
def test_json_is_json_in_any_case_with_parameters_and_as_a_suffix(api: Handler, content_type: str) -> None:
    event = api_event("POST", "/summarize", raw_body=j(REPORT), headers={"Content-Type": content_type})
    assert api.lambda_handler(event, FakeLambdaContext())["statusCode"] == 202


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/dlq", "/admin/nope", "/admin/dlq/redrive"])
def test_admin_paths_answer_403_to_non_operators(stack: Stack, path: str) -> None:
    for method in ("GET", "POST"):
        response = admin_handler().lambda_handler(
            api_event(method, path, caller=CLINIC_A, raw_body=DEEP, headers={"Content-Type": "text/plain"}),
            FakeLambdaContext(),
        )
        assert response["statusCode"] == 403
        assert json.loads(response["body"]) == {"error": {"code": "forbidden", "message": "operators only"}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (DEEP, "invalid_json"),
        ('{"reason": ' + HUGE + "}", "invalid_json"),
        ('{"all": true, "x": 1}', "invalid_request"),
    ],
)
def test_admin_bodies_are_checked_like_the_apis(stack: Stack, body: str, code: str) -> None:
    event = api_event(
        "POST",
        "/admin/dlq/redrive",
        caller=OPERATOR,
        raw_body=body,
        headers={"Content-Type": "application/json"},
    )
    response = admin_handler().lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"]["code"] == code
