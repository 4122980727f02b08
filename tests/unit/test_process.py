"""The worker's use case: claim, summarize, record, announce — with fakes at every port."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from medsum.errors import (
    NonRetryableSummarizerError,
    PublishError,
    RetryableSummarizerError,
    ThrottledSummarizerError,
)
from medsum.logic.process import Outcome, RequeueError, WorkerDeps, process_report, requeue_delay
from medsum.models import ReportStatus
from medsum.ports import ModelReply, ModelRequest

from tests.support.clock import FakeClock
from tests.support.fakes import (
    FakePublisher,
    InMemoryRepository,
    ScriptedSummarizer,
    pending_report,
)

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
    repo, publisher, clock = InMemoryRepository(), FakePublisher(), FakeClock()
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
        "call_seconds": 65.0,
    }
    values.update(overrides)
    deps = WorkerDeps(**values)  # type: ignore[arg-type]
    repo.create(pending_report("r1", TEXT, clock()))
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


# --------------------------------------------------------------------------------------------------------
# Time is a budget: no call that cannot finish, a heartbeat while the model works, late replies kept
# --------------------------------------------------------------------------------------------------------
class Countdown:
    """The invocation's remaining time, set by the test."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds


def test_a_model_call_that_could_not_finish_in_time_is_not_started_and_the_message_comes_back_at_once() -> (
    None
):
    # Given an invocation with 70 s left, and calls that may take 65 s (+ 15 s kept for the final write)
    summarizer = ScriptedSummarizer([GOOD_REPLY])
    deps, repo, publisher = make_deps(summarizer, call_seconds=65.0)
    # When the message is processed
    with pytest.raises(RequeueError) as raised:
        process_report("r1", 1, deps, Countdown(70.0))
    # Then no model call was paid for, and the message is visible again in a second, not after a backoff
    assert summarizer.requests == []
    assert raised.value.delay_seconds == 1
    # And the report is claimable at once by the next delivery (not held by a lease nobody works under)
    assert repo.items["r1"].status is ReportStatus.PENDING and repo.items["r1"].lease_token is None
    assert publisher.events == []


def test_a_retry_that_could_not_finish_in_time_is_not_started() -> None:
    # Given a model that fails once with a retryable error, and time for exactly one call
    remaining = Countdown(100.0)

    class Slow(ScriptedSummarizer):
        def complete(self, request: ModelRequest) -> ModelReply:
            remaining.seconds -= 30.0  # the failed call took 30 s
            return super().complete(request)

    summarizer = Slow([RetryableSummarizerError("ServiceUnavailableException"), GOOD_REPLY])
    deps, repo, _ = make_deps(summarizer, call_seconds=65.0, budget_seconds=60.0)
    # When the message is processed
    with pytest.raises(RequeueError) as raised:
        process_report("r1", 1, deps, remaining)
    # Then the retry (65 s + 15 s with 70 s left) was not started: one call, message back at once
    assert len(summarizer.requests) == 1
    assert raised.value.delay_seconds == 1
    assert repo.items["r1"].status is ReportStatus.PENDING


def test_out_of_time_on_the_last_allowed_delivery_fails_the_report_as_dead_lettered() -> None:
    deps, repo, publisher = make_deps(ScriptedSummarizer([GOOD_REPLY]), call_seconds=65.0)
    repo.claim("r1", deps.clock(), 1, "earlier-delivery")
    deps.clock.advance(2)  # type: ignore[attr-defined]
    # When the last allowed delivery finds too little time for the call
    with pytest.raises(RequeueError):
        process_report("r1", 5, deps, Countdown(79.0))
    # Then the report is FAILED like the message (which goes to the DLQ), and that is announced
    report = repo.items["r1"]
    assert report.status is ReportStatus.FAILED and report.error is not None
    assert report.error.code == "dead_lettered"
    assert [event.type for event, _ in publisher.events] == ["report.failed"]


class BlockingSummarizer(ScriptedSummarizer):
    """Answers only once ``release`` is set (the test's stand-in for a slow model call)."""

    def __init__(self, script: list[str], during: Callable[[], None] | None = None) -> None:
        super().__init__(script)
        self.release = threading.Event()
        self.during = during

    def complete(self, request: ModelRequest) -> ModelReply:
        if self.during is not None:
            self.during()
        assert self.release.wait(10), "the heartbeat never beat"
        return super().complete(request)


def test_the_heartbeat_keeps_the_lease_and_the_message_while_the_model_works() -> None:
    # Given a 3-second lease (a beat a second), and a model call that lasts three beats
    summarizer = BlockingSummarizer([GOOD_REPLY])
    deps, repo, _ = make_deps(summarizer, lease_seconds=3)
    visibility: list[int] = []
    leases: list[datetime] = []

    def keep_invisible(seconds: int) -> None:
        visibility.append(seconds)
        leases.append(repo.items["r1"].lease_expires_at or deps.clock())
        deps.clock.advance(1)  # type: ignore[attr-defined]
        if len(visibility) == 3:
            summarizer.release.set()

    # When the message is processed
    outcome = process_report("r1", 1, deps, plenty, keep_invisible=keep_invisible)
    # Then the message was hidden for a little more than the lease at once and at every beat
    assert outcome is Outcome.COMPLETED
    assert visibility[:3] == [5, 5, 5]
    # And the lease moved on with the clock (the first is the claim's), so no other delivery took over
    assert leases[1] > leases[0] and leases[2] > leases[1]
    assert repo.items["r1"].attempts == 1


def test_a_valid_reply_that_arrives_after_the_lease_was_taken_over_is_kept() -> None:
    # Given a model call during which another delivery takes the (expired) lease over
    deps, repo, publisher = make_deps(ScriptedSummarizer([GOOD_REPLY]))

    def taken_over() -> None:
        deps.clock.advance(61)  # type: ignore[attr-defined]
        repo.claim("r1", deps.clock(), 60, "second-delivery")

    summarizer = BlockingSummarizer([GOOD_REPLY], during=taken_over)
    summarizer.release.set()
    deps = replace(deps, summarizer=summarizer)
    # When the first delivery's reply arrives
    outcome = process_report("r1", 1, deps, plenty)
    # Then it is stored (not thrown away and paid for again) and announced once
    assert outcome is Outcome.COMPLETED
    assert repo.items["r1"].status is ReportStatus.COMPLETED
    assert [event.type for event, _ in publisher.events] == ["report.completed"]
    # And the second delivery, when it comes to the report, calls no model
    second = ScriptedSummarizer([GOOD_REPLY])
    assert process_report("r1", 2, replace(deps, summarizer=second), plenty) is Outcome.SKIPPED
    assert second.requests == []


def test_a_reply_for_a_report_finished_meanwhile_is_discarded() -> None:
    # Given a model call during which another delivery completes the report
    deps, repo, publisher = make_deps(ScriptedSummarizer([GOOD_REPLY]))
    first = ScriptedSummarizer([GOOD_REPLY])

    def finished_elsewhere() -> None:
        deps.clock.advance(61)  # type: ignore[attr-defined]
        assert process_report("r1", 2, replace(deps, summarizer=first), plenty) is Outcome.COMPLETED

    summarizer = BlockingSummarizer([GOOD_REPLY], during=finished_elsewhere)
    summarizer.release.set()
    # When the slower delivery's reply arrives
    outcome = process_report("r1", 1, replace(deps, summarizer=summarizer), plenty)
    # Then it changes nothing: one completion (the other delivery's), one event
    assert outcome is Outcome.SKIPPED
    assert repo.items["r1"].status is ReportStatus.COMPLETED and repo.items["r1"].attempts == 2
    assert [event.type for event, _ in publisher.events] == ["report.completed"]
