"""The worker function's handler with SQS events, against the template's resources in moto.

The model is the only fake (a scripted ``Summarizer``); DynamoDB, SQS and SNS are moto's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from types import ModuleType
from typing import Any

import pytest
from medsum.errors import NonRetryableSummarizerError, ThrottledSummarizerError
from medsum.logic.process import WorkerDeps
from medsum_local.inprocess import Stack

from tests.support.events import (
    FakeLambdaContext,
    Handler,
    api_event,
    api_handler,
    load_function,
    sqs_event,
    sqs_record,
)
from tests.support.fakes import ScriptedSummarizer

TEXT = "FINDINGS: Mild cardiomegaly. No pleural effusion.\nIMPRESSION: Mild cardiomegaly."
REPLY = json.dumps(
    {
        "summary": "Mild cardiomegaly.",
        "key_findings": [{"text": "Mild cardiomegaly", "evidence": ["Mild cardiomegaly."]}],
        "diagnoses": [],
        "medications": [],
        "follow_up": [],
    }
)


@pytest.fixture
def modules(stack: Stack) -> tuple[Handler, ModuleType]:
    api, worker = api_handler(), load_function("worker")
    for cached in (worker._deps, worker._queue):
        cached.cache_clear()
    return api, worker


@pytest.fixture
def events_queue(stack: Stack) -> str:
    """An SQS queue subscribed to the events topic with raw delivery, to observe what is published."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=stack.resources["ReportEventsTopic"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "false"},
    )
    return str(url)


def use_model(
    worker: ModuleType, monkeypatch: pytest.MonkeyPatch, script: list[str | Exception]
) -> ScriptedSummarizer:
    summarizer = ScriptedSummarizer(script)
    deps: WorkerDeps = replace(worker._deps(), summarizer=summarizer)
    monkeypatch.setattr(worker, "_deps", lambda *_: deps)
    return summarizer


def submit(api: Handler) -> str:
    body = {"patient_id": "pt-9", "report_text": TEXT, "report_type": "radiology"}
    response = api.lambda_handler(api_event("POST", "/summarize", body=body), FakeLambdaContext())
    return str(json.loads(response["body"])["report_id"])


def read(api: Handler, report_id: str) -> dict[str, Any]:
    response = api.lambda_handler(api_event("GET", f"/reports/{report_id}"), FakeLambdaContext())
    return dict(json.loads(response["body"]))


def published(stack: Stack, url: str) -> list[dict[str, Any]]:
    messages = stack.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def work(report_id: str, receive_count: int = 1) -> dict[str, Any]:
    return sqs_record(json.dumps({"report_id": report_id, "version": 1}), receive_count=receive_count)


def test_message_to_completed_summary_and_event(
    modules: tuple[Handler, ModuleType], stack: Stack, events_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, worker = modules
    use_model(worker, monkeypatch, [REPLY])
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
    modules: tuple[Handler, ModuleType], stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, worker = modules
    summarizer = use_model(worker, monkeypatch, [REPLY])
    done, other = submit(api), submit(api)
    worker.lambda_handler(sqs_event(work(done)), FakeLambdaContext())
    # Another delivery holds a live lease on `other`
    worker._deps().repository.claim(other, worker._deps().clock(), 60, "someone-else")
    duplicate, leased, garbage = work(done), work(other), sqs_record("{not json")
    result = worker.lambda_handler(sqs_event(duplicate, leased, garbage), FakeLambdaContext())
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed == {leased["messageId"], garbage["messageId"]}
    # The duplicate of a completed report caused no second model call
    assert len(summarizer.calls) == 1


def test_non_retryable_error_fails_report_and_acknowledges(
    modules: tuple[Handler, ModuleType], stack: Stack, events_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, worker = modules
    use_model(worker, monkeypatch, [NonRetryableSummarizerError("model_access_denied", "denied")])
    report_id = submit(api)
    result = worker.lambda_handler(sqs_event(work(report_id)), FakeLambdaContext())
    assert result == {"batchItemFailures": []}
    view = read(api, report_id)
    assert view["status"] == "FAILED" and view["error"]["code"] == "model_access_denied"
    (envelope,) = published(stack, events_queue)
    assert json.loads(envelope["Message"])["type"] == "report.failed"


def test_retryable_error_requeues_then_last_receive_fails_dead_lettered(
    modules: tuple[Handler, ModuleType], stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, worker = modules
    use_model(worker, monkeypatch, [ThrottledSummarizerError("ThrottlingException")])
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
