"""Operators on the local stack: a Bedrock fault dead-letters some reports, an operator sees them, clears
the cause, redrives them with the CLI, and every one completes with exactly one successful model call;
the audit trail records who did it and why. Clients get 403 on every admin route."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from medsum_local.bedrock import report_digest
from medsum_local.stack import StackInfo
from medsum_local.testing import ApiClient, run_cli, wait_for

REASON = "throttling incident over (e2e)"


def medsum(stack_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(stack_dir, *args, "--identity", "operator", timeout=180)


def set_faults(admin: str, **faults: Any) -> None:
    requests.put(f"{admin}/faults", json=faults, timeout=10).raise_for_status()


def submit(api: ApiClient, text: str) -> str:
    response = api.post("/summarize", json={"patient_id": "pt-ops", "report_text": text})
    assert response.status_code == 202, response.text
    return str(response.json()["report_id"])


def status_of(api: ApiClient, report_id: str) -> dict[str, Any]:
    return dict(api.get(f"/reports/{report_id}").json())


def wait_status(api: ApiClient, report_id: str, status: str, timeout: float) -> None:
    def reached() -> bool:
        return bool(status_of(api, report_id)["status"] == status)

    wait_for(reached, timeout=timeout, message=f"report {report_id} {status}")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/dlq"),
        ("GET", "/admin/dlq/summary"),
        ("POST", "/admin/dlq/redrive"),
        ("POST", "/admin/dlq/purge"),
        ("GET", "/admin/audit"),
        ("POST", "/admin/reports/abc/retry"),
    ],
)
def test_clients_get_403_on_admin_routes(api: ApiClient, method: str, path: str) -> None:
    body = {"all": True, "reason": "let me in"} if method == "POST" else None
    for identity in ("clinic-a", "clinic-b"):
        response = api.request(method, path, json=body, identity=identity)
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"


def test_fault_dead_letter_redrive_completed_with_one_model_call_each(
    api: ApiClient, api_as: Any, bedrock_admin: str, stack_info: StackInfo, stack_dir: Path
) -> None:
    operator = api_as("operator")
    texts = [f"FINDINGS: Operator redrive probe {n}. Left lower lobe opacity." for n in range(3)]
    # Given a persistent retryable Bedrock fault while three reports are submitted
    set_faults(bedrock_admin, error_rate=1.0, error_code="ThrottlingException")
    report_ids = [submit(api, text) for text in texts]
    # Then they end FAILED (dead_lettered) and their work reaches the dead-letter queue
    for report_id in report_ids:
        wait_status(api, report_id, "FAILED", timeout=150)
        assert status_of(api, report_id)["error"]["code"] == "dead_lettered"

    def listed() -> list[dict[str, Any]] | None:
        page = operator.get("/admin/dlq", params={"error_code": "dead_lettered", "limit": "500"}).json()
        mine = [e for e in page["items"] if e["report_id"] in report_ids]
        return mine if len(mine) == len(report_ids) else None

    entries = wait_for(listed, timeout=60, message="the dead letters")
    assert {e["owner"] for e in entries} == {stack_info.identity("clinic-a").arn}
    # And the operator sees no report text anywhere
    assert not any("opacity" in json.dumps(e).lower() for e in entries)
    # And `medsum dlq summary` shows them
    summary = medsum(stack_dir, "dlq", "summary", "--json")
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["by_error_code"]["dead_lettered"] >= len(report_ids)
    # When the fault is cleared and the operator redrives the dead_lettered work (dry run first)
    set_faults(bedrock_admin)
    calls_before = requests.get(f"{bedrock_admin}/stats", timeout=10).json()["completed_by_digest"]
    dry = medsum(
        stack_dir,
        "dlq",
        "redrive",
        "--error-code",
        "dead_lettered",
        "--dry-run",
        "--reason",
        REASON,
        "--json",
    )
    assert dry.returncode == 0, dry.stderr
    assert set(report_ids) <= set(json.loads(dry.stdout)["report_ids"])
    assert all(status_of(api, rid)["status"] == "FAILED" for rid in report_ids)
    redriven = medsum(
        stack_dir,
        "dlq",
        "redrive",
        "--error-code",
        "dead_lettered",
        "--rate",
        "20",
        "--reason",
        REASON,
        "--yes",
        "--json",
    )
    assert redriven.returncode == 0, redriven.stderr
    job = json.loads(redriven.stdout)
    assert job["status"] == "completed" and job["moved"] >= len(report_ids) and job["failed"] == 0
    # Then every report completes, each with exactly one successful Bedrock call
    for report_id in report_ids:
        wait_status(api, report_id, "COMPLETED", timeout=60)
        report = status_of(api, report_id)
        assert report["attempts"] > 5  # the attempt history is kept
    completed = requests.get(f"{bedrock_admin}/stats", timeout=10).json()["completed_by_digest"]
    for text in texts:
        digest = report_digest(text)
        assert calls_before.get(digest, 0) == 0 and completed.get(digest) == 1
    # And nothing of theirs is left in the dead-letter queue
    left = operator.get("/admin/dlq", params={"limit": "500"}).json()["items"]
    assert not [e for e in left if e["report_id"] in report_ids]
    # And the audit trail shows the redrive with the operator's principal and the reason
    audit = medsum(stack_dir, "audit", "--json")
    assert audit.returncode == 0, audit.stderr
    redrives = [
        e for e in json.loads(audit.stdout)["items"] if e["action"] == "dlq.redrive" and not e["dry_run"]
    ]
    assert redrives[0]["principal"] == stack_info.identity("operator").arn
    assert redrives[0]["reason"] == REASON and redrives[0]["selection"]["error_code"] == "dead_lettered"
    assert redrives[0]["counts"]["moved"] == job["moved"]
