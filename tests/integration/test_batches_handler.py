"""Batch routes and the worker's batch accounting against the template's tables in moto (real
TransactWriteItems on PatientReports + Batches)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from medsum.adapters.uploads import S3UploadStore
from medsum.logic import batches as batch_logic
from medsum_local.inprocess import Stack

from tests.support.events import (
    ACCOUNT,
    CLINIC_A,
    CLINIC_B,
    FakeLambdaContext,
    Handler,
    api_event,
    sqs_event,
    sqs_record,
)
from tests.support.worker import use_model

REPLY = json.dumps(
    {
        "summary": "Effusion.",
        "key_findings": [{"text": "effusion", "evidence": ["effusion"]}],
        "follow_up": [],
    }
)


def item(custom_id: str, text: str = "FINDINGS: Small effusion.") -> dict[str, Any]:
    return {"custom_id": custom_id, "patient_id": "pt-b", "report_text": text, "report_type": "radiology"}


def ndjson(*lines: Any) -> str:
    return "".join((json.dumps(x) if not isinstance(x, str) else x) + "\n" for x in lines)


@pytest.fixture
def modules(modules: tuple[Handler, Handler]) -> tuple[Handler, Handler]:
    """The api and the worker (see conftest.py), with the worker's model answering ``REPLY``."""
    api, worker = modules
    worker, _ = use_model(worker, [REPLY])
    return api, worker


def call(api: Handler, event: dict[str, Any]) -> tuple[int, Any]:
    response = api.lambda_handler(event, FakeLambdaContext())
    body = response.get("body") or ""
    content_type = (response.get("headers") or {}).get("Content-Type") or (
        (response.get("multiValueHeaders") or {}).get("Content-Type") or [""]
    )[0]
    if content_type == "application/x-ndjson":
        return response["statusCode"], [json.loads(x) for x in body.splitlines()]
    return response["statusCode"], json.loads(body) if body else None


def post_batch(
    api: Handler, body: str, caller: str = CLINIC_A, content_type: str = "application/x-ndjson"
) -> Any:
    return call(
        api,
        api_event("POST", "/batches", raw_body=body, caller=caller, headers={"Content-Type": content_type}),
    )


def drain(stack: Stack, worker: Handler, duplicate: bool = False) -> int:
    """Deliver every queued bulk-lane message to the worker (each twice with ``duplicate``), including
    the items released as earlier ones finish; returns how many messages were delivered."""
    sqs, url, delivered = stack.client("sqs"), stack.resources["BulkQueue"], 0
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{url.rsplit('/', 1)[1]}"
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return delivered
        records = [
            sqs_record(m["Body"], queue_arn=arn) for m in messages for _ in range(2 if duplicate else 1)
        ]
        result = worker.lambda_handler(sqs_event(*records), FakeLambdaContext())
        assert result == {"batchItemFailures": []}
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        delivered += len(messages)


def batch_events(stack: Stack, url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        messages = (
            stack.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        )
        if not messages:
            return [e for e in found if e["type"].startswith("batch.")]
        for message in messages:
            found.append(json.loads(json.loads(message["Body"])["Message"]))
            stack.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_batch_runs_to_completed_with_exact_counts_despite_duplicates(
    modules: tuple[Handler, Handler], stack: Stack, events_queue: str
) -> None:
    api, worker = modules
    # Given a batch of 12 valid lines and one malformed line
    status, created = post_batch(api, ndjson(*(item(f"c{n:02d}") for n in range(12)), "{oops"))
    assert status == 202, created
    batch_id = created["batch_id"]
    assert created["status"] == "in_progress"
    assert created["request_counts"] == {
        "total": 12,
        "pending": 12,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert created["errors"] == [
        {"line": 13, "custom_id": None, "code": "invalid_json", "message": "the line is not valid JSON"}
    ]
    # When every work message is delivered twice
    assert drain(stack, worker, duplicate=True) == 12
    # Then the batch completed, each item counted once, and one batch.completed event was published
    status, batch = call(api, api_event("GET", f"/batches/{batch_id}"))
    assert status == 200 and batch["status"] == "completed" and batch["completed_at"]
    created_at, expires_at = (datetime.fromisoformat(batch[k]) for k in ("created_at", "expires_at"))
    assert timedelta(days=1) <= expires_at - created_at <= timedelta(days=3653)  # the retention period
    assert batch["request_counts"] == {
        "total": 12,
        "pending": 0,
        "processing": 0,
        "completed": 12,
        "failed": 0,
        "cancelled": 0,
    }
    (event,) = batch_events(stack, events_queue)
    assert event["type"] == "batch.completed" and event["data"]["request_counts"]["completed"] == 12
    # And results join on every custom_id
    status, lines = call(api, api_event("GET", f"/batches/{batch_id}/results"))
    assert status == 200
    assert [x["custom_id"] for x in lines] == [f"c{n:02d}" for n in range(12)]
    assert all(x["status"] == "COMPLETED" and x["summary"]["summary"] == "Effusion." for x in lines)
    # And each item is an ordinary report of the caller
    status, report = call(api, api_event("GET", f"/reports/{lines[0]['report_id']}"))
    assert status == 200 and report["batch_id"] == batch_id and report["custom_id"] == "c00"


def test_cancel_leaves_pending_items_cancelled(modules: tuple[Handler, Handler], stack: Stack) -> None:
    api, worker = modules
    _, created = post_batch(api, ndjson(*(item(f"k{n}") for n in range(4))))
    batch_id = created["batch_id"]
    status, cancelling = call(api, api_event("POST", f"/batches/{batch_id}/cancel"))
    assert status == 202 and cancelling["status"] == "cancelling"
    drain(stack, worker)
    _, batch = call(api, api_event("GET", f"/batches/{batch_id}"))
    assert batch["status"] == "cancelled"
    assert batch["request_counts"]["cancelled"] == 4 and batch["request_counts"]["pending"] == 0
    _, lines = call(api, api_event("GET", f"/batches/{batch_id}/results"))
    assert {x["status"] for x in lines} == {"CANCELLED"}


def test_another_client_cannot_see_or_cancel_a_batch(modules: tuple[Handler, Handler]) -> None:
    api, _ = modules
    _, created = post_batch(api, ndjson(item("a")))
    batch_id = created["batch_id"]
    for method, path in [("GET", ""), ("GET", "/results"), ("POST", "/cancel")]:
        status, body = call(api, api_event(method, f"/batches/{batch_id}{path}", caller=CLINIC_B))
        assert (status, body["error"]["code"]) == (404, "not_found")
    _, listed = call(api, api_event("GET", "/batches", caller=CLINIC_B))
    assert listed["items"] == []


def test_large_batch_results_are_a_presigned_results_file(
    modules: tuple[Handler, Handler], stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch over the inline-results limit (lowered to 3 so the test stays small)
    monkeypatch.setattr(batch_logic, "INLINE_RESULTS_MAX_ITEMS", 3)
    api, worker = modules
    _, created = post_batch(api, ndjson(*(item(f"r{n}") for n in range(5))))
    batch_id = created["batch_id"]
    drain(stack, worker)
    # When the caller asks for the results
    response = api.lambda_handler(api_event("GET", f"/batches/{batch_id}/results"), FakeLambdaContext())
    # Then the answer is 303 to a short-lived presigned URL of a KMS-encrypted file of every item
    assert response["statusCode"] == 303
    body = json.loads(response["body"])
    (location,) = response["multiValueHeaders"]["Location"]
    assert location == body["url"]
    url = urlsplit(location)
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["900"] and query["X-Amz-Signature"]
    bucket = stack.resources["UploadsBucket"]
    key = url.path.removeprefix(f"/{bucket}/") if url.path.startswith(f"/{bucket}/") else url.path[1:]
    assert key.startswith("results/") and CLINIC_A not in key
    stored = stack.client("s3").get_object(Bucket=bucket, Key=key)
    assert stored["ServerSideEncryption"] == "aws:kms"
    lines = [json.loads(x) for x in stored["Body"].read().splitlines()]
    assert body["size"] == stored["ContentLength"]
    assert sorted(x["custom_id"] for x in lines) == [f"r{n}" for n in range(5)]
    assert {x["status"] for x in lines} == {"COMPLETED"}
    # And another client still gets 404, not a URL
    status, error = call(api, api_event("GET", f"/batches/{batch_id}/results", caller=CLINIC_B))
    assert (status, error["error"]["code"]) == (404, "not_found")


def test_results_files_over_one_part_are_uploaded_in_parts(stack: Stack) -> None:
    store = S3UploadStore(stack.resources["UploadsBucket"], "alias/aws/s3", stack.client("s3"))
    line = b'{"custom_id": "x", "status": "COMPLETED", "summary": "' + b"a" * 1000 + b'"}\n'
    chunks = [line] * 20_000  # ~20 MB: three parts of 8 MiB
    size = store.put_results("results/o/b.jsonl", chunks)
    stored = stack.client("s3").get_object(Bucket=stack.resources["UploadsBucket"], Key="results/o/b.jsonl")
    assert size == len(line) * 20_000 == stored["ContentLength"]
    assert stored["ETag"].endswith('-3"')  # a multipart object of three parts, not one PutObject
    assert stored["Body"].read() == line * 20_000


def test_list_batches_newest_first_with_pages(modules: tuple[Handler, Handler]) -> None:
    api, _ = modules
    ids = [post_batch(api, ndjson(item("a")))[1]["batch_id"] for _ in range(3)]
    _, first = call(api, api_event("GET", "/batches", query={"limit": "2"}))
    assert [b["batch_id"] for b in first["items"]] == ids[::-1][:2] and first["next_token"]
    _, rest = call(api, api_event("GET", "/batches", query={"limit": "2", "next_token": first["next_token"]}))
    assert [b["batch_id"] for b in rest["items"]] == ids[:1]
    status, _ = call(
        api, api_event("GET", "/batches", caller=CLINIC_B, query={"next_token": first["next_token"]})
    )
    assert status == 400


def test_json_envelope_and_idempotency_key(modules: tuple[Handler, Handler], stack: Stack) -> None:
    api, _ = modules
    body = json.dumps({"reports": [item("a"), item("b")], "metadata": {"run": "1"}})
    headers = {"Content-Type": "application/json", "Idempotency-Key": "batch-1"}
    first = call(api, api_event("POST", "/batches", raw_body=body, headers=headers))
    again = call(api, api_event("POST", "/batches", raw_body=body, headers=headers))
    assert first[0] == again[0] == 202 and first[1]["batch_id"] == again[1]["batch_id"]
    assert first[1]["metadata"] == {"run": "1"}
    messages = stack.client("sqs").receive_message(
        QueueUrl=stack.resources["BulkQueue"], MaxNumberOfMessages=10
    )
    assert len(messages["Messages"]) == 2
    status, error = call(
        api, api_event("POST", "/batches", raw_body=body.replace('"1"', '"2"'), headers=headers)
    )
    assert (status, error["error"]["code"]) == (422, "idempotency_key_reused")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (ndjson(item("a"), item("a")), "application/x-ndjson", 400, "duplicate_custom_id"),
        (ndjson("{x", "{y"), "application/x-ndjson", 400, "no_valid_items"),
        (ndjson(item("a")), "text/csv", 415, "unsupported_media_type"),
        ("x" * 5_300_000, "application/x-ndjson", 413, "payload_too_large"),
        (ndjson(*(item(f"i{n}", "x") for n in range(1_001))), "application/x-ndjson", 413, "too_many_items"),
    ],
)
def test_bad_batches_get_a_clear_4xx_and_write_nothing(
    modules: tuple[Handler, Handler], stack: Stack, body: str, content_type: str, status: int, code: str
) -> None:
    api, _ = modules
    got, error = post_batch(api, body, content_type=content_type)
    assert (got, error["error"]["code"]) == (status, code)
    assert stack.client("dynamodb").scan(TableName=stack.resources["Batches"])["Count"] == 0
    assert stack.client("dynamodb").scan(TableName=stack.resources["PatientReports"])["Count"] == 0
