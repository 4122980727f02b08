"""Operator use cases with fakes: selection, order of the redrive steps, pacing with a fake clock,
per-request budget and continuation, dry runs, purge, retry, and no report text anywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from medsum.errors import InvalidPageTokenError, OperatorRequestError, ReportNotFoundError
from medsum.logic.dlq import (
    AdminDeps,
    Pacer,
    list_dead_letters,
    parse_duration,
    purge,
    redrive,
    retry_report,
    show_dead_letter,
    summarize_dead_letters,
)
from medsum.models import (
    ErrorInfo,
    PurgeRequest,
    RedriveRequest,
    Report,
    ReportStatus,
    ReportType,
)
from medsum.pagetoken import PageTokenCodec

from tests.support.clock import FakeClock
from tests.support.fakes import (
    FakeDeadLetterQueue,
    FakeQueue,
    InMemoryAuditLog,
    InMemoryRepository,
)

OPERATOR = "arn:aws:iam::123456789012:user/operator"
OWNER = "arn:aws:iam::123456789012:user/clinic-a"
TEXT = "FINDINGS: secret clinical words. IMPRESSION: nothing to see."
DEAD = ErrorInfo(code="dead_lettered", message="the model stayed unavailable")
REASON = "outage over"


class Harness:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.timer = FakeClock()
        self.repo = InMemoryRepository()
        self.dlq = FakeDeadLetterQueue()
        self.queue = FakeQueue()
        self.audit = InMemoryAuditLog()
        self.deps = AdminDeps(
            dlq=self.dlq,
            reports=self.repo,
            repository=self.repo,
            queue=self.queue,
            audit=self.audit,
            page_tokens=PageTokenCodec.derived_from("test-dlq"),
            clock=self.clock,
            monotonic=self.timer.monotonic,
            sleep=self.timer.sleep,
        )

    def failed(
        self, report_id: str, error: ErrorInfo = DEAD, *, age_minutes: int = 5, in_dlq: bool = True
    ) -> None:
        at = self.clock() - timedelta(minutes=age_minutes)
        self.repo.create(
            Report(
                report_id=report_id,
                owner=OWNER,
                patient_id="p-1",
                report_type=ReportType.RADIOLOGY,
                status=ReportStatus.FAILED,
                created_at=at,
                updated_at=at,
                attempts=5,
                text=TEXT,
                error=error,
                expires_at=0,
                event_published=True,
                first_failed_at=at - timedelta(minutes=1),
            )
        )
        if in_dlq:
            self.dlq.add(json.dumps({"report_id": report_id, "version": 1}), sent_at=at)


def spy(function: Callable[..., Any], before: Callable[[], None]) -> Callable[..., Any]:
    """``function`` that first calls ``before`` (to record the order or time of calls)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before()
        return function(*args, **kwargs)

    return wrapper


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_listing_joins_records_filters_pages_and_never_shows_text(h: Harness) -> None:
    # Given three dead-lettered reports of different ages and a malformed message
    h.failed("r-old", age_minutes=180)
    h.failed("r-new", age_minutes=5)
    h.failed("r-mid", ErrorInfo(code="other_code", message="x"), age_minutes=60)
    h.dlq.add("not json", sent_at=h.clock())
    # When an operator lists them two at a time
    first = list_dead_letters(h.deps, limit=2)
    second = list_dead_letters(h.deps, limit=2, next_token=first.next_token)
    # Then they come oldest first, across pages, with their record's details
    ids = [e.report_id for e in first.items + second.items]
    assert ids == ["r-old", "r-mid", "r-new", None]
    assert second.next_token is None and first.scanned == 4
    old = first.items[0]
    assert (old.owner, old.error_code, old.attempts, old.age_seconds) == (OWNER, "dead_lettered", 5, 180 * 60)
    assert second.items[1].error_code == "malformed_message"
    # And filters select by error code and age
    assert [e.report_id for e in list_dead_letters(h.deps, 10, error_code="other_code").items] == ["r-mid"]
    assert [e.report_id for e in list_dead_letters(h.deps, 10, older_than="2h").items] == ["r-old"]
    # And nothing stays hidden, and no text is in any answer
    assert h.dlq.hidden == set()
    everything = first.model_dump_json() + second.model_dump_json()
    assert "secret" not in everything
    with pytest.raises(InvalidPageTokenError):
        list_dead_letters(h.deps, 2, next_token="@@@")
    # And a token of another deployment is refused, not decoded
    position = {"at": "2026-01-01T00:00:00+00:00", "id": "m"}
    foreign = PageTokenCodec.derived_from("another-dlq").encode("dlq", position)
    with pytest.raises(InvalidPageTokenError):
        list_dead_letters(h.deps, 2, next_token=foreign)


def test_summary_counts_by_code_and_age_bucket(h: Harness) -> None:
    h.failed("a", age_minutes=5)
    h.failed("b", age_minutes=120)
    h.failed("c", age_minutes=60 * 24 * 8)
    summary = summarize_dead_letters(h.deps)
    assert summary.total == 3 and summary.by_error_code == {"dead_lettered": 3}
    assert summary.by_age == {"<1h": 1, "1h-6h": 1, "6h-24h": 0, "1d-7d": 0, ">7d": 1}
    assert show_dead_letter(h.deps, "b").age_seconds == 7200
    with pytest.raises(ReportNotFoundError):
        show_dead_letter(h.deps, "zzz")


def test_redrive_resets_then_sends_then_deletes_keeping_history(h: Harness) -> None:
    # Given a dead-lettered report
    h.failed("r1")
    order: list[str] = []
    h.repo.reopen = spy(h.repo.reopen, lambda: order.append("reopen"))  # type: ignore[method-assign]
    h.queue.enqueue = spy(h.queue.enqueue, lambda: order.append("send"))  # type: ignore[method-assign]
    h.dlq.delete = spy(h.dlq.delete, lambda: order.append("delete"))  # type: ignore[method-assign]
    # When it is redriven
    job = redrive(h.deps, OPERATOR, RedriveRequest(report_ids=["r1"], reason=REASON))
    # Then the steps ran in the safe order and the report is PENDING with its history
    assert order == ["reopen", "send", "delete"]
    assert (job.moved, job.skipped, job.failed, job.remaining, job.status) == (1, 0, 0, 0, "completed")
    report = h.repo.items["r1"]
    assert report.status is ReportStatus.PENDING and report.attempts == 5 and report.error is None
    assert report.previous_error == DEAD and report.redriven_at == h.clock() and report.redrive_count == 1
    assert report.event_published is False
    assert h.queue.sent == ["r1"] and h.dlq.messages == {}
    # And the audit entry names who, what, why and how many
    (entry,) = h.audit.entries.values()
    assert (entry.principal, entry.action, entry.reason) == (OPERATOR, "dlq.redrive", REASON)
    assert entry.selection["report_ids"] == ["r1"] and entry.counts.moved == 1


def test_dry_run_changes_nothing(h: Harness) -> None:
    h.failed("r1")
    h.failed("r2", ErrorInfo(code="other", message="x"))
    job = redrive(h.deps, OPERATOR, RedriveRequest(error_code="dead_lettered", dry_run=True, reason=REASON))
    assert job.dry_run and job.report_ids == ["r1"] and job.moved == 0 and job.selected == 1
    assert h.repo.items["r1"].status is ReportStatus.FAILED
    assert h.queue.sent == [] and len(h.dlq.messages) == 2 and h.dlq.hidden == set()
    (entry,) = h.audit.entries.values()
    assert entry.dry_run and entry.status == "completed"


@pytest.mark.parametrize("rate", [1.0, 2.0, 5.0])
def test_redrive_stays_within_max_per_second(h: Harness, rate: float) -> None:
    # Given 12 dead letters and a clock that only moves when the redrive sleeps
    for index in range(12):
        h.failed(f"r{index:02d}")
    sends: list[float] = []
    h.queue.enqueue = spy(h.queue.enqueue, lambda: sends.append(h.timer.monotonic()))  # type: ignore[method-assign]
    # When they are redriven at ``rate`` per second
    job = redrive(h.deps, OPERATOR, RedriveRequest(all=True, max_per_second=rate, reason=REASON))
    # Then all moved, and no one-second window holds more than ``rate`` sends
    assert job.moved == 12
    assert all(sum(1 for t in sends if start <= t < start + 1.0) <= rate for start in sends)
    assert sends[-1] - sends[0] == pytest.approx(11 / rate)


def test_pacer_spaces_calls_and_does_not_sleep_when_late() -> None:
    timer = FakeClock()
    pacer = Pacer(4.0, timer.monotonic, timer.sleep)
    pacer.wait()
    pacer.wait()
    assert timer.slept == pytest.approx(0.25)
    timer.advance(10)  # slow work in between: no catch-up burst, no sleep
    pacer.wait()
    assert timer.slept == pytest.approx(0.25)


def test_a_redrive_longer_than_one_request_continues_with_its_job_id(h: Harness) -> None:
    # Given more work than one request's budget at 1 message per second (20 s budget)
    for index in range(30):
        h.failed(f"r{index:02d}")
    # When the redrive starts, then continues with its job id
    first = redrive(h.deps, OPERATOR, RedriveRequest(all=True, max_per_second=1, reason=REASON))
    assert first.status == "running" and first.moved == 20 and first.remaining == 10
    assert h.dlq.hidden == set()  # what it did not get to is visible again
    second = redrive(h.deps, OPERATOR, RedriveRequest(job_id=first.job_id))
    # Then the job completes with every message moved exactly once
    assert second.status == "completed" and second.moved == 30 and second.remaining == 0
    assert sorted(h.queue.sent) == sorted(f"r{i:02d}" for i in range(30))
    assert len(h.audit.entries) == 1
    again = redrive(h.deps, OPERATOR, RedriveRequest(job_id=first.job_id))
    assert again.moved == 30 and h.queue.sent.count("r00") == 1


def test_finished_and_purged_reports_are_skipped_and_left_in_place(h: Harness) -> None:
    h.failed("purged", ErrorInfo(code="purged", message="x"))
    h.failed("done")
    h.repo.items["done"] = h.repo.items["done"].model_copy(update={"status": ReportStatus.COMPLETED})
    h.dlq.add(json.dumps({"report_id": "gone", "version": 1}), sent_at=h.clock())
    job = redrive(h.deps, OPERATOR, RedriveRequest(all=True, reason=REASON))
    assert (job.moved, job.skipped) == (0, 3) and h.queue.sent == [] and len(h.dlq.messages) == 3


def test_a_send_failure_puts_the_report_back_to_failed_and_keeps_the_dead_letter(h: Harness) -> None:
    h.failed("r1")
    h.queue.fail = True
    job = redrive(h.deps, OPERATOR, RedriveRequest(all=True, reason=REASON))
    assert (job.moved, job.failed) == (0, 1)
    assert h.repo.items["r1"].status is ReportStatus.FAILED and h.repo.items["r1"].error == DEAD
    assert len(h.dlq.messages) == 1 and h.dlq.hidden == set()


def test_a_pending_report_whose_deliveries_all_crashed_is_redriven_without_reset(h: Harness) -> None:
    h.failed("r1")
    h.repo.items["r1"] = h.repo.items["r1"].model_copy(update={"status": ReportStatus.PENDING, "error": None})
    assert list_dead_letters(h.deps, 10).items[0].error_code == "unrecorded"
    job = redrive(h.deps, OPERATOR, RedriveRequest(error_code="unrecorded", reason=REASON))
    assert job.moved == 1 and h.queue.sent == ["r1"] and h.dlq.messages == {}


@pytest.mark.parametrize(
    "request_body",
    [
        {"reason": REASON},
        {"all": True, "report_ids": ["a"], "reason": REASON},
        {"all": True},
        {"job_id": "0" * 32, "all": True},
    ],
)
def test_bad_selections_are_refused_before_anything_is_written(
    h: Harness, request_body: dict[str, object]
) -> None:
    h.failed("r1")
    with pytest.raises(OperatorRequestError):
        redrive(h.deps, OPERATOR, RedriveRequest.model_validate(request_body))
    assert h.audit.entries == {} and h.queue.sent == []


def test_purge_deletes_and_marks_purged(h: Harness) -> None:
    h.failed("old", age_minutes=600)
    h.failed("new", age_minutes=1)
    entry = purge(h.deps, OPERATOR, PurgeRequest(older_than="1h", reason=REASON))
    assert entry.counts.purged == 1 and entry.action == "dlq.purge"
    assert h.repo.items["old"].error is not None and h.repo.items["old"].error.code == "purged"
    assert h.repo.items["old"].status is ReportStatus.FAILED
    assert [json.loads(m.body)["report_id"] for m in h.dlq.messages.values()] == ["new"]
    with pytest.raises(OperatorRequestError):
        purge(h.deps, OPERATOR, PurgeRequest(reason=REASON))


def test_retry_only_for_failures_outside_the_dlq(h: Harness) -> None:
    h.failed("rejected", ErrorInfo(code="model_validation_error", message="x"), in_dlq=False)
    h.failed("dead")
    entry = retry_report(h.deps, OPERATOR, "rejected", REASON)
    assert entry.action == "report.retry" and h.queue.sent == ["rejected"]
    assert h.repo.items["rejected"].status is ReportStatus.PENDING
    with pytest.raises(OperatorRequestError) as conflict:
        retry_report(h.deps, OPERATOR, "dead", REASON)
    assert conflict.value.code == "in_dead_letter_queue" and conflict.value.conflict
    with pytest.raises(ReportNotFoundError):
        retry_report(h.deps, OPERATOR, "nope", REASON)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("3d", 259200)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
