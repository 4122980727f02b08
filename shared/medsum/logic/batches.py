"""Batch use cases: accept many reports at once, report progress, join results, cancel.

Each batch item is a normal report (owned by the caller, visible through ``GET /reports/{id}``) that
also carries ``batch_id`` and ``custom_id``. Counters live in the batch's sharded counter items and are
changed in the same transaction as each report's state change (see ``adapters/batches.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from medsum import safejson
from medsum.errors import (
    BatchInputError,
    BatchNotFoundError,
    PartialWriteError,
    PublishError,
    RepositoryError,
)
from medsum.logic.lanes import batch_item_id, chain, seed_messages
from medsum.logic.reports import ENQUEUE_FAILED
from medsum.logic.webhooks import UrlPolicy, register_callback
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
from medsum.ports import (
    BatchRepository,
    EventPublisher,
    ReportRepository,
    UploadStore,
    WebhookRepository,
    WorkQueue,
)
from medsum.validation import safe_location

INGEST_FAILED = LineError.model_construct(
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
    #: The bulk lane's queue.
    queue: WorkQueue
    #: Settles a batch whose last unfinished items could not be queued (they fail at creation).
    publisher: EventPublisher | None = None
    #: Items of one batch queued or running at a time (``logic/lanes.py``).
    window: int = 10
    #: Where a batch's ``callback_url`` is recorded, and the URL rules it must pass.
    webhooks: WebhookRepository | None = None
    url_policy: UrlPolicy | None = None


def _line_error(line: int, custom_id: Any, exc: ValidationError) -> LineError:
    # Locations name this service's fields only: an unexpected key is "*", never its name.
    fields = sorted({safe_location(err["loc"]) or "line" for err in exc.errors()})
    return LineError(
        line=line,
        custom_id=custom_id if isinstance(custom_id, str) else None,
        code="invalid_item",
        message="invalid fields: " + ", ".join(fields[:10]),
    )


def decode_line(number: int, line: str | bytes) -> Any:
    """One JSON Lines line: the decoded value, or a ``LineError`` (``invalid_json``)."""
    try:
        return safejson.loads(line)
    except json.JSONDecodeError:
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
            envelope = safejson.loads(body)
        except json.JSONDecodeError as exc:
            raise BatchInputError("invalid_json", "the request body is not valid JSON") from exc
        if not isinstance(envelope, dict) or not isinstance(envelope.get("reports"), list):
            raise BatchInputError("invalid_request", 'the body must be an object with a "reports" list')
        unknown = set(envelope) - {"reports", "metadata", "callback_url"}
        if unknown:
            # Never the names themselves: a client's key is client data.
            raise BatchInputError(
                "invalid_request", 'unknown fields: the body takes "reports", "metadata" and "callback_url"'
            )
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
    now: datetime,
    retention_days: int,
    public_api_url: str | None = None,
) -> Batch:
    """Record the batch's ``callback_url`` (if any), store the batch and its reports
    (``BatchWriteItem``), release its first window of work (``SendMessageBatch``; the rest follows as
    items finish, see ``logic/lanes.py``).

    Raises ``UnsafeUrlError`` / ``NoDefaultSecretError`` for an unusable ``callback_url`` (nothing is
    stored then), ``PartialWriteError`` when the reports could not all be stored.

    The batch is created ``validating``; it becomes ``in_progress`` once every report is stored, just
    before the messages are sent. An item whose message could not be sent is FAILED
    (``enqueue_failed``) with every item its window slot would have released after it, and counted; if
    the reports cannot be stored the batch is ``failed`` and the ones stored are FAILED, so nothing
    stays PENDING without a message.
    """
    expires_at = int((now + timedelta(days=retention_days)).timestamp())
    if parsed.callback_url:
        if deps.webhooks is None or deps.url_policy is None:
            raise TypeError("BatchDeps needs webhooks and url_policy for a callback_url")
        register_callback(
            parsed.callback_url,
            owner,
            batch_id,
            ["batch.completed", "batch.cancelled"],
            deps.webhooks,
            deps.url_policy,
            now,
            expires_at=expires_at,
        )
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
        item_report(item, batch_item_id(batch_id, seq), owner, batch_id, now, expires_at)
        for seq, (_, item) in enumerate(parsed.items)
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
    unsent = deps.queue.enqueue_many(seed_messages(batch_id, len(reports), deps.window))
    for message in unsent:  # rare: SQS refused after retries
        for item in chain(message):
            _fail_unqueued(deps, item.report_id, batch_id, now)
    if unsent and deps.publisher is not None and public_api_url:
        # The workers may have finished every queued item already; then no delivery is left to settle
        # the batch, so settle it here (a no-op while items are still running).
        try:
            settle_batch(deps.batches, deps.publisher, batch_id, public_api_url, now)
        except PublishError:
            logger.error("batch settled but its event could not be published", batch_id=batch_id)
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


def item_report(
    item: BatchItemRequest, report_id: str, owner: str, batch_id: str, now: datetime, expires_at: int
) -> Report:
    """The PENDING report of one batch item (inline or uploaded)."""
    return Report(
        report_id=report_id,
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


def _fail_unqueued(deps: BatchDeps, report_id: str, batch_id: str, now: datetime) -> None:
    try:
        deps.reports.fail(report_id, ENQUEUE_FAILED, now, batch_id=batch_id)
    except RepositoryError:
        logger.error("could not mark an unqueued batch item failed", report_id=report_id, batch_id=batch_id)


#: A batch still ``validating`` this long after it was created never got its file (an upload URL lasts
#: 15 minutes and ingesting 100,000 lines takes minutes) or its creation was cut short: it is ``failed``.
VALIDATING_LIMIT = timedelta(hours=1)
UPLOAD_EXPIRED = LineError.model_construct(
    line=0, code="upload_expired", message="no batch file arrived in time; start a new upload"
)


def get_batch(batches: BatchRepository, owner: str, batch_id: str, now: datetime | None = None) -> Batch:
    """The caller's batch (``BatchNotFoundError`` for a missing or another owner's batch). With
    ``now``, a batch stuck in ``validating`` past :data:`VALIDATING_LIMIT` is failed first (lazily, on
    read, like cancellation)."""
    batch = batches.get(batch_id)
    if batch is None or batch.owner != owner:
        raise BatchNotFoundError("batch not found")
    return expire_stale(batches, batch, now) if now is not None else batch


def list_batches(
    batches: BatchRepository, owner: str, limit: int, next_token: str | None, now: datetime
) -> tuple[list[Batch], str | None]:
    """The caller's batches, newest first (stale ``validating`` ones failed, as in :func:`get_batch`)."""
    page, token = batches.list_for_owner(owner, limit, next_token)
    return [expire_stale(batches, b, now) for b in page], token


def expire_stale(batches: BatchRepository, batch: Batch, now: datetime) -> Batch:
    if batch.status is not BatchStatus.VALIDATING or now - batch.created_at < VALIDATING_LIMIT:
        return batch
    if batches.set_status(batch.batch_id, [BatchStatus.VALIDATING], BatchStatus.FAILED, now):
        batches.record_errors(batch.batch_id, [UPLOAD_EXPIRED, *batch.errors])
        logger.info("stale validating batch failed", batch_id=batch.batch_id)
    return batches.get(batch.batch_id) or batch


def cancel_batch(
    batches: BatchRepository,
    owner: str,
    batch_id: str,
    now: datetime,
    publisher: EventPublisher | None = None,
    public_api_url: str | None = None,
) -> Batch:
    """Ask for cancellation: items not yet started become CANCELLED as the worker meets them.

    An upload batch with no item yet (waiting for its file, or being planned) is ``cancelled`` at once
    and ``batch.cancelled`` is published (with ``publisher``): no item will settle it. A file arriving
    later is refused by the ingestion; items a running ingestion still writes are cancelled by the
    worker, which cancels every item of a cancelled batch.
    """
    batch = get_batch(batches, owner, batch_id)
    if batch.status is BatchStatus.VALIDATING and batch.total == 0:
        if batches.set_status(batch_id, [BatchStatus.VALIDATING], BatchStatus.CANCELLED, now):
            logger.info("batch cancelled before its upload was ingested", batch_id=batch_id)
            if publisher is not None and public_api_url:
                try:
                    settle_batch(batches, publisher, batch_id, public_api_url, now)
                except PublishError:
                    logger.error("batch cancelled but its event could not be published", batch_id=batch_id)
        return get_batch(batches, owner, batch_id)
    if not batch.status.terminal and batch.status is not BatchStatus.CANCELLING:
        batches.set_status(
            batch_id, [BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS], BatchStatus.CANCELLING, now
        )
        logger.info("batch cancellation requested", batch_id=batch_id)
    return get_batch(batches, owner, batch_id)


#: Results of batches up to this many items are answered in the response body (Lambda's response
#: limit is 6 MB); larger ones, or bodies over INLINE_RESULTS_MAX_BYTES, become a results file.
INLINE_RESULTS_MAX_ITEMS = MAX_BATCH_ITEMS
INLINE_RESULTS_MAX_BYTES = 5_000_000
RESULTS_URL_SECONDS = 15 * 60
RESULTS_PREFIX = "results/"
_RESULTS_READ = 100  # reports read per BatchGetItem


@dataclass(frozen=True)
class ResultsFile:
    """A batch's results written to the batch files bucket, handed out as a presigned GET."""

    url: str
    expires_at: datetime
    size: int


def owner_hash(owner: str) -> str:
    """The owner's path segment in batch file keys: a digest, so keys never reveal the principal."""
    return hashlib.sha256(owner.encode("utf-8")).hexdigest()[:32]


def results_key(owner: str, batch_id: str) -> str:
    return f"{RESULTS_PREFIX}{owner_hash(owner)}/{batch_id}.jsonl"


def iter_batch_results(reports: ReportRepository, owner: str, batch_id: str) -> Iterator[ResultLine]:
    """One line per item, joined on ``custom_id``, read 100 reports at a time (bounded memory)."""
    refs = reports.batch_items(batch_id)
    for start in range(0, len(refs), _RESULTS_READ):
        window = refs[start : start + _RESULTS_READ]
        by_id = {r.report_id: r for r in reports.get_many([ref.report_id for ref in window])}
        for ref in window:
            report = by_id.get(ref.report_id)
            if report is None or report.owner != owner:
                continue  # deleted by its owner since
            yield ResultLine(
                custom_id=ref.custom_id,
                report_id=ref.report_id,
                status=report.status,
                summary=report.summary,
                error=report.error,
            )


def deliver_results(
    reports: ReportRepository,
    batches: BatchRepository,
    store: UploadStore,
    owner: str,
    batch_id: str,
    now: datetime,
) -> str | ResultsFile:
    """A batch's results as JSON Lines: the text itself for small batches, else a results file.

    The file is written anew on every call (results change while the batch runs), streamed to the
    store in parts, so neither the Lambda's memory nor its 6 MB response limit bounds a batch.
    Raises ``BatchNotFoundError`` (also for another owner's batch) and ``RepositoryError``.
    """
    batch = get_batch(batches, owner, batch_id)
    lines: Iterable[bytes] = (
        (line.model_dump_json() + "\n").encode("utf-8")
        for line in iter_batch_results(reports, owner, batch_id)
    )
    if batch.counts.total <= INLINE_RESULTS_MAX_ITEMS:
        lines = list(lines)  # at most 1,000 lines: read once, sent inline or written below
        body = b"".join(lines)
        if len(body) <= INLINE_RESULTS_MAX_BYTES:
            return body.decode("utf-8")
    key = results_key(owner, batch_id)
    size = store.put_results(key, lines)
    return ResultsFile(
        url=store.presign_get(key, RESULTS_URL_SECONDS),
        expires_at=now + timedelta(seconds=RESULTS_URL_SECONDS),
        size=size,
    )


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
