"""SNS events for AWS-native subscribers: filterable attributes and publish durability (moto).

The worker handler runs against the template's resources in moto; moto's SNS delivers to SQS
subscribers and applies their filter policies.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError
from medsum.adapters.sns import SnsEventPublisher
from medsum.errors import NonRetryableSummarizerError
from medsum_local.inprocess import Stack

from tests.support.events import (
    CLINIC_A,
    CLINIC_B,
    FakeLambdaContext,
    Handler,
    sqs_event,
)
from tests.support.worker import REPLY, read, submit, use_model, work


def subscribe(stack: Stack, name: str, filter_policy: dict[str, Any] | None = None) -> str:
    """An SQS queue subscribed to the events topic with raw delivery (and a filter policy)."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"RawMessageDelivery": "true"}
    if filter_policy is not None:
        attributes["FilterPolicy"] = json.dumps(filter_policy)
    sns.subscribe(
        TopicArn=stack.resources["ReportEventsTopic"], Protocol="sqs", Endpoint=arn, Attributes=attributes
    )
    return url


def drain(stack: Stack, url: str) -> list[dict[str, Any]]:
    sqs, found = stack.client("sqs"), []
    while messages := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        for message in messages:
            found.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_filter_policy_delivers_only_the_owners_completed_events(
    modules: tuple[Handler, Handler], stack: Stack
) -> None:
    api, worker = modules
    # Given clinic-a's subscriber, filtering on its owner ARN and report.completed
    url = subscribe(stack, "clinic-a-completed", {"owner": [CLINIC_A], "type": ["report.completed"]})
    everything = subscribe(stack, "everything")
    # When clinic-a and clinic-b each get a report completed, and clinic-a one failed
    worker, _ = use_model(worker, [REPLY])
    mine, theirs = submit(api, CLINIC_A), submit(api, CLINIC_B)
    worker.lambda_handler(sqs_event(work(mine), work(theirs)), FakeLambdaContext())
    worker, _ = use_model(worker, [NonRetryableSummarizerError("model_access_denied", "denied")])
    failed = submit(api, CLINIC_A)
    worker.lambda_handler(sqs_event(work(failed)), FakeLambdaContext())
    # Then the filtered subscriber received exactly clinic-a's report.completed, as the raw envelope
    (message,) = drain(stack, url)
    event = json.loads(message["Body"])
    assert event["type"] == "report.completed" and event["data"]["report_id"] == mine
    assert set(event) == {"type", "id", "timestamp", "data"}
    assert message["MessageAttributes"]["owner"]["StringValue"] == CLINIC_A
    # And the unfiltered one saw all three, each with type, status and owner attributes
    seen = {
        (
            m["MessageAttributes"]["type"]["StringValue"],
            m["MessageAttributes"]["status"]["StringValue"],
            m["MessageAttributes"]["owner"]["StringValue"],
        )
        for m in drain(stack, everything)
    }
    assert seen == {
        ("report.completed", "COMPLETED", CLINIC_A),
        ("report.completed", "COMPLETED", CLINIC_B),
        ("report.failed", "FAILED", CLINIC_A),
    }


class FlakySns:
    """The real (moto) SNS client, whose ``publish`` fails ``failures`` times first."""

    def __init__(self, real: Any, failures: int) -> None:
        self._real, self.failures = real, failures

    def publish(self, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "Publish")
        return self._real.publish(**kwargs)


class RecordedDelays:
    """A work queue that remembers the retry delays it is asked for (and changes nothing)."""

    def __init__(self) -> None:
        self.delays: list[int] = []

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        self.delays.append(delay_seconds)


def test_transient_publish_failure_still_delivers_the_event_once(
    modules: tuple[Handler, Handler], stack: Stack
) -> None:
    api, worker = modules
    url = subscribe(stack, "observer")
    worker, summarizer = use_model(worker, [REPLY])
    # Given SNS failing once, and the interactive lane's queue recording its delays
    flaky = SnsEventPublisher(
        stack.resources["ReportEventsTopic"], sns_client=FlakySns(stack.client("sns"), failures=1)
    )
    queue = RecordedDelays()
    lane = worker.deps.interactive
    interactive = replace(lane, deps=replace(lane.deps, publisher=flaky), queue=queue)
    worker = replace(worker, deps=replace(worker.deps, interactive=interactive))
    delays = queue.delays
    report_id = submit(api, CLINIC_A)
    # When SNS fails during the first delivery
    first = work(report_id)
    result = worker.lambda_handler(sqs_event(first), FakeLambdaContext())
    # Then the report is COMPLETED, nothing is published yet, and the message comes back soon
    assert result == {"batchItemFailures": [{"itemIdentifier": first["messageId"]}]}
    assert read(api, report_id)["status"] == "COMPLETED"
    assert drain(stack, url) == []
    assert delays and delays[-1] <= 60  # (the first is the heartbeat's hold on the message)
    # When the fault has cleared and the message is redelivered
    result = worker.lambda_handler(sqs_event(work(report_id, receive_count=2)), FakeLambdaContext())
    # Then the event arrives exactly once, without a second model call
    assert result == {"batchItemFailures": []}
    (message,) = drain(stack, url)
    assert json.loads(message["Body"])["data"]["report_id"] == report_id
    assert len(summarizer.calls) == 1
    # And further duplicates of the work message publish nothing more
    worker.lambda_handler(sqs_event(work(report_id, receive_count=3)), FakeLambdaContext())
    assert drain(stack, url) == []
