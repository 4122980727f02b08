"""The upload path end to end in moto: POST /batches/uploads -> presigned PUT -> S3 EventBridge event
-> the template's rule -> ``IngestStateMachine`` executed by moto's Step Functions engine, whose Lambda
tasks run the ingest handler in-process -> PENDING reports + work messages -> batch ``in_progress``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from medsum.logic.lanes import batch_item_id
from medsum_local.inprocess import REGION, Stack, deployed_stack, invoke_in_process
from moto.sqs.models import sqs_backends

from tests.support.events import (
    ACCOUNT,
    CLINIC_A,
    FakeLambdaContext,
    api_event,
    api_handler,
)

ITEMS = 2_000
MALFORMED = {17: "{not json", 901: json.dumps({"custom_id": "x-901", "patient_id": "pt-1"}), 1999: "[]"}


@pytest.fixture
def ingest_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with deployed_stack(monkeypatch, invoker=invoke_in_process) as deployed:
        yield deployed


def _file() -> bytes:
    lines = []
    for number in range(1, ITEMS + 1):
        if number in MALFORMED:
            lines.append(MALFORMED[number])
        else:
            lines.append(
                json.dumps(
                    {
                        "custom_id": f"c-{number}",
                        "patient_id": f"pt-{number % 7}",
                        "report_text": f"FINDINGS: item {number}. IMPRESSION: normal.",
                        "report_type": "radiology",
                    }
                )
            )
        if number == 500:
            lines.append("")  # a blank line: ignored, but it shifts every later line number
    return ("\n".join(lines) + "\n").encode()


def _wait_for_execution(sfn: Any, machine_arn: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executions = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
        if executions and executions[0]["status"] != "RUNNING":
            return dict(sfn.describe_execution(executionArn=executions[0]["executionArn"]))
        time.sleep(0.2)
    raise AssertionError("the ingestion did not finish")


def test_uploaded_file_of_2000_items_is_ingested_by_the_state_machine(ingest_stack: Stack) -> None:
    api = api_handler()
    response = api.lambda_handler(api_event("POST", "/batches/uploads", caller=CLINIC_A), FakeLambdaContext())
    assert response["statusCode"] == 201, response["body"]
    created = json.loads(response["body"])
    batch_id, upload = created["batch_id"], created["upload"]
    assert created["status"] == "validating" and upload["method"] == "PUT"
    assert upload["max_items"] == 100_000

    # The presigned URL names the uploads bucket and the caller's key; PUT it as a client would (the
    # in-process mock intercepts boto3, so the same object is written through put_object).
    s3 = boto3.client("s3", region_name=REGION)
    bucket = ingest_stack.outputs["UploadsBucketName"]
    key = f"uploads/{upload['url'].split('/uploads/', 1)[1].split('?', 1)[0]}"
    assert key.endswith(f"/{batch_id}.jsonl")
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=_file(),
        ContentType=upload["headers"]["Content-Type"],
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=upload["headers"]["x-amz-server-side-encryption-aws-kms-key-id"],
    )

    sfn = boto3.client("stepfunctions", region_name=REGION)
    execution = _wait_for_execution(sfn, ingest_stack.outputs["IngestStateMachineArn"])
    assert execution["status"] == "SUCCEEDED", execution

    batch = json.loads(
        api.lambda_handler(api_event("GET", f"/batches/{batch_id}", caller=CLINIC_A), FakeLambdaContext())[
            "body"
        ]
    )
    valid = ITEMS - len(MALFORMED)
    assert batch["status"] == "in_progress"
    assert batch["request_counts"]["total"] == valid
    assert batch["request_counts"]["pending"] == valid
    # Line numbers are the file's: the blank line after line 500 shifts 901 and 1999 by one.
    assert [(e["line"], e["code"]) for e in batch["errors"]] == [
        (17, "invalid_json"),
        (902, "invalid_item"),
        (2000, "invalid_item"),
    ]

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = ingest_stack.resources["PatientReports"]
    statuses: dict[str, str] = {}
    kwargs: dict[str, Any] = {"TableName": table, "ProjectionExpression": "report_id, #s, custom_id"}
    kwargs["ExpressionAttributeNames"] = {"#s": "status"}
    while True:
        page = dynamodb.scan(**kwargs)
        statuses.update({i["report_id"]["S"]: i["status"]["S"] for i in page["Items"]})
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert len(statuses) == valid
    assert set(statuses.values()) == {"PENDING"}
    assert set(statuses) == {batch_item_id(batch_id, seq) for seq in range(valid)}

    # Only the batch's first window is queued, in the bulk lane (the rest follow as items finish);
    # the interactive lane's queue is untouched. (Read moto's queues directly: cheaper than receiving.)
    sqs = sqs_backends[ACCOUNT][REGION]
    bulk = sqs.get_queue(ingest_stack.outputs["BulkQueueUrl"].rsplit("/", 1)[1])
    work = sqs.get_queue(ingest_stack.outputs["WorkQueueUrl"].rsplit("/", 1)[1])
    bodies = [json.loads(m.body) for m in bulk._messages]
    window = int(ingest_stack.environments["IngestFunction"]["BULK_WINDOW"])
    assert [(b["report_id"], b["seq"], b["total"]) for b in bodies] == [
        (batch_item_id(batch_id, seq), seq, valid) for seq in range(window)
    ]
    assert {b["batch_id"] for b in bodies} == {batch_id} and list(work._messages) == []


def test_an_upload_without_a_valid_line_fails_the_batch(ingest_stack: Stack) -> None:
    api = api_handler()
    created = json.loads(
        api.lambda_handler(api_event("POST", "/batches/uploads", caller=CLINIC_A), FakeLambdaContext())[
            "body"
        ]
    )
    key = f"uploads/{created['upload']['url'].split('/uploads/', 1)[1].split('?', 1)[0]}"
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=ingest_stack.outputs["UploadsBucketName"], Key=key, Body=b"nope\n{}\n"
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    execution = _wait_for_execution(sfn, ingest_stack.outputs["IngestStateMachineArn"])
    assert execution["status"] == "FAILED"
    batch = json.loads(
        api.lambda_handler(
            api_event("GET", f"/batches/{created['batch_id']}", caller=CLINIC_A), FakeLambdaContext()
        )["body"]
    )
    assert batch["status"] == "failed"
    assert batch["errors"][0]["code"] == "no_valid_items"
