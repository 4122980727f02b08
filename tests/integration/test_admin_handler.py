"""The admin function's handler against the template's resources in moto: operators only, DLQ listing
without report text, redrive order and its crash window, dry runs, purge, retry and the audit trail.

Work reaches the dead-letter queue as on AWS: the worker records the report FAILED (``dead_lettered``)
on the last allowed delivery, and the work message's body lands in the DLQ (here sent there directly,
which is what SQS's redrive policy does)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from medsum.errors import NonRetryableSummarizerError, ThrottledSummarizerError
from medsum.logic.dlq import AdminDeps
from medsum.ports import DeadLetter, DeadLetterQueue
from medsum_local.inprocess import Stack

from tests.support.events import (
    CLINIC_A,
    OPERATOR,
    FakeLambdaContext,
    Handler,
    admin_handler,
    api_event,
    sqs_event,
    sqs_record,
)
from tests.support.worker import REPLY, TEXT, use_model

REASON = "bedrock outage INC-42 is over"


@pytest.fixture
def fns(modules: tuple[Handler, Handler]) -> tuple[Handler, Handler, Handler]:
    api, worker = modules
    return api, worker, admin_handler()


def call(fn: Handler, method: str, path: str, *, caller: str | None = OPERATOR, **kw: Any) -> tuple[int, Any]:
    response = fn.lambda_handler(api_event(method, path, caller=caller, **kw), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def receive_all(stack: Stack, queue: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=stack.resources[queue], MaxNumberOfMessages=10, VisibilityTimeout=30
        )
        if not batch.get("Messages"):
            return found
        found.extend(batch["Messages"])


def depth(stack: Stack, queue: str) -> int:
    """Messages in ``queue``, visible or not (reads nothing, hides nothing)."""
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.resources[queue],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def drain(stack: Stack, queue: str) -> list[str]:
    """Receive and delete everything in ``queue``; return the bodies."""
    sqs = stack.client("sqs")
    messages = receive_all(stack, queue)
    for m in messages:
        sqs.delete_message(QueueUrl=stack.resources[queue], ReceiptHandle=m["ReceiptHandle"])
    return [m["Body"] for m in messages]


def dead_letter(stack: Stack, api: Handler, worker: Handler) -> str:
    """Submit a report and let its last allowed delivery fail retryably: FAILED + its body in the DLQ."""
    body = {"patient_id": "pt-ops", "report_text": TEXT, "report_type": "radiology"}
    status, created = call(api, "POST", "/summarize", body=body, caller=CLINIC_A)
    assert status == 202
    report_id = str(created["report_id"])
    (message,) = drain(stack, "WorkQueue")
    worker, _ = use_model(worker, [ThrottledSummarizerError("ThrottlingException")])
    worker.lambda_handler(sqs_event(sqs_record(message, receive_count=5)), FakeLambdaContext())
    stack.client("sqs").send_message(QueueUrl=stack.resources["WorkDeadLetterQueue"], MessageBody=message)
    return report_id


def report(api: Handler, report_id: str) -> dict[str, Any]:
    status, body = call(api, "GET", f"/reports/{report_id}", caller=CLINIC_A)
    assert status == 200
    return dict(body)


def deliver_all(stack: Stack, worker: Handler, queue: str = "WorkQueue") -> None:
    messages = receive_all(stack, queue)
    for m in messages:
        worker.lambda_handler(sqs_event(sqs_record(m["Body"])), FakeLambdaContext())
        stack.client("sqs").delete_message(QueueUrl=stack.resources[queue], ReceiptHandle=m["ReceiptHandle"])


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/admin/dlq", None),
        ("GET", "/admin/dlq/summary", None),
        ("GET", "/admin/dlq/reports/abc", None),
        ("POST", "/admin/dlq/redrive", {"all": True, "reason": "let me in"}),
        ("POST", "/admin/dlq/purge", {"older_than": "1s", "reason": "let me in"}),
        ("GET", "/admin/audit", None),
        ("POST", "/admin/reports/abc/retry", {"reason": "let me in"}),
        ("GET", "/admin/no-such-route", None),
    ],
)
def test_non_operators_get_403_on_every_admin_route(
    fns: tuple[Handler, Handler, Handler], method: str, path: str, body: Any
) -> None:
    _, _, admin = fns
    for caller in (CLINIC_A, None):
        status, answer = call(admin, method, path, caller=caller, body=body)
        assert status == 403 and answer == {"error": {"code": "forbidden", "message": "operators only"}}


def test_listing_joins_the_report_record_without_text_and_leaves_messages_visible(
    fns: tuple[Handler, Handler, Handler], stack: Stack
) -> None:
    api, worker, admin = fns
    report_id = dead_letter(stack, api, worker)
    status, page = call(admin, "GET", "/admin/dlq")
    assert status == 200 and page["scanned"] == 1 and page["next_token"] is None
    (entry,) = page["items"]
    assert entry["report_id"] == report_id and entry["owner"] == CLINIC_A
    assert entry["error_code"] == "dead_lettered" and entry["attempts"] == 1 and entry["status"] == "FAILED"
    assert entry["first_failed_at"] and entry["last_failed_at"]
    # never report text, anywhere in the admin answers
    status, shown = call(admin, "GET", f"/admin/dlq/reports/{report_id}")
    status_s, summary = call(admin, "GET", "/admin/dlq/summary")
    assert status == status_s == 200
    assert summary["total"] == 1 and summary["by_error_code"] == {"dead_lettered": 1}
    assert summary["by_age"]["<1h"] == 1
    for answer in (page, shown, summary):
        assert "cardiomegaly" not in json.dumps(answer).lower()
    # filters
    assert call(admin, "GET", "/admin/dlq", query={"error_code": "model_unavailable"})[1]["items"] == []
    assert call(admin, "GET", "/admin/dlq", query={"older_than": "2h"})[1]["items"] == []
    assert len(call(admin, "GET", "/admin/dlq", query={"older_than": "0s"})[1]["items"]) == 1
    assert call(admin, "GET", "/admin/dlq/reports/ffff")[0] == 404
    # reading released the messages at once: another reader sees it immediately
    assert len(receive_all(stack, "WorkDeadLetterQueue")) == 1


def test_redrive_dry_run_changes_nothing_but_is_audited(
    fns: tuple[Handler, Handler, Handler], stack: Stack
) -> None:
    api, worker, admin = fns
    report_id = dead_letter(stack, api, worker)
    status, job = call(
        admin,
        "POST",
        "/admin/dlq/redrive",
        body={"error_code": "dead_lettered", "dry_run": True, "reason": REASON},
    )
    assert status == 200 and job["dry_run"] and job["report_ids"] == [report_id] and job["moved"] == 0
    assert report(api, report_id)["status"] == "FAILED"
    assert depth(stack, "WorkQueue") == 0
    assert depth(stack, "WorkDeadLetterQueue") == 1
    _, audit = call(admin, "GET", "/admin/audit")
    assert audit["items"][0]["dry_run"] is True and audit["items"][0]["principal"] == OPERATOR


def test_redrive_resets_sends_deletes_and_the_worker_completes_with_one_model_call(
    fns: tuple[Handler, Handler, Handler], stack: Stack
) -> None:
    api, worker, admin = fns
    report_id = dead_letter(stack, api, worker)
    # When an operator redrives the dead_lettered work
    status, job = call(
        admin, "POST", "/admin/dlq/redrive", body={"error_code": "dead_lettered", "reason": REASON}
    )
    # Then the report is PENDING again (attempts kept), a new work message is queued, the DLQ is empty
    assert status == 200 and (job["moved"], job["skipped"], job["failed"]) == (1, 0, 0)
    assert job["status"] == "completed" and job["remaining"] == 0
    pending = report(api, report_id)
    assert pending["status"] == "PENDING" and pending["attempts"] == 1 and pending["error"] is None
    assert depth(stack, "WorkDeadLetterQueue") == 0
    # And the worker completes it with exactly one model call
    worker, model = use_model(worker, [REPLY])
    deliver_all(stack, worker)
    assert report(api, report_id)["status"] == "COMPLETED" and len(model.calls) == 1
    # And the audit trail names the operator, the selection, the reason and the counts
    _, audit = call(admin, "GET", "/admin/audit")
    entry = audit["items"][0]
    assert entry["action"] == "dlq.redrive" and entry["principal"] == OPERATOR and entry["reason"] == REASON
    assert entry["selection"]["error_code"] == "dead_lettered" and entry["counts"]["moved"] == 1
    assert call(admin, "GET", f"/admin/dlq/redrive/{job['job_id']}")[1]["moved"] == 1


class CrashingDeadLetterQueue(DeadLetterQueue):
    """The real DLQ adapter, except that the process "dies" on the first delete (after the send)."""

    def __init__(self, inner: DeadLetterQueue) -> None:
        self.inner = inner
        self.crashed = False

    def snapshot(self, visibility_seconds: int, max_messages: int) -> tuple[list[DeadLetter], bool]:
        return self.inner.snapshot(visibility_seconds, max_messages)

    def release(self, messages: Sequence[DeadLetter]) -> None:
        if not self.crashed:  # a dead process releases nothing; its messages reappear later
            self.inner.release(messages)

    def delete(self, message: DeadLetter) -> None:
        if not self.crashed:
            self.crashed = True
            raise SystemExit("crash between send and delete")
        self.inner.delete(message)


def test_a_crash_between_send_and_delete_duplicates_but_summarizes_once(
    fns: tuple[Handler, Handler, Handler], stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, worker, admin = fns
    report_id = dead_letter(stack, api, worker)
    deps: AdminDeps = admin.deps.operations
    crashing = CrashingDeadLetterQueue(deps.dlq)
    # The dead process's messages come back at once (instead of after the visibility timeout).
    admin = admin_handler(
        replace(admin.deps, operations=replace(deps, dlq=crashing, work_visibility_seconds=0))
    )
    # When the redrive dies after sending the work and before deleting the dead letter
    with pytest.raises(SystemExit):
        admin.lambda_handler(
            api_event("POST", "/admin/dlq/redrive", caller=OPERATOR, body={"all": True, "reason": REASON}),
            FakeLambdaContext(),
        )
    # Then nothing is lost: the work is queued and the dead letter is still there
    assert report(api, report_id)["status"] == "PENDING"
    assert depth(stack, "WorkDeadLetterQueue") == 1
    # When the operator runs the redrive again, it is sent a second time and removed from the DLQ
    status, job = call(admin, "POST", "/admin/dlq/redrive", body={"all": True, "reason": REASON})
    assert status == 200 and job["moved"] == 1
    assert depth(stack, "WorkDeadLetterQueue") == 0
    # Then the worker gets two messages for the report and calls the model once
    worker, model = use_model(worker, [REPLY])
    assert depth(stack, "WorkQueue") == 2
    monkeypatch.setattr("time.sleep", lambda _: None)
    for m in drain(stack, "WorkQueue"):
        worker.lambda_handler(sqs_event(sqs_record(m)), FakeLambdaContext())
    assert report(api, report_id)["status"] == "COMPLETED" and len(model.calls) == 1


def test_purge_deletes_the_dead_letter_and_marks_the_report_purged(
    fns: tuple[Handler, Handler, Handler], stack: Stack
) -> None:
    api, worker, admin = fns
    report_id = dead_letter(stack, api, worker)
    status, entry = call(
        admin, "POST", "/admin/dlq/purge", body={"report_ids": [report_id], "reason": REASON}
    )
    assert status == 200 and entry["counts"]["purged"] == 1 and entry["action"] == "dlq.purge"
    assert depth(stack, "WorkDeadLetterQueue") == 0
    failed = report(api, report_id)
    assert failed["status"] == "FAILED" and failed["error"]["code"] == "purged"


def test_retry_of_a_non_retryable_failure_requeues_it_and_dead_lettered_ones_must_be_redriven(
    fns: tuple[Handler, Handler, Handler], stack: Stack
) -> None:
    api, worker, admin = fns
    status, created = call(
        api, "POST", "/summarize", body={"patient_id": "pt-r", "report_text": TEXT}, caller=CLINIC_A
    )
    report_id = created["report_id"]
    worker, _ = use_model(worker, [NonRetryableSummarizerError("model_validation_error", "bad")])
    deliver_all(stack, worker)
    assert report(api, report_id)["status"] == "FAILED"
    status, entry = call(admin, "POST", f"/admin/reports/{report_id}/retry", body={"reason": REASON})
    assert status == 202 and entry["action"] == "report.retry" and entry["principal"] == OPERATOR
    assert report(api, report_id)["status"] == "PENDING"
    assert [json.loads(m["Body"])["report_id"] for m in receive_all(stack, "WorkQueue")] == [report_id]
    # a second retry while it is PENDING is a conflict
    assert call(admin, "POST", f"/admin/reports/{report_id}/retry", body={"reason": REASON})[0] == 409
    dead = dead_letter(stack, api, worker)
    status, problem = call(admin, "POST", f"/admin/reports/{dead}/retry", body={"reason": REASON})
    assert status == 409 and problem["error"]["code"] == "in_dead_letter_queue"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"reason": REASON}, "invalid_selection"),
        ({"all": True, "error_code": "dead_lettered", "reason": REASON}, "invalid_selection"),
        ({"all": True}, "reason_required"),
        ({"all": True, "reason": REASON, "max_per_second": 0}, "invalid_request"),
        ({"all": True, "reason": REASON, "surprise": 1}, "invalid_request"),
        ({"job_id": "0" * 32}, "not_found"),
    ],
)
def test_bad_redrive_requests_get_a_clear_4xx_and_change_nothing(
    fns: tuple[Handler, Handler, Handler], body: dict[str, Any], code: str
) -> None:
    _, _, admin = fns
    status, problem = call(admin, "POST", "/admin/dlq/redrive", body=body)
    assert 400 <= status < 500 and problem["error"]["code"] == code
    if code != "not_found":
        assert call(admin, "GET", "/admin/audit")[1]["items"] == []


def test_redriving_a_batch_item_moves_its_count_from_failed_to_completed(
    fns: tuple[Handler, Handler, Handler], stack: Stack
) -> None:
    api, worker, admin = fns
    # Given a one-item batch whose item dead-lettered (the batch completed with one failure)
    line = json.dumps({"custom_id": "c1", "patient_id": "pt-b", "report_text": TEXT})
    response = api.lambda_handler(
        api_event(
            "POST",
            "/batches",
            raw_body=line,
            caller=CLINIC_A,
            headers={"Content-Type": "application/x-ndjson"},
        ),
        FakeLambdaContext(),
    )
    batch_id = json.loads(response["body"])["batch_id"]
    (message,) = drain(stack, "BulkQueue")
    worker, _ = use_model(worker, [ThrottledSummarizerError("ThrottlingException")])
    worker.lambda_handler(sqs_event(sqs_record(message, receive_count=5)), FakeLambdaContext())
    stack.client("sqs").send_message(QueueUrl=stack.resources["BulkDeadLetterQueue"], MessageBody=message)

    def counts() -> dict[str, Any]:
        status, batch = call(api, "GET", f"/batches/{batch_id}", caller=CLINIC_A)
        assert status == 200
        return {"status": batch["status"], **batch["request_counts"]}

    assert counts() == {
        "status": "completed",
        "total": 1,
        "pending": 0,
        "processing": 0,
        "completed": 0,
        "failed": 1,
        "cancelled": 0,
    }
    # When it is redriven and delivered
    status, job = call(admin, "POST", "/admin/dlq/redrive", body={"all": True, "reason": REASON})
    assert status == 200 and job["moved"] == 1
    assert counts()["pending"] == 1 and counts()["failed"] == 0
    # (back in its own lane: the bulk queue, with its place in the batch's window)
    assert depth(stack, "WorkQueue") == 0 and depth(stack, "BulkDeadLetterQueue") == 0
    worker, _ = use_model(worker, [REPLY])
    deliver_all(stack, worker, "BulkQueue")
    # Then the batch counts it completed (and it stays completed)
    assert counts() == {
        "status": "completed",
        "total": 1,
        "pending": 0,
        "processing": 0,
        "completed": 1,
        "failed": 0,
        "cancelled": 0,
    }
