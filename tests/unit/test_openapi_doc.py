"""The OpenAPI document in itself: generated from the routers, current, valid OpenAPI 3.1, and
describing every kind of answer (statuses, the error shape, the SigV4 scheme, both batch bodies).

Whether it tells the truth about the API's real answers is checked against the handlers: every answer
of a tour of all operations, status and body (tests/integration/test_api_contract.py), the statuses of
hostile requests (tests/integration/test_api_hostile.py), and by schemathesis over HTTP
(tests/e2e/test_api_schema_e2e.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from medsum_local.inprocess import ROOT
from openapi_spec_validator import validate

from scripts.export_openapi import render

DOCUMENT: dict[str, Any] = json.loads(render())
OPERATIONS = [
    (path, method, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
]


def test_committed_openapi_document_is_current() -> None:
    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert committed == render(), "docs/openapi.json is stale: run .venv/bin/python scripts/export_openapi.py"


def test_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    validate(DOCUMENT)


def test_document_describes_every_route_of_both_functions_and_the_request_models() -> None:
    assert {(p, m) for p, m, _ in OPERATIONS} == {
        ("/", "get"),
        ("/summarize", "post"),
        ("/reports/{report_id}", "get"),
        ("/reports/{report_id}", "delete"),
        ("/reports/{report_id}/deliveries", "get"),
        ("/patients/{patient_id}/reports", "get"),
        ("/batches", "post"),
        ("/batches", "get"),
        ("/batches/uploads", "post"),
        ("/batches/{batch_id}", "get"),
        ("/batches/{batch_id}/results", "get"),
        ("/batches/{batch_id}/cancel", "post"),
        ("/batches/{batch_id}/deliveries", "get"),
        ("/webhooks", "post"),
        ("/webhooks", "get"),
        ("/webhooks/default-secret", "post"),
        ("/webhooks/{webhook_id}", "delete"),
        ("/webhooks/{webhook_id}/rotate-secret", "post"),
        ("/webhooks/deliveries/{delivery_id}/replay", "post"),
        # the operator routes (the admin function, same stage)
        ("/admin/dlq", "get"),
        ("/admin/dlq/summary", "get"),
        ("/admin/dlq/reports/{report_id}", "get"),
        ("/admin/dlq/redrive", "post"),
        ("/admin/dlq/redrive/{job_id}", "get"),
        ("/admin/dlq/purge", "post"),
        ("/admin/audit", "get"),
        ("/admin/reports/{report_id}/retry", "post"),
    }
    request = DOCUMENT["components"]["schemas"]["SummarizeRequest"]
    assert set(request["required"]) == {"patient_id", "report_text"}
    assert request["additionalProperties"] is False
    # The summary's verification record is part of the contract
    assert {"Verification", "DroppedCounts", "Certainty"} <= set(DOCUMENT["components"]["schemas"])


@pytest.mark.parametrize(
    ("path", "method", "operation"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS]
)
def test_every_answer_has_a_schema_and_errors_have_the_error_shape(
    path: str, method: str, operation: dict[str, Any]
) -> None:
    responses = operation["responses"]
    assert "422" not in responses or "idempotency_key_reused" in responses["422"]["description"]
    for status, response in responses.items():
        content = response.get("content", {})
        if int(status) >= 400:
            assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        elif status in ("204",):
            assert not content
        else:
            # A model, never Powertools' "string" of a pre-serialised body
            schemas = [media["schema"] for media in content.values()]
            assert schemas and all("$ref" in s or "anyOf" in s for s in schemas), (status, content)
    # Every route may be throttled and may fail; signed routes may be refused by API Gateway's auth
    assert {"429", "500"} <= set(responses)
    if path != "/":
        assert {"400", "403", "503"} <= set(responses)
    if method == "post":
        assert {"413", "415"} <= set(responses)


def test_no_answer_the_service_never_sends() -> None:
    text = json.dumps(DOCUMENT)
    assert "HTTPValidationError" not in text and "ResponseValidationError" not in text


def test_every_route_but_health_is_signed_with_sigv4() -> None:
    scheme = DOCUMENT["components"]["securitySchemes"]["sigv4"]
    assert scheme["type"] == "apiKey" and scheme["in"] == "header" and scheme["name"] == "Authorization"
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    for path, _, operation in OPERATIONS:
        assert operation.get("security") == (None if path == "/" else [{"sigv4": []}]), path


def test_batches_take_json_and_json_lines_and_results_are_json_lines() -> None:
    body = DOCUMENT["paths"]["/batches"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/BatchRequest"}
    assert body["application/x-ndjson"]["schema"] == {"$ref": "#/components/schemas/BatchItemRequest"}
    assert {"BatchRequest", "BatchItemRequest"} <= set(DOCUMENT["components"]["schemas"])
    results = DOCUMENT["paths"]["/batches/{batch_id}/results"]["get"]["responses"]
    assert results["200"]["content"]["application/x-ndjson"]["schema"] == {
        "$ref": "#/components/schemas/ResultLine"
    }
    assert results["303"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ResultsLink"
    }
