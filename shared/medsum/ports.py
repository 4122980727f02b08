"""Ports: one small abstract interface per external system. Adapters implement them over boto3;
tests implement them with fakes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from medsum.models import ErrorInfo, Report, ReportEvent, ReportStatus, Summary, Usage


@dataclass(frozen=True)
class Page:
    items: list[Report]
    next_token: str | None


class ReportRepository(ABC):
    """Persistence of reports. Every state change is a conditional write."""

    @abstractmethod
    def create(self, report: Report) -> None:
        """Store a new PENDING report. Raises ``ReportTooLargeError``/``RepositoryError``."""

    @abstractmethod
    def get(self, report_id: str) -> Report | None:
        """Strongly consistent read of one report, text included; None when missing."""

    @abstractmethod
    def list_for_patient(self, owner: str, patient_id: str, limit: int, next_token: str | None) -> Page:
        """One owner's reports for one patient, newest first (a Query, never a Scan)."""

    @abstractmethod
    def delete(self, owner: str, report_id: str) -> bool:
        """Erase a report owned by ``owner``. Returns False when there was none to erase."""

    @abstractmethod
    def claim(self, report_id: str, now: datetime, lease_seconds: int, lease_token: str) -> Report:
        """PENDING (or PROCESSING with an expired lease) -> PROCESSING with a lease.

        Raises ``ConflictError`` when the report is in any other state (the caller reads it to
        decide whether it is terminal or leased), ``ReportNotFoundError`` when it is gone.
        """

    @abstractmethod
    def complete(
        self, report_id: str, lease_token: str, summary: Summary, usage: Usage, now: datetime
    ) -> Report:
        """PROCESSING (held by ``lease_token``) -> COMPLETED. Raises ``ConflictError`` otherwise."""

    @abstractmethod
    def fail(self, report_id: str, error: ErrorInfo, now: datetime, lease_token: str | None = None) -> Report:
        """-> FAILED. With a lease token only the lease holder may fail it; without one only a
        non-terminal report may be failed. Raises ``ConflictError`` otherwise."""

    @abstractmethod
    def mark_event_published(self, report_id: str, status: ReportStatus) -> None:
        """Record that the terminal event for ``status`` was published (idempotent, best effort)."""

    @abstractmethod
    def release(self, report_id: str, lease_token: str, now: datetime) -> None:
        """PROCESSING (held by ``lease_token``) -> PENDING, so the next delivery can claim it."""


class WorkQueue(ABC):
    @abstractmethod
    def enqueue(self, report_id: str) -> None:
        """Send one work message (ids only). Raises ``EnqueueError``."""

    @abstractmethod
    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        """Make a received message visible again after ``delay_seconds`` (best effort)."""


class Summarizer(ABC):
    """Turns report text into a model reply. Implementations raise ``RetryableSummarizerError``
    or ``NonRetryableSummarizerError``; they do not retry themselves."""

    @abstractmethod
    def complete(self, system: str, messages: list[dict[str, str]]) -> ModelReply:
        """One model call: ``messages`` are ``{"role": "user"|"assistant", "text": ...}``."""


@dataclass(frozen=True)
class ModelReply:
    text: str
    input_tokens: int
    output_tokens: int
    model_id: str
    latency_ms: float


class EventPublisher(ABC):
    @abstractmethod
    def publish(self, event: ReportEvent, owner: str) -> None:
        """Publish a thin event (ids and links only). Raises ``PublishError``."""
