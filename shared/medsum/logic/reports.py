"""Client-facing use cases: submit, read, list and delete reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from medsum.errors import EnqueueError, ReportNotFoundError, RepositoryError
from medsum.logic.webhooks import UrlPolicy, register_callback
from medsum.models import ErrorInfo, Report, ReportStatus, SummarizeRequest, WorkMessage
from medsum.observability import logger, safe_exception_fields
from medsum.ports import Page, ReportRepository, WebhookRepository, WorkQueue


def report_link(public_api_url: str, report_id: str) -> str:
    return f"{public_api_url.rstrip('/')}/reports/{report_id}"


ENQUEUE_FAILED = ErrorInfo.model_construct(
    code="enqueue_failed",
    message="the report could not be queued for processing; submit it again",
)


@dataclass(frozen=True)
class SubmitDeps:
    repository: ReportRepository
    queue: WorkQueue  # the interactive lane
    #: Where a per-request ``callback_url`` is recorded, and the URL rules it must pass (both needed
    #: only by requests that carry one).
    webhooks: WebhookRepository | None = None
    url_policy: UrlPolicy | None = None


def submit_report(
    request: SummarizeRequest,
    owner: str,
    deps: SubmitDeps,
    *,
    report_id: str,
    now: datetime,
    retention_days: int,
) -> Report:
    """Record the request's ``callback_url`` (if any), store a PENDING report and enqueue its work.

    The callback is recorded before anything else, so the report's event always finds it (and a
    refused URL or a missing default secret leaves nothing behind). The record is written next, then
    the message sent. If the send fails the record is marked
    FAILED (``enqueue_failed``) before the error is raised, so it never stays PENDING with no message
    to move it on (see docs/decisions.md).

    Raises
    ------
    UnsafeUrlError, NoDefaultSecretError
        The ``callback_url`` cannot be used (nothing was stored).
    ReportTooLargeError, RepositoryError
        The record could not be written (nothing was enqueued).
    EnqueueError
        The record was written but could not be queued; it is now FAILED.
    """
    expires_at = int((now + timedelta(days=retention_days)).timestamp())
    if request.callback_url:
        if deps.webhooks is None or deps.url_policy is None:
            raise TypeError("SubmitDeps needs webhooks and url_policy for a callback_url")
        register_callback(
            request.callback_url,
            owner,
            report_id,
            ["report.completed", "report.failed"],
            deps.webhooks,
            deps.url_policy,
            now,
            expires_at=expires_at,
        )
    report = Report(
        report_id=report_id,
        owner=owner,
        patient_id=request.patient_id,
        report_type=request.report_type,
        status=ReportStatus.PENDING,
        created_at=now,
        updated_at=now,
        text=request.report_text,
        metadata=dict(request.metadata),
        expires_at=expires_at,
    )
    deps.repository.create(report)
    try:
        deps.queue.enqueue(WorkMessage(report_id=report_id))
    except EnqueueError:
        logger.error("enqueue failed; marking report failed", report_id=report_id)
        try:
            deps.repository.fail(report_id, ENQUEUE_FAILED, now)
        except RepositoryError as exc:
            # Both stores failing at once: the record stays PENDING with no message until its TTL
            # removes it. The client got a 5xx and retries; the error log is the operator's signal.
            logger.error(
                "could not mark report failed after enqueue failure",
                report_id=report_id,
                extra=safe_exception_fields(exc),
            )
        raise
    logger.info("report accepted", report_id=report_id, text_chars=len(request.report_text))
    return report


def get_report(repository: ReportRepository, owner: str, report_id: str) -> Report:
    """The caller's report. Another owner's report is indistinguishable from a missing one."""
    report = repository.get(report_id)
    if report is None or report.owner != owner:
        raise ReportNotFoundError("report not found")
    return report


def list_reports(
    repository: ReportRepository, owner: str, patient_id: str, limit: int, next_token: str | None
) -> Page:
    """The caller's reports for one patient, newest first."""
    return repository.list_for_patient(owner, patient_id, limit, next_token)


def delete_report(repository: ReportRepository, owner: str, report_id: str) -> None:
    """Erase the caller's report (text and summary). Raises ``ReportNotFoundError``."""
    if not repository.delete(owner, report_id):
        raise ReportNotFoundError("report not found")
    logger.info("report deleted", report_id=report_id)
