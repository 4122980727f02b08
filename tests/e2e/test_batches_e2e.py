"""Batches on the offline stack, over signed HTTP: the API, the SQS poller, the worker and the local
Bedrock together."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from medsum_local.stack import StackInfo
from medsum_local.testing import ApiClient, run_cli, wait_for

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "FINDINGS: Right lower lobe consolidation. No pneumothorax.\nIMPRESSION: Pneumonia.",
    "FINDINGS: Heart size normal. Lungs are clear. No pleural effusion.\nIMPRESSION: No acute disease.",
    "FINDINGS: Small left pleural effusion with adjacent atelectasis.\nIMPRESSION: Small effusion.",
]


def lines(count: int, prefix: str) -> list[str]:
    return [
        json.dumps(
            {
                "custom_id": f"{prefix}-{n:04d}",
                "patient_id": f"pt-{n % 7}",
                "report_text": f"{TEXTS[n % 3]}\nCOMMENT: item {n}.",
                "report_type": "radiology",
            }
        )
        for n in range(count)
    ]


def post_ndjson(api: ApiClient, body_lines: list[str], identity: str = "clinic-a") -> requests.Response:
    body = "\n".join(body_lines) + "\n"
    return api.post(
        "/batches", data=body, headers={"Content-Type": "application/x-ndjson"}, identity=identity
    )


def wait_batch(api: ApiClient, batch_id: str, timeout: float = 240) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        batch = api.get(f"/batches/{batch_id}").json()
        return batch if batch["status"] in ("completed", "cancelled", "failed") else None

    return wait_for(probe, timeout=timeout, interval=1.0, message=f"batch {batch_id}")


def results(api: ApiClient, batch_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/batches/{batch_id}/results")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(x) for x in response.text.splitlines()]


def test_500_item_batch_completes_with_results_joined_on_custom_id(api: ApiClient) -> None:
    body = lines(500, "big")
    response = post_ndjson(api, body)
    assert response.status_code == 202, response.text
    created = response.json()
    assert (
        created["request_counts"]["total"] == 500 and response.headers["Location"] == created["links"]["self"]
    )
    batch = wait_batch(api, created["batch_id"])
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {
        "total": 500,
        "pending": 0,
        "processing": 0,
        "completed": 500,
        "failed": 0,
        "cancelled": 0,
    }
    joined = results(api, created["batch_id"])
    assert sorted(x["custom_id"] for x in joined) == sorted(json.loads(x)["custom_id"] for x in body)
    assert all(x["status"] == "COMPLETED" and x["summary"]["summary"] for x in joined)
    listed = api.get("/batches", params={"limit": "5"}).json()["items"]
    assert created["batch_id"] in [b["batch_id"] for b in listed]


def test_malformed_lines_are_reported_and_the_rest_processed(api: ApiClient) -> None:
    good = lines(20, "mixed")
    body = [*good[:5], "{this is not json", *good[5:10], json.dumps({"custom_id": "no-text"}), *good[10:]]
    body.append(
        json.dumps({"custom_id": "bad-type", "patient_id": "p", "report_text": "x", "report_type": "poem"})
    )
    response = post_ndjson(api, body)
    assert response.status_code == 202
    created = response.json()
    assert [(e["line"], e["custom_id"]) for e in created["errors"]] == [
        (6, None),
        (12, "no-text"),
        (23, "bad-type"),
    ]
    batch = wait_batch(api, created["batch_id"])
    assert batch["status"] == "completed" and batch["request_counts"]["completed"] == 20
    assert len(batch["errors"]) == 3


def test_duplicate_custom_ids_are_rejected(api: ApiClient) -> None:
    body = [*lines(3, "dup"), lines(1, "dup")[0]]
    response = post_ndjson(api, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "duplicate_custom_id"


def test_cancel_midway_leaves_started_items_completed_and_the_rest_cancelled(
    api: ApiClient, bedrock_admin: str
) -> None:
    requests.put(f"{bedrock_admin}/faults", json={"latency_ms": 300}, timeout=10).raise_for_status()
    created = post_ndjson(api, lines(80, "cancel")).json()
    batch_id = created["batch_id"]
    wait_for(
        lambda: api.get(f"/batches/{batch_id}").json()["request_counts"]["completed"] >= 3,
        timeout=60,
        message="some items to complete",
    )
    response = api.post(f"/batches/{batch_id}/cancel")
    assert response.status_code == 202 and response.json()["status"] in ("cancelling", "completed")
    batch = wait_batch(api, batch_id)
    counts = batch["request_counts"]
    assert batch["status"] == "cancelled"
    assert counts["completed"] >= 3 and counts["cancelled"] >= 1 and counts["failed"] == 0
    assert counts["completed"] + counts["cancelled"] == 80
    statuses = {x["status"] for x in results(api, batch_id)}
    assert statuses == {"COMPLETED", "CANCELLED"}


def test_another_client_cannot_see_or_cancel_the_batch(api: ApiClient) -> None:
    batch_id = post_ndjson(api, lines(2, "mine")).json()["batch_id"]
    for method, path in [("GET", ""), ("GET", "/results"), ("POST", "/cancel")]:
        response = api.request(method, f"/batches/{batch_id}{path}", identity="clinic-b")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert api.get(f"/batches/{batch_id}").status_code == 200


def test_cli_batch_submit_wait_and_results(stack_dir: Path, stack_info: StackInfo, tmp_path: Path) -> None:
    example = ROOT / "examples" / "batch-small.jsonl"
    submitted = run_cli(stack_dir, "batch", "submit", str(example), "--wait", "--json", timeout=180)
    assert submitted.returncode == 0, submitted.stderr
    batch = json.loads(submitted.stdout)
    assert batch["status"] == "completed"
    out = tmp_path / "out.jsonl"
    fetched = run_cli(stack_dir, "batch", "results", batch["batch_id"], "-o", str(out), timeout=60)
    assert fetched.returncode == 0, fetched.stderr
    custom_ids = [json.loads(x)["custom_id"] for x in example.read_text().splitlines() if x.strip()]
    assert sorted(json.loads(x)["custom_id"] for x in out.read_text().splitlines()) == sorted(custom_ids)
