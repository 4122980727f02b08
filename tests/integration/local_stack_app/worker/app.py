"""Test SQS consumers: record every delivery in S3, then succeed, fail an item, or raise."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import boto3

_s3 = boto3.client("s3")
_BUCKET = os.environ["OBSERVATIONS_BUCKET"]


def _observe(prefix: str, payload: dict[str, Any]) -> None:
    _s3.put_object(Bucket=_BUCKET, Key=f"{prefix}/{uuid.uuid4().hex}", Body=json.dumps(payload).encode())


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Body ``{"test": name, "action": "ok" | "fail" | "raise"}``."""
    failures = []
    records = event["Records"]
    for record in records:
        body = json.loads(record["body"])
        _observe(f"seen/{body['test']}", {"record": record, "batch_size": len(records)})
        if body.get("action") == "raise":
            raise RuntimeError("poison message")
        if body.get("action") == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def slow_handler(event: dict[str, Any], context: Any) -> None:
    started = time.time()
    time.sleep(1.0)
    for record in event["Records"]:
        body = json.loads(record["body"])
        _observe(
            f"slow/{body['test']}",
            {"start": started, "end": time.time(), "pid": os.getpid(), "batch_size": len(event["Records"])},
        )
