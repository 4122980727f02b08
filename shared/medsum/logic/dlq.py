"""Operators' use cases: inspect the dead-letter queue, redrive or purge it, retry a failed report.

Reading. SQS cannot peek, so the queue is read by receiving every message once with a short visibility
timeout and making them visible again right after (:meth:`DeadLetterQueue.snapshot` / ``release``).
Each message is joined with its report's record (error, owner, batch, attempts; never text).

Redriving one message, in this order (a crash between any two steps duplicates, never loses):

1. the report goes FAILED -> PENDING (conditional; attempts kept, ``redriven_at`` recorded), so the
   worker will claim it — sending first could let the worker see a FAILED report and drop the message;
2. a *new* work message is sent to the work queue (receive count 0, a fresh retry budget);
3. the dead-letter message is deleted.

A crash after 2 leaves a copy in the dead-letter queue; a later redrive sends it again, and the worker
absorbs the duplicate (the first delivery completes the report, the second finds it COMPLETED).

Each request does a bounded amount of work (``budget_seconds``, ``max_moves``) paced at
``max_per_second``; a redrive that has more to do stays ``running`` and is continued with its job id.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from medsum.clock import new_id, utcnow
from medsum.errors import (
    ConflictError,
    DeadLetterNotFoundError,
    DeadLetterQueueError,
    EnqueueError,
    InvalidPageTokenError,
    OperatorRequestError,
    RedriveJobNotFoundError,
    ReportNotFoundError,
    RepositoryError,
)
from medsum.models import (
    ActionCounts,
    AuditEntry,
    AuditPage,
    DeadLetterEntry,
    DeadLetterPage,
    DeadLetterSummary,
    ErrorInfo,
    JobStatus,
    Lane,
    PurgeRequest,
    RedriveJobView,
    RedriveRequest,
    Report,
    ReportStatus,
    WorkMessage,
)
from medsum.observability import logger
from medsum.pagetoken import PageTokenCodec
from medsum.ports import (
    AuditLog,
    DeadLetter,
    DeadLetterQueue,
    OperatorReportStore,
    ReportRepository,
    WorkQueue,
)

#: The scope of the dead-letter listing's page tokens (one listing for every operator).
DLQ_TOKEN_SCOPE = "dlq"  # noqa: S105 - a listing name, not a secret
#: The error code of reports dead-lettered by the worker (see ``logic.process``).
DEAD_LETTERED = "dead_lettered"
PURGED = ErrorInfo.model_construct(
    code="purged", message="an operator deleted the dead-lettered work; it will not be retried"
)
#: Codes of dead-letter entries whose report has no recorded failure.
UNRECORDED = "unrecorded"
REPORT_MISSING = "report_missing"
MALFORMED = "malformed_message"
ALREADY_DONE = "already_finished"

AGE_BUCKETS: tuple[tuple[str, int], ...] = (
    ("<1h", 3600),
    ("1h-6h", 6 * 3600),
    ("6h-24h", 24 * 3600),
    ("1d-7d", 7 * 24 * 3600),
)
OLDEST_BUCKET = ">7d"
MAX_LISTED_IDS = 1000


@dataclass(frozen=True)
class AdminDeps:
    """What the operator use cases need. Times are injectable (``clock``, ``monotonic``, ``sleep``)."""

    #: Every lane's dead-letter queue (``logic.lanes.LaneDeadLetters``).
    dlq: DeadLetterQueue
    reports: OperatorReportStore
    repository: ReportRepository
    #: Routes each message to its own lane (``logic.lanes.LaneQueues``).
    queue: WorkQueue
    audit: AuditLog
    #: Seals the listing's ``next_token`` (the admin function derives its key from the queue's URL).
    page_tokens: PageTokenCodec
    clock: Callable[[], datetime] = field(default=utcnow)
    monotonic: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)
    #: At most this many dead letters are read per request (the listing says ``truncated`` beyond).
    scan_max: int = 2000
    #: Listing: how long read messages may stay hidden if releasing them fails (normally ~0).
    read_visibility_seconds: int = 15
    #: Redrive/purge: messages stay hidden while the request works on them (longer than the budget).
    work_visibility_seconds: int = 60
    #: Wall-clock work per request (API Gateway waits 29 s).
    budget_seconds: float = 20.0
    max_moves: int = 500


@dataclass(frozen=True)
class _Joined:
    message: DeadLetter
    entry: DeadLetterEntry
    report: Report | None
    work: WorkMessage | None


class Pacer:
    """Spaces calls at least ``1 / rate`` seconds apart (so no 1-second window holds more than
    ``rate`` of them), with an injectable clock and sleep."""

    def __init__(self, rate: float, monotonic: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._interval = 1.0 / rate
        self._monotonic = monotonic
        self._sleep = sleep
        self._next: float | None = None

    def next_slot(self) -> float:
        """When the next call may happen."""
        return self._monotonic() if self._next is None else max(self._next, self._monotonic())

    def wait(self) -> None:
        """Sleep until the next slot, then book the one after it."""
        slot = self.next_slot()
        now = self._monotonic()
        if slot > now:
            self._sleep(slot - now)
        self._next = slot + self._interval


def parse_duration(value: str) -> int:
    """``"90"``/``"90s"``, ``"15m"``, ``"2h"``, ``"3d"`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    unit = value[-1] if value[-1] in units else "s"
    number = value[:-1] if value[-1] in units else value
    if not number.isdigit():
        raise OperatorRequestError("invalid_duration", "durations look like 90s, 15m, 2h or 3d")
    return int(number) * units[unit]


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
def _entry(
    message: DeadLetter, report: Report | None, work: WorkMessage | None, now: datetime
) -> DeadLetterEntry:
    if work is None:
        code, text = MALFORMED, "the message body is not a work message"
    elif report is None:
        code, text = REPORT_MISSING, "the report no longer exists (deleted or expired)"
    elif report.status is ReportStatus.FAILED and report.error is not None:
        code, text = report.error.code, report.error.message
    elif report.status.terminal:
        code, text = ALREADY_DONE, "the report already finished; this message is a leftover copy"
    else:
        code, text = UNRECORDED, "no failure was recorded: every delivery crashed or timed out"
    last = (
        report.updated_at if report is not None and report.status is ReportStatus.FAILED else message.sent_at
    )
    return DeadLetterEntry(
        message_id=message.message_id,
        lane=message.lane,
        report_id=work.report_id if work is not None else None,
        owner=report.owner if report is not None else None,
        batch_id=(report.batch_id if report is not None else None) or (work.batch_id if work else None),
        status=report.status if report is not None else None,
        error_code=code,
        error_message=text,
        attempts=report.attempts if report is not None else 0,
        receive_count=message.receive_count,
        first_failed_at=report.first_failed_at if report is not None else None,
        last_failed_at=last,
        age_seconds=max(0, int((now - last).total_seconds())),
        redrive_count=report.redrive_count if report is not None else 0,
    )


def _parse(body: str) -> WorkMessage | None:
    try:
        return WorkMessage.model_validate_json(body)
    except ValidationError:
        return None


def _join(deps: AdminDeps, messages: Sequence[DeadLetter]) -> list[_Joined]:
    works = {m.message_id: _parse(m.body) for m in messages}
    ids = [w.report_id for w in works.values() if w is not None]
    reports = {r.report_id: r for r in deps.reports.describe_many(ids)} if ids else {}
    now = deps.clock()
    joined = []
    for message in messages:
        work = works[message.message_id]
        report = reports.get(work.report_id) if work is not None else None
        joined.append(_Joined(message, _entry(message, report, work, now), report, work))
    joined.sort(key=lambda j: (j.entry.last_failed_at, j.entry.message_id))
    return joined


def _read(deps: AdminDeps) -> tuple[list[_Joined], bool]:
    """Snapshot, join, release at once: messages are hidden only while they are being read."""
    messages, truncated = deps.dlq.snapshot(deps.read_visibility_seconds, deps.scan_max)
    try:
        return _join(deps, messages), truncated
    finally:
        deps.dlq.release(messages)


def _matches(entry: DeadLetterEntry, error_code: str | None, older_than: int | None) -> bool:
    if error_code is not None and entry.error_code != error_code:
        return False
    return older_than is None or entry.age_seconds >= older_than


def _position(entry: DeadLetterEntry) -> dict[str, str]:
    """Where the next page starts: after this entry (the listing's order is failure time, then id)."""
    return {"at": entry.last_failed_at.isoformat(), "id": entry.message_id}


def _resume_after(position: Mapping[str, str]) -> tuple[datetime, str]:
    try:
        return datetime.fromisoformat(position["at"]), position["id"]
    except ValueError as exc:
        raise InvalidPageTokenError(InvalidPageTokenError.message) from exc


def list_dead_letters(
    deps: AdminDeps,
    limit: int,
    next_token: str | None = None,
    error_code: str | None = None,
    older_than: str | None = None,
) -> DeadLetterPage:
    """Dead-lettered work, oldest failure first, ``limit`` per page (``next_token`` continues)."""
    min_age = parse_duration(older_than) if older_than else None
    after = None
    if next_token:
        after = _resume_after(deps.page_tokens.decode(DLQ_TOKEN_SCOPE, next_token, fields={"at", "id"}))
    joined, truncated = _read(deps)
    entries = [j.entry for j in joined if _matches(j.entry, error_code, min_age)]
    if after is not None:
        entries = [e for e in entries if (e.last_failed_at, e.message_id) > after]
    page = entries[:limit]
    token = deps.page_tokens.encode(DLQ_TOKEN_SCOPE, _position(page[-1])) if len(entries) > limit else None
    return DeadLetterPage(items=page, next_token=token, scanned=len(joined), truncated=truncated)


def show_dead_letter(deps: AdminDeps, report_id: str) -> DeadLetterEntry:
    """The dead-letter entry of one report. Raises ``ReportNotFoundError`` when it has none."""
    joined, _ = _read(deps)
    for item in joined:
        if item.entry.report_id == report_id:
            return item.entry
    raise DeadLetterNotFoundError("no dead-lettered work for this report")


def summarize_dead_letters(deps: AdminDeps) -> DeadLetterSummary:
    """Counts by error code and by age bucket."""
    joined, truncated = _read(deps)
    by_code = Counter(j.entry.error_code for j in joined)
    by_age: Counter[str] = Counter({name: 0 for name, _ in AGE_BUCKETS} | {OLDEST_BUCKET: 0})
    for item in joined:
        bucket = next((name for name, limit in AGE_BUCKETS if item.entry.age_seconds < limit), OLDEST_BUCKET)
        by_age[bucket] += 1
    by_lane = Counter({lane.value: 0 for lane in Lane}) + Counter(j.entry.lane.value for j in joined)
    return DeadLetterSummary(
        total=len(joined),
        by_lane={lane.value: by_lane[lane.value] for lane in Lane},
        by_error_code=dict(by_code),
        by_age=dict(by_age),
        truncated=truncated,
    )


def list_audit(deps: AdminDeps, limit: int, next_token: str | None = None) -> AuditPage:
    """Operator actions, newest first."""
    items, token = deps.audit.list(limit, next_token)
    return AuditPage(items=items, next_token=token)


# --------------------------------------------------------------------------------------------------
# Redrive
# --------------------------------------------------------------------------------------------------
def _selection(request: RedriveRequest) -> dict[str, str | int | float | bool | list[str] | None]:
    chosen = [request.report_ids is not None, request.error_code is not None, request.all]
    if sum(chosen) != 1:
        raise OperatorRequestError(
            "invalid_selection", "select exactly one of report_ids, error_code or all=true"
        )
    if not request.reason:
        raise OperatorRequestError("reason_required", "a reason is required")
    selection: dict[str, str | int | float | bool | list[str] | None] = {
        "max_per_second": request.max_per_second
    }
    if request.report_ids is not None:
        selection["report_ids"] = sorted(set(request.report_ids))
    elif request.error_code is not None:
        selection["error_code"] = request.error_code
    else:
        selection["all"] = True
    return selection


def _selected(item: _Joined, selection: dict[str, str | int | float | bool | list[str] | None]) -> bool:
    ids = selection.get("report_ids")
    if isinstance(ids, list):
        return item.entry.report_id in ids
    code = selection.get("error_code")
    if isinstance(code, str):
        return item.entry.error_code == code
    return selection.get("all") is True


def _movable(item: _Joined, now: datetime) -> bool:
    """Whether redriving the message can lead to a summary (else it is skipped and left in place)."""
    report = item.report
    if item.work is None or report is None:
        return False
    if report.status is ReportStatus.FAILED:
        # A purge that crashed before deleting its message: the operator's decision stands.
        return report.error is None or report.error.code != PURGED.code
    if report.status is ReportStatus.PENDING:
        return True
    if report.status is ReportStatus.PROCESSING:
        return report.lease_expires_at is None or report.lease_expires_at < now
    return False  # COMPLETED / CANCELLED: the work is done


def redrive(deps: AdminDeps, principal: str, request: RedriveRequest) -> RedriveJobView:
    """Start (or continue, with ``job_id``) a redrive job and do one request's worth of it.

    Raises ``OperatorRequestError`` (bad selection), ``RedriveJobNotFoundError``,
    ``DeadLetterQueueError``/``RepositoryError`` (AWS unavailable).
    """
    now = deps.clock()
    if request.job_id is not None:
        if request.report_ids is not None or request.error_code is not None or request.all or request.dry_run:
            raise OperatorRequestError(
                "invalid_selection", "a job is continued with its job_id alone (it keeps its selection)"
            )
        entry = deps.audit.get(request.job_id)
        if entry is None or entry.action != "dlq.redrive":
            raise RedriveJobNotFoundError("no such redrive job")
        if entry.status is JobStatus.COMPLETED:
            return _job_view(entry, remaining=0)
    else:
        selection = _selection(request)
        entry = AuditEntry(
            audit_id=new_id(),
            at=now,
            principal=principal,
            action="dlq.redrive",
            selection=selection,
            reason=request.reason or "",
            dry_run=request.dry_run,
            status=JobStatus.RUNNING,
        )
        # Audited before anything changes: a job that crashes half-way is still on record.
        deps.audit.record(entry)
    configured = entry.selection.get("max_per_second")
    rate = float(configured) if isinstance(configured, int | float) and configured > 0 else 10.0
    messages, _ = deps.dlq.snapshot(deps.work_visibility_seconds, deps.scan_max)
    done: set[str] = set()
    try:
        joined = _join(deps, messages)
        chosen = [j for j in joined if _selected(j, entry.selection)]
        movable = [j for j in chosen if _movable(j, now)]
        skipped = len(chosen) - len(movable)
        if entry.dry_run:
            counts = ActionCounts(selected=len(chosen), skipped=skipped)
            deps.audit.update_progress(entry.audit_id, counts, JobStatus.COMPLETED.value, deps.clock())
            ids = [j.entry.report_id for j in movable if j.entry.report_id][:MAX_LISTED_IDS]
            logger.info("redrive dry run", job_id=entry.audit_id, selected=len(chosen), movable=len(movable))
            return RedriveJobView(
                job_id=entry.audit_id,
                status=JobStatus.COMPLETED,
                dry_run=True,
                selection=entry.selection,
                moved=0,
                skipped=skipped,
                failed=0,
                selected=len(chosen),
                remaining=len(movable),
                report_ids=[i for i in ids if i],
            )
        moved, late_skips, failed, processed = _move(deps, movable, rate, done)
    finally:
        deps.dlq.release([m for m in messages if m.message_id not in done])
    remaining = len(movable) - processed
    # Moved messages left the queue; skipped and failed ones are still there and seen again when the
    # job continues, so only ``moved`` accumulates across requests.
    counts = ActionCounts(
        selected=entry.counts.moved + len(chosen),
        moved=entry.counts.moved + moved,
        failed=failed,
        skipped=skipped + late_skips,
    )
    status = JobStatus.COMPLETED if remaining == 0 else JobStatus.RUNNING
    deps.audit.update_progress(entry.audit_id, counts, status.value, deps.clock())
    logger.info(
        "redrive progress",
        job_id=entry.audit_id,
        moved=moved,
        failed=failed,
        skipped=skipped,
        remaining=remaining,
    )
    return _job_view(entry.model_copy(update={"counts": counts, "status": status}), remaining=remaining)


def _move(
    deps: AdminDeps, items: Iterable[_Joined], rate: float, done: set[str]
) -> tuple[int, int, int, int]:
    """Redrive ``items`` within the request's budget, paced. Returns (moved, skipped, failed, processed)."""
    pacer = Pacer(rate, deps.monotonic, deps.sleep)
    deadline = deps.monotonic() + deps.budget_seconds
    outcomes: Counter[str] = Counter()
    processed = 0
    for item in items:
        if processed >= deps.max_moves or pacer.next_slot() >= deadline:
            break
        pacer.wait()
        processed += 1
        outcome = _redrive_one(deps, item)
        outcomes[outcome] += 1
        if outcome == "moved":
            done.add(item.message.message_id)
    return outcomes["moved"], outcomes["skipped"], outcomes["failed"], processed


def _redrive_one(deps: AdminDeps, item: _Joined) -> str:
    """Reset, send, delete (see the module docstring): ``moved``, ``skipped`` or ``failed``."""
    assert item.work is not None and item.report is not None
    report_id, batch_id = item.work.report_id, item.report.batch_id or item.work.batch_id
    reopened = False
    if item.report.status is ReportStatus.FAILED:
        try:
            deps.reports.reopen(report_id, deps.clock(), batch_id=batch_id)
            reopened = True
        except ConflictError as conflict:
            current = conflict.current
            if current is None or current.status.terminal:
                logger.info("report changed before redrive; left in place", report_id=report_id)
                return "skipped"
        except ReportNotFoundError:
            return "skipped"
        except RepositoryError:
            logger.warning("could not reopen report for redrive", report_id=report_id)
            return "failed"
    try:
        # The original message (a batch item's keeps its place in its window), in its own lane.
        deps.queue.enqueue(item.work.model_copy(update={"batch_id": batch_id}))
    except EnqueueError:
        logger.warning("could not send redriven work; report failed again", report_id=report_id)
        if reopened and item.report.error is not None:
            try:
                deps.repository.fail(report_id, item.report.error, deps.clock(), batch_id=batch_id)
            except (ConflictError, ReportNotFoundError, RepositoryError):
                logger.warning("could not restore failed state", report_id=report_id)
        return "failed"
    try:
        deps.dlq.delete(item.message)
    except DeadLetterQueueError:
        # The work is back in the queue; the copy left here is absorbed if it is ever redriven again.
        logger.warning("redriven message not deleted from the dead-letter queue", report_id=report_id)
    return "moved"


def _job_view(entry: AuditEntry, remaining: int) -> RedriveJobView:
    return RedriveJobView(
        job_id=entry.audit_id,
        status=entry.status,
        dry_run=entry.dry_run,
        selection=entry.selection,
        moved=entry.counts.moved,
        skipped=entry.counts.skipped,
        failed=entry.counts.failed,
        selected=entry.counts.selected,
        remaining=remaining,
    )


def get_job(deps: AdminDeps, job_id: str) -> RedriveJobView:
    entry = deps.audit.get(job_id)
    if entry is None or entry.action != "dlq.redrive":
        raise RedriveJobNotFoundError("no such redrive job")
    counts = entry.counts
    left = max(0, counts.selected - counts.moved - counts.skipped - counts.failed)
    return _job_view(entry, remaining=0 if entry.status is JobStatus.COMPLETED else left)


# --------------------------------------------------------------------------------------------------
# Purge and retry
# --------------------------------------------------------------------------------------------------
def purge(deps: AdminDeps, principal: str, request: PurgeRequest) -> AuditEntry:
    """Delete selected dead letters; their reports stay FAILED with code ``purged``."""
    if (request.report_ids is None) == (request.older_than is None):
        raise OperatorRequestError("invalid_selection", "select exactly one of report_ids or older_than")
    min_age = parse_duration(request.older_than) if request.older_than else None
    selection: dict[str, str | int | float | bool | list[str] | None] = (
        {"report_ids": sorted(set(request.report_ids))}
        if request.report_ids
        else {"older_than": request.older_than}
    )
    entry = AuditEntry(
        audit_id=new_id(),
        at=deps.clock(),
        principal=principal,
        action="dlq.purge",
        selection=selection,
        reason=request.reason,
        status=JobStatus.RUNNING,
    )
    deps.audit.record(entry)
    messages, _ = deps.dlq.snapshot(deps.work_visibility_seconds, deps.scan_max)
    done: set[str] = set()
    purged = skipped = failed = 0
    deadline = deps.monotonic() + deps.budget_seconds
    try:
        joined = _join(deps, messages)
        ids = set(request.report_ids or [])
        chosen = [
            j for j in joined if (j.entry.report_id in ids if ids else _matches(j.entry, None, min_age))
        ]
        for item in chosen:
            if deps.monotonic() >= deadline:
                break
            outcome = _purge_one(deps, item)
            if outcome is None:
                skipped += 1
            elif outcome:
                purged += 1
                done.add(item.message.message_id)
            else:
                failed += 1
    finally:
        deps.dlq.release([m for m in messages if m.message_id not in done])
    counts = ActionCounts(selected=len(chosen), purged=purged, skipped=skipped, failed=failed)
    deps.audit.update_progress(entry.audit_id, counts, JobStatus.COMPLETED.value, deps.clock())
    logger.info("dead letters purged", audit_id=entry.audit_id, purged=purged, skipped=skipped, failed=failed)
    return entry.model_copy(update={"counts": counts, "status": JobStatus.COMPLETED})


def _purge_one(deps: AdminDeps, item: _Joined) -> bool | None:
    """Record ``purged`` on the report, then delete the message. None: skipped (being worked on)."""
    report = item.report
    now = deps.clock()
    try:
        if report is not None and report.status is ReportStatus.FAILED:
            deps.reports.mark_purged(report.report_id, PURGED, now)
        elif report is not None and report.status is ReportStatus.PENDING:
            deps.repository.fail(report.report_id, PURGED, now, batch_id=report.batch_id)
        elif report is not None and report.status is ReportStatus.PROCESSING:
            return None  # a delivery is (or was) working on it: leave both alone
        deps.dlq.delete(item.message)
    except (ConflictError, ReportNotFoundError):
        return None
    except (RepositoryError, DeadLetterQueueError):
        logger.warning("could not purge dead letter", message_id=item.message.message_id)
        return False
    return True


def retry_report(deps: AdminDeps, principal: str, report_id: str, reason: str) -> AuditEntry:
    """Put a report that failed for a non-retryable reason back to work (not for dead-lettered ones:
    those are redriven, so that their dead-letter message does not linger)."""
    found = deps.reports.describe_many([report_id])
    if not found:
        raise ReportNotFoundError("report not found")
    report = found[0]
    if report.status is not ReportStatus.FAILED:
        raise OperatorRequestError("not_failed", "only FAILED reports can be retried", conflict=True)
    if report.error is not None and report.error.code == DEAD_LETTERED:
        raise OperatorRequestError(
            "in_dead_letter_queue",
            "this report's work is in the dead-letter queue: redrive it",
            conflict=True,
        )
    entry = AuditEntry(
        audit_id=new_id(),
        at=deps.clock(),
        principal=principal,
        action="report.retry",
        selection={"report_ids": [report_id]},
        reason=reason,
        status=JobStatus.RUNNING,
    )
    deps.audit.record(entry)
    try:
        deps.reports.reopen(report_id, deps.clock(), batch_id=report.batch_id)
    except ConflictError as exc:
        raise OperatorRequestError("not_failed", "only FAILED reports can be retried", conflict=True) from exc
    try:
        deps.queue.enqueue(WorkMessage(report_id=report_id, batch_id=report.batch_id))
    except EnqueueError:
        if report.error is not None:
            deps.repository.fail(report_id, report.error, deps.clock(), batch_id=report.batch_id)
        deps.audit.update_progress(
            entry.audit_id, ActionCounts(selected=1, failed=1), JobStatus.COMPLETED.value, deps.clock()
        )
        raise
    counts = ActionCounts(selected=1, moved=1)
    deps.audit.update_progress(entry.audit_id, counts, JobStatus.COMPLETED.value, deps.clock())
    logger.info("report retried by operator", report_id=report_id, audit_id=entry.audit_id)
    return entry.model_copy(update={"counts": counts, "status": JobStatus.COMPLETED})


__all__ = [
    "DEAD_LETTERED",
    "PURGED",
    "AdminDeps",
    "Pacer",
    "get_job",
    "list_audit",
    "list_dead_letters",
    "parse_duration",
    "purge",
    "redrive",
    "retry_report",
    "show_dead_letter",
    "summarize_dead_letters",
]
