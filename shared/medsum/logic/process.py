"""The worker's use case: claim a report, summarize it, record the outcome, announce it.

Outcomes for one work message:
- report gone, or already COMPLETED/FAILED: acknowledged, no model call (its event is re-published
  if an earlier attempt crashed between the state change and the publish);
- held by a live lease: ``RequeueError`` (another delivery is working on it);
- not enough time left in the invocation to start a model call: the lease is released and the
  message goes back to the queue at once (``RequeueError`` with a short delay), never left to time out;
- non-retryable model error or invalid output: FAILED at once, acknowledged;
- retryable errors that outlast the budget: ``RequeueError`` with a backoff delay; on the last allowed
  receive the report is first marked FAILED (``dead_lettered``) so its state matches the DLQ.

While the model is called, a heartbeat (``logic/heartbeat.py``) keeps the report's lease and the work
message's visibility short and moves both on: a worker that dies is replaced within about one lease.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from aws_lambda_powertools.metrics import MetricUnit

from medsum.clock import new_id, utcnow
from medsum.errors import (
    ConflictError,
    EnqueueError,
    InvalidModelOutputError,
    NonRetryableSummarizerError,
    OutOfTimeError,
    PublishError,
    ReportNotFoundError,
    RepositoryError,
    RetryableSummarizerError,
)
from medsum.logic.batches import settle_batch
from medsum.logic.heartbeat import Heartbeat
from medsum.logic.lanes import successor
from medsum.logic.reports import report_link
from medsum.logic.summarize import RetryPolicy, TimeBudget, summarize_text
from medsum.models import (
    BatchStatus,
    ErrorInfo,
    EventData,
    Links,
    Report,
    ReportEvent,
    ReportStatus,
    Verification,
    WorkMessage,
)
from medsum.observability import logger, metrics
from medsum.ports import (
    BatchRepository,
    EventPublisher,
    ModelReply,
    ReportRepository,
    Summarizer,
    WorkQueue,
)

MAX_REQUEUE_DELAY_SECONDS = 900
#: A batch item whose successor could not be released comes back this soon to release it.
RELEASE_RETRY_SECONDS = 5
#: Time kept back from the Lambda's remaining time for the final write and the publish.
SAFETY_MARGIN_SECONDS = 15.0
#: A message this invocation has no time for is visible again this soon (another invocation takes it).
OUT_OF_TIME_DELAY_SECONDS = 1
#: The message stays invisible this much longer than the report's lease, so a redelivery after a
#: crash finds the lease already expired (the lease is moved first in each beat).
VISIBILITY_SLACK_SECONDS = 2


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


class RequeueError(Exception):
    """Return the message to the queue; it becomes visible again after ``delay_seconds``."""

    def __init__(self, reason: str, delay_seconds: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_seconds = delay_seconds


@dataclass(frozen=True)
class WorkerDeps:
    repository: ReportRepository
    summarizer: Summarizer
    publisher: EventPublisher
    public_api_url: str
    lease_seconds: int
    max_receive_count: int
    max_attempts: int
    budget_seconds: float
    requeue_base_delay_seconds: int
    batches: BatchRepository | None = None
    clock: Callable[[], datetime] = field(default=utcnow)
    #: Where a finished batch item releases the next item of its window (the bulk lane's queue).
    bulk_queue: WorkQueue | None = None
    #: Wait range before retrying a throttled model call (the bulk lane's is longer: it yields).
    throttle_wait: tuple[float, float] = (0.05, 0.3)
    #: Output tokens of one model call (a truncated reply is retried once with more room).
    max_tokens: int = 2_048
    #: The model's context window in tokens; 0: its family's (``medsum.modelfamily``).
    context_tokens: int = 0
    #: The longest one model call can take: the Bedrock client's connect + read timeouts. A call
    #: starts only if this plus ``SAFETY_MARGIN_SECONDS`` fits in the invocation's remaining time.
    #: Required: it must match the client the summarizer actually uses.
    call_seconds: float = field(kw_only=True)


def requeue_delay(base_seconds: int, receive_count: int) -> int:
    """Outer-loop backoff: base · 2^(n-1), capped (SQS redelivery is the outer retry loop)."""
    return int(min(MAX_REQUEUE_DELAY_SECONDS, base_seconds * 2 ** max(0, receive_count - 1)))


def publish_terminal_event(deps: WorkerDeps, report: Report) -> None:
    """Publish ``report.completed``/``report.failed`` and remember that it was published.

    Raises ``PublishError``: the message is then retried, and the redelivery re-publishes because
    the report's ``event_published`` flag is still unset (at-least-once; the event id is stable).
    """
    status = report.status
    if status is ReportStatus.CANCELLED:
        return  # cancelled batch items are announced by the batch's own event
    event = ReportEvent(
        type="report.completed" if status is ReportStatus.COMPLETED else "report.failed",
        id=f"evt_{report.report_id}_{status.value.lower()}",
        timestamp=deps.clock(),
        data=EventData(
            report_id=report.report_id,
            status=status,
            links=Links(self=report_link(deps.public_api_url, report.report_id)),
        ),
    )
    deps.publisher.publish(event, owner=report.owner)
    deps.repository.mark_event_published(report.report_id, status)


def _settle(deps: WorkerDeps, report: Report) -> None:
    """After a batch item reached a terminal state, settle its batch if it was the last one."""
    if report.batch_id and deps.batches is not None:
        settle_batch(deps.batches, deps.publisher, report.batch_id, deps.public_api_url, deps.clock())


def _release_next(deps: WorkerDeps, message: WorkMessage | None, report: Report | None) -> None:
    """A batch item is done with (finished, cancelled, or gone): release the next item of its window.

    Raises ``RequeueError`` when the send fails, so the message comes back soon and the redelivery
    (which finds the item finished and not yet ``next_released``) sends it.
    """
    following = successor(message) if message is not None else None
    if following is None or deps.bulk_queue is None:
        return
    if report is not None and report.next_released:
        return
    try:
        deps.bulk_queue.enqueue(following)
    except EnqueueError as exc:
        logger.warning("next batch item not released; message returned to queue", batch_id=following.batch_id)
        raise RequeueError("the next item of the batch could not be released", RELEASE_RETRY_SECONDS) from exc
    if report is not None:
        try:
            deps.repository.mark_next_released(report.report_id)
        except RepositoryError:
            # At worst a redelivery sends the next item again: a duplicate the claim absorbs.
            logger.warning("next batch item released but not recorded", report_id=report.report_id)


def _cancel_if_requested(deps: WorkerDeps, report_id: str, batch_id: str) -> Report | None:
    """A not-yet-started item of a cancelling batch becomes CANCELLED (None: go on as usual)."""
    if deps.batches is None:
        return None
    batch = deps.batches.get(batch_id)
    if batch is None or batch.status not in (BatchStatus.CANCELLING, BatchStatus.CANCELLED):
        return None
    try:
        return deps.repository.cancel(report_id, batch_id, deps.clock())
    except (ConflictError, ReportNotFoundError):
        return None  # started or finished already: it finishes normally


def process_report(
    report_id: str,
    receive_count: int,
    deps: WorkerDeps,
    remaining_seconds: Callable[[], float],
    batch_id: str | None = None,
    message: WorkMessage | None = None,
    keep_invisible: Callable[[int], None] | None = None,
) -> Outcome:
    """Process one work message for ``report_id`` (see the module docstring for outcomes).

    ``message`` is the work message itself: a batch item's message names the item its window
    releases once this one is done with (``logic/lanes.py``). ``keep_invisible(seconds)`` hides the
    work message for that many more seconds (SQS ``ChangeMessageVisibility``): the heartbeat's hold
    on the message.

    Raises
    ------
    RequeueError
        The message must go back to the queue (leased elsewhere, retryable errors, no time left).
    PublishError
        The terminal state was written but its event could not be published.
    """
    time_budget = TimeBudget(
        remaining=remaining_seconds, call_seconds=deps.call_seconds, reserve_seconds=SAFETY_MARGIN_SECONDS
    )
    if remaining_seconds() < SAFETY_MARGIN_SECONDS:  # not even time to record an outcome
        raise RequeueError("not enough time left in this invocation", OUT_OF_TIME_DELAY_SECONDS)
    if keep_invisible is not None:
        # Hold the message for one lease from now on, before anything else: a worker that dies from
        # here on is replaced within about a lease, not after the queue's visibility timeout.
        keep_invisible(deps.lease_seconds + VISIBILITY_SLACK_SECONDS)
    if batch_id is not None:
        cancelled = _cancel_if_requested(deps, report_id, batch_id)
        if cancelled is not None:
            metrics.add_metric(name="ReportsCancelled", unit=MetricUnit.Count, value=1)
            logger.info("batch item cancelled", report_id=report_id, batch_id=batch_id)
            _settle(deps, cancelled)
            _release_next(deps, message, cancelled)
            return Outcome.SKIPPED
    lease_token = new_id()
    try:
        report = deps.repository.claim(
            report_id, deps.clock(), deps.lease_seconds, lease_token, batch_id=batch_id
        )
    except ReportNotFoundError:
        logger.info("report no longer exists; acknowledging", report_id=report_id)
        _release_next(deps, message, None)
        return Outcome.SKIPPED
    except ConflictError as conflict:
        current = conflict.current
        if current is None:
            _release_next(deps, message, None)
            return Outcome.SKIPPED
        if current.status.terminal:
            logger.info("report already terminal; acknowledging", report_id=report_id, status=current.status)
            if not current.event_published:
                publish_terminal_event(deps, current)
            _settle(deps, current)
            _release_next(deps, message, current)
            return Outcome.SKIPPED
        lease_left = (current.lease_expires_at or deps.clock()) - deps.clock()
        raise RequeueError(
            "report is leased by another delivery", max(1, int(lease_left.total_seconds()))
        ) from None

    text = report.text or ""
    logger.info("report claimed", report_id=report_id, attempt=report.attempts, receive_count=receive_count)
    policy = RetryPolicy(
        max_attempts=deps.max_attempts,
        budget_seconds=deps.budget_seconds,
        throttle_wait=deps.throttle_wait,
        time=time_budget,
    )
    try:
        with Heartbeat(_keep_alive(deps, report_id, lease_token, keep_invisible), deps.lease_seconds / 3):
            result = summarize_text(
                text,
                report.report_type,
                deps.summarizer,
                policy,
                on_retry=_on_retry,
                on_reply=_on_reply,
                max_tokens=deps.max_tokens,
                context_tokens=deps.context_tokens,
            )
    except OutOfTimeError as exc:
        metrics.add_metric(name="WorkOutOfTime", unit=MetricUnit.Count, value=1)
        logger.info("no time left for a model call; returning message to queue", report_id=report_id)
        raise _give_back(
            deps,
            report,
            lease_token,
            message,
            receive_count,
            OUT_OF_TIME_DELAY_SECONDS,
            reason="not enough time left for a model call",
            why="no invocation had time to finish the report in",
        ) from exc
    except NonRetryableSummarizerError as exc:
        error = ErrorInfo(code=exc.code, message="the model rejected this report; it will not be retried")
        return _fail(deps, report, lease_token, error, message)
    except InvalidModelOutputError as exc:
        # A truncated reply (TruncatedModelOutputError) has its own code: never a half-summary.
        return _fail(deps, report, lease_token, ErrorInfo(code=exc.code, message=exc.message), message)
    except RetryableSummarizerError as exc:
        metrics.add_metric(name="BedrockThrottled", unit=MetricUnit.Count, value=1)
        delay = requeue_delay(deps.requeue_base_delay_seconds, receive_count)
        logger.warning(
            "model unavailable; returning message to queue", report_id=report_id, delay_seconds=delay
        )
        raise _give_back(
            deps,
            report,
            lease_token,
            message,
            receive_count,
            delay,
            reason="model unavailable",
            why="the model stayed unavailable for",
        ) from exc

    verification = result.summary.verification
    if verification is not None:
        _verification_metrics(verification)
    try:
        done = deps.repository.complete(
            report_id, lease_token, result.summary, result.usage, deps.clock(), batch_id=report.batch_id
        )
    except (ConflictError, ReportNotFoundError):
        # Only a report that left PROCESSING (finished by another delivery, or deleted) refuses a
        # reply: one whose lease was merely lost is still completed (``ReportRepository.complete``).
        logger.warning("report no longer processing; result discarded", report_id=report_id)
        return Outcome.SKIPPED
    metrics.add_metric(name="ReportsCompleted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="BedrockInputTokens", unit=MetricUnit.Count, value=result.usage.input_tokens)
    metrics.add_metric(name="BedrockOutputTokens", unit=MetricUnit.Count, value=result.usage.output_tokens)
    logger.info(
        "report completed",
        report_id=report_id,
        findings=len(result.summary.key_findings),
        model_calls=result.model_calls,
        items_dropped=verification.items_checked - verification.items_kept if verification else 0,
        needs_review=verification.needs_review if verification else False,
    )
    publish_terminal_event(deps, done)
    _settle(deps, done)
    _release_next(deps, message, done)
    return Outcome.COMPLETED


def _keep_alive(
    deps: WorkerDeps, report_id: str, lease_token: str, keep_invisible: Callable[[int], None] | None
) -> Callable[[], None]:
    """One heartbeat: move the report's lease on, then the message's visibility (a little further,
    so a redelivery after a crash finds the lease expired). A lost lease is logged, not fatal: the
    reply is still kept if the report is still PROCESSING when it arrives."""

    def beat() -> None:
        try:
            deps.repository.extend_lease(report_id, lease_token, deps.clock(), deps.lease_seconds)
        except (ConflictError, ReportNotFoundError):
            logger.warning("lease lost while the model call is running", report_id=report_id)
        except RepositoryError:
            logger.warning("lease not extended; retried at the next beat", report_id=report_id)
        if keep_invisible is not None:
            keep_invisible(deps.lease_seconds + VISIBILITY_SLACK_SECONDS)

    return beat


def _give_back(
    deps: WorkerDeps,
    report: Report,
    lease_token: str,
    message: WorkMessage | None,
    receive_count: int,
    delay: int,
    *,
    reason: str,
    why: str,
) -> RequeueError:
    """The ``RequeueError`` that returns the message after ``delay`` with the lease released; on the
    last allowed receive the report is first FAILED ``dead_lettered`` (``why`` + "N deliveries"), so its
    state matches the message, which moves to the dead-letter queue."""
    if receive_count >= deps.max_receive_count:
        error = ErrorInfo(
            code="dead_lettered",
            message=f"{why} {receive_count} deliveries; the work message was moved to the dead-letter queue",
        )
        _fail(deps, report, lease_token, error, message)
        return RequeueError(f"{reason} on the last allowed delivery", 0)
    _release(deps, report, lease_token)
    return RequeueError(reason, delay)


def _release(deps: WorkerDeps, report: Report, lease_token: str) -> None:
    """Give the lease back (PROCESSING -> PENDING) so the redelivery can claim the report at once."""
    try:
        deps.repository.release(report.report_id, lease_token, deps.clock(), batch_id=report.batch_id)
    except (ConflictError, ReportNotFoundError):
        logger.info("lease already gone when released", report_id=report.report_id)


def _verification_metrics(verification: Verification) -> None:
    """Counts only (no PHI): what the verifier dropped, by reason, and the reports a human should see."""
    dropped = verification.dropped
    for name, value in (
        ("ItemsDroppedUngrounded", dropped.ungrounded),
        ("ItemsDroppedUnsupported", dropped.unsupported),
        ("ItemsDroppedNegated", dropped.negated),
        ("ItemsMarkedUncertain", verification.marked_uncertain),
        ("UngroundedEvidence", verification.quotes_not_found),
        ("ReportsNeedingReview", int(verification.needs_review)),
    ):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _fail(
    deps: WorkerDeps, report: Report, lease_token: str, error: ErrorInfo, message: WorkMessage | None
) -> Outcome:
    report_id = report.report_id
    try:
        failed = deps.repository.fail(
            report_id, error, deps.clock(), lease_token=lease_token, batch_id=report.batch_id
        )
    except (ConflictError, ReportNotFoundError):
        logger.warning("lease lost before failure was recorded", report_id=report_id)
        return Outcome.SKIPPED
    metrics.add_metric(name="ReportsFailed", unit=MetricUnit.Count, value=1)
    logger.warning("report failed", report_id=report_id, error_code=error.code)
    publish_terminal_event(deps, failed)
    _settle(deps, failed)
    _release_next(deps, message, failed)
    return Outcome.FAILED


def _on_retry(attempt: int, error_code: str) -> None:
    metrics.add_metric(name="BedrockRetries", unit=MetricUnit.Count, value=1)
    logger.warning("bedrock call failed; retrying", attempt=attempt, error_code=error_code)


def _on_reply(reply: ModelReply) -> None:
    metrics.add_metric(name="BedrockLatency", unit=MetricUnit.Milliseconds, value=reply.latency_ms)


__all__ = ["Outcome", "PublishError", "RequeueError", "WorkerDeps", "process_report", "requeue_delay"]
