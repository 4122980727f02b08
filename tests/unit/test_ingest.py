"""Upload ingestion: chunking, deterministic ids, idempotent chunk writes (fakes), and the adapters'
retries of partial batch failures (botocore Stubber: exact request shapes)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from medsum.adapters import dynamodb as dynamodb_adapter
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.adapters.sqs import SqsWorkQueue
from medsum.adapters.uploads import _split_lines
from medsum.errors import IngestRejectedError, IngestRetryableError
from medsum.logic.batches import BatchDeps
from medsum.logic.ingest import (
    Chunk,
    FinalizeStep,
    MarkFailedStep,
    PlanStep,
    WriteChunkStep,
    batch_id_from_key,
    chunk_lines,
    create_upload_batch,
    fail_upload,
    finalize_upload,
    parse_step,
    plan_upload,
    upload_key,
    write_chunk,
)
from medsum.logic.lanes import batch_item_id
from medsum.models import BatchStatus, Report, ReportStatus, ReportType, WorkMessage
from medsum.ports import UploadObject, UploadStore
from pydantic import ValidationError

from tests.support.events import ROOT
from tests.support.fakes import FakeQueue, InMemoryBatchRepository, InMemoryRepository

OWNER = "arn:aws:iam::123456789012:user/clinic-a"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def line(custom_id: str, text: str = "FINDINGS: Normal.") -> bytes:
    return json.dumps({"custom_id": custom_id, "patient_id": "p-1", "report_text": text}).encode()


class MemoryUploads(UploadStore):
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads: list[tuple[int, int | None]] = []

    def presign_put(self, key: str, expires_seconds: int) -> tuple[str, dict[str, str]]:
        return f"https://uploads.example/{key}", {}

    def head(self, bucket: str, key: str) -> UploadObject:
        return UploadObject(bucket=bucket, key=key, etag='"e"', size=len(self.data))

    def read_lines(
        self, upload: UploadObject, start_byte: int = 0, end_byte: int | None = None
    ) -> Iterator[bytes]:
        self.reads.append((start_byte, end_byte))
        end = len(self.data) if end_byte is None else min(end_byte, len(self.data))
        yield from _split_lines(iter([self.data[start_byte:end]]))

    def put_results(self, key: str, chunks: Iterable[bytes]) -> int:
        raise NotImplementedError  # ingestion never writes results

    def presign_get(self, key: str, expires_seconds: int) -> str:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------- chunking
def test_chunks_cover_every_line_with_exact_byte_ranges() -> None:
    lines = [line(f"c-{n}") for n in range(1, 11)]
    lines.insert(3, b"")  # a blank line: not an item, but it is line 4 of the file
    data = b"\n".join(lines) + b"\n"
    total, errors, chunks = chunk_lines(_split_lines(iter([data])), chunk_lines=4)
    assert (total, errors) == (10, [])
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 5), (6, 9), (10, 11)]
    # Byte ranges are contiguous and the re-read lines are exactly the chunk's lines.
    assert chunks[0].start_byte == 0 and chunks[-1].end_byte == len(data)
    for chunk in chunks:
        text = data[chunk.start_byte : chunk.end_byte]
        assert len([x for x in text.split(b"\n") if x.strip()]) == 4 if chunk is not chunks[-1] else 2


def test_malformed_and_duplicate_lines_are_errors_and_duplicates_are_skipped() -> None:
    data = b"\n".join([line("a"), b"{oops", line("a"), b'{"custom_id": "z"}', line("b")])
    total, errors, chunks = chunk_lines(_split_lines(iter([data])), chunk_lines=1000)
    assert total == 2
    assert [(e.line, e.code) for e in errors] == [
        (2, "invalid_json"),
        (3, "duplicate_custom_id"),
        (4, "invalid_item"),
    ]
    assert chunks == [Chunk(1, 5, 0, len(data) + 1, (3,))]


def test_too_many_items_or_no_valid_item_rejects_the_file() -> None:
    with pytest.raises(IngestRejectedError) as too_many:
        chunk_lines(iter([line("a"), line("b"), line("c")]), max_items=2)
    assert too_many.value.code == "too_many_items"
    with pytest.raises(IngestRejectedError) as none_valid:
        chunk_lines(iter([b"{}", b"nope"]))
    assert none_valid.value.code == "no_valid_items"


def test_report_ids_are_deterministic_per_batch_and_item() -> None:
    assert batch_item_id("b1", 7) == batch_item_id("b1", 7)
    assert len({batch_item_id("b1", 7), batch_item_id("b1", 8), batch_item_id("b2", 7)}) == 3
    assert len(batch_item_id("b1", 7)) == 32


def test_upload_keys_hide_the_owner_and_name_the_batch() -> None:
    key = upload_key(OWNER, "b1")
    assert key.startswith("uploads/") and key.endswith("/b1.jsonl") and "clinic-a" not in key
    assert batch_id_from_key(key) == "b1"
    with pytest.raises(IngestRejectedError):
        batch_id_from_key("other/b1.jsonl")


# ---------------------------------------------------------------------------------------------- steps
def _setup(data: bytes, window: int = 25) -> tuple[BatchDeps, MemoryUploads, InMemoryRepository]:
    reports = InMemoryRepository()
    deps = BatchDeps(
        reports=reports, batches=InMemoryBatchRepository(reports), queue=FakeQueue(), window=window
    )
    create_upload_batch(deps.batches, OWNER, batch_id="b1", now=NOW, retention_days=30)
    return deps, MemoryUploads(data), reports


def test_plan_write_finalize_stores_each_item_once_even_when_a_chunk_is_retried() -> None:
    data = b"\n".join(line(f"c-{n}") for n in range(1, 8)) + b"\n{bad\n"
    deps, uploads, reports = _setup(data, window=2)
    plan = plan_upload(deps.batches, uploads, "bucket", upload_key(OWNER, "b1"), chunk_size=3)
    assert plan.total == 7 and [e.line for e in plan.errors] == [8]
    assert [c["chunk"]["start_line"] for c in plan.to_dict()["chunks"]] == [1, 4, 7]
    for chunk in plan.chunks:
        write_chunk(deps, uploads, plan.upload, "b1", chunk, now=NOW)
    # A retried chunk (the first attempt's result was lost): nothing is written twice.
    again = write_chunk(deps, uploads, plan.upload, "b1", plan.chunks[0], now=NOW)
    assert (again.written, again.existing) == (0, 3)
    assert len(reports.items) == 7
    assert {r.report_id for r in reports.items.values()} == {batch_item_id("b1", n) for n in range(7)}
    assert [reports.items[batch_item_id("b1", n)].custom_id for n in range(7)] == [
        f"c-{n}" for n in range(1, 8)
    ]
    assert all(r.status is ReportStatus.PENDING and r.owner == OWNER for r in reports.items.values())
    assert uploads.reads[1:4] == [(c.start_byte, c.end_byte) for c in plan.chunks]
    # Nothing is queued until the batch is final; then its first window goes to the bulk lane
    assert isinstance(deps.queue, FakeQueue) and deps.queue.messages == []
    batch = finalize_upload(deps, "b1", plan.total, NOW)
    assert batch.status is BatchStatus.IN_PROGRESS and batch.total == 7
    assert [e.line for e in batch.errors] == [8]
    assert [(m.report_id, m.seq, m.window, m.total) for m in deps.queue.messages] == [
        (batch_item_id("b1", 0), 0, 2, 7),
        (batch_item_id("b1", 1), 1, 2, 7),
    ]


# ---------------------------------------------------------------------------------------------- step inputs
def _task_inputs() -> dict[str, dict[str, Any]]:
    """The input each Lambda task of the state machine builds with ``Parameters`` (paths filled in)."""
    definition = json.loads((ROOT / "statemachine" / "ingest.asl.json").read_text())
    values = {"bucket": "uploads", "key": upload_key(OWNER, "b1"), "batch_id": "b1", "total": 7}
    values["error"] = {"Error": "IngestRejectedError", "Cause": "..."}
    return {
        name: {
            k.removesuffix(".$"): values[k.removesuffix(".$")] if k.endswith(".$") else v
            for k, v in state["Parameters"].items()
        }
        for name, state in definition["States"].items()
        if state["Type"] == "Task" and "Parameters" in state
    }


def test_every_task_input_of_the_state_machine_is_a_step_of_the_function() -> None:
    # Given: Plan, Finalize and MarkFailed as the state machine calls them
    inputs = _task_inputs()

    # When
    steps = {name: parse_step(event) for name, event in inputs.items()}

    # Then
    assert {name: type(step) for name, step in steps.items()} == {
        "Plan": PlanStep,
        "Finalize": FinalizeStep,
        "MarkFailed": MarkFailedStep,
    }
    assert steps["Plan"] == PlanStep(step="plan", bucket="uploads", key=upload_key(OWNER, "b1"))
    assert steps["Finalize"] == FinalizeStep(step="finalize", batch_id="b1", total=7)


def test_each_chunk_of_a_plan_is_the_input_of_its_write_chunk_step() -> None:
    # Given: a plan of three chunks (the Map state passes each chunk as it is)
    data = b"\n".join(line(f"c-{n}") for n in range(1, 8)) + b"\n"
    deps, uploads, _ = _setup(data)
    plan = plan_upload(deps.batches, uploads, "bucket", upload_key(OWNER, "b1"), chunk_size=3)

    # When
    steps = [parse_step(item) for item in plan.to_dict()["chunks"]]

    # Then
    assert all(isinstance(step, WriteChunkStep) for step in steps)
    assert [(s.batch_id, s.upload, s.chunk) for s in steps if isinstance(s, WriteChunkStep)] == [
        ("b1", plan.upload, chunk) for chunk in plan.chunks
    ]


@pytest.mark.parametrize(
    "event",
    [
        {"step": "explode", "batch_id": "b1"},
        {"step": "finalize", "batch_id": "b1"},
        {"step": "finalize", "batch_id": "b1", "total": "many"},
        {"step": "plan", "bucket": "uploads"},
        {"step": "write_chunk", "batch_id": "b1", "bucket": "u", "key": "k", "etag": "e", "size": 1},
        {"bucket": "uploads", "key": "k"},
        [],
    ],
)
def test_an_input_that_is_no_step_is_a_validation_error(event: Any) -> None:
    # When / Then: a typed error naming what is wrong, never a KeyError
    with pytest.raises(ValidationError):
        parse_step(event)


def test_finalize_is_retried_when_the_first_window_cannot_be_queued() -> None:
    deps, uploads, _ = _setup(b"\n".join([line("a"), line("b")]))
    plan = plan_upload(deps.batches, uploads, "bucket", upload_key(OWNER, "b1"))
    write_chunk(deps, uploads, plan.upload, "b1", plan.chunks[0], now=NOW)
    assert isinstance(deps.queue, FakeQueue)
    deps.queue.fail = True
    with pytest.raises(IngestRetryableError):
        finalize_upload(deps, "b1", plan.total, NOW)
    # The retried step sends the window (the batch is already in progress)
    deps.queue.fail = False
    finalize_upload(deps, "b1", plan.total, NOW)
    assert deps.queue.sent == [batch_item_id("b1", 0), batch_item_id("b1", 1)]


def test_a_failed_ingestion_fails_the_items_it_had_stored() -> None:
    deps, uploads, reports = _setup(b"\n".join([line("a"), line("b"), line("c")]))
    plan = plan_upload(deps.batches, uploads, "bucket", upload_key(OWNER, "b1"), chunk_size=2)
    write_chunk(deps, uploads, plan.upload, "b1", plan.chunks[0], now=NOW)  # the second chunk never ran
    fail_upload(deps, upload_key(OWNER, "b1"), "ingest_failed", NOW)
    batch = deps.batches.get("b1")
    assert batch is not None and batch.status is BatchStatus.FAILED
    assert len(reports.items) == 2
    assert {(r.status, r.error.code if r.error else None) for r in reports.items.values()} == {
        (ReportStatus.FAILED, "ingest_failed")
    }


def test_rejected_upload_marks_the_batch_failed_with_its_reason() -> None:
    deps, uploads, _ = _setup(b"nope\n")
    key = upload_key(OWNER, "b1")
    with pytest.raises(IngestRejectedError):
        plan_upload(deps.batches, uploads, "bucket", key)
    fail_upload(deps, key, "ingest_failed", NOW)
    batch = deps.batches.get("b1")
    assert batch is not None and batch.status is BatchStatus.FAILED
    assert [(e.line, e.code) for e in batch.errors] == [(0, "no_valid_items")]


def test_an_upload_under_another_owners_prefix_is_rejected() -> None:
    deps, uploads, _ = _setup(line("a"))
    with pytest.raises(IngestRejectedError) as rejected:
        plan_upload(deps.batches, uploads, "bucket", upload_key("someone-else", "b1"))
    assert rejected.value.code == "unknown_batch"


# ---------------------------------------------------------------------------------------------- Stubber
def _no_wait(seconds: float) -> None:
    """The adapters' backoff between retries, without the waiting."""


def _report(report_id: str) -> Report:
    return Report(
        report_id=report_id,
        owner=OWNER,
        patient_id="p-1",
        report_type=ReportType.OTHER,
        status=ReportStatus.PENDING,
        created_at=NOW,
        updated_at=NOW,
        text="FINDINGS: Normal.",
        batch_id="b1",
        custom_id=report_id,
        expires_at=0,
    )


def test_unprocessed_items_are_retried_until_written() -> None:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    repository = DynamoReportRepository("Reports", client, sleep=_no_wait)
    reports = [_report(f"r{n}") for n in range(27)]
    items = [{"PutRequest": {"Item": dynamodb_adapter._to_item(r)}} for r in reports]
    with Stubber(client) as stub:
        # First chunk of 25: two come back unprocessed, and exactly those two are sent again.
        stub.add_response(
            "batch_write_item",
            {"UnprocessedItems": {"Reports": items[3:5]}},
            {"RequestItems": {"Reports": items[:25]}},
        )
        stub.add_response(
            "batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {"Reports": items[3:5]}}
        )
        stub.add_response("batch_write_item", {}, {"RequestItems": {"Reports": items[25:]}})
        repository.create_many(reports)
        stub.assert_no_pending_responses()


def test_failed_send_entries_are_retried_and_sender_faults_returned() -> None:
    client = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    queue = SqsWorkQueue("https://sqs.us-east-1.amazonaws.com/123456789012/work", client, sleep=_no_wait)
    ids = [f"r{n}" for n in range(12)]
    messages = [WorkMessage(report_id=rid, batch_id="b1") for rid in ids]

    def entries(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
        return [
            {
                "Id": entry_id,
                "MessageBody": WorkMessage(report_id=rid, batch_id="b1").model_dump_json(exclude_none=True),
            }
            for entry_id, rid in pairs
        ]

    url = "https://sqs.us-east-1.amazonaws.com/123456789012/work"
    first = [(str(i), rid) for i, rid in enumerate(ids[:10])]
    failed = [
        {"Id": "2", "SenderFault": False, "Code": "InternalError"},
        {"Id": "5", "SenderFault": True, "Code": "InvalidParameterValue"},
    ]
    ok = [{"Id": e, "MessageId": e, "MD5OfMessageBody": "x"} for e, _ in first if e not in {"2", "5"}]
    with Stubber(client) as stub:
        stub.add_response(
            "send_message_batch",
            {"Successful": ok, "Failed": failed},
            {"QueueUrl": url, "Entries": entries(first)},
        )
        stub.add_response(
            "send_message_batch",
            {"Successful": [{"Id": "2", "MessageId": "2", "MD5OfMessageBody": "x"}], "Failed": []},
            {"QueueUrl": url, "Entries": entries([("2", "r2")])},
        )
        second = [(str(i), rid) for i, rid in enumerate(ids[10:])]
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": e, "MessageId": e, "MD5OfMessageBody": "x"} for e, _ in second],
                "Failed": [],
            },
            {"QueueUrl": url, "Entries": entries(second)},
        )
        assert queue.enqueue_many(messages) == [messages[5]]
        stub.assert_no_pending_responses()
