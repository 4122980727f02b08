"""The worker's use case: claim, summarize, record, announce — with fakes at every port."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from medsum.errors import (
    NonRetryableSummarizerError,
    PublishError,
    RetryableSummarizerError,
    ThrottledSummarizerError,
)
from medsum.logic.process import Outcome, RequeueError, WorkerDeps, process_report, requeue_delay
from medsum.models import Report, ReportStatus, ReportType

from tests.support.fakes import FakePublisher, FixedClock, InMemoryRepository, ScriptedSummarizer

TEXT = "FINDINGS: Small left pleural effusion. No pneumothorax.\nIMPRESSION: Small left effusion."
GOOD_REPLY = json.dumps(
    {
        "summary": "Small left pleural effusion.",
        "key_findings": [
            {"text": "Small left pleural effusion", "evidence": ["Small left pleural effusion"]}
        ],
        "diagnoses": [{"text": "Pleural effusion", "evidence": ["Small left effusion"]}],
        "medications": [],
        "follow_up": [],
    }
)


def make_deps(
    summarizer: ScriptedSummarizer, **overrides: object
) -> tuple[WorkerDeps, InMemoryRepository, FakePublisher]:
    repo, publisher, clock = InMemoryRepository(), FakePublisher(), FixedClock()
    values: dict[str, object] = {
        "repository": repo,
        "summarizer": summarizer,
        "publisher": publisher,
        "public_api_url": "https://api.example.test/v1",
        "lease_seconds": 60,
        "max_receive_count": 5,
        "max_attempts": 3,
        "budget_seconds": 0.05,
        "requeue_base_delay_seconds": 30,
        "clock": clock,
    }
    values.update(overrides)
    deps = WorkerDeps(**values)  # type: ignore[arg-type]
    now = clock()
    repo.create(
        Report(
            report_id="r1",
            owner="arn:aws:iam::123456789012:user/clinic-a",
            patient_id="p-1",
            report_type=ReportType.RADIOLOGY,
            status=ReportStatus.PENDING,
            created_at=now,
            updated_at=now,
            text=TEXT,
            expires_at=0,
        )
    )
    return deps, repo, publisher


def plenty() -> float:
    return 100.0


def test_completes_with_grounded_evidence_and_publishes_thin_event() -> None:
    # Given a pending report and a model that answers well
    deps, repo, publisher = make_deps(ScriptedSummarizer([GOOD_REPLY]))
    # When the work message is processed
    outcome = process_report("r1", 1, deps, plenty)
    # Then the report is COMPLETED with spans pointing at the quoted text
    report = repo.items["r1"]
    assert outcome is Outcome.COMPLETED
    assert report.status is ReportStatus.COMPLETED
    assert report.summary is not None
    span = report.summary.key_findings[0].evidence[0]
    assert TEXT[span.start : span.end] == "Small left pleural effusion"
    assert report.usage is not None and report.usage.input_tokens == 100
    assert report.lease_token is None and report.attempts == 1
    # And exactly one thin event was published, with no text, summary or patient id
    ((event, owner),) = publisher.events
    assert event.type == "report.completed" and owner.endswith("clinic-a")
    payload = event.model_dump_json()
    assert "effusion" not in payload and "p-1" not in payload
    assert event.data.links.self == "https://api.example.test/v1/reports/r1"
    assert report.event_published


def test_duplicate_delivery_of_completed_report_does_not_call_model_again() -> None:
    summarizer = ScriptedSummarizer([GOOD_REPLY])
    deps, _, publisher = make_deps(summarizer)
    process_report("r1", 1, deps, plenty)
    # When the same message arrives again
    outcome = process_report("r1", 1, deps, plenty)
    # Then it is acknowledged without a second model call or a second event
    assert outcome is Outcome.SKIPPED
    assert len(summarizer.calls) == 1
    assert len(publisher.events) == 1


def test_live_lease_returns_message_to_queue_until_lease_expires() -> None:
    deps, repo, _ = make_deps(ScriptedSummarizer([GOOD_REPLY]))
    repo.claim("r1", deps.clock(), 60, "other-worker")
    with pytest.raises(RequeueError) as raised:
        process_report("r1", 1, deps, plenty)
    assert 1 <= raised.value.delay_seconds <= 60
    # After the lease expires, a new delivery takes over
    deps.clock.advance(61)  # type: ignore[attr-defined]
    assert process_report("r1", 2, deps, plenty) is Outcome.COMPLETED


def test_non_retryable_error_fails_at_once_and_acknowledges() -> None:
    summarizer = ScriptedSummarizer([NonRetryableSummarizerError("model_validation_error", "rejected")])
    deps, repo, publisher = make_deps(summarizer)
    outcome = process_report("r1", 1, deps, plenty)
    assert outcome is Outcome.FAILED
    assert len(summarizer.calls) == 1
    report = repo.items["r1"]
    assert report.status is ReportStatus.FAILED
    assert report.error is not None and report.error.code == "model_validation_error"
    assert publisher.events[0][0].type == "report.failed"


def test_retryable_errors_are_retried_then_message_requeued_with_backoff() -> None:
    summarizer = ScriptedSummarizer([RetryableSummarizerError("ServiceUnavailableException")])
    deps, repo, publisher = make_deps(summarizer, budget_seconds=30.0, max_attempts=3)
    with pytest.raises(RequeueError) as raised:
        process_report("r1", 2, deps, plenty)
    # tenacity made max_attempts calls, the lease was released, and the delay doubles per receive
    assert len(summarizer.calls) == 3
    assert repo.items["r1"].status is ReportStatus.PENDING
    assert raised.value.delay_seconds == 60
    assert publisher.events == []


def test_throttled_calls_do_not_use_up_the_attempts_only_the_time_budget() -> None:
    # Given a model that throttles three times, and an attempt budget of two
    throttled = ThrottledSummarizerError("ThrottlingException")
    summarizer = ScriptedSummarizer([throttled, throttled, throttled, GOOD_REPLY])
    deps, _, _ = make_deps(summarizer, budget_seconds=30.0, max_attempts=2)
    # Then the report still completes: throttling is retried (after short waits) while time is left
    assert process_report("r1", 1, deps, plenty) is Outcome.COMPLETED
    assert len(summarizer.calls) == 4


def test_retry_then_success_within_budget() -> None:
    summarizer = ScriptedSummarizer([ThrottledSummarizerError("ThrottlingException"), GOOD_REPLY])
    deps, _, _ = make_deps(summarizer, budget_seconds=30.0)
    assert process_report("r1", 1, deps, plenty) is Outcome.COMPLETED
    assert len(summarizer.calls) == 2


def test_last_allowed_receive_marks_failed_dead_lettered_before_dlq() -> None:
    summarizer = ScriptedSummarizer([RetryableSummarizerError("ServiceUnavailableException")])
    deps, repo, publisher = make_deps(summarizer, max_attempts=1)
    with pytest.raises(RequeueError):
        process_report("r1", 5, deps, plenty)
    report = repo.items["r1"]
    assert report.status is ReportStatus.FAILED
    assert report.error is not None and report.error.code == "dead_lettered"
    assert publisher.events[0][0].type == "report.failed"


def test_invalid_output_is_repaired_once() -> None:
    summarizer = ScriptedSummarizer(["not json at all", GOOD_REPLY])
    deps, repo, _ = make_deps(summarizer)
    assert process_report("r1", 1, deps, plenty) is Outcome.COMPLETED
    assert len(summarizer.calls) == 2
    repair_prompt = summarizer.calls[1]
    assert "<previous_reply>" in repair_prompt and "<report>" in repair_prompt
    usage = repo.items["r1"].usage
    assert usage is not None and usage.input_tokens == 200


def test_invalid_output_twice_fails_invalid_model_output() -> None:
    summarizer = ScriptedSummarizer(['{"summary": ""}', "```json\n[1, 2]\n```"])
    deps, repo, _ = make_deps(summarizer)
    assert process_report("r1", 1, deps, plenty) is Outcome.FAILED
    error = repo.items["r1"].error
    assert error is not None and error.code == "invalid_model_output"


def test_publish_failure_is_retried_on_redelivery_without_model_call() -> None:
    summarizer = ScriptedSummarizer([GOOD_REPLY])
    deps, repo, publisher = make_deps(summarizer)
    publisher.failures_left = 1
    with pytest.raises(PublishError):
        process_report("r1", 1, deps, plenty)
    assert repo.items["r1"].status is ReportStatus.COMPLETED
    assert not repo.items["r1"].event_published
    # The redelivery publishes the missing event, without summarizing again
    assert process_report("r1", 2, deps, plenty) is Outcome.SKIPPED
    assert len(publisher.events) == 1 and len(summarizer.calls) == 1
    assert repo.items["r1"].event_published


def test_deleted_report_is_acknowledged() -> None:
    deps, repo, _ = make_deps(ScriptedSummarizer([GOOD_REPLY]))
    repo.items.clear()
    assert process_report("r1", 1, deps, plenty) is Outcome.SKIPPED


def test_too_little_time_left_requeues_without_claiming() -> None:
    summarizer = ScriptedSummarizer([GOOD_REPLY])
    deps, repo, _ = make_deps(summarizer)
    with pytest.raises(RequeueError):
        process_report("r1", 1, deps, lambda: 5.0)
    assert repo.items["r1"].status is ReportStatus.PENDING and summarizer.calls == []


@pytest.mark.parametrize(("base", "count", "expected"), [(30, 1, 30), (30, 3, 120), (30, 10, 900), (0, 4, 0)])
def test_requeue_delay_doubles_and_is_capped(base: int, count: int, expected: int) -> None:
    assert requeue_delay(base, count) == expected


def test_lease_expiry_is_in_the_future() -> None:
    deps, repo, _ = make_deps(ScriptedSummarizer([GOOD_REPLY]))
    claimed = repo.claim("r1", deps.clock(), 60, "t")
    assert claimed.lease_expires_at == deps.clock() + timedelta(seconds=60)
