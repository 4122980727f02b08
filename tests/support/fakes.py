"""In-memory fakes of the ports, with the same conditional semantics as the DynamoDB adapter."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from medsum.errors import ConflictError, EnqueueError, PublishError, ReportNotFoundError
from medsum.models import ErrorInfo, Report, ReportEvent, ReportStatus, Summary, Usage
from medsum.ports import (
    EventPublisher,
    ModelReply,
    Page,
    ReportRepository,
    Summarizer,
    WorkQueue,
)


class InMemoryRepository(ReportRepository):
    def __init__(self) -> None:
        self.items: dict[str, Report] = {}
        self._lock = threading.Lock()

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

    def claim(self, report_id: str, now: datetime, lease_seconds: int, lease_token: str) -> Report:
        def allowed(r: Report) -> bool:
            return r.status is ReportStatus.PENDING or (
                r.status is ReportStatus.PROCESSING
                and r.lease_expires_at is not None
                and r.lease_expires_at < now
            )

        current = self.items.get(report_id)
        attempts = (current.attempts if current else 0) + 1
        return self._update(
            report_id,
            allowed,
            status=ReportStatus.PROCESSING,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            lease_token=lease_token,
            updated_at=now,
            attempts=attempts,
        )

    def complete(
        self, report_id: str, lease_token: str, summary: Summary, usage: Usage, now: datetime
    ) -> Report:
        return self._update(
            report_id,
            lambda r: r.status is ReportStatus.PROCESSING and r.lease_token == lease_token,
            status=ReportStatus.COMPLETED,
            summary=summary,
            usage=usage,
            updated_at=now,
            lease_expires_at=None,
            lease_token=None,
            error=None,
        )

    def fail(self, report_id: str, error: ErrorInfo, now: datetime, lease_token: str | None = None) -> Report:
        def allowed(r: Report) -> bool:
            if lease_token is not None:
                return r.status is ReportStatus.PROCESSING and r.lease_token == lease_token
            return r.status in (ReportStatus.PENDING, ReportStatus.PROCESSING)

        return self._update(
            report_id,
            allowed,
            status=ReportStatus.FAILED,
            error=error,
            updated_at=now,
            lease_expires_at=None,
            lease_token=None,
        )

    def release(self, report_id: str, lease_token: str, now: datetime) -> None:
        self._update(
            report_id,
            lambda r: r.status is ReportStatus.PROCESSING and r.lease_token == lease_token,
            status=ReportStatus.PENDING,
            updated_at=now,
            lease_expires_at=None,
            lease_token=None,
        )

    def mark_event_published(self, report_id: str, status: ReportStatus) -> None:
        try:
            self._update(report_id, lambda r: r.status is status, event_published=True)
        except (ConflictError, ReportNotFoundError):
            return


@dataclass
class FakeQueue(WorkQueue):
    fail: bool = False
    sent: list[str] = field(default_factory=list)
    delays: list[tuple[str, int]] = field(default_factory=list)

    def enqueue(self, report_id: str) -> None:
        if self.fail:
            raise EnqueueError("work queue unavailable")
        self.sent.append(report_id)

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
    """Replies (or raises) from a script, in order; the last entry repeats."""

    script: list[str | Exception]
    calls: list[list[dict[str, str]]] = field(default_factory=list)
    model_id: str = "test-model"

    def complete(self, system: str, messages: list[dict[str, str]]) -> ModelReply:
        self.calls.append(messages)
        step = self.script[min(len(self.calls) - 1, len(self.script) - 1)]
        if isinstance(step, Exception):
            raise step
        return ModelReply(
            text=step, input_tokens=100, output_tokens=40, model_id=self.model_id, latency_ms=5.0
        )


class FixedClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
