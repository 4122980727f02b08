"""Submit / read / list / delete use cases."""

from __future__ import annotations

import pytest
from medsum.errors import EnqueueError, ReportNotFoundError
from medsum.logic.reports import SubmitDeps, delete_report, get_report, list_reports, submit_report
from medsum.models import ReportStatus, SummarizeRequest

from tests.support.clock import FakeClock
from tests.support.fakes import FakeQueue, InMemoryRepository

OWNER_A = "arn:aws:iam::123456789012:user/clinic-a"
OWNER_B = "arn:aws:iam::123456789012:user/clinic-b"


def request(patient: str = "p-1") -> SummarizeRequest:
    return SummarizeRequest(patient_id=patient, report_text="FINDINGS: Normal.")


def test_submit_writes_pending_and_enqueues_id_only() -> None:
    repo, queue, clock = InMemoryRepository(), FakeQueue(), FakeClock()
    report = submit_report(
        request(), OWNER_A, SubmitDeps(repo, queue), report_id="r1", now=clock(), retention_days=30
    )
    assert repo.items["r1"].status is ReportStatus.PENDING
    assert repo.items["r1"].owner == OWNER_A
    assert queue.sent == ["r1"]
    assert report.expires_at == int(clock().timestamp()) + 30 * 86400


def test_enqueue_failure_marks_the_record_failed_and_raises() -> None:
    repo, queue, clock = InMemoryRepository(), FakeQueue(fail=True), FakeClock()
    with pytest.raises(EnqueueError):
        submit_report(
            request(), OWNER_A, SubmitDeps(repo, queue), report_id="r1", now=clock(), retention_days=30
        )
    stored = repo.items["r1"]
    assert stored.status is ReportStatus.FAILED
    assert stored.error is not None and stored.error.code == "enqueue_failed"


def test_other_owner_is_answered_like_missing() -> None:
    repo, queue, clock = InMemoryRepository(), FakeQueue(), FakeClock()
    submit_report(request(), OWNER_A, SubmitDeps(repo, queue), report_id="r1", now=clock(), retention_days=1)
    assert get_report(repo, OWNER_A, "r1").report_id == "r1"
    with pytest.raises(ReportNotFoundError):
        get_report(repo, OWNER_B, "r1")
    with pytest.raises(ReportNotFoundError):
        get_report(repo, OWNER_A, "missing")
    with pytest.raises(ReportNotFoundError):
        delete_report(repo, OWNER_B, "r1")
    assert "r1" in repo.items
    delete_report(repo, OWNER_A, "r1")
    assert "r1" not in repo.items


def test_list_is_per_owner_and_patient_newest_first() -> None:
    repo, queue, clock = InMemoryRepository(), FakeQueue(), FakeClock()
    deps = SubmitDeps(repo, queue)
    for i in range(3):
        clock.advance(1)
        submit_report(request(), OWNER_A, deps, report_id=f"a{i}", now=clock(), retention_days=1)
    submit_report(request(), OWNER_B, deps, report_id="b0", now=clock(), retention_days=1)
    submit_report(request("p-2"), OWNER_A, deps, report_id="a-other", now=clock(), retention_days=1)
    page = list_reports(repo, OWNER_A, "p-1", 2, None)
    assert [r.report_id for r in page.items] == ["a2", "a1"]
    rest = list_reports(repo, OWNER_A, "p-1", 2, page.next_token)
    assert [r.report_id for r in rest.items] == ["a0"] and rest.next_token is None
