"""Items as the tables hold them (DynamoDB JSON, written by this and earlier versions) read back as
the models they store: the stored format is a contract with every item already in a table.
botocore Stubber: the read returns the literal item."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from medsum.adapters.audit import DynamoAuditLog
from medsum.adapters.batches import DynamoBatchRepository
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.models import (
    ActionCounts,
    AuditEntry,
    Batch,
    BatchStatus,
    ErrorInfo,
    EvidenceSpan,
    JobStatus,
    LineError,
    Report,
    ReportStatus,
    ReportType,
    RequestCounts,
    Summary,
    SummaryItem,
    Usage,
)
from pydantic import ValidationError

OWNER = "arn:aws:iam::123456789012:user/clinic-a"
AT = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
STORED_AT = "2026-01-02T03:04:05.123456Z"
LATER = datetime(2026, 1, 2, 3, 9, 5, tzinfo=UTC)
STORED_LATER = "2026-01-02T03:09:05.000000Z"
SUMMARY = Summary(
    summary="Small effusion.",
    key_findings=[SummaryItem(text="effusion", evidence=[EvidenceSpan(start=10, end=18)])],
    model_id="amazon.nova-lite-v1:0",
    prompt_version="2026-11-30.2",
)


def _client() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _read_report(item: dict[str, Any]) -> Report | None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("get_item", {"Item": item})
        return DynamoReportRepository("Reports", client).get("r-1")


def _completed_item() -> dict[str, Any]:
    return {
        "report_id": {"S": "r-1"},
        "owner": {"S": OWNER},
        "owner_patient": {"S": f"{OWNER}#pt-1"},
        "patient_id": {"S": "pt-1"},
        "report_type": {"S": "radiology"},
        "status": {"S": "COMPLETED"},
        "created_at": {"S": STORED_AT},
        "updated_at": {"S": STORED_LATER},
        "attempts": {"N": "2"},
        "text_z": {"B": zlib.compress(b"FINDINGS: Small effusion.", 6)},
        "metadata": {"M": {"ward": {"S": "3B"}}},
        "summary_json": {"S": SUMMARY.model_dump_json()},
        "usage": {
            "M": {
                "model_id": {"S": "amazon.nova-lite-v1:0"},
                "input_tokens": {"N": "812"},
                "output_tokens": {"N": "96"},
                "cache_read_input_tokens": {"N": "0"},
                "cache_write_input_tokens": {"N": "0"},
                "model_calls": {"N": "1"},
            }
        },
        "batch_id": {"S": "b-1"},
        "custom_id": {"S": "c-1"},
        "expires_at": {"N": "1798766645"},
        "version": {"N": "4"},
        "event_published": {"BOOL": True},
        "next_released": {"BOOL": True},
        "first_failed_at": {"S": STORED_AT},
        "redriven_at": {"S": STORED_LATER},
        "redrive_count": {"N": "1"},
        "previous_error": {"M": {"code": {"S": "dead_lettered"}, "message": {"S": "gave up"}}},
    }


def test_a_completed_report_item_reads_back_field_for_field() -> None:
    assert _read_report(_completed_item()) == Report(
        report_id="r-1",
        owner=OWNER,
        patient_id="pt-1",
        report_type=ReportType.RADIOLOGY,
        status=ReportStatus.COMPLETED,
        created_at=AT,
        updated_at=LATER,
        attempts=2,
        text="FINDINGS: Small effusion.",
        metadata={"ward": "3B"},
        summary=SUMMARY,
        usage=Usage(model_id="amazon.nova-lite-v1:0", input_tokens=812, output_tokens=96),
        batch_id="b-1",
        custom_id="c-1",
        expires_at=1798766645,
        version=4,
        event_published=True,
        next_released=True,
        first_failed_at=AT,
        redriven_at=LATER,
        redrive_count=1,
        previous_error=ErrorInfo(code="dead_lettered", message="gave up"),
    )


def test_an_early_report_item_without_later_attributes_reads_with_their_defaults() -> None:
    # What the first versions wrote: no version, no attempts, no usage or summary, a lease.
    item = {
        "report_id": {"S": "r-1"},
        "owner": {"S": OWNER},
        "patient_id": {"S": "pt-1"},
        "report_type": {"S": "other"},
        "status": {"S": "PROCESSING"},
        "created_at": {"S": STORED_AT},
        "updated_at": {"S": STORED_AT},
        "lease_expires_at": {"S": STORED_LATER},
        "lease_token": {"S": "t-1"},
        "error": {"M": {"code": {"S": "throttled"}, "message": {"S": "model busy"}}},
        "expires_at": {"N": "1798766645"},
    }
    report = _read_report(item)
    assert report is not None
    assert (report.attempts, report.version, report.redrive_count) == (0, 1, 0)
    assert (report.text, report.summary, report.usage, report.metadata) == (None, None, None, {})
    assert (report.lease_expires_at, report.lease_token) == (LATER, "t-1")
    assert report.error == ErrorInfo(code="throttled", message="model busy")
    assert not report.event_published and not report.next_released


def test_an_item_missing_a_required_attribute_fails_loudly() -> None:
    item = _completed_item()
    del item["status"]
    with pytest.raises(ValidationError):
        _read_report(item)


def test_a_listed_report_has_only_the_projected_attributes() -> None:
    client = _client()
    projected = {k: v for k, v in _completed_item().items() if k in _PROJECTED}
    with Stubber(client) as stub:
        stub.add_response("query", {"Items": [projected]})
        page = DynamoReportRepository("Reports", client).list_for_patient(OWNER, "pt-1", 10, None)
    (report,) = page.items
    assert (report.report_id, report.owner, report.status, report.created_at) == (
        "r-1",
        OWNER,
        ReportStatus.COMPLETED,
        AT,
    )
    assert (report.text, report.summary, report.expires_at) == (None, None, 0)


_PROJECTED = {
    "report_id",
    "owner_patient",
    "created_at",
    "patient_id",
    "status",
    "report_type",
    "updated_at",
    "owner",
}


def test_a_batch_partition_reads_as_its_meta_item_and_summed_counters() -> None:
    client = _client()
    items = [
        {
            "batch_id": {"S": "b-1"},
            "sk": {"S": "meta"},
            "owner": {"S": OWNER},
            "status": {"S": "completed"},
            "created_at": {"S": STORED_AT},
            "updated_at": {"S": STORED_LATER},
            "completed_at": {"S": STORED_LATER},
            "total": {"N": "5"},
            "errors_json": {
                "S": json.dumps([{"line": 3, "custom_id": None, "code": "bad", "message": "no"}])
            },
            "metadata": {"M": {"run": {"S": "1"}}},
            "expires_at": {"N": "1798766645"},
            "event_published": {"BOOL": True},
        },
        {
            "batch_id": {"S": "b-1"},
            "sk": {"S": "count#03"},
            "completed": {"N": "3"},
            "processing": {"N": "0"},
        },
        {"batch_id": {"S": "b-1"}, "sk": {"S": "count#07"}, "failed": {"N": "1"}},
    ]
    with Stubber(client) as stub:
        stub.add_response("query", {"Items": items})
        batch = DynamoBatchRepository("Batches", client).get("b-1")
    assert batch == Batch(
        batch_id="b-1",
        owner=OWNER,
        status=BatchStatus.COMPLETED,
        created_at=AT,
        updated_at=LATER,
        completed_at=LATER,
        total=5,
        counts=RequestCounts(total=5, pending=1, completed=3, failed=1),
        errors=[LineError(line=3, code="bad", message="no")],
        metadata={"run": "1"},
        expires_at=1798766645,
        event_published=True,
    )


def test_an_audit_item_reads_back_and_an_early_one_gets_the_defaults() -> None:
    client = _client()
    item = {
        "audit_id": {"S": "a-1"},
        "log": {"S": "audit"},
        "at": {"S": STORED_AT},
        "principal": {"S": "arn:aws:iam::123456789012:user/operator"},
        "action": {"S": "dlq.redrive"},
        "selection_json": {"S": json.dumps({"error_code": "dead_lettered", "all": True})},
        "reason": {"S": "model outage over"},
        "dry_run": {"BOOL": False},
        "status": {"S": "running"},
        "counts": {"M": {"selected": {"N": "4"}, "moved": {"N": "2"}}},
        "updated_at": {"S": STORED_LATER},
    }
    early = {k: v for k, v in item.items() if k not in {"dry_run", "status", "counts", "updated_at"}}
    with Stubber(client) as stub:
        stub.add_response("get_item", {"Item": item})
        stub.add_response("get_item", {"Item": early})
        log = DynamoAuditLog("Audit", client)
        entry, early_entry = log.get("a-1"), log.get("a-1")
    assert entry == AuditEntry(
        audit_id="a-1",
        at=AT,
        principal="arn:aws:iam::123456789012:user/operator",
        action="dlq.redrive",
        selection={"error_code": "dead_lettered", "all": True},
        reason="model outage over",
        status=JobStatus.RUNNING,
        counts=ActionCounts(selected=4, moved=2),
        updated_at=LATER,
    )
    assert early_entry is not None
    assert (early_entry.dry_run, early_entry.status, early_entry.counts, early_entry.updated_at) == (
        False,
        JobStatus.COMPLETED,
        ActionCounts(),
        None,
    )
