"""The api function's handler with API Gateway REST events, against the template's resources in moto."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from medsum.adapters.sqs import SqsWorkQueue
from medsum_local.inprocess import Stack

from tests.support.events import CLINIC_A, CLINIC_B, FakeLambdaContext, Handler, api_event, api_handler

REPORT = {
    "patient_id": "pt-001",
    "report_text": "FINDINGS: Mild cardiomegaly. No effusion.",
    "report_type": "radiology",
}


@pytest.fixture
def api(stack: Stack) -> Handler:
    """The api function with the adapters of this test's moto account injected."""
    return api_handler()


def call(api: Handler, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    response = api.lambda_handler(event, FakeLambdaContext())
    body = json.loads(response["body"]) if response.get("body") else None
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(key.lower(), values[0])
    return response["statusCode"], headers, body


def submit(
    api: Handler, body: dict[str, Any] = REPORT, caller: str = CLINIC_A, idempotency_key: str | None = None
) -> Any:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return call(api, api_event("POST", "/summarize", body=body, caller=caller, headers=headers))


def queue_messages(stack: Stack) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    response = sqs.receive_message(QueueUrl=stack.resources["WorkQueue"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in response.get("Messages", [])]


def test_health_check_needs_no_identity(api: Handler) -> None:
    status, _, body = call(api, api_event("GET", "/", caller=None))
    assert status == 200 and body["status"] == "ok"


def test_submit_answers_202_writes_pending_and_enqueues_ids_only(api: Handler, stack: Stack) -> None:
    # When a client submits a report
    status, headers, body = submit(api)
    # Then it gets 202 with the id, a self link, Location and Retry-After
    assert status == 202
    report_id = body["report_id"]
    assert body["status"] == "PENDING"
    expected = f"{stack.outputs['ApiUrl']}/reports/{report_id}"
    assert body["links"]["self"] == expected
    assert headers["location"] == expected and headers["retry-after"] == "5"
    # And one work message carries the id only (never the text)
    assert queue_messages(stack) == [{"report_id": report_id, "version": 1}]
    # And the report reads back PENDING, owned by the caller, without its text
    status, _, view = call(api, api_event("GET", f"/reports/{report_id}", caller=CLINIC_A))
    assert status == 200
    assert view["status"] == "PENDING" and view["patient_id"] == "pt-001" and view["attempts"] == 0
    assert "report_text" not in view and "cardiomegaly" not in json.dumps(view)


def test_other_owner_gets_the_same_404_as_a_missing_report(api: Handler) -> None:
    _, _, created = submit(api)
    other = call(api, api_event("GET", f"/reports/{created['report_id']}", caller=CLINIC_B))
    missing = call(api, api_event("GET", "/reports/0123456789abcdef0123456789abcdef", caller=CLINIC_A))
    assert other[0] == missing[0] == 404
    assert other[2] == missing[2] == {"error": {"code": "not_found", "message": "report not found"}}
    assert call(api, api_event("DELETE", f"/reports/{created['report_id']}", caller=CLINIC_B))[0] == 404


def test_delete_erases_the_report(api: Handler, stack: Stack) -> None:
    _, _, created = submit(api)
    path = f"/reports/{created['report_id']}"
    status, _, body = call(api, api_event("DELETE", path))
    assert status == 204 and body is None
    assert call(api, api_event("GET", path))[0] == 404
    item = stack.client("dynamodb").get_item(
        TableName=stack.resources["PatientReports"], Key={"report_id": {"S": created["report_id"]}}
    )
    assert "Item" not in item


def test_list_is_newest_first_paginated_and_per_owner(api: Handler) -> None:
    ids = [submit(api)[2]["report_id"] for _ in range(3)]
    submit(api, caller=CLINIC_B)
    submit(api, body={**REPORT, "patient_id": "pt-002"})
    path = "/patients/pt-001/reports"
    status, _, first = call(api, api_event("GET", path, query={"limit": "2"}))
    assert status == 200
    assert [i["report_id"] for i in first["items"]] == ids[::-1][:2]
    assert first["next_token"]
    _, _, second = call(api, api_event("GET", path, query={"limit": "2", "next_token": first["next_token"]}))
    assert [i["report_id"] for i in second["items"]] == ids[:1]
    assert second["next_token"] is None
    # A token from one listing is refused for another (no peeking across patients or owners)
    status, _, error = call(
        api, api_event("GET", "/patients/pt-002/reports", query={"next_token": first["next_token"]})
    )
    assert status == 400 and error["error"]["code"] == "invalid_next_token"
    status, _, error = call(api, api_event("GET", path, query={"next_token": "garbage!"}))
    assert status == 400


def test_next_token_is_opaque_tamper_evident_and_bound_to_its_owner(api: Handler) -> None:
    # Given a listing with a second page
    for _ in range(2):
        submit(api)
    path = "/patients/pt-001/reports"
    _, _, first = call(api, api_event("GET", path, query={"limit": "1"}))
    token = first["next_token"]
    # Then the token reveals neither the owner's ARN nor the patient id, in any encoding
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for secret in (CLINIC_A, "clinic-a", "pt-001", first["items"][0]["report_id"]):
        assert secret not in token and secret.encode() not in raw
    # And the same token from another owner, for the same patient id, is refused
    status, _, error = call(api, api_event("GET", path, query={"next_token": token}, caller=CLINIC_B))
    assert status == 400 and error["error"]["code"] == "invalid_next_token"
    # And a token changed in any single character is refused, never read
    for index in (0, len(token) // 2, len(token) - 2):
        flipped = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
        status, _, error = call(api, api_event("GET", path, query={"next_token": flipped}))
        assert status == 400 and error["error"]["code"] == "invalid_next_token"
    # And the untouched token still reads the next page
    status, _, second = call(api, api_event("GET", path, query={"limit": "1", "next_token": token}))
    assert status == 200 and len(second["items"]) == 1


def test_idempotency_key_replays_the_original_202(api: Handler, stack: Stack) -> None:
    first = submit(api, idempotency_key="key-1")
    again = submit(api, idempotency_key="key-1")
    assert first[0] == again[0] == 202
    assert first[2]["report_id"] == again[2]["report_id"]
    assert len(queue_messages(stack)) == 1
    # The same key with another body is refused
    status, _, body = submit(api, body={**REPORT, "report_text": "different"}, idempotency_key="key-1")
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
    # The same key from another owner is another request
    other = submit(api, caller=CLINIC_B, idempotency_key="key-1")
    assert other[0] == 202 and other[2]["report_id"] != first[2]["report_id"]


def test_enqueue_failure_answers_503_and_marks_report_failed(api: Handler, stack: Stack) -> None:
    # Given a work queue that refuses every message
    broken = SqsWorkQueue("https://sqs.us-east-1.amazonaws.com/123456789012/does-not-exist")
    # When a report is submitted
    status, _, body = submit(api_handler(replace(api.deps, work_queue=broken)))
    # Then the client gets 503 and the stored report is FAILED (never left PENDING without work)
    assert status == 503 and body == {
        "error": {"code": "unavailable", "message": "the service is temporarily unavailable; retry"}
    }
    items = stack.client("dynamodb").scan(TableName=stack.resources["PatientReports"])["Items"]
    assert len(items) == 1
    assert items[0]["status"]["S"] == "FAILED" and items[0]["error"]["M"]["code"]["S"] == "enqueue_failed"


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (
            api_event(
                "POST", "/summarize", raw_body="{not json", headers={"Content-Type": "application/json"}
            ),
            400,
            "invalid_json",
        ),
        (
            api_event(
                "POST", "/summarize", raw_body=json.dumps(REPORT), headers={"Content-Type": "text/plain"}
            ),
            415,
            "unsupported_media_type",
        ),
        (api_event("POST", "/summarize", body={**REPORT, "extra": 1}), 400, "invalid_request"),
        (api_event("POST", "/summarize", body={"report_text": "x"}), 400, "invalid_request"),
        (api_event("POST", "/summarize", body={**REPORT, "patient_id": "../etc"}), 400, "invalid_request"),
        (api_event("POST", "/summarize", body={**REPORT, "report_text": ""}), 400, "invalid_request"),
        (
            api_event("POST", "/summarize", body={**REPORT, "report_text": "x" * 100_001}),
            400,
            "invalid_request",
        ),
        (api_event("POST", "/summarize", body={**REPORT, "report_type": "poem"}), 400, "invalid_request"),
        (api_event("POST", "/summarize", body=[1, 2]), 400, "invalid_request"),
        (
            api_event(
                "POST", "/summarize", raw_body="x" * 1_100_000, headers={"Content-Type": "application/json"}
            ),
            413,
            "payload_too_large",
        ),
        (api_event("GET", "/nope"), 404, "route_not_found"),
        (api_event("PUT", "/summarize", body=REPORT), 405, "method_not_allowed"),
        (api_event("GET", "/patients/pt-001/reports", query={"limit": "0"}), 400, "invalid_request"),
        (api_event("GET", "/patients/pt-001/reports", query={"limit": "many"}), 400, "invalid_request"),
        (api_event("GET", "/patients/bad%20id/reports"), 400, "invalid_request"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_writes_nothing(
    api: Handler, stack: Stack, event: dict[str, Any], status: int, code: str
) -> None:
    got_status, _, body = call(api, event)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert set(body) == {"error"} and body["error"]["message"]
    assert stack.client("dynamodb").scan(TableName=stack.resources["PatientReports"])["Count"] == 0
    assert queue_messages(stack) == []


def test_openapi_document_lists_the_routes(api: Handler) -> None:
    status, _, document = call(api, api_event("GET", "/openapi.json", caller=None))
    assert status == 200
    assert {"/summarize", "/reports/{report_id}", "/patients/{patient_id}/reports"} <= set(document["paths"])


def test_links_come_from_the_configured_url_never_from_request_headers(api: Handler, stack: Stack) -> None:
    # Given a request whose Host and X-Forwarded-Proto name somewhere else
    event = api_event(
        "POST",
        "/summarize",
        body=REPORT,
        headers={
            "Host": "evil.example",
            "X-Forwarded-Proto": "javascript",
            "X-Forwarded-Host": "evil.example",
        },
    )
    event["requestContext"]["domainName"] = "evil.example"
    # When it is submitted
    status, headers, body = call(api, event)
    # Then Location and the self link are the stack's public URL
    assert status == 202
    expected = f"{stack.outputs['ApiUrl']}/reports/{body['report_id']}"
    assert headers["location"] == body["links"]["self"] == expected


def test_the_public_url_template_takes_the_api_id_from_api_gateway(api: Handler, stack: Stack) -> None:
    # Given the template's form of PUBLIC_API_URL (the API's id cannot be named in its own function)
    deps = replace(api.deps, public_api_url="https://{api_id}.execute-api.us-east-1.amazonaws.com/v1")
    # When a report is submitted through API Gateway (requestContext.apiId is API Gateway's)
    status, headers, _ = call(api_handler(deps), api_event("POST", "/summarize", body=REPORT))
    # Then the link names that API
    assert status == 202
    assert headers["location"].startswith("https://abc123.execute-api.us-east-1.amazonaws.com/v1/reports/")


def test_cors_headers_follow_the_configured_origin(api: Handler) -> None:
    # Given the template's CorsAllowOrigin is one origin
    handler = api_handler(replace(api.deps, cors_allow_origin="https://app.example"))
    # When that origin calls, the answer allows it; another origin gets no CORS headers
    _, allowed, _ = call(
        handler, api_event("GET", "/", caller=None, headers={"Origin": "https://app.example"})
    )
    _, other, _ = call(
        handler, api_event("GET", "/", caller=None, headers={"Origin": "https://evil.example"})
    )
    assert allowed["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other
    # And errors answered before routing carry them too
    status, refused, _ = call(
        handler,
        api_event(
            "POST",
            "/summarize",
            raw_body="x",
            headers={"Content-Type": "text/plain", "Origin": "https://app.example"},
        ),
    )
    assert status == 415 and refused["access-control-allow-origin"] == "https://app.example"
