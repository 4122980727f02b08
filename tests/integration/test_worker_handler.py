"""The worker function's handler with SQS events, against the template's resources in moto.

The model is the only fake (a scripted ``Summarizer``); DynamoDB, SQS and SNS are moto's.
"""

from __future__ import annotations

import json
from typing import Any

from medsum.errors import NonRetryableSummarizerError, ThrottledSummarizerError
from medsum_local.inprocess import Stack

from tests.support.events import (
    FakeLambdaContext,
    Handler,
    sqs_event,
    sqs_record,
)
from tests.support.worker import REPLY, TEXT, read, submit, use_model, work


def published(stack: Stack, url: str) -> list[dict[str, Any]]:
    messages = stack.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_message_to_completed_summary_and_event(
    modules: tuple[Handler, Handler], stack: Stack, events_queue: str
) -> None:
    api, worker = modules
    worker, _ = use_model(worker, [REPLY])
    report_id = submit(api)
    # When the worker receives the work message
    result = worker.lambda_handler(sqs_event(work(report_id)), FakeLambdaContext())
    # Then the batch has no failures and the report is COMPLETED with grounded evidence
    assert result == {"batchItemFailures": []}
    view = read(api, report_id)
    assert view["status"] == "COMPLETED" and view["attempts"] == 1
    span = view["summary"]["key_findings"][0]["evidence"][0]
    assert TEXT[span["start"] : span["end"]] == "Mild cardiomegaly."
    assert view["usage"] == {
        "model_id": "test-model",
        "input_tokens": 100,
        "output_tokens": 40,
        "cache_read_input_tokens": 0,
        "cache_write_input_tokens": 0,
        "model_calls": 1,
    }
    # And a thin event with filterable attributes went to SNS
    (envelope,) = published(stack, events_queue)
    event = json.loads(envelope["Message"])
    assert event["type"] == "report.completed" and event["data"]["report_id"] == report_id
    assert envelope["MessageAttributes"]["type"]["Value"] == "report.completed"
    assert envelope["MessageAttributes"]["status"]["Value"] == "COMPLETED"
    assert "cardiomegaly" not in envelope["Message"].lower() and "pt-9" not in envelope["Message"]


def test_partial_batch_failure_reports_only_the_failed_message(
    modules: tuple[Handler, Handler], stack: Stack
) -> None:
    api, worker = modules
    worker, summarizer = use_model(worker, [REPLY])
    done, other = submit(api), submit(api)
    worker.lambda_handler(sqs_event(work(done)), FakeLambdaContext())
    # Another delivery holds a live lease on `other`
    lane = worker.deps.interactive.deps
    lane.repository.claim(other, lane.clock(), 60, "someone-else")
    duplicate, leased = work(done), work(other)
    # And two records that are no work messages: not JSON, and JSON of another shape
    garbage, stranger = sqs_record("{not json"), sqs_record(json.dumps({"reportId": other}))
    result = worker.lambda_handler(sqs_event(duplicate, leased, garbage, stranger), FakeLambdaContext())
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed == {leased["messageId"], garbage["messageId"], stranger["messageId"]}
    # The duplicate of a completed report caused no second model call
    assert len(summarizer.calls) == 1


def test_non_retryable_error_fails_report_and_acknowledges(
    modules: tuple[Handler, Handler], stack: Stack, events_queue: str
) -> None:
    api, worker = modules
    worker, _ = use_model(worker, [NonRetryableSummarizerError("model_access_denied", "denied")])
    report_id = submit(api)
    result = worker.lambda_handler(sqs_event(work(report_id)), FakeLambdaContext())
    assert result == {"batchItemFailures": []}
    view = read(api, report_id)
    assert view["status"] == "FAILED" and view["error"]["code"] == "model_access_denied"
    (envelope,) = published(stack, events_queue)
    assert json.loads(envelope["Message"])["type"] == "report.failed"


def test_retryable_error_requeues_then_last_receive_fails_dead_lettered(
    modules: tuple[Handler, Handler], stack: Stack
) -> None:
    api, worker = modules
    worker, _ = use_model(worker, [ThrottledSummarizerError("ThrottlingException")])
    report_id = submit(api)
    first = work(report_id, receive_count=1)
    assert worker.lambda_handler(sqs_event(first), FakeLambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": first["messageId"]}]
    }
    assert read(api, report_id)["status"] == "PENDING"
    last = work(report_id, receive_count=5)
    assert worker.lambda_handler(sqs_event(last), FakeLambdaContext())["batchItemFailures"]
    view = read(api, report_id)
    assert view["status"] == "FAILED" and view["error"]["code"] == "dead_lettered"
