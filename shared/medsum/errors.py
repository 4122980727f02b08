"""Domain exceptions, and what each one answers over HTTP.

Every error carries its HTTP ``status``, a stable ``code`` and a fixed public ``message`` (class
attributes, overridden per instance only where the code itself varies). The HTTP edge renders exactly
these three (``medsum.http.errors``): never ``str(exc)``, never a stack trace. Messages are fixed
strings: never interpolate report text, summaries or any other request data into them.

A class that sets no status answers ``500 internal_error`` if it ever reaches the edge (errors of the
worker, for instance); ``5xx`` answers always use the generic message of their class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medsum.models import Report

UNAVAILABLE = "the service is temporarily unavailable; retry"


class MedsumError(Exception):
    """Base class of every domain error: ``status``, ``code`` and ``message`` are its HTTP answer."""

    status: int = 500
    code: str = "internal_error"
    message: str = "internal error"
    #: ``details`` of the error shape (ids, locations and counts only), if any.
    details: Sequence[Mapping[str, Any]] = ()
    #: Headers of the HTTP answer (``Allow`` of a 405, for instance).
    headers: Mapping[str, str] = {}


class ReportNotFoundError(MedsumError):
    """The report does not exist, or belongs to another owner (indistinguishable on purpose)."""

    status, code, message = 404, "not_found", "report not found"


class DeadLetterNotFoundError(ReportNotFoundError):
    """An operator asked for the dead-lettered work of a report that has none (admin routes)."""

    message = "report not found (or no dead-lettered work for it)"


class InvalidPageTokenError(MedsumError):
    """A ``next_token`` that we did not issue for this query."""

    status, code, message = 400, "invalid_next_token", "next_token is not valid for this listing"


class ReportTooLargeError(MedsumError):
    """The report does not fit in a stored item even after compression."""

    status, code, message = 413, "report_too_large", "the report is too large to store"


class EnqueueError(MedsumError):
    """The work message could not be sent to the queue."""

    status, code, message = 503, "unavailable", UNAVAILABLE


class RepositoryError(MedsumError):
    """The report store failed in a way the caller cannot fix."""

    status, code, message = 503, "unavailable", UNAVAILABLE


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


class OutOfTimeError(SummarizerError):
    """The invocation has too little time left to start a model call (its read timeout plus the time
    kept back for the final write and publish): the message goes back to the queue at once, before
    the call starts, instead of the function timing out in the middle of a paid-for call."""

    code = "out_of_time"
    message = "not enough time left in this invocation for a model call"


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

    status, code, message = 503, "unavailable", UNAVAILABLE


class PartialWriteError(RepositoryError):
    """A batched write stored only some items; ``written`` lists the ids that were stored."""

    def __init__(self, message: str, written: list[str]) -> None:
        super().__init__(message)
        self.written = written


class BatchNotFoundError(MedsumError):
    """The batch does not exist, or belongs to another owner (indistinguishable on purpose)."""

    status, code, message = 404, "not_found", "batch not found"


class BatchInputError(MedsumError):
    """The batch as a whole cannot be accepted (duplicates, no valid line, too many lines): ``413``
    for ``too_many_items``, else ``400``."""

    def __init__(self, code: str, message: str, details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.status = 413 if code == "too_many_items" else 400
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

    status, code, message = 403, "forbidden", "operators only"


class DeadLetterQueueError(MedsumError):
    """The dead-letter queue could not be read or changed."""

    status, code, message = 503, "unavailable", UNAVAILABLE


class RedriveJobNotFoundError(MedsumError):
    """No redrive job with this id."""

    status, code, message = 404, "not_found", "redrive job not found"


class OperatorRequestError(MedsumError):
    """An operator request that cannot be carried out as asked (bad selection, wrong report state).

    ``conflict`` is true when the request is well formed but the current state forbids it (409)."""

    def __init__(self, code: str, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.status = 409 if conflict else 400
        self.code = code
        self.message = message
        self.conflict = conflict


# --------------------------------------------------------------------------------------------------
# Requests the HTTP edge refuses before (or instead of) any use case
# --------------------------------------------------------------------------------------------------
class IdentityMissingError(MedsumError):
    """No caller identity in the request (API Gateway's IAM authorizer always sets one)."""

    status, code, message = 403, "forbidden", "the caller's identity could not be determined"


class InvalidJsonError(MedsumError):
    """The body is not JSON (not UTF-8, malformed, nested too deep, numbers too long, lone surrogates)."""

    status, code, message = 400, "invalid_json", "the request body is not valid JSON"


class InvalidRequestError(MedsumError):
    """Missing, extra or invalid fields or parameters; ``details`` name known locations only."""

    status, code, message = 400, "invalid_request", "the request is not valid"

    def __init__(self, details: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(self.message)
        self.details = list(details)


class PayloadTooLargeError(MedsumError):
    """The request body is over the route's limit (1 MiB; 5 MiB for ``POST /batches``)."""

    status, code = 413, "payload_too_large"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedMediaTypeError(MedsumError):
    """A body of a media type the route does not take."""

    status, code = 415, "unsupported_media_type"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RouteNotFoundError(MedsumError):
    """No route has this path."""

    status, code, message = 404, "route_not_found", "no such route"


class MethodNotAllowedError(MedsumError):
    """The path exists with other methods (``Allow`` lists them)."""

    status, code = 405, "method_not_allowed"

    def __init__(self, allowed: Sequence[str]) -> None:
        super().__init__("method not allowed")
        self.message = "use one of: " + ", ".join(allowed)
        self.headers = {"Allow": ", ".join(allowed)}


class IdempotencyKeyReusedError(MedsumError):
    """The ``Idempotency-Key`` was used before with a different request body."""

    status, code = 422, "idempotency_key_reused"
    message = "this Idempotency-Key was already used with a different request body"


class RequestInProgressError(MedsumError):
    """A request with the same ``Idempotency-Key`` is being processed right now."""

    status, code, message = 409, "request_in_progress", "a request with this Idempotency-Key is in progress"
