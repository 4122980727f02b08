"""``medsum dlq …`` and ``medsum audit`` against a scripted transport: requests sent, confirmation,
job continuation with a progress bar, dry run, and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import IDENTITIES, Run, error, fake_session, ok, parse_authorization

pytestmark = [pytest.mark.disable_socket, pytest.mark.usefixtures("isolated_env")]


REPORT = "0123456789abcdef0123456789abcdef"
JOB = "fedcba9876543210fedcba9876543210"


def job(status: str = "completed", moved: int = 0, remaining: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": JOB,
        "status": status,
        "dry_run": False,
        "selection": {"error_code": "dead_lettered"},
        "selected": 2,
        "moved": moved,
        "skipped": 0,
        "failed": 0,
        "remaining": remaining,
        "report_ids": [],
        **extra,
    }


def body(request: Any) -> dict[str, Any]:
    return dict(json.loads(request.body))


def test_redrive_dry_runs_then_runs_and_continues_the_job_until_done(project: Path, run: Run) -> None:
    # Given a plan of two reports and a job that needs two requests
    session, adapter = fake_session(
        ok(job(dry_run=True, report_ids=[REPORT, "r2"], remaining=2)),
        ok(job("running", moved=1, remaining=1)),
        ok(job("completed", moved=2)),
    )
    # When the operator redrives by error code at 5/s without a prompt
    code, out, _ = run(
        [
            "dlq",
            "redrive",
            "--error-code",
            "dead_lettered",
            "--rate",
            "5",
            "--reason",
            "INC-1 over",
            "--yes",
            "--identity",
            "operator",
        ],
        session,
    )
    # Then a dry run, the redrive, and one continuation were sent, signed as the operator
    assert code == 0 and f"job {JOB}: moved 2" in out
    sent = [body(r) for r in adapter.requests]
    assert sent[0] == {
        "error_code": "dead_lettered",
        "max_per_second": 5.0,
        "reason": "INC-1 over",
        "dry_run": True,
    }
    assert sent[1] == {"error_code": "dead_lettered", "max_per_second": 5.0, "reason": "INC-1 over"}
    assert sent[2] == {"job_id": JOB}
    assert all(r.url and r.url.endswith("/admin/dlq/redrive") for r in adapter.requests)
    assert parse_authorization(adapter.requests[0])["key"] == IDENTITIES["operator"][0]


def test_redrive_without_a_terminal_or_yes_changes_nothing(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    session, adapter = fake_session(ok(job(dry_run=True, report_ids=[REPORT])))
    code, _, err = run(["dlq", "redrive", "--all", "--reason", "why not", "--identity", "operator"], session)
    assert code == 1 and "pass --yes" in err
    assert len(adapter.requests) == 1 and body(adapter.requests[0])["dry_run"] is True


def test_dry_run_lists_what_would_move(project: Path, run: Run) -> None:
    session, adapter = fake_session(ok(job(dry_run=True, report_ids=[REPORT])))
    code, out, _ = run(["dlq", "redrive", "--id", REPORT, "--dry-run", "--reason", "look first"], session)
    assert code == 0 and "1 would be redriven" in out and REPORT in out
    assert body(adapter.requests[0])["report_ids"] == [REPORT]
    assert len(adapter.requests) == 1


def test_redrive_needs_a_reason_and_one_selection(project: Path, run: Run) -> None:
    assert run(["dlq", "redrive", "--all"])[0] == 2
    assert run(["dlq", "redrive", "--all", "--error-code", "x", "--reason", "r"])[0] == 2
    assert run(["dlq", "redrive", "--all", "--rate", "0", "--reason", "r"])[0] == 2


def test_a_client_identity_gets_the_apis_403(project: Path, run: Run) -> None:
    session, _ = fake_session(error(403, "forbidden", "operators only"))
    code, _, err = run(["dlq", "summary", "--identity", "clinic-a"], session)
    assert code == 1 and "forbidden: operators only" in err


def test_summary_list_show_audit_and_purge_call_their_routes(project: Path, run: Run) -> None:
    entry = {
        "message_id": "m1",
        "lane": "bulk",
        "report_id": REPORT,
        "owner": "arn:aws:iam::123456789012:user/clinic-a",
        "batch_id": None,
        "status": "FAILED",
        "error_code": "dead_lettered",
        "error_message": "the model stayed unavailable",
        "attempts": 5,
        "receive_count": 6,
        "first_failed_at": "2026-11-26T08:00:00Z",
        "last_failed_at": "2026-11-26T08:01:00Z",
        "age_seconds": 7200,
        "redrive_count": 0,
    }
    audit_entry = {
        "audit_id": JOB,
        "at": "2026-11-26T09:00:00Z",
        "principal": "arn:aws:iam::123456789012:user/operator",
        "action": "dlq.purge",
        "selection": {"older_than": "7d"},
        "reason": "stale",
        "dry_run": False,
        "status": "completed",
        "counts": {"selected": 1, "moved": 0, "purged": 1, "skipped": 0, "failed": 0},
        "updated_at": None,
    }
    session, adapter = fake_session(
        ok(
            {
                "total": 1,
                "by_lane": {"interactive": 0, "bulk": 1},
                "by_error_code": {"dead_lettered": 1},
                "by_age": {"<1h": 0, "1h-6h": 1},
                "truncated": False,
            }
        ),
        ok({"items": [entry], "next_token": None, "scanned": 1, "truncated": False}),
        ok(entry),
        ok({"items": [audit_entry], "next_token": None}),
        ok(audit_entry),
    )
    summary = run(["dlq", "summary"], session)[1]
    assert "dead_lettered" in summary and "bulk 1" in summary
    listed = run(["dlq", "list", "--error-code", "dead_lettered", "--older-than", "1h"], session)[1]
    assert REPORT in listed and "2h" in listed and "bulk" in listed
    assert "dead_lettered" in run(["dlq", "show", REPORT], session)[1]
    assert "stale" in run(["audit"], session)[1]
    assert "purged 1" in run(["dlq", "purge", "--older-than", "7d", "--reason", "stale", "--yes"], session)[1]
    paths = [r.path_url for r in adapter.requests]
    assert paths == [
        "/admin/dlq/summary",
        "/admin/dlq?error_code=dead_lettered&older_than=1h",
        f"/admin/dlq/reports/{REPORT}",
        "/admin/audit?limit=50",
        "/admin/dlq/purge",
    ]
    assert body(adapter.requests[-1]) == {"older_than": "7d", "reason": "stale"}
