"""Ports: one small abstract interface per external system. Adapters implement them over boto3;
tests implement them with fakes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from medsum.modelfamily import ModelFamily, family_for
from medsum.models import (
    ActionCounts,
    AuditEntry,
    Batch,
    BatchStatus,
    DeliveryAttempt,
    DeliveryState,
    ErrorInfo,
    Lane,
    LineError,
    Report,
    ReportEvent,
    ReportStatus,
    StoredSecret,
    Summary,
    Usage,
    Webhook,
    WorkMessage,
)
from medsum.netguard import Target


@dataclass(frozen=True)
class Page:
    items: list[Report]
    next_token: str | None


@dataclass(frozen=True)
class BatchItemRef:
    """A batch item as the ``ByBatch`` index lists it."""

    custom_id: str
    report_id: str
    status: ReportStatus


class ReportRepository(ABC):
    """Persistence of reports. Every state change is a conditional write.

    A report that belongs to a batch (``batch_id``) has each state change counted in the batch's
    counters in the same transaction, so a report is counted exactly once per transition whatever
    the number of deliveries.
    """

    @abstractmethod
    def create(self, report: Report) -> None:
        """Store a new PENDING report. Raises ``ReportTooLargeError``/``RepositoryError``."""

    @abstractmethod
    def create_many(self, reports: Sequence[Report]) -> None:
        """Store new PENDING reports with batched writes (unprocessed items retried).

        Raises ``PartialWriteError`` (with the ids that were written) when some could not be.
        """

    @abstractmethod
    def get(self, report_id: str) -> Report | None:
        """Strongly consistent read of one report, text included; None when missing."""

    @abstractmethod
    def get_many(self, report_ids: Sequence[str]) -> list[Report]:
        """Reports by id (missing ones are left out), with batched reads."""

    @abstractmethod
    def list_for_patient(self, owner: str, patient_id: str, limit: int, next_token: str | None) -> Page:
        """One owner's reports for one patient, newest first (a Query, never a Scan)."""

    @abstractmethod
    def batch_items(self, batch_id: str) -> list[BatchItemRef]:
        """Every item of a batch, ordered by ``custom_id`` (a Query on the ``ByBatch`` index)."""

    @abstractmethod
    def delete(self, owner: str, report_id: str) -> bool:
        """Erase a report owned by ``owner``. Returns False when there was none to erase."""

    @abstractmethod
    def claim(
        self, report_id: str, now: datetime, lease_seconds: int, lease_token: str, batch_id: str | None = None
    ) -> Report:
        """PENDING (or PROCESSING with an expired lease) -> PROCESSING with a lease.

        Raises ``ConflictError`` when the report is in any other state (``current`` tells which),
        ``ReportNotFoundError`` when it is gone.
        """

    @abstractmethod
    def complete(
        self,
        report_id: str,
        lease_token: str,
        summary: Summary,
        usage: Usage,
        now: datetime,
        batch_id: str | None = None,
    ) -> Report:
        """PROCESSING -> COMPLETED. Raises ``ConflictError`` otherwise.

        The lease token is not required to match: a valid reply that arrives after its lease was
        taken over by another delivery is kept, not thrown away (that delivery then finds the report
        COMPLETED). Only a report that is no longer PROCESSING refuses it."""

    @abstractmethod
    def fail(
        self,
        report_id: str,
        error: ErrorInfo,
        now: datetime,
        lease_token: str | None = None,
        batch_id: str | None = None,
    ) -> Report:
        """-> FAILED. With a lease token only the lease holder may fail it; without one only a
        PENDING report may be failed. Raises ``ConflictError`` otherwise."""

    @abstractmethod
    def cancel(self, report_id: str, batch_id: str, now: datetime) -> Report:
        """PENDING -> CANCELLED (batch items only). Raises ``ConflictError`` otherwise."""

    @abstractmethod
    def mark_event_published(self, report_id: str, status: ReportStatus) -> None:
        """Record that the terminal event for ``status`` was published (idempotent, best effort)."""

    @abstractmethod
    def extend_lease(self, report_id: str, lease_token: str, now: datetime, lease_seconds: int) -> None:
        """Move the lease held by ``lease_token`` to ``now + lease_seconds`` (the worker's heartbeat).

        Raises ``ConflictError`` when the lease is no longer this token's (expired and taken over, or
        the report left PROCESSING), ``ReportNotFoundError`` when the report is gone."""

    @abstractmethod
    def release(self, report_id: str, lease_token: str, now: datetime, batch_id: str | None = None) -> None:
        """PROCESSING (held by ``lease_token``) -> PENDING, so the next delivery can claim it."""

    @abstractmethod
    def mark_next_released(self, report_id: str) -> None:
        """Remember that the batch item after this one (in its window) was released (no-op when the
        report is gone)."""


class BatchRepository(ABC):
    """Batches and their sharded counters."""

    @abstractmethod
    def create(self, batch: Batch) -> None:
        """Store a new batch (its counters start at zero)."""

    @abstractmethod
    def get(self, batch_id: str) -> Batch | None:
        """The batch with its counters summed (strongly consistent); None when missing."""

    @abstractmethod
    def list_for_owner(
        self, owner: str, limit: int, next_token: str | None
    ) -> tuple[list[Batch], str | None]:
        """One owner's batches, newest first."""

    @abstractmethod
    def set_status(
        self, batch_id: str, expected: Sequence[BatchStatus], status: BatchStatus, now: datetime
    ) -> bool:
        """Conditionally move a batch to ``status``; False when it was not in ``expected``."""

    @abstractmethod
    def mark_event_published(self, batch_id: str) -> None:
        """Record that the batch's terminal event was published."""

    @abstractmethod
    def record_errors(self, batch_id: str, errors: Sequence[LineError]) -> None:
        """Replace the batch's line errors (uploads: found by the ingestion's planning step)."""

    @abstractmethod
    def start(self, batch_id: str, total: int, now: datetime) -> bool:
        """``validating`` -> ``in_progress`` with its ``total``; False when it was not validating."""


@dataclass(frozen=True)
class UploadObject:
    """An uploaded batch file: where it is and which version of it was planned."""

    bucket: str
    key: str
    etag: str
    size: int


class UploadStore(ABC):
    """The batch files bucket: presigned PUTs for uploads, streamed reads for ingestion, and results
    files written in parts and read back through presigned GETs."""

    @abstractmethod
    def presign_put(self, key: str, expires_seconds: int) -> tuple[str, dict[str, str]]:
        """A presigned PUT URL for ``key`` and the headers the caller must send with it."""

    @abstractmethod
    def head(self, bucket: str, key: str) -> UploadObject:
        """The object's current version. Raises ``UploadNotFoundError``."""

    @abstractmethod
    def read_lines(
        self, upload: UploadObject, start_byte: int = 0, end_byte: int | None = None
    ) -> Iterator[bytes]:
        """Stream the object's lines (without the newline) from ``start_byte`` up to ``end_byte``
        (exclusive), of exactly the version ``upload.etag``. Raises ``UploadNotFoundError`` when the
        object is gone or changed."""

    @abstractmethod
    def put_results(self, key: str, chunks: Iterable[bytes]) -> int:
        """Write a results file (JSON Lines) from ``chunks`` without holding it all in memory;
        returns its size in bytes. Raises ``RepositoryError`` when the store is unavailable."""

    @abstractmethod
    def presign_get(self, key: str, expires_seconds: int) -> str:
        """A presigned GET URL for ``key`` (a results file)."""


class WorkQueue(ABC):
    """Where work messages go. A lane router sends each message to its lane's queue
    (``WorkMessage.lane``); a single queue takes every message it is given."""

    @abstractmethod
    def enqueue(self, message: WorkMessage) -> None:
        """Send one work message (ids only). Raises ``EnqueueError``."""

    @abstractmethod
    def enqueue_many(self, messages: Sequence[WorkMessage]) -> list[WorkMessage]:
        """Send work messages in batches (failed entries retried); returns the messages never sent."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model is made to call; its input is the structured answer (JSON schema)."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ModelRequest:
    """One model call: fixed instructions, one user message, optionally the answer as a forced tool.

    ``tool`` is sent only to families whose output mode uses tools (``medsum.modelfamily``);
    ``max_tokens`` overrides the adapter's default (a truncated reply is retried with more room).
    """

    system: str
    user_text: str
    tool: ToolSpec | None = None
    max_tokens: int | None = None


class Summarizer(ABC):
    """Turns a model request into a model reply. Implementations raise ``RetryableSummarizerError``
    or ``NonRetryableSummarizerError``; they do not retry themselves."""

    model_id: str

    @property
    def family(self) -> ModelFamily:
        """How this model is driven (tool or prompt JSON, caching, context): ``medsum.modelfamily``."""
        return family_for(self.model_id)

    @abstractmethod
    def complete(self, request: ModelRequest) -> ModelReply:
        """One model call."""


@dataclass(frozen=True)
class ModelReply:
    text: str
    input_tokens: int
    output_tokens: int
    model_id: str
    latency_ms: float
    #: The forced tool's input (the structured answer), when the model called the tool.
    tool_input: dict[str, Any] | None = None
    #: Converse ``stopReason``: ``end_turn``, ``tool_use``, ``max_tokens`` (cut off), ``guardrail_intervened``
    stop_reason: str = "end_turn"
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0


class EventPublisher(ABC):
    @abstractmethod
    def publish(self, event: ReportEvent, owner: str) -> None:
        """Publish a thin event (ids and links only). Raises ``PublishError``."""


@dataclass(frozen=True)
class DeadLetter:
    """A message received from the dead-letter queue (hidden until released or deleted)."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at: datetime
    #: The lane whose dead-letter queue holds the message.
    lane: Lane = Lane.INTERACTIVE


class Redelivery(Protocol):
    """What a queue-driven function (worker, notifier) needs of the queue a message came from
    (``SqsWorkQueue``): give the received message back with a delay."""

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        """Make the received message visible again ``delay_seconds`` from now."""


class DeadLetterQueue(ABC):
    """The work queue's dead-letter queue, read by operators only."""

    @abstractmethod
    def snapshot(self, visibility_seconds: int, max_messages: int) -> tuple[list[DeadLetter], bool]:
        """Receive every message (up to ``max_messages``), each once, hidden for ``visibility_seconds``.

        Returns the messages and whether the scan stopped at ``max_messages`` (truncated). The caller
        must ``release`` what it does not delete. Raises ``DeadLetterQueueError``.
        """

    @abstractmethod
    def release(self, messages: Sequence[DeadLetter]) -> None:
        """Make received messages visible again at once (best effort: they reappear anyway)."""

    @abstractmethod
    def delete(self, message: DeadLetter) -> None:
        """Delete one received message. Raises ``DeadLetterQueueError``."""


class OperatorReportStore(ABC):
    """The operator's view of reports: never text or summaries, conditional state changes."""

    @abstractmethod
    def describe_many(self, report_ids: Sequence[str]) -> list[Report]:
        """Reports by id without text or summary (missing ones are left out)."""

    @abstractmethod
    def reopen(self, report_id: str, now: datetime, batch_id: str | None = None) -> Report:
        """FAILED -> PENDING for a redrive or retry: attempts kept, ``previous_error`` set from the
        error, ``redriven_at``/``redrive_count`` recorded, event flag cleared. Raises ``ConflictError``
        (with ``current``) when the report is not FAILED, ``ReportNotFoundError`` when it is gone."""

    @abstractmethod
    def mark_purged(self, report_id: str, error: ErrorInfo, now: datetime) -> Report:
        """FAILED -> FAILED with ``error`` (code ``purged``). Raises ``ConflictError`` otherwise."""


class AuditLog(ABC):
    """Operator actions, append-only (no delete anywhere); a redrive's entry doubles as its job."""

    @abstractmethod
    def record(self, entry: AuditEntry) -> None:
        """Store a new entry. Raises ``RepositoryError``."""

    @abstractmethod
    def update_progress(self, audit_id: str, counts: ActionCounts, status: str, now: datetime) -> None:
        """Replace the counts and status of an entry (a redrive job's progress)."""

    @abstractmethod
    def get(self, audit_id: str) -> AuditEntry | None:
        """One entry (strongly consistent), None when missing."""

    @abstractmethod
    def list(self, limit: int, next_token: str | None) -> tuple[list[AuditEntry], str | None]:
        """Entries, newest first."""


class WebhookRepository(ABC):
    """Registered endpoints, keyed by owner (another owner's endpoint is never found)."""

    @abstractmethod
    def create(self, webhook: Webhook) -> None:
        """Store a new endpoint."""

    @abstractmethod
    def list_for_owner(self, owner: str) -> list[Webhook]:
        """Every registered endpoint (``wh_…``) of ``owner`` (a Query on the partition key); not the
        default secret or per-report callbacks, which are read with :meth:`get`."""

    @abstractmethod
    def get(self, owner: str, webhook_id: str) -> Webhook | None:
        """One endpoint of ``owner``; None when missing or another owner's."""

    @abstractmethod
    def delete(self, owner: str, webhook_id: str) -> bool:
        """Remove an endpoint; False when there was none."""

    @abstractmethod
    def replace_secrets(
        self, owner: str, webhook_id: str, secrets: Sequence[StoredSecret], now: datetime
    ) -> bool:
        """Set the endpoint's secrets (rotation); False when the endpoint is gone."""

    @abstractmethod
    def disable(self, owner: str, webhook_id: str, reason: str, now: datetime) -> None:
        """Disable an endpoint (it gets no more deliveries)."""


class SecretCipher(ABC):
    """Encrypts signing secrets at rest (KMS), bound to an encryption context."""

    @abstractmethod
    def encrypt(self, plaintext: str, context: dict[str, str]) -> str:
        """Base64 ciphertext of ``plaintext``."""

    @abstractmethod
    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str:
        """The plaintext; the context must match the one used to encrypt."""


class DeliveryLog(ABC):
    """Webhook delivery attempts (per report or batch) and per-(event, endpoint) state."""

    @abstractmethod
    def record_attempt(self, subject_id: str, owner: str, attempt: DeliveryAttempt) -> None:
        """Append one attempt to the subject's log."""

    @abstractmethod
    def attempts(self, subject_id: str, owner: str) -> list[DeliveryAttempt]:
        """The subject's attempts, oldest first (only ``owner``'s)."""

    @abstractmethod
    def get_state(self, delivery_id: str) -> DeliveryState | None:
        """The delivery's state; None when unknown."""

    @abstractmethod
    def put_state(self, state: DeliveryState) -> None:
        """Create or replace the delivery's state."""


@dataclass(frozen=True)
class SendResult:
    """What one HTTP attempt produced: a status (None: no response), its latency and Retry-After."""

    status_code: int | None
    latency_ms: int
    retry_after_seconds: int | None = None
    error: str | None = None  # timeout, connection_error, tls_error


class WebhookSender(ABC):
    """Sends one signed POST to an already checked address. Never follows redirects."""

    @abstractmethod
    def send(
        self, target: Target, addresses: Sequence[str], headers: dict[str, str], body: bytes
    ) -> SendResult:
        """POST ``body`` to ``target`` through one of ``addresses`` (checked public IPs)."""


class ReplayQueue(ABC):
    @abstractmethod
    def enqueue_replay(self, delivery_id: str) -> None:
        """Queue a re-send of one delivery to the notifier. Raises ``EnqueueError``."""
