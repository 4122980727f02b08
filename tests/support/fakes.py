"""In-memory fakes of the ports, with the same conditional semantics as the DynamoDB adapter."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from medsum.errors import ConflictError, DeadLetterQueueError, EnqueueError, PublishError, ReportNotFoundError
from medsum.models import (
    ActionCounts,
    AuditEntry,
    Batch,
    BatchStatus,
    ErrorInfo,
    Lane,
    LineError,
    Report,
    ReportEvent,
    ReportStatus,
    ReportType,
    RequestCounts,
    Summary,
    Usage,
    WorkMessage,
)
from medsum.ports import (
    AuditLog,
    BatchItemRef,
    BatchRepository,
    DeadLetter,
    DeadLetterQueue,
    EventPublisher,
    ModelReply,
    ModelRequest,
    OperatorReportStore,
    Page,
    ReportRepository,
    Summarizer,
    WorkQueue,
)


class InMemoryRepository(ReportRepository, OperatorReportStore):
    """Reports, plus each batch item's transitions counted per batch (as the adapter's shards do)."""

    def __init__(self) -> None:
        self.items: dict[str, Report] = {}
        self.counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._lock = threading.Lock()

    def _count(self, batch_id: str | None, **deltas: int) -> None:
        if batch_id is not None:
            for name, delta in deltas.items():
                self.counters[batch_id][name] += delta

    def create_many(self, reports: Sequence[Report]) -> None:
        for report in reports:
            self.create(report)

    def get_many(self, report_ids: Sequence[str]) -> list[Report]:
        return [self.items[r] for r in report_ids if r in self.items]

    def batch_items(self, batch_id: str) -> list[BatchItemRef]:
        rows = sorted(
            (r for r in self.items.values() if r.batch_id == batch_id), key=lambda r: r.custom_id or ""
        )
        return [
            BatchItemRef(custom_id=r.custom_id or "", report_id=r.report_id, status=r.status) for r in rows
        ]

    def cancel(self, report_id: str, batch_id: str, now: datetime) -> Report:
        report = self._update(
            report_id,
            lambda r: r.status is ReportStatus.PENDING,
            status=ReportStatus.CANCELLED,
            updated_at=now,
        )
        self._count(batch_id, cancelled=1)
        return report

    def create(self, report: Report) -> None:
        with self._lock:
            assert report.report_id not in self.items
            self.items[report.report_id] = report

    def get(self, report_id: str) -> Report | None:
        return self.items.get(report_id)

    def list_for_patient(self, owner: str, patient_id: str, limit: int, next_token: str | None) -> Page:
        rows = sorted(
            (r for r in self.items.values() if r.owner == owner and r.patient_id == patient_id),
            key=lambda r: r.created_at,
            reverse=True,
        )
        start = int(next_token or 0)
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        return Page(items=page, next_token=str(start + limit) if more else None)

    def delete(self, owner: str, report_id: str) -> bool:
        with self._lock:
            report = self.items.get(report_id)
            if report is None or report.owner != owner:
                return False
            del self.items[report_id]
            return True

    def _update(self, report_id: str, allowed: Callable[[Report], bool], **changes: object) -> Report:
        with self._lock:
            current = self.items.get(report_id)
            if current is None:
                raise ReportNotFoundError("report not found")
            if not allowed(current):
                raise ConflictError("report state changed", current=current)
            updated = current.model_copy(update={**changes, "version": current.version + 1})
            self.items[report_id] = updated
            return updated

    def claim(
        self, report_id: str, now: datetime, lease_seconds: int, lease_token: str, batch_id: str | None = None
    ) -> Report:
        def allowed(r: Report) -> bool:
            return r.status is ReportStatus.PENDING or (
                r.status is ReportStatus.PROCESSING
                and r.lease_expires_at is not None
                and r.lease_expires_at < now
            )

        current = self.items.get(report_id)
        attempts = (current.attempts if current else 0) + 1
        was_pending = current is not None and current.status is ReportStatus.PENDING
        claimed = self._update(
            report_id,
            allowed,
            status=ReportStatus.PROCESSING,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            lease_token=lease_token,
            updated_at=now,
            attempts=attempts,
        )
        if was_pending:
            self._count(batch_id, processing=1)
        return claimed

    def complete(
        self,
        report_id: str,
        lease_token: str,
        summary: Summary,
        usage: Usage,
        now: datetime,
        batch_id: str | None = None,
    ) -> Report:
        report = self._update(
            report_id,
            lambda r: r.status is ReportStatus.PROCESSING,
            status=ReportStatus.COMPLETED,
            summary=summary,
            usage=usage,
            updated_at=now,
            lease_expires_at=None,
            lease_token=None,
            error=None,
        )
        self._count(batch_id, processing=-1, completed=1)
        return report

    def fail(
        self,
        report_id: str,
        error: ErrorInfo,
        now: datetime,
        lease_token: str | None = None,
        batch_id: str | None = None,
    ) -> Report:
        def allowed(r: Report) -> bool:
            if lease_token is not None:
                return r.status is ReportStatus.PROCESSING and r.lease_token == lease_token
            return r.status is ReportStatus.PENDING

        report = self._update(
            report_id,
            allowed,
            status=ReportStatus.FAILED,
            error=error,
            updated_at=now,
            lease_expires_at=None,
            lease_token=None,
        )
        if lease_token is not None:
            self._count(batch_id, processing=-1, failed=1)
        else:
            self._count(batch_id, failed=1)
        return report

    def extend_lease(self, report_id: str, lease_token: str, now: datetime, lease_seconds: int) -> None:
        with self._lock:
            current = self.items.get(report_id)
            if current is None:
                raise ReportNotFoundError("report not found")
            if current.status is not ReportStatus.PROCESSING or current.lease_token != lease_token:
                raise ConflictError("report state changed", current=current)
            self.items[report_id] = current.model_copy(
                update={"lease_expires_at": now + timedelta(seconds=lease_seconds)}
            )

    def release(self, report_id: str, lease_token: str, now: datetime, batch_id: str | None = None) -> None:
        self._update(
            report_id,
            lambda r: r.status is ReportStatus.PROCESSING and r.lease_token == lease_token,
            status=ReportStatus.PENDING,
            updated_at=now,
            lease_expires_at=None,
            lease_token=None,
        )
        self._count(batch_id, processing=-1)

    def mark_event_published(self, report_id: str, status: ReportStatus) -> None:
        try:
            self._update(report_id, lambda r: r.status is status, event_published=True)
        except (ConflictError, ReportNotFoundError):
            return

    def mark_next_released(self, report_id: str) -> None:
        if report_id in self.items:
            self._update(report_id, lambda r: True, next_released=True)

    # -- operators ---------------------------------------------------------------------------------
    def describe_many(self, report_ids: Sequence[str]) -> list[Report]:
        return [
            self.items[r].model_copy(update={"text": None, "summary": None})
            for r in dict.fromkeys(report_ids)
            if r in self.items
        ]

    def reopen(self, report_id: str, now: datetime, batch_id: str | None = None) -> Report:
        current = self.items.get(report_id)
        report = self._update(
            report_id,
            lambda r: r.status is ReportStatus.FAILED,
            status=ReportStatus.PENDING,
            previous_error=current.error if current else None,
            error=None,
            redriven_at=now,
            redrive_count=(current.redrive_count if current else 0) + 1,
            updated_at=now,
            event_published=False,
        )
        self._count(batch_id, failed=-1)
        return report

    def mark_purged(self, report_id: str, error: ErrorInfo, now: datetime) -> Report:
        return self._update(report_id, lambda r: r.status is ReportStatus.FAILED, error=error, updated_at=now)


@dataclass
class FakeQueue(WorkQueue):
    """Records what is sent: ``messages`` (and their report ids in ``sent``); ``unsendable`` report
    ids (or every message, with ``fail``) are refused."""

    fail: bool = False
    messages: list[WorkMessage] = field(default_factory=list)
    delays: list[tuple[str, int]] = field(default_factory=list)

    unsendable: set[str] = field(default_factory=set)

    @property
    def sent(self) -> list[str]:
        return [m.report_id for m in self.messages]

    def enqueue(self, message: WorkMessage) -> None:
        if self.fail or message.report_id in self.unsendable:
            raise EnqueueError("work queue unavailable")
        self.messages.append(message)

    def enqueue_many(self, messages: Sequence[WorkMessage]) -> list[WorkMessage]:
        unsent = [m for m in messages if self.fail or m.report_id in self.unsendable]
        self.messages.extend(m for m in messages if m not in unsent)
        return unsent

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        self.delays.append((receipt_handle, delay_seconds))


@dataclass
class FakePublisher(EventPublisher):
    failures_left: int = 0
    events: list[tuple[ReportEvent, str]] = field(default_factory=list)

    def publish(self, event: ReportEvent, owner: str) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise PublishError("event topic unavailable")
        self.events.append((event, owner))


@dataclass
class ScriptedSummarizer(Summarizer):
    """Replies (or raises) from a script, in order; the last entry repeats.

    An entry is the reply's text, the forced tool's input (a dict), a whole ``ModelReply`` or an
    exception to raise. ``requests`` records every ``ModelRequest``; ``model_id`` picks the family
    (the default, an unknown model, is driven by prompt JSON).
    """

    script: Sequence[str | dict[str, Any] | ModelReply | Exception]
    requests: list[ModelRequest] = field(default_factory=list)
    model_id: str = "test-model"

    @property
    def calls(self) -> list[str]:
        """The user message of every call, in order."""
        return [request.user_text for request in self.requests]

    def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        step = self.script[min(len(self.requests) - 1, len(self.script) - 1)]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, ModelReply):
            return step
        if isinstance(step, dict):
            return ModelReply(
                text="",
                input_tokens=100,
                output_tokens=40,
                model_id=self.model_id,
                latency_ms=5.0,
                tool_input=step,
                stop_reason="tool_use",
            )
        return ModelReply(
            text=step, input_tokens=100, output_tokens=40, model_id=self.model_id, latency_ms=5.0
        )


class InMemoryBatchRepository(BatchRepository):
    """Batches whose counts come from the report fake's per-batch counters."""

    def __init__(self, reports: InMemoryRepository) -> None:
        self.reports = reports
        self.items: dict[str, Batch] = {}

    def create(self, batch: Batch) -> None:
        assert batch.batch_id not in self.items
        self.items[batch.batch_id] = batch

    def get(self, batch_id: str) -> Batch | None:
        batch = self.items.get(batch_id)
        if batch is None:
            return None
        c = self.reports.counters[batch_id]
        done = c["processing"] + c["completed"] + c["failed"] + c["cancelled"]
        counts = RequestCounts(
            total=batch.total,
            pending=batch.total - done,
            processing=c["processing"],
            completed=c["completed"],
            failed=c["failed"],
            cancelled=c["cancelled"],
        )
        return batch.model_copy(update={"counts": counts})

    def list_for_owner(
        self, owner: str, limit: int, next_token: str | None
    ) -> tuple[list[Batch], str | None]:
        rows = sorted(
            (b for b in self.items.values() if b.owner == owner), key=lambda b: b.created_at, reverse=True
        )
        start = int(next_token or 0)
        more = start + limit < len(rows)
        return [b for b in (self.get(r.batch_id) for r in rows[start : start + limit]) if b], (
            str(start + limit) if more else None
        )

    def set_status(
        self, batch_id: str, expected: Sequence[BatchStatus], status: BatchStatus, now: datetime
    ) -> bool:
        batch = self.items.get(batch_id)
        if batch is None or batch.status not in expected:
            return False
        update: dict[str, object] = {"status": status, "updated_at": now}
        if status.terminal:
            update["completed_at"] = now
        self.items[batch_id] = batch.model_copy(update=update)
        return True

    def mark_event_published(self, batch_id: str) -> None:
        self.items[batch_id] = self.items[batch_id].model_copy(update={"event_published": True})

    def record_errors(self, batch_id: str, errors: Sequence[LineError]) -> None:
        self.items[batch_id] = self.items[batch_id].model_copy(update={"errors": list(errors)})

    def start(self, batch_id: str, total: int, now: datetime) -> bool:
        batch = self.items.get(batch_id)
        if batch is None or batch.status is not BatchStatus.VALIDATING:
            return False
        self.items[batch_id] = batch.model_copy(
            update={"status": BatchStatus.IN_PROGRESS, "total": total, "updated_at": now}
        )
        return True


@dataclass
class FakeDeadLetterQueue(DeadLetterQueue):
    """Messages with SQS-like hiding: received ones are hidden until released (or deleted)."""

    messages: dict[str, DeadLetter] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_delete: bool = False
    lane: Lane = Lane.INTERACTIVE

    def add(self, body: str, sent_at: datetime, receive_count: int = 5) -> DeadLetter:
        message_id = f"{self.lane.value[0]}{len(self.messages) + len(self.deleted):04d}"
        message = DeadLetter(message_id, f"rh-{message_id}", body, receive_count, sent_at, lane=self.lane)
        self.messages[message_id] = message
        return message

    def snapshot(self, visibility_seconds: int, max_messages: int) -> tuple[list[DeadLetter], bool]:
        visible = [m for k, m in self.messages.items() if k not in self.hidden]
        taken = visible[:max_messages]
        self.hidden.update(m.message_id for m in taken)
        return taken, len(visible) > max_messages

    def release(self, messages: Sequence[DeadLetter]) -> None:
        self.hidden.difference_update(m.message_id for m in messages)

    def delete(self, message: DeadLetter) -> None:
        self.calls.append(("delete", message.message_id))
        if self.fail_delete:
            raise DeadLetterQueueError("dead-letter queue unavailable")
        self.messages.pop(message.message_id, None)
        self.hidden.discard(message.message_id)
        self.deleted.append(message.message_id)


@dataclass
class InMemoryAuditLog(AuditLog):
    entries: dict[str, AuditEntry] = field(default_factory=dict)

    def record(self, entry: AuditEntry) -> None:
        assert entry.audit_id not in self.entries
        self.entries[entry.audit_id] = entry

    def update_progress(self, audit_id: str, counts: ActionCounts, status: str, now: datetime) -> None:
        self.entries[audit_id] = self.entries[audit_id].model_copy(
            update={"counts": counts, "status": status, "updated_at": now}
        )

    def get(self, audit_id: str) -> AuditEntry | None:
        return self.entries.get(audit_id)

    def list(self, limit: int, next_token: str | None) -> tuple[list[AuditEntry], str | None]:
        ordered = sorted(self.entries.values(), key=lambda e: e.at, reverse=True)
        return ordered[:limit], None


def pending_report(report_id: str, text: str, now: datetime) -> Report:
    """A PENDING radiology report of clinic-a, as ``POST /summarize`` stores it."""
    return Report(
        report_id=report_id,
        owner="arn:aws:iam::123456789012:user/clinic-a",
        patient_id="p-1",
        report_type=ReportType.RADIOLOGY,
        status=ReportStatus.PENDING,
        created_at=now,
        updated_at=now,
        text=text,
        expires_at=0,
    )
