"""AWS API calls per report when a batch is ingested, counted by botocore (``before-call`` events).

Two paths, both running the project's own code against the template deployed into moto (in-process):

* ``inline`` — ``POST /batches`` (``create_batch``): the batch record, reports with ``BatchWriteItem``
  in 25s, work messages with ``SendMessageBatch`` in 10s, status updates. At most 1,000 items.
* ``upload`` — ``POST /batches/uploads``, the file PUT to S3 (the client's call, not counted), then the
  template's ``IngestStateMachine`` executed by moto's Step Functions engine, its Lambda tasks running
  the ingest handler in-process (plan, one ``write_chunk`` per 1,000 lines, finalize).

Every call of the service's clients is counted. Above 2,000 items ``SendMessageBatch`` is answered by a
``before-call`` hook accepting every entry (moto's SendMessage rescans the whole queue per message, which
is quadratic); the calls are still made and counted. The floor is 1/25 + 1/10 = 0.14 calls per report;
the target is at most 0.2.

Run: ``.venv/bin/python bench/batch_calls.py [inline:N | upload:N ...]`` (default: inline:1000
upload:1000 upload:10000); results go in BENCHMARKS.md.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "medsum-bench",
        "POWERTOOLS_METRICS_NAMESPACE": "MedsumBench",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)


def _accept_all_sends(params: dict[str, Any], **_: Any) -> Any:
    """A ``before-call`` hook answering SendMessageBatch with every entry successful. ``before-call``
    stops at the first answer, so moto never sees the request (``before-send`` would still run moto's
    handler, whose per-message queue scan is what is slow); botocore still counts the call."""
    import json

    from botocore.awsrequest import AWSResponse

    entries = json.loads(params["body"])["Entries"]
    parsed = {"Successful": [{"Id": e["Id"], "MessageId": f"m-{e['Id']}"} for e in entries], "Failed": []}
    return AWSResponse(params["url"], 200, {}, None), parsed


def run_inline(items: int) -> Counter[str]:
    import json

    from medsum.adapters import clients
    from medsum.adapters.batches import DynamoBatchRepository
    from medsum.adapters.dynamodb import DynamoReportRepository
    from medsum.adapters.sqs import SqsWorkQueue
    from medsum.clock import utcnow
    from medsum.logic.batches import BatchDeps, ParsedBatch, create_batch
    from medsum.models import BatchItemRequest
    from medsum_local.inprocess import deploy
    from moto import mock_aws

    clients.client.cache_clear()
    with mock_aws():
        stack = deploy()
        calls: Counter[str] = Counter()

        dynamodb, sqs = clients.client("dynamodb"), clients.client("sqs")
        _count_calls(calls, items)
        deps = BatchDeps(
            reports=DynamoReportRepository(
                stack.resources["PatientReports"], dynamodb, batches_table=stack.resources["Batches"]
            ),
            batches=DynamoBatchRepository(stack.resources["Batches"], dynamodb),
            queue=SqsWorkQueue(stack.resources["BulkQueue"], sqs),
        )
        text = (ROOT / "examples" / "chest-xray-normal.txt").read_text(encoding="utf-8")
        parsed = ParsedBatch(
            items=[
                (n, BatchItemRequest(custom_id=f"c{n}", patient_id=f"p{n % 50}", report_text=text))
                for n in range(1, items + 1)
            ],
            errors=[],
            metadata={},
        )
        batch = create_batch(
            parsed,
            "arn:aws:iam::123456789012:user/bench",
            deps,
            batch_id="bench",
            now=utcnow(),
            retention_days=1,
        )
        assert batch.counts.total == items and batch.counts.pending == items, json.dumps(
            batch.counts.model_dump()
        )
        return calls


def _count_calls(calls: Counter[str], items: int) -> None:
    """Count every call of the service's cached clients into ``calls``."""
    from medsum.adapters import clients

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.split(".", 1)[1]] += 1

    for service in ("dynamodb", "sqs", "s3"):
        clients.client(service).meta.events.register("before-call.*.*", count)
    if items > 2_000:
        sqs = clients.client("sqs")
        sqs.meta.events.register_first("before-call.sqs.SendMessageBatch", _accept_all_sends)


def run_upload(items: int) -> Counter[str]:
    import json
    import time

    import boto3
    import pytest
    from medsum_local.inprocess import (
        CLINIC_A,
        REGION,
        FakeLambdaContext,
        api_event,
        api_handler,
        deployed_stack,
        invoke_in_process,
    )

    text = (ROOT / "examples" / "chest-xray-normal.txt").read_text(encoding="utf-8")
    data = "".join(
        json.dumps({"custom_id": f"c{n}", "patient_id": f"p{n % 50}", "report_text": text}) + "\n"
        for n in range(1, items + 1)
    ).encode()
    patch = pytest.MonkeyPatch()
    calls: Counter[str] = Counter()
    ingestion: Counter[str] = Counter()
    try:
        with deployed_stack(patch, invoker=invoke_in_process) as stack:
            api = api_handler()
            _count_calls(calls, items)
            response = api.lambda_handler(
                api_event("POST", "/batches/uploads", caller=CLINIC_A), FakeLambdaContext()
            )
            created = json.loads(response["body"])
            upload = created["upload"]
            key = f"uploads/{upload['url'].split('/uploads/', 1)[1].split('?', 1)[0]}"
            boto3.client("s3", region_name=REGION).put_object(  # the caller's PUT: not counted
                Bucket=stack.outputs["UploadsBucketName"],
                Key=key,
                Body=data,
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=upload["headers"]["x-amz-server-side-encryption-aws-kms-key-id"],
            )
            sfn = boto3.client("stepfunctions", region_name=REGION)
            machine = stack.outputs["IngestStateMachineArn"]
            while True:
                executions = sfn.list_executions(stateMachineArn=machine)["executions"]
                if executions and executions[0]["status"] != "RUNNING":
                    break
                time.sleep(0.5)
            assert executions[0]["status"] == "SUCCEEDED", executions[0]
            ingestion = Counter(calls)  # the check below is not part of the ingestion
            batch = json.loads(
                api.lambda_handler(
                    api_event("GET", f"/batches/{created['batch_id']}", caller=CLINIC_A), FakeLambdaContext()
                )["body"]
            )
            assert batch["request_counts"]["total"] == batch["request_counts"]["pending"] == items, batch
    finally:
        patch.undo()
    return ingestion


def main() -> None:
    runs = sys.argv[1:] or ["inline:1000", "upload:1000", "upload:10000"]
    print("| path | items | calls | calls per report | by operation |")
    print("|---|---:|---:|---:|---|")
    for spec in runs:
        path, _, size = spec.partition(":")
        items = int(size)
        calls = run_inline(items) if path == "inline" else run_upload(items)
        detail = ", ".join(f"{name} {n}" for name, n in sorted(calls.items()))
        total = sum(calls.values())
        print(f"| {path} | {items:,} | {total:,} | {total / items:.3f} | {detail} |")


if __name__ == "__main__":
    main()
