"""Pydantic models, one per boundary: API request/response, stored item, queue message, event.

Nothing in this module performs I/O. Stored items and queue messages are validated when read back
at the edge (repository and worker), so a malformed record fails loudly instead of half-working.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

PATIENT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MAX_REPORT_CHARS = 100_000
MAX_METADATA_PAIRS = 16
PROMPT_VERSION = "2026-11-30.2"

PatientId = Annotated[str, StringConstraints(pattern=PATIENT_ID_PATTERN, min_length=1, max_length=64)]


class ReportStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"  # only batch items, cancelled before they started

    @property
    def terminal(self) -> bool:
        return self in (ReportStatus.COMPLETED, ReportStatus.FAILED, ReportStatus.CANCELLED)


class ReportType(StrEnum):
    RADIOLOGY = "radiology"
    DISCHARGE = "discharge"
    PATHOLOGY = "pathology"
    PROGRESS_NOTE = "progress_note"
    CONSULTATION = "consultation"
    LABORATORY = "laboratory"
    OPERATIVE = "operative"
    OTHER = "other"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# --------------------------------------------------------------------------------------------------
# Summary contract (see BRIEF.md "Summary contract")
# --------------------------------------------------------------------------------------------------
class EvidenceSpan(StrictModel):
    """Character offsets into the submitted report text: ``text[start:end]`` is the evidence."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Certainty(StrEnum):
    """How the report states an item: plainly, or hedged ("possible", "cannot be excluded", "versus")."""

    DEFINITE = "definite"
    UNCERTAIN = "uncertain"


class SummaryItem(StrictModel):
    text: str
    evidence: list[EvidenceSpan] = Field(default_factory=list)
    #: ``uncertain`` when the item's evidence is hedged, whatever the model said.
    certainty: Certainty = Certainty.DEFINITE


class DroppedCounts(StrictModel):
    """Items removed from the summary, by the first check they failed (counts only: no PHI)."""

    ungrounded: int = Field(default=0, ge=0, description="no evidence quote found in the report")
    unsupported: int = Field(default=0, ge=0, description="the evidence is about something else")
    negated: int = Field(default=0, ge=0, description="the evidence negates what the item asserts")


class Verification(StrictModel):
    """What the verifier checked in the model's output before anyone sees it (docs/api.md)."""

    items_checked: int = Field(ge=0)
    items_kept: int = Field(ge=0)
    dropped: DroppedCounts = Field(default_factory=DroppedCounts)
    #: Items the model stated as definite whose evidence is hedged (kept, ``certainty: uncertain``).
    marked_uncertain: int = Field(default=0, ge=0)
    #: Evidence quotes not found in the report (an item with at least one located quote is kept).
    quotes_not_found: int = Field(default=0, ge=0)
    #: The summary sentence asserts a finding that the report negates.
    summary_contradicts_report: bool = False
    #: Something was dropped or the summary sentence contradicts the report: a human should look.
    needs_review: bool
    #: The report was longer than the model's input budget and was summarized by sections.
    sections: int = Field(default=1, ge=1)
    verifier_version: str


class Summary(StrictModel):
    summary: str
    key_findings: list[SummaryItem] = Field(default_factory=list)
    diagnoses: list[SummaryItem] = Field(default_factory=list)
    medications: list[SummaryItem] = Field(default_factory=list)
    follow_up: list[SummaryItem] = Field(default_factory=list)
    #: Substances the patient is allergic to, each with its reaction in the text when the report
    #: states one ("Penicillin (hives)"). Empty on summaries stored before the list existed.
    allergies: list[SummaryItem] = Field(default_factory=list)
    model_id: str
    prompt_version: str
    #: None only on summaries stored before verification existed.
    verification: Verification | None = None


# What we ask the model for: the same contract, but evidence as verbatim quotes. Offsets are
# computed by us against the submitted text (models are bad at counting characters).
class ModelItem(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    text: Annotated[str, StringConstraints(min_length=1, max_length=2_000)] = Field(
        description="the finding, diagnosis, medication, follow-up action or allergy, in a few words"
    )
    evidence: list[Annotated[str, StringConstraints(min_length=1, max_length=2_000)]] = Field(
        default_factory=list,
        max_length=10,
        description="verbatim quotes from the report that state this item (copied character for character)",
    )
    certainty: Certainty | None = Field(
        default=None, description='"uncertain" when the report hedges the item, otherwise "definite"'
    )


class ModelSummary(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    summary: Annotated[str, StringConstraints(min_length=1, max_length=4_000)] = Field(
        description="a 1-3 sentence overview for a clinician"
    )
    key_findings: list[ModelItem] = Field(
        default_factory=list, max_length=50, description="positive findings"
    )
    diagnoses: list[ModelItem] = Field(
        default_factory=list, max_length=50, description="diagnoses or impressions"
    )
    medications: list[ModelItem] = Field(
        default_factory=list, max_length=50, description="medications the report names"
    )
    follow_up: list[ModelItem] = Field(
        default_factory=list, max_length=50, description="recommended follow-up actions"
    )
    allergies: list[ModelItem] = Field(
        default_factory=list,
        max_length=50,
        description=(
            "substances the patient is allergic to, with the reaction in parentheses when the report "
            'states one ("Penicillin (hives)"); not "no known allergies"'
        ),
    )


class Usage(StrictModel):
    model_id: str
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    #: Prompt-cache tokens (read from / written to Bedrock's cache), not included in ``input_tokens``.
    cache_read_input_tokens: int = Field(default=0, ge=0)
    cache_write_input_tokens: int = Field(default=0, ge=0)
    #: Converse calls this summary took (retries of failed calls not counted).
    model_calls: int = Field(default=1, ge=0)


class ErrorInfo(StrictModel):
    code: str
    message: str


# --------------------------------------------------------------------------------------------------
# API boundary
# --------------------------------------------------------------------------------------------------
class SummarizeRequest(StrictModel):
    patient_id: PatientId
    report_text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_REPORT_CHARS)]
    report_type: ReportType = ReportType.OTHER
    metadata: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=64)],
        Annotated[str, StringConstraints(max_length=512)],
    ] = Field(default_factory=dict, max_length=MAX_METADATA_PAIRS)
    # Optional per-request webhook: report.completed / report.failed for this report go there too,
    # signed with the owner's default secret (POST /webhooks/default-secret).
    callback_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None

    @field_validator("report_text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("report_text must not be blank")
        return value


class Links(StrictModel):
    self: str


class SubmitResponse(StrictModel):
    report_id: str
    status: ReportStatus
    links: Links


class ReportView(StrictModel):
    """What ``GET /reports/{id}`` returns. Never carries the report text."""

    report_id: str
    patient_id: str
    report_type: ReportType
    status: ReportStatus
    created_at: datetime
    updated_at: datetime
    attempts: int
    metadata: dict[str, str] = Field(default_factory=dict)
    summary: Summary | None = None
    error: ErrorInfo | None = None
    usage: Usage | None = None
    batch_id: str | None = None
    custom_id: str | None = None
    links: Links


class ReportListItem(StrictModel):
    report_id: str
    patient_id: str
    report_type: ReportType
    status: ReportStatus
    created_at: datetime
    updated_at: datetime
    links: Links


class ReportPage(StrictModel):
    items: list[ReportListItem]
    next_token: str | None = None


# --------------------------------------------------------------------------------------------------
# Storage boundary
# --------------------------------------------------------------------------------------------------
class Report(BaseModel):
    """A report as stored in the ``PatientReports`` table (text decoded)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    report_id: str
    owner: str
    patient_id: str
    report_type: ReportType
    status: ReportStatus
    created_at: datetime
    updated_at: datetime
    attempts: int = 0
    lease_expires_at: datetime | None = None
    lease_token: str | None = None
    text: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    summary: Summary | None = None
    error: ErrorInfo | None = None
    usage: Usage | None = None
    batch_id: str | None = None
    custom_id: str | None = None
    expires_at: int
    version: int = 1
    event_published: bool = False
    #: Batch items: the next item of this item's window has been released (sent to the bulk lane).
    next_released: bool = False
    # Operator history: when the first retryable failure happened, how often and when the report was
    # put back to work from the dead-letter queue (or retried), and the error it had before that.
    first_failed_at: datetime | None = None
    redriven_at: datetime | None = None
    redrive_count: int = 0
    previous_error: ErrorInfo | None = None


# --------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------
MAX_BATCH_ITEMS = 1_000
#: Most items an uploaded batch file (``POST /batches/uploads``) may hold.
MAX_UPLOAD_ITEMS = 100_000
CUSTOM_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"


class BatchStatus(StrEnum):
    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (BatchStatus.COMPLETED, BatchStatus.CANCELLED, BatchStatus.FAILED)


class BatchItemRequest(SummarizeRequest):
    """One line of a batch: a normal report (the ``/summarize`` rules) plus the caller's correlation id."""

    custom_id: Annotated[str, StringConstraints(pattern=CUSTOM_ID_PATTERN)]
    callback_url: None = None  # batches announce themselves as a whole (batch.completed)


class BatchRequest(StrictModel):
    """``POST /batches`` as ``application/json``. As ``application/x-ndjson`` the body is the items
    alone, one ``BatchItemRequest`` per line. The schema of the documentation: the route validates each
    item on its own, and a malformed item becomes a line error instead of failing the batch."""

    reports: list[BatchItemRequest] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)
    metadata: dict[
        Annotated[str, StringConstraints(max_length=64)],
        Annotated[str, StringConstraints(max_length=512)],
    ] = Field(default_factory=dict, max_length=MAX_METADATA_PAIRS)
    #: batch.completed / batch.cancelled of this batch go there too (signed with the default secret).
    callback_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None


class RequestCounts(StrictModel):
    total: int = 0
    pending: int = 0
    processing: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0


class LineError(StrictModel):
    """A batch input line that was not accepted (the rest of the batch goes on)."""

    line: int
    custom_id: str | None = None
    code: str
    message: str


class Batch(BaseModel):
    """A batch as stored (the ``meta`` item of the ``Batches`` table) with its counts summed."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    batch_id: str
    owner: str
    status: BatchStatus
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    total: int = 0
    counts: RequestCounts = Field(default_factory=RequestCounts)
    errors: list[LineError] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    expires_at: int = 0
    event_published: bool = False


class BatchLinks(StrictModel):
    self: str
    results: str


class BatchView(StrictModel):
    batch_id: str
    status: BatchStatus
    request_counts: RequestCounts
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    expires_at: datetime | None = Field(
        default=None, description="when the batch and its reports are erased (the retention period)"
    )
    metadata: dict[str, str] = Field(default_factory=dict)
    errors: list[LineError] | None = None
    links: BatchLinks


class UploadTarget(StrictModel):
    """Where and how to upload a batch file: a presigned S3 PUT, valid until ``expires_at``."""

    url: str
    method: str = "PUT"
    headers: dict[str, str]
    expires_at: datetime
    max_items: int


class UploadView(StrictModel):
    batch_id: str
    status: BatchStatus
    upload: UploadTarget
    links: BatchLinks


class BatchPage(StrictModel):
    items: list[BatchView]
    next_token: str | None = None


class ResultLine(StrictModel):
    custom_id: str
    report_id: str
    status: ReportStatus
    summary: Summary | None = None
    error: ErrorInfo | None = None


class ResultsLink(StrictModel):
    """The ``303`` body of ``GET /batches/{id}/results`` for large batches (``url`` is also the
    ``Location``): a presigned, short-lived URL of the results file (JSON Lines, as ``ResultLine``)."""

    url: str
    expires_at: datetime
    size: int = Field(description="size of the results file in bytes")


# --------------------------------------------------------------------------------------------------
# Queue and event boundaries (ids only: never report text, summary or patient_id)
# --------------------------------------------------------------------------------------------------
class Lane(StrEnum):
    """The work lanes: each has its own queue, dead-letter queue, alarm and worker concurrency."""

    INTERACTIVE = "interactive"  # POST /summarize: one report a client is waiting for
    BULK = "bulk"  # batch items, released per batch in metered windows (logic/lanes.py)


class WorkMessage(StrictModel):
    """A work message. Batch items also carry their place in the batch: ``seq`` (0-based ordinal of
    the item, which names its report id), ``window`` (how many of the batch's items are released at a
    time) and ``total``. When item ``seq`` finishes, item ``seq + window`` is released (see
    ``logic/lanes.py``). Ids and numbers only: never text."""

    report_id: str
    batch_id: str | None = None
    seq: int | None = Field(default=None, ge=0)
    window: int | None = Field(default=None, ge=1)
    total: int | None = Field(default=None, ge=1)
    version: Literal[1] = 1

    @property
    def lane(self) -> Lane:
        """Batch items travel in the bulk lane, everything else in the interactive lane."""
        return Lane.BULK if self.batch_id else Lane.INTERACTIVE


EventType = Literal["report.completed", "report.failed", "batch.completed", "batch.cancelled"]


class EventData(StrictModel):
    report_id: str
    status: ReportStatus
    links: Links


class BatchEventData(StrictModel):
    batch_id: str
    status: BatchStatus
    request_counts: RequestCounts
    links: BatchLinks


class ReportEvent(StrictModel):
    """A thin event: ids, statuses, counts and links; never text, summaries or patient ids."""

    type: EventType
    id: str
    timestamp: datetime
    data: EventData | BatchEventData

    @property
    def status(self) -> str:
        return self.data.status.value


# --------------------------------------------------------------------------------------------------
# Operators (admin routes): ids, codes, counts and times only — never report text or summaries
# --------------------------------------------------------------------------------------------------
Duration = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,7}[smhd]?$")]
ReportIdList = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=64)]], Field(min_length=1, max_length=1000)
]
Reason = Annotated[str, StringConstraints(min_length=3, max_length=500)]
ErrorCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]


class DeadLetterEntry(StrictModel):
    """One dead-lettered work message joined with its report's record (no text, no summary)."""

    message_id: str
    #: The lane whose dead-letter queue holds the message (a redrive sends it back to that lane).
    lane: Lane = Lane.INTERACTIVE
    report_id: str | None
    owner: str | None = None
    batch_id: str | None = None
    status: ReportStatus | None = None
    error_code: str
    error_message: str
    attempts: int = 0
    receive_count: int
    first_failed_at: datetime | None = None
    last_failed_at: datetime
    age_seconds: int
    redrive_count: int = 0


class DeadLetterPage(StrictModel):
    items: list[DeadLetterEntry]
    next_token: str | None = None
    scanned: int
    truncated: bool = False


class DeadLetterSummary(StrictModel):
    total: int
    by_lane: dict[str, int] = Field(default_factory=dict)
    by_error_code: dict[str, int]
    by_age: dict[str, int]
    truncated: bool = False


class RedriveRequest(StrictModel):
    """Exactly one selection (``report_ids``, ``error_code`` or ``all``), or ``job_id`` to continue
    a job that stopped at the per-request budget."""

    report_ids: ReportIdList | None = None
    error_code: ErrorCode | None = None
    all: bool = False
    max_per_second: float = Field(default=10.0, gt=0, le=100)
    dry_run: bool = False
    reason: Reason | None = None
    job_id: Annotated[str, StringConstraints(pattern=r"^[a-f0-9]{32}$")] | None = None


class PurgeRequest(StrictModel):
    report_ids: ReportIdList | None = None
    older_than: Duration | None = None
    reason: Reason


class RetryRequest(StrictModel):
    reason: Reason


class ActionCounts(StrictModel):
    selected: int = 0
    moved: int = 0
    purged: int = 0
    skipped: int = 0
    failed: int = 0


class JobStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"


class AuditEntry(StrictModel):
    """One operator action, stored durably in the audit table (a redrive's entry is also its job)."""

    audit_id: str
    at: datetime
    principal: str
    action: Literal["dlq.redrive", "dlq.purge", "report.retry"]
    selection: dict[str, str | int | float | bool | list[str] | None]
    reason: str
    dry_run: bool = False
    status: JobStatus = JobStatus.COMPLETED
    counts: ActionCounts = Field(default_factory=ActionCounts)
    updated_at: datetime | None = None


class AuditPage(StrictModel):
    items: list[AuditEntry]
    next_token: str | None = None


class RedriveJobView(StrictModel):
    job_id: str
    status: JobStatus
    dry_run: bool
    selection: dict[str, str | int | float | bool | list[str] | None]
    moved: int
    skipped: int
    failed: int
    selected: int
    remaining: int
    report_ids: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Webhooks: endpoints (registered per owner) and the delivery log (no bodies, no secrets)
# --------------------------------------------------------------------------------------------------
EVENT_TYPES: tuple[EventType, ...] = (
    "report.completed",
    "report.failed",
    "batch.completed",
    "batch.cancelled",
)
MAX_WEBHOOKS_PER_OWNER = 10


class WebhookStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class WebhookCreateRequest(StrictModel):
    """``POST /webhooks``: where to deliver, and which event types (default: all)."""

    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    event_types: list[EventType] = Field(
        default_factory=lambda: list(EVENT_TYPES), min_length=1, max_length=4
    )


class StoredSecret(BaseModel):
    """A signing secret, encrypted with the KMS data key (``ciphertext`` is base64); a rotated-out
    secret keeps signing until ``expires_at``."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    ciphertext: str
    created_at: datetime
    expires_at: datetime | None = None


class Webhook(BaseModel):
    """An endpoint as stored in the ``Webhooks`` table."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    owner: str
    webhook_id: str
    url: str
    event_types: list[EventType]
    status: WebhookStatus = WebhookStatus.ENABLED
    disabled_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    secrets: list[StoredSecret]
    expires_at: int | None = None

    def active_secrets(self, now: datetime) -> list[StoredSecret]:
        """Secrets that sign now, newest first."""
        live = [s for s in self.secrets if s.expires_at is None or s.expires_at > now]
        return sorted(live, key=lambda s: s.created_at, reverse=True)


class WebhookView(StrictModel):
    """What ``GET /webhooks`` returns: never a secret."""

    webhook_id: str
    url: str
    event_types: list[EventType]
    status: WebhookStatus
    disabled_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None = None


class WebhookCreated(WebhookView):
    """The answer to ``POST /webhooks``: the only time the signing secret is shown."""

    secret: str


class SecretRotated(StrictModel):
    webhook_id: str
    secret: str
    previous_secret_expires_at: datetime


class WebhookPage(StrictModel):
    items: list[WebhookView]


class DefaultSecret(StrictModel):
    """The owner's default secret (signs per-request ``callback_url`` deliveries), shown once."""

    secret: str
    previous_secret_expires_at: datetime | None = None


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"  # a retry is scheduled (next_retry_at)
    FAILED = "failed"  # a 4xx other than 410/429, or a refused address: not retried
    DISABLED = "disabled"  # 410 Gone: the endpoint was disabled
    EXHAUSTED = "exhausted"  # the retry schedule is over: the message goes to the notifier DLQ


class DeliveryAttempt(StrictModel):
    """One attempt, as ``GET /reports/{id}/deliveries`` lists it (no body, no headers)."""

    delivery_id: str
    event_id: str
    event_type: EventType
    webhook_id: str
    url: str
    attempt: int
    attempted_at: datetime
    status_code: int | None = None
    latency_ms: int
    outcome: DeliveryOutcome
    error: str | None = None
    next_retry_at: datetime | None = None


class DeliveryPage(StrictModel):
    items: list[DeliveryAttempt]


class DeliveryState(BaseModel):
    """Per (event, endpoint): whether it was delivered, and the event to replay (thin, no PHI)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    delivery_id: str
    owner: str
    webhook_id: str
    subject_id: str  # report or batch id
    event: str  # the envelope JSON
    delivered: bool = False
    attempts: int = 0


class ReplayAccepted(StrictModel):
    delivery_id: str
    status: Literal["queued"] = "queued"


class ReplayMessage(StrictModel):
    """Notifier queue message that re-sends one delivery (``POST /webhooks/deliveries/{id}/replay``)."""

    replay_delivery_id: str
