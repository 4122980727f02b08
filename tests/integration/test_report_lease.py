"""The report lease in DynamoDB (moto, the template's table): the heartbeat moves it on only for its
holder, and a valid reply is stored even after the lease changed hands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.errors import ConflictError
from medsum.models import ReportStatus, Summary, Usage
from medsum_local.inprocess import Stack

from tests.support.fakes import pending_report

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def reports(stack: Stack) -> DynamoReportRepository:
    repository = DynamoReportRepository(stack.resources["PatientReports"])
    repository.create(pending_report("r1", "FINDINGS: Mild cardiomegaly.", NOW))
    return repository


def test_the_heartbeat_moves_the_lease_on_for_its_holder_only(reports: DynamoReportRepository) -> None:
    # Given a report claimed with a 60 s lease
    claimed = reports.claim("r1", NOW, 60, "first")
    # When its holder beats 40 s later
    reports.extend_lease("r1", "first", NOW + timedelta(seconds=40), 60)
    # Then the lease ends 60 s after the beat, and nothing a client sees changed
    extended = reports.get("r1")
    assert extended is not None
    assert extended.lease_expires_at == NOW + timedelta(seconds=100)
    assert extended.version == claimed.version and extended.updated_at == claimed.updated_at
    # And anyone else's beat is refused (the lease is not theirs)
    with pytest.raises(ConflictError):
        reports.extend_lease("r1", "someone-else", NOW + timedelta(seconds=41), 60)


def test_a_beat_after_the_lease_was_taken_over_is_refused(reports: DynamoReportRepository) -> None:
    reports.claim("r1", NOW, 60, "first")
    reports.claim("r1", NOW + timedelta(seconds=61), 60, "second")  # the first holder stopped beating
    with pytest.raises(ConflictError) as refused:
        reports.extend_lease("r1", "first", NOW + timedelta(seconds=62), 60)
    assert refused.value.current is not None and refused.value.current.lease_token == "second"


def test_a_reply_is_kept_after_the_lease_changed_hands_but_not_after_the_report_finished(
    reports: DynamoReportRepository,
) -> None:
    # Given a report whose lease the first delivery lost to a second one
    reports.claim("r1", NOW, 60, "first")
    reports.claim("r1", NOW + timedelta(seconds=61), 60, "second")
    summary = Summary(summary="Mild cardiomegaly.", model_id="m", prompt_version="p")
    usage = Usage(model_id="m", input_tokens=10, output_tokens=5)
    # When the first delivery's reply arrives, it is stored
    done = reports.complete("r1", "first", summary, usage, NOW + timedelta(seconds=70))
    assert done.status is ReportStatus.COMPLETED and done.lease_token is None
    # And the second delivery's reply, arriving after that, changes nothing
    with pytest.raises(ConflictError):
        reports.complete("r1", "second", summary, usage, NOW + timedelta(seconds=80))
