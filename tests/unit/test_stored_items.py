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
from boto3.dynamodb.types import TypeSerializer
from botocore.stub import Stubber
from medsum.adapters.audit import DynamoAuditLog
from medsum.adapters.batches import DynamoBatchRepository
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.models import (
    ActionCounts,
    BatchStatus,
    ErrorInfo,
    EvidenceSpan,
    JobStatus,
    Report,
    ReportStatus,
    ReportType,
    RequestCounts,
    Summary,
    SummaryItem,
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


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB JSON (str is S, int is N, bytes is B, bool is BOOL, dict is M)."""
    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in values.items()}


def _read_report(item: dict[str, Any]) -> Report | None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("get_item", {"Item": _stored(item)})
        return DynamoReportRepository("Reports", client).get("r-1")


def _completed_item() -> dict[str, Any]:
    return {
        "report_id": "r-1",
        "owner": OWNER,
        "owner_patient": f"{OWNER}#pt-1",
        "patient_id": "pt-1",
        "report_type": "radiology",
        "status": "COMPLETED",
        "created_at": STORED_AT,
        "updated_at": STORED_LATER,
        "attempts": 2,
        "text_z": zlib.compress(b"FINDINGS: Small effusion.", 6),
        "metadata": {"ward": "3B"},
        "summary_json": SUMMARY.model_dump_json(),
        "usage": {"model_id": "amazon.nova-lite-v1:0", "input_tokens": 812, "output_tokens": 96}
        | {"cache_read_input_tokens": 0, "cache_write_input_tokens": 0, "model_calls": 1},
        "batch_id": "b-1",
        "custom_id": "c-1",
        "expires_at": 1798766645,
        "version": 4,
        "event_published": True,
        "next_released": True,
        "first_failed_at": STORED_AT,
        "redriven_at": STORED_LATER,
        "redrive_count": 1,
        "previous_error": {"code": "dead_lettered", "message": "gave up"},
    }


def test_a_completed_report_item_reads_back_field_for_field() -> None:
    item = _completed_item()
    report = _read_report(item)
    assert report is not None
    kept = {"report_id", "owner", "patient_id", "attempts", "metadata", "batch_id", "custom_id"}
    kept |= {"expires_at", "version", "event_published", "next_released", "redrive_count", "previous_error"}
    assert report.model_dump() == {name: item[name] for name in kept} | {
        "report_type": ReportType.RADIOLOGY,
        "status": ReportStatus.COMPLETED,
        "created_at": AT,
        "updated_at": LATER,
        "lease_expires_at": None,
        "lease_token": None,
        "text": "FINDINGS: Small effusion.",
        "summary": SUMMARY.model_dump(),
        "error": None,
        "usage": item["usage"],
        "first_failed_at": AT,
        "redriven_at": LATER,
    }


#: What the first versions wrote: no version, no attempts, no usage or summary, no operator history.
_EARLY = {"report_id", "owner", "patient_id", "report_type", "created_at", "updated_at", "expires_at"}


def test_an_early_report_item_without_later_attributes_reads_with_their_defaults() -> None:
    item = {name: value for name, value in _completed_item().items() if name in _EARLY} | {
        "status": "PROCESSING",
        "lease_expires_at": STORED_LATER,
        "lease_token": "t-1",
        "error": {"code": "throttled", "message": "model busy"},
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


#: What the ``ByOwnerPatient`` index holds of a report (keys and ``NonKeyAttributes`` in template.yaml).
_PROJECTED = {"report_id", "owner_patient", "created_at", "patient_id", "status", "report_type"}
_PROJECTED |= {"updated_at", "owner"}


def test_a_listed_report_has_only_the_projected_attributes() -> None:
    client = _client()
    projected = {k: v for k, v in _completed_item().items() if k in _PROJECTED}
    with Stubber(client) as stub:
        stub.add_response("query", {"Items": [_stored(projected)]})
        page = DynamoReportRepository("Reports", client).list_for_patient(OWNER, "pt-1", 10, None)
    (report,) = page.items
    assert (report.report_id, report.owner, report.status, report.created_at) == (
        "r-1",
        OWNER,
        ReportStatus.COMPLETED,
        AT,
    )
    assert (report.text, report.summary, report.expires_at) == (None, None, 0)


#: A batch's meta item as stored.
_BATCH_META: dict[str, Any] = {
    "batch_id": "b-1",
    "sk": "meta",
    "owner": OWNER,
    "status": "completed",
    "created_at": STORED_AT,
    "updated_at": STORED_LATER,
    "completed_at": STORED_LATER,
    "total": 5,
    "errors_json": json.dumps([{"line": 3, "custom_id": None, "code": "bad", "message": "no"}]),
    "metadata": {"run": "1"},
    "expires_at": 1798766645,
    "event_published": True,
}


#: An audit entry (a running redrive job) as stored.
_AUDIT_ITEM: dict[str, Any] = {
    "audit_id": "a-1",
    "log": "audit",
    "at": STORED_AT,
    "principal": "arn:aws:iam::123456789012:user/operator",
    "action": "dlq.redrive",
    "selection_json": json.dumps({"error_code": "dead_lettered", "all": True}),
    "reason": "model outage over",
    "dry_run": False,
    "status": "running",
    "counts": {"selected": 4, "moved": 2},
    "updated_at": STORED_LATER,
}


def test_a_batch_partition_reads_as_its_meta_item_and_summed_counters() -> None:
    client = _client()
    shards = [
        {"batch_id": "b-1", "sk": "count#03", "completed": 3, "processing": 0},
        {"batch_id": "b-1", "sk": "count#07", "failed": 1},
    ]
    with Stubber(client) as stub:
        stub.add_response("query", {"Items": [_stored(i) for i in (_BATCH_META, *shards)]})
        batch = DynamoBatchRepository("Batches", client).get("b-1")
    assert batch is not None
    kept = {"batch_id", "owner", "total", "metadata", "expires_at", "event_published"}
    assert batch.model_dump() == {name: _BATCH_META[name] for name in kept} | {
        "status": BatchStatus.COMPLETED,
        "created_at": AT,
        "updated_at": LATER,
        "completed_at": LATER,
        "counts": RequestCounts(total=5, pending=1, completed=3, failed=1).model_dump(),
        "errors": [{"line": 3, "custom_id": None, "code": "bad", "message": "no"}],
    }


def test_an_audit_item_reads_back_and_an_early_one_gets_the_defaults() -> None:
    client = _client()
    early = {k: v for k, v in _AUDIT_ITEM.items() if k not in {"dry_run", "status", "counts", "updated_at"}}
    with Stubber(client) as stub:
        stub.add_response("get_item", {"Item": _stored(_AUDIT_ITEM)})
        stub.add_response("get_item", {"Item": _stored(early)})
        log = DynamoAuditLog("Audit", client)
        entry, early_entry = log.get("a-1"), log.get("a-1")
    assert entry is not None and early_entry is not None
    kept = {"audit_id", "principal", "action", "reason", "dry_run"}
    assert entry.model_dump() == {name: _AUDIT_ITEM[name] for name in kept} | {
        "at": AT,
        "selection": {"error_code": "dead_lettered", "all": True},
        "status": JobStatus.RUNNING,
        "counts": ActionCounts(selected=4, moved=2).model_dump(),
        "updated_at": LATER,
    }
    assert (early_entry.dry_run, early_entry.status, early_entry.counts, early_entry.updated_at) == (
        False,
        JobStatus.COMPLETED,
        ActionCounts(),
        None,
    )
