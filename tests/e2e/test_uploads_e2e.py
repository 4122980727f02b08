"""Large batches on the local stack: POST /batches/uploads, PUT the file to the presigned URL, and the
upload alone starts the ingestion (S3 -> EventBridge rule -> IngestStateMachine in moto's engine ->
the ingest function in its sandbox), after which the worker completes every item."""

from __future__ import annotations

import json
from typing import Any

import requests
from medsum_local.testing import ApiClient, wait_for


def test_uploaded_batch_is_ingested_and_completed(api: ApiClient) -> None:
    created = api.post("/batches/uploads")
    assert created.status_code == 201, created.text
    body = created.json()
    upload = body["upload"]
    lines = [
        json.dumps(
            {"custom_id": f"u-{n}", "patient_id": "pt-up", "report_text": f"FINDINGS: Item {n}. Normal."}
        )
        for n in range(1, 21)
    ]
    lines.insert(5, "{malformed")
    put = requests.put(
        upload["url"], data=("\n".join(lines) + "\n").encode(), headers=upload["headers"], timeout=30
    )
    assert put.status_code == 200, put.text

    def completed() -> dict[str, Any] | None:
        batch: dict[str, Any] = api.get(f"/batches/{body['batch_id']}").json()
        return batch if batch["status"] in {"completed", "failed"} else None

    batch = wait_for(completed, timeout=120, message="the uploaded batch to complete")
    assert batch["status"] == "completed"
    assert batch["request_counts"]["total"] == 20
    assert batch["request_counts"]["completed"] == 20
    assert [(e["line"], e["code"]) for e in batch["errors"]] == [(6, "invalid_json")]
    results = [json.loads(x) for x in api.get(f"/batches/{body['batch_id']}/results").text.splitlines()]
    assert sorted(r["custom_id"] for r in results) == sorted(f"u-{n}" for n in range(1, 21))
