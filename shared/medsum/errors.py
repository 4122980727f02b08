"""Domain exceptions. Messages are fixed strings: never interpolate report text or summaries."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medsum.models import Report


class MedsumError(Exception):
    """Base class of every domain error."""


class ReportNotFoundError(MedsumError):
    """The report does not exist, or belongs to another owner (indistinguishable on purpose)."""


class InvalidPageTokenError(MedsumError):
    """A ``next_token`` that we did not issue for this query."""


class ReportTooLargeError(MedsumError):
    """The report does not fit in a stored item even after compression."""


class EnqueueError(MedsumError):
    """The work message could not be sent to the queue."""


class RepositoryError(MedsumError):
    """The report store failed in a way the caller cannot fix."""


class ConflictError(MedsumError):
    """A conditional write lost a race (state changed underneath us).

    ``current`` is the item as it was when the condition failed (read in the same call).
    """

    def __init__(self, message: str, current: Report | None = None) -> None:
        super().__init__(message)
        self.current = current


class LeaseHeldError(MedsumError):
    """Another worker holds a live lease on the report; the message must be retried later."""


class SummarizerError(MedsumError):
    """Base class of summarizer failures."""

    code = "summarizer_error"


class RetryableSummarizerError(SummarizerError):
    """Throttling, unavailability, timeouts, connection errors: worth retrying."""

    code = "model_unavailable"


class ThrottledSummarizerError(RetryableSummarizerError):
    """The model's quota refused the call (``ThrottlingException``): retried after a short wait for as
    long as the time budget lasts, without using up the attempts (see ``logic.summarize.RetryPolicy``)."""


class NonRetryableSummarizerError(SummarizerError):
    """Validation, access denied, content too long: retrying cannot help."""

    code = "model_rejected"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidModelOutputError(SummarizerError):
    """The model's reply did not match the summary contract (after one repair attempt)."""

    code = "invalid_model_output"
    message = "the model's reply did not match the summary format after one repair attempt"


class TruncatedModelOutputError(InvalidModelOutputError):
    """The model's reply was cut off at its output limit (``stopReason: max_tokens``), also when asked
    again with more room: a half-summary is never stored."""

    code = "model_output_truncated"
    message = "the model's reply was cut off at its output limit, also when retried with more room"


class PublishError(MedsumError):
    """An event could not be published."""


class PartialWriteError(RepositoryError):
    """A batched write stored only some items; ``written`` lists the ids that were stored."""

    def __init__(self, message: str, written: list[str]) -> None:
        super().__init__(message)
        self.written = written


class BatchNotFoundError(MedsumError):
    """The batch does not exist, or belongs to another owner (indistinguishable on purpose)."""


class BatchInputError(MedsumError):
    """The batch as a whole cannot be accepted (duplicates, no valid line, too many lines)."""

    def __init__(self, code: str, message: str, details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []


class UploadNotFoundError(MedsumError):
    """The uploaded batch file is missing, or changed since it was planned."""


class IngestRejectedError(MedsumError):
    """An uploaded batch cannot be ingested at all (the reason is recorded on the batch)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class IngestRetryableError(MedsumError):
    """A transient failure of an ingestion step: the state machine retries the step."""


class ForbiddenError(MedsumError):
    """The caller is not an operator (admin routes only)."""


class DeadLetterQueueError(MedsumError):
    """The dead-letter queue could not be read or changed."""


class RedriveJobNotFoundError(MedsumError):
    """No redrive job with this id."""


class OperatorRequestError(MedsumError):
    """An operator request that cannot be carried out as asked (bad selection, wrong report state).

    ``conflict`` is true when the request is well formed but the current state forbids it (409)."""

    def __init__(self, code: str, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.conflict = conflict
