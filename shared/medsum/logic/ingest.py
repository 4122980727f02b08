"""Upload ingestion: the domain side of the ``IngestStateMachine`` (``statemachine/ingest.asl.json``).

An uploaded JSON Lines file becomes a batch in three steps, each a Lambda task of the state machine:

1. :func:`plan_upload` streams the file once, validates every line with the same per-line rules as
   the inline ``POST /batches`` (:func:`medsum.logic.batches.parse_line`), records the line errors on
   the batch, and cuts the file into chunks of at most :data:`CHUNK_LINES` lines, described by line
   and byte ranges (the state stays small: Step Functions passes at most 256 KiB between states).
2. :func:`write_chunk` (one per chunk, in a ``Map`` state) re-reads only its byte range and stores
   its reports as PENDING with ``BatchWriteItem`` (25). Report ids are derived from (batch id, item
   ordinal) (:func:`medsum.logic.lanes.batch_item_id`; each chunk knows the ordinal of its first item),
   and reports that already exist are never written again, so a retried chunk neither duplicates nor
   overwrites anything. Nothing is queued yet.
3. :func:`finalize_upload` sets the batch's ``total``, moves it to ``in_progress`` and releases the
   first window of items to the bulk lane (the rest follow as items finish, ``logic/lanes.py``).

Any step failing for good ends in :func:`fail_upload` (the ``MarkFailed`` state), which also fails
the items already stored (they were never queued).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from medsum.errors import ConflictError, IngestRejectedError, IngestRetryableError, ReportNotFoundError
from medsum.logic.batches import BatchDeps, item_report, owner_hash, parse_line
from medsum.logic.lanes import batch_item_id, seed_messages
from medsum.models import (
    MAX_UPLOAD_ITEMS,
    Batch,
    BatchItemRequest,
    BatchStatus,
    ErrorInfo,
    LineError,
    ReportStatus,
)
from medsum.observability import logger
from medsum.ports import BatchRepository, UploadObject, UploadStore

#: Most lines one ``write_chunk`` task handles (40 BatchWriteItem + 100 SendMessageBatch calls).
CHUNK_LINES = 1_000
#: How long a presigned upload URL stays valid.
UPLOAD_URL_SECONDS = 15 * 60
UPLOAD_PREFIX = "uploads/"
#: The error of items stored by an ingestion that then failed (they were never queued).
ITEM_NOT_INGESTED = ErrorInfo.model_construct(
    code="ingest_failed", message="the batch upload could not be ingested; this report was not summarized"
)


@dataclass(frozen=True)
class Chunk:
    """Lines ``start_line``..``end_line`` (1-based, inclusive) at bytes ``start_byte``..``end_byte``
    (exclusive) of the file; ``skip_lines`` are valid lines that must not become reports (a repeated
    ``custom_id``: only its first line counts); ``first_seq`` is the ordinal of the chunk's first item
    among the batch's items (it names the report ids)."""

    start_line: int
    end_line: int
    start_byte: int
    end_byte: int
    skip_lines: tuple[int, ...] = ()
    first_seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_line": self.start_line,
            "end_line": self.end_line,
            "start_byte": self.start_byte,
            "end_byte": self.end_byte,
            "skip_lines": list(self.skip_lines),
            "first_seq": self.first_seq,
        }


@dataclass(frozen=True)
class Plan:
    batch_id: str
    upload: UploadObject
    total: int
    errors: list[LineError]
    chunks: list[Chunk]

    def to_dict(self) -> dict[str, Any]:
        """The state machine's view: ids, location and chunk descriptors (never report text).

        Each chunk is the complete input of its ``write_chunk`` task (the ``Map`` state passes items
        as they are: no ``ItemSelector`` with ``$$.Map.Item.Value``, which moto's engine lacks)."""
        where = {
            "batch_id": self.batch_id,
            "bucket": self.upload.bucket,
            "key": self.upload.key,
            "etag": self.upload.etag,
            "size": self.upload.size,
        }
        return {
            **where,
            "total": self.total,
            "line_errors": len(self.errors),
            "chunks": [{"step": "write_chunk", **where, "chunk": c.to_dict()} for c in self.chunks],
        }


# --------------------------------------------------------------------------------------------------
# The steps' inputs, as the state machine passes them (``statemachine/ingest.asl.json``)
# --------------------------------------------------------------------------------------------------
class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class PlanStep(_Step):
    """``Plan``: the uploaded object the S3 event names."""

    step: Literal["plan"]
    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)


class WriteChunkStep(_Step):
    """``WriteChunk``: one chunk of :meth:`Plan.to_dict`, as the ``Map`` state passes it."""

    step: Literal["write_chunk"]
    batch_id: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    etag: str
    size: int = Field(ge=0)
    chunk: Chunk

    @property
    def upload(self) -> UploadObject:
        """The planned version of the uploaded file."""
        return UploadObject(bucket=self.bucket, key=self.key, etag=self.etag, size=self.size)


class FinalizeStep(_Step):
    """``Finalize``: the batch and how many items the plan found."""

    step: Literal["finalize"]
    batch_id: str = Field(min_length=1)
    total: int = Field(ge=0)


class MarkFailedStep(_Step):
    """``MarkFailed``: the uploaded object, and the state's error (exception names: not used, they are
    not part of the API; the step's own reason is already on the batch)."""

    step: Literal["mark_failed"]
    key: str = Field(min_length=1)
    error: dict[str, Any] | None = None


#: The input of any of the ingest function's steps, told apart by ``step``.
IngestStep = Annotated[PlanStep | WriteChunkStep | FinalizeStep | MarkFailedStep, Field(discriminator="step")]


@cache
def _steps() -> TypeAdapter[IngestStep]:
    return TypeAdapter(IngestStep)


def parse_step(event: Any) -> PlanStep | WriteChunkStep | FinalizeStep | MarkFailedStep:
    """The step an ingest task input asks for.

    Raises
    ------
    pydantic.ValidationError
        Not an input of any step (an unknown ``step``, a missing or malformed field): the task fails
        and the state machine's ``Catch`` marks the batch failed.
    """
    return _steps().validate_python(event)


@dataclass(frozen=True)
class ChunkResult:
    written: int
    existing: int


def upload_key(owner: str, batch_id: str) -> str:
    return f"{UPLOAD_PREFIX}{owner_hash(owner)}/{batch_id}.jsonl"


def batch_id_from_key(key: str) -> str:
    """``uploads/<owner-hash>/<batch_id>.jsonl`` -> ``batch_id``. Raises ``IngestRejectedError``."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != UPLOAD_PREFIX or not parts[2].endswith(".jsonl"):
        raise IngestRejectedError("invalid_key", "the object is not a batch upload")
    batch_id = parts[2].removesuffix(".jsonl")
    if not batch_id:
        raise IngestRejectedError("invalid_key", "the object is not a batch upload")
    return batch_id


def create_upload_batch(
    batches: BatchRepository,
    owner: str,
    *,
    batch_id: str,
    now: datetime,
    retention_days: int,
    metadata: dict[str, str] | None = None,
) -> Batch:
    """The batch an upload will fill: ``validating``, no items yet (the state machine adds them)."""
    batch = Batch(
        batch_id=batch_id,
        owner=owner,
        status=BatchStatus.VALIDATING,
        created_at=now,
        updated_at=now,
        total=0,
        metadata=dict(metadata or {}),
        expires_at=int((now + timedelta(days=retention_days)).timestamp()),
    )
    batches.create(batch)
    return batch


def _numbered_lines(
    lines: Iterable[bytes], first_line: int, first_byte: int
) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset of the line, line) for each line; the newline is counted as a byte."""
    number, offset = first_line, first_byte
    for line in lines:
        yield number, offset, line
        number += 1
        offset += len(line) + 1


def chunk_lines(
    lines: Iterable[bytes], *, chunk_lines: int = CHUNK_LINES, max_items: int = MAX_UPLOAD_ITEMS
) -> tuple[int, list[LineError], list[Chunk]]:
    """Validate every line and cut the file into chunks of at most ``chunk_lines`` lines.

    Blank lines are ignored (and never counted); a line failing validation becomes a ``LineError``;
    a ``custom_id`` seen before becomes a ``duplicate_custom_id`` error and is skipped by its chunk.
    Returns (valid items, line errors, chunks).

    Raises
    ------
    IngestRejectedError
        More than ``max_items`` non-blank lines, or no valid line.
    """
    total = 0
    counted = 0
    errors: list[LineError] = []
    chunks: list[Chunk] = []
    seen: set[str] = set()
    start: tuple[int, int] | None = None  # (line, byte) where the open chunk starts
    first_seq = 0  # ordinal of the open chunk's first item
    in_chunk = 0
    skip: list[int] = []
    last_line, end_byte = 0, 0
    for number, offset, line in _numbered_lines(lines, 1, 0):
        last_line, end_byte = number, offset + len(line) + 1
        if not line.strip():
            continue
        counted += 1
        if counted > max_items:
            raise IngestRejectedError("too_many_items", f"an uploaded batch holds at most {max_items} items")
        if start is None:
            start, first_seq = (number, offset), total
        parsed = parse_line(number, line)
        if isinstance(parsed, LineError):
            errors.append(parsed)
        elif parsed.custom_id in seen:
            errors.append(
                LineError(
                    line=number,
                    custom_id=parsed.custom_id,
                    code="duplicate_custom_id",
                    message="custom_id must be unique within a batch; this line repeats one",
                )
            )
            skip.append(number)
        else:
            seen.add(parsed.custom_id)
            total += 1
        in_chunk += 1
        if in_chunk == chunk_lines:
            chunks.append(Chunk(start[0], number, start[1], end_byte, tuple(skip), first_seq))
            start, in_chunk, skip = None, 0, []
    if start is not None:
        chunks.append(Chunk(start[0], last_line, start[1], end_byte, tuple(skip), first_seq))
    if total == 0:
        raise IngestRejectedError("no_valid_items", "no line of the batch is a valid report")
    return total, errors, chunks


def plan_upload(
    batches: BatchRepository, uploads: UploadStore, bucket: str, key: str, *, chunk_size: int = CHUNK_LINES
) -> Plan:
    """Step 1: validate the uploaded file, record its line errors, describe its chunks.

    Raises
    ------
    IngestRejectedError
        The key is not an upload of a ``validating`` batch of its owner, or the file is rejected as a
        whole (its reason is recorded on the batch as a line-0 error).
    """
    batch_id = batch_id_from_key(key)
    batch = batches.get(batch_id)
    if batch is None or upload_key(batch.owner, batch_id) != key:
        raise IngestRejectedError("unknown_batch", "the upload does not belong to a batch")
    if batch.status is not BatchStatus.VALIDATING:
        raise IngestRejectedError("not_validating", "the batch is not waiting for its upload")
    upload = uploads.head(bucket, key)
    try:
        total, errors, chunks = chunk_lines(
            uploads.read_lines(upload), chunk_lines=chunk_size, max_items=MAX_UPLOAD_ITEMS
        )
    except IngestRejectedError as exc:
        batches.record_errors(batch_id, [LineError(line=0, code=exc.code, message=str(exc))])
        raise
    batches.record_errors(batch_id, errors)
    logger.info("upload planned", batch_id=batch_id, items=total, line_errors=len(errors), chunks=len(chunks))
    return Plan(batch_id=batch_id, upload=upload, total=total, errors=errors, chunks=chunks)


def write_chunk(
    deps: BatchDeps,
    uploads: UploadStore,
    upload: UploadObject,
    batch_id: str,
    chunk: Chunk,
    *,
    now: datetime,
) -> ChunkResult:
    """Step 2 (per chunk): store the chunk's reports as PENDING (queued later, by windows).

    Idempotent: report ids follow the items' ordinals; reports already stored (an earlier attempt of
    this chunk) are not written again.

    Raises
    ------
    IngestRetryableError
        The stores are unavailable; the state machine retries the chunk.
    """
    batch = deps.batches.get(batch_id)
    if batch is None:
        raise IngestRejectedError("unknown_batch", "the batch no longer exists")
    items: list[tuple[int, BatchItemRequest]] = []
    skip = set(chunk.skip_lines)
    lines = uploads.read_lines(upload, chunk.start_byte, chunk.end_byte)
    for number, _, line in _numbered_lines(lines, chunk.start_line, chunk.start_byte):
        if number > chunk.end_line or number in skip or not line.strip():
            continue
        parsed = parse_line(number, line)
        if not isinstance(parsed, LineError):
            items.append((number, parsed))
    reports = [
        item_report(
            item,
            batch_item_id(batch_id, chunk.first_seq + index),
            batch.owner,
            batch_id,
            now,
            batch.expires_at,
        )
        for index, (_, item) in enumerate(items)
    ]
    existing = {r.report_id for r in deps.reports.get_many([r.report_id for r in reports])}
    new = [r for r in reports if r.report_id not in existing]
    deps.reports.create_many(new)  # PartialWriteError: the chunk is retried, stored ids are skipped
    return ChunkResult(written=len(new), existing=len(existing))


def finalize_upload(deps: BatchDeps, batch_id: str, total: int, now: datetime) -> Batch:
    """Step 3: the batch's items are all stored: set ``total``, ``validating`` -> ``in_progress`` (a
    batch cancelled meanwhile keeps its status, with its total), then release the first window of
    items to the bulk lane (a cancelled batch's items are released too: the worker cancels them).

    Raises
    ------
    IngestRetryableError
        Some of the first window could not be sent; the step is retried (a message sent twice is a
        duplicate the worker absorbs).
    """
    if not deps.batches.start(batch_id, total, now):
        logger.info("upload finalized on a batch no longer validating", batch_id=batch_id)
    batch = deps.batches.get(batch_id)
    if batch is None:
        raise IngestRejectedError("unknown_batch", "the batch no longer exists")
    if batch.status is not BatchStatus.FAILED and total > 0:
        unsent = deps.queue.enqueue_many(seed_messages(batch_id, total, deps.window))
        if unsent:
            raise IngestRetryableError("the batch's first items could not be queued; the step is retried")
    logger.info("upload ingested", batch_id=batch_id, items=total)
    return batch


def fail_upload(deps: BatchDeps, key: str, code: str, now: datetime) -> None:
    """``MarkFailed``: the ingestion gave up. A batch still ``validating`` becomes ``failed`` with a
    line-0 error ``code``. Items a chunk had already stored were never queued: they become FAILED
    (``ingest_failed``), so none stays PENDING without a message."""
    batches = deps.batches
    try:
        batch_id = batch_id_from_key(key)
    except IngestRejectedError:
        logger.warning("ingestion failed for an object that is not an upload")
        return
    batch = batches.get(batch_id)
    if batch is None or batch.status is not BatchStatus.VALIDATING:
        return  # cancelled or expired meanwhile: its status and errors already say why
    if not batch.errors or batch.errors[0].line != 0:
        batches.record_errors(
            batch_id,
            [LineError(line=0, code=code, message="the uploaded batch could not be ingested"), *batch.errors],
        )
    if batches.set_status(batch_id, [BatchStatus.VALIDATING], BatchStatus.FAILED, now):
        logger.warning("upload ingestion failed", batch_id=batch_id, code=code)
    stored = [ref for ref in deps.reports.batch_items(batch_id) if ref.status is ReportStatus.PENDING]
    for ref in stored:
        # A store error propagates: MarkFailed is retried, and items failed already are skipped.
        with contextlib.suppress(ConflictError, ReportNotFoundError):  # no longer PENDING, or gone
            deps.reports.fail(ref.report_id, ITEM_NOT_INGESTED, now, batch_id=batch_id)


__all__ = [
    "CHUNK_LINES",
    "MAX_UPLOAD_ITEMS",
    "UPLOAD_URL_SECONDS",
    "Chunk",
    "ChunkResult",
    "Plan",
    "batch_id_from_key",
    "chunk_lines",
    "create_upload_batch",
    "fail_upload",
    "finalize_upload",
    "owner_hash",
    "plan_upload",
    "upload_key",
    "write_chunk",
]
