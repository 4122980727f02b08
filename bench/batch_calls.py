"""AWS API calls per report when a batch is ingested (``create_batch``: the batch record, reports with
``BatchWriteItem`` in 25s, work messages with ``SendMessageBatch`` in 10s, status updates).

Counts every botocore call made by the ingestion, for batches of 1,000 and 10,000 items. DynamoDB is
moto (in-process). SQS is moto up to 2,000 items; above that moto's SendMessage is quadratic in the
queue length (it recomputes queue attributes per message), so SQS is answered by a stub that accepts
every entry — the calls are still made and counted by botocore. The floor is 1/25 + 1/10 = 0.14 calls
per report; the target is at most 0.2.

Run: ``.venv/bin/python bench/batch_calls.py [ITEMS ...]``; results go in BENCHMARKS.md.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
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


def _accept_all_sends(request: Any, **_: Any) -> Any:
    """A ``before-send`` hook answering SendMessageBatch with every entry successful."""
    import hashlib
    import json

    from botocore.awsrequest import AWSResponse

    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else target
    if not target.endswith("SendMessageBatch"):
        return None
    entries = json.loads(request.body)["Entries"]
    body = {
        "Successful": [
            {
                "Id": e["Id"],
                "MessageId": f"m-{e['Id']}",
                "MD5OfMessageBody": hashlib.md5(e["MessageBody"].encode()).hexdigest(),  # noqa: S324
            }
            for e in entries
        ],
        "Failed": [],
    }

    class _Raw:
        def __init__(self, data: bytes) -> None:
            self._data = data

        def stream(self, **_: Any) -> Any:
            yield self._data

    return AWSResponse(
        request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(json.dumps(body).encode())
    )


def run(items: int) -> tuple[Counter[str], float]:
    import json

    from medsum.adapters import clients
    from medsum.adapters.batches import DynamoBatchRepository
    from medsum.adapters.dynamodb import DynamoReportRepository
    from medsum.adapters.sqs import SqsWorkQueue
    from medsum.clock import utcnow
    from medsum.logic.batches import BatchDeps, ParsedBatch, create_batch
    from medsum.models import BatchItemRequest
    from moto import mock_aws

    from tests.integration.conftest import deploy

    clients.client.cache_clear()
    with mock_aws():
        stack = deploy()
        calls: Counter[str] = Counter()

        def count(event_name: str, **_: Any) -> None:
            calls[event_name.split(".", 1)[1]] += 1

        dynamodb, sqs = clients.client("dynamodb"), clients.client("sqs")
        for client in (dynamodb, sqs):
            client.meta.events.register("before-call.*.*", count)
        if items > 2_000:
            sqs.meta.events.register_first("before-send.sqs.SendMessageBatch", _accept_all_sends)
        deps = BatchDeps(
            reports=DynamoReportRepository(
                stack.resources["PatientReports"], dynamodb, batches_table=stack.resources["Batches"]
            ),
            batches=DynamoBatchRepository(stack.resources["Batches"], dynamodb),
            queue=SqsWorkQueue(stack.resources["WorkQueue"], sqs),
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
        ids = (f"{n:032x}" for n in itertools.count())
        batch = create_batch(
            parsed,
            "arn:aws:iam::123456789012:user/bench",
            deps,
            batch_id="bench",
            new_id=lambda: next(ids),
            now=utcnow(),
            retention_days=1,
        )
        assert batch.counts.total == items and batch.counts.pending == items, json.dumps(
            batch.counts.model_dump()
        )
        return calls, sum(calls.values()) / items


def main() -> None:
    print("| items | calls | calls per report | by operation |")
    print("|---:|---:|---:|---|")
    for items in [int(a) for a in sys.argv[1:]] or [1_000, 10_000]:
        calls, per_report = run(items)
        detail = ", ".join(f"{name} {n}" for name, n in sorted(calls.items()))
        print(f"| {items:,} | {sum(calls.values()):,} | {per_report:.3f} | {detail} |")


if __name__ == "__main__":
    main()
