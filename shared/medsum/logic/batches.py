"""Batch use cases: accept many reports at once, report progress, join results, cancel.

Each batch item is a normal report (owned by the caller, visible through ``GET /reports/{id}``) that
also carries ``batch_id`` and ``custom_id``. Counters live in the batch's sharded counter items and are
changed in the same transaction as each report's state change (see ``adapters/batches.py``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from medsum.errors import BatchInputError, BatchNotFoundError, PartialWriteError, RepositoryError
from medsum.logic.reports import ENQUEUE_FAILED
from medsum.models import (
    MAX_BATCH_ITEMS,
    Batch,
    BatchEventData,
    BatchItemRequest,
    BatchLinks,
    BatchStatus,
    LineError,
    Report,
    ReportEvent,
    ReportStatus,
    ResultLine,
)
from medsum.observability import logger
from medsum.ports import BatchRepository, EventPublisher, ReportRepository, WorkQueue

INGEST_FAILED = LineError(
    line=0, code="ingest_failed", message="the batch could not be stored; submit it again"
)


@dataclass(frozen=True)
class ParsedBatch:
    items: list[tuple[int, BatchItemRequest]]
    errors: list[LineError]
    metadata: dict[str, str]
    callback_url: str | None = None  # JSON envelope only: batch.completed/batch.cancelled go there too


@dataclass(frozen=True)
class BatchDeps:
    reports: ReportRepository
    batches: BatchRepository
    queue: WorkQueue


def _line_error(line: int, custom_id: Any, exc: ValidationError) -> LineError:
    fields = sorted({".".join(str(p) for p in err["loc"]) or "line" for err in exc.errors()})
    return LineError(
        line=line,
        custom_id=custom_id if isinstance(custom_id, str) else None,
        code="invalid_item",
        message="invalid fields: " + ", ".join(fields[:10]),
    )


def decode_line(number: int, line: str | bytes) -> Any:
    """One JSON Lines line: the decoded value, or a ``LineError`` (``invalid_json``)."""
    try:
        return json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return LineError(line=number, code="invalid_json", message="the line is not valid JSON")


def validate_item(number: int, raw: Any) -> BatchItemRequest | LineError:
    """Validate one decoded item; a ``LineError`` names the invalid fields, never their values."""
    custom_id = raw.get("custom_id") if isinstance(raw, dict) else None
    try:
        return BatchItemRequest.model_validate(raw)
    except ValidationError as exc:
        return _line_error(number, custom_id, exc)


def parse_line(number: int, line: str | bytes) -> BatchItemRequest | LineError:
    """Decode and validate one JSON Lines line (the per-line rules of :func:`parse_batch`)."""
    decoded = decode_line(number, line)
    return decoded if isinstance(decoded, LineError) else validate_item(number, decoded)


def parse_batch(body: str, ndjson: bool) -> ParsedBatch:
    """Validate each line on its own: malformed lines become ``LineError``s, the rest go on.

    ``body`` is either JSON ``{"reports": [...], "metadata"?: {...}}`` or JSON Lines (one item per
    line). Line numbers are 1-based (the item's index for JSON). Messages name fields, never values.

    Raises
    ------
    BatchInputError
        The envelope is not JSON, there are more than 1,000 items, ``custom_id``s repeat, or no line
        is valid.
    """
    raw_items: list[tuple[int, Any]] = []
    metadata: dict[str, str] = {}
    callback_url: str | None = None
    errors: list[LineError] = []
    if ndjson:
        # Split on "\n" only: str.splitlines() would also break on U+2028/U+2029/U+0085, which JSON
        # allows unescaped inside strings.
        for number, line in enumerate(body.split("\n"), start=1):
            if not line.strip():
                continue
            decoded = decode_line(number, line)
            if isinstance(decoded, LineError):
                errors.append(decoded)
            else:
                raw_items.append((number, decoded))
    else:
        try:
            envelope = json.loads(body)
        except json.JSONDecodeError as exc:
            raise BatchInputError("invalid_json", "the request body is not valid JSON") from exc
        if not isinstance(envelope, dict) or not isinstance(envelope.get("reports"), list):
            raise BatchInputError("invalid_request", 'the body must be an object with a "reports" list')
        unknown = set(envelope) - {"reports", "metadata", "callback_url"}
        if unknown:
            raise BatchInputError("invalid_request", "unknown fields: " + ", ".join(sorted(unknown)))
        meta = envelope.get("metadata") or {}
        if (
            not isinstance(meta, dict)
            or len(meta) > 16
            or not all(
                isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
                for k, v in meta.items()
            )
        ):
            raise BatchInputError("invalid_request", "metadata must be at most 16 string pairs")
        metadata = dict(meta)
        callback = envelope.get("callback_url")
        if callback is not None and (not isinstance(callback, str) or not 0 < len(callback) <= 2048):
            raise BatchInputError("invalid_request", "callback_url must be a URL of at most 2048 characters")
        callback_url = callback
        raw_items = list(enumerate(envelope["reports"], start=1))

    if len(raw_items) + len(errors) > MAX_BATCH_ITEMS:
        raise BatchInputError(
            "too_many_items", f"a batch holds at most {MAX_BATCH_ITEMS} items; use an upload"
        )
    seen = Counter(
        item.get("custom_id") for _, item in raw_items if isinstance(item, dict) and item.get("custom_id")
    )
    duplicates = sorted(str(cid) for cid, count in seen.items() if count > 1)
    if duplicates:
        raise BatchInputError(
            "duplicate_custom_id",
            "custom_id must be unique within a batch",
            [{"custom_id": cid} for cid in duplicates[:50]],
        )
    items: list[tuple[int, BatchItemRequest]] = []
    for number, raw in raw_items:
        validated = validate_item(number, raw)
        if isinstance(validated, LineError):
            errors.append(validated)
        else:
            items.append((number, validated))
    errors.sort(key=lambda e: e.line)
    if not items:
        raise BatchInputError(
            "no_valid_items",
            "no line of the batch is a valid report",
            [e.model_dump() for e in errors[:50]],
        )
    return ParsedBatch(items=items, errors=errors, metadata=metadata, callback_url=callback_url)


def create_batch(
    parsed: ParsedBatch,
    owner: str,
    deps: BatchDeps,
    *,
    batch_id: str,
    new_id: Callable[[], str],
    now: datetime,
    retention_days: int,
) -> Batch:
    """Store the batch and its reports (``BatchWriteItem``), enqueue the work (``SendMessageBatch``).

    The batch is created ``validating``; it becomes ``in_progress`` once every report is stored, just
    before the messages are sent. Reports that could not be queued are FAILED (``enqueue_failed``) and
    counted; if the reports cannot be stored the batch is ``failed`` and the ones stored are FAILED, so
    nothing stays PENDING without a message.
    """
    expires_at = int((now + timedelta(days=retention_days)).timestamp())
    batch = Batch(
        batch_id=batch_id,
        owner=owner,
        status=BatchStatus.VALIDATING,
        created_at=now,
        updated_at=now,
        total=len(parsed.items),
        errors=parsed.errors,
        metadata=parsed.metadata,
        expires_at=expires_at,
    )
    deps.batches.create(batch)
    reports = [
        Report(
            report_id=new_id(),
            owner=owner,
            patient_id=item.patient_id,
            report_type=item.report_type,
            status=ReportStatus.PENDING,
            created_at=now,
            updated_at=now,
            text=item.report_text,
            metadata=dict(item.metadata),
            batch_id=batch_id,
            custom_id=item.custom_id,
            expires_at=expires_at,
        )
        for _, item in parsed.items
    ]
    try:
        deps.reports.create_many(reports)
    except PartialWriteError as exc:
        logger.error("batch reports could not all be stored", batch_id=batch_id, stored=len(exc.written))
        for report_id in exc.written:
            _fail_unqueued(deps, report_id, batch_id, now)
        deps.batches.set_status(batch_id, [BatchStatus.VALIDATING], BatchStatus.FAILED, now)
        raise
    # in_progress before the first message: a worker must never finish an item of a batch it cannot
    # settle yet (validating), or the batch would wait for an event that already happened.
    deps.batches.set_status(batch_id, [BatchStatus.VALIDATING], BatchStatus.IN_PROGRESS, now)
    unsent = deps.queue.enqueue_many([r.report_id for r in reports], batch_id=batch_id)
    for report_id in unsent:
        # Rare (SQS refused after retries). If these were the last items to finish, the batch settles on
        # the next delivery of any of its items or stays in_progress with exact counts (known gap).
        _fail_unqueued(deps, report_id, batch_id, now)
    logger.info(
        "batch accepted",
        batch_id=batch_id,
        items=len(reports),
        line_errors=len(parsed.errors),
        unsent=len(unsent),
    )
    stored = deps.batches.get(batch_id)
    assert stored is not None
    return stored


def _fail_unqueued(deps: BatchDeps, report_id: str, batch_id: str, now: datetime) -> None:
    try:
        deps.reports.fail(report_id, ENQUEUE_FAILED, now, batch_id=batch_id)
    except RepositoryError:
        logger.error("could not mark an unqueued batch item failed", report_id=report_id, batch_id=batch_id)


def get_batch(batches: BatchRepository, owner: str, batch_id: str) -> Batch:
    batch = batches.get(batch_id)
    if batch is None or batch.owner != owner:
        raise BatchNotFoundError("batch not found")
    return batch


def cancel_batch(batches: BatchRepository, owner: str, batch_id: str, now: datetime) -> Batch:
    """Ask for cancellation: items not yet started become CANCELLED as the worker meets them."""
    batch = get_batch(batches, owner, batch_id)
    if not batch.status.terminal and batch.status is not BatchStatus.CANCELLING:
        batches.set_status(
            batch_id, [BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS], BatchStatus.CANCELLING, now
        )
        logger.info("batch cancellation requested", batch_id=batch_id)
    return get_batch(batches, owner, batch_id)


def batch_results(
    reports: ReportRepository, batches: BatchRepository, owner: str, batch_id: str
) -> list[ResultLine]:
    """One line per item, joined on ``custom_id``; partial while the batch runs."""
    get_batch(batches, owner, batch_id)
    refs = reports.batch_items(batch_id)
    by_id = {r.report_id: r for r in reports.get_many([ref.report_id for ref in refs])}
    lines = []
    for ref in refs:
        report = by_id.get(ref.report_id)
        if report is None or report.owner != owner:
            continue  # deleted by its owner since
        lines.append(
            ResultLine(
                custom_id=ref.custom_id,
                report_id=ref.report_id,
                status=report.status,
                summary=report.summary,
                error=report.error,
            )
        )
    return lines


def batch_links(base_url: str, batch_id: str) -> BatchLinks:
    root = f"{base_url.rstrip('/')}/batches/{batch_id}"
    return BatchLinks(self=root, results=f"{root}/results")


def settle_batch(
    batches: BatchRepository,
    publisher: EventPublisher,
    batch_id: str,
    public_api_url: str,
    now: datetime,
) -> BatchStatus | None:
    """Called after an item reached a terminal state: when every item is terminal, move the batch to
    ``completed`` (or ``cancelled``) — one conditional write, so exactly one caller wins and publishes
    ``batch.completed``/``batch.cancelled``. A settled batch whose event was not published yet (the
    publish failed) is published again. Returns the batch's final status when this call published.

    Raises ``PublishError``: the caller's message is retried, and the retry publishes.
    """
    batch = batches.get(batch_id)
    if batch is None or batch.status is BatchStatus.VALIDATING:
        return None
    counts = batch.counts
    if batch.status.terminal:
        if batch.event_published or batch.status is BatchStatus.FAILED:
            return None
        final = batch.status
    else:
        if counts.completed + counts.failed + counts.cancelled < counts.total:
            return None
        final = BatchStatus.CANCELLED if batch.status is BatchStatus.CANCELLING else BatchStatus.COMPLETED
        if not batches.set_status(batch_id, [batch.status], final, now):
            return None
    event = ReportEvent(
        type="batch.cancelled" if final is BatchStatus.CANCELLED else "batch.completed",
        id=f"evt_{batch_id}_{final.value}",
        timestamp=now,
        data=BatchEventData(
            batch_id=batch_id,
            status=final,
            request_counts=counts.model_copy(update={"pending": 0, "processing": 0}),
            links=batch_links(public_api_url, batch_id),
        ),
    )
    publisher.publish(event, owner=batch.owner)
    batches.mark_event_published(batch_id)
    logger.info("batch settled", batch_id=batch_id, status=final.value, items=counts.total)
    return final
