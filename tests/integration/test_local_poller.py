"""The offline stack's SQS event source: Lambda-shaped events, partial batch responses, redrive to the
dead-letter queue, bounded concurrency; and the SNS subscription the stack creates from the template.

The tiny application in ``local_stack_app/`` records every delivery in an S3 bucket of the emulator;
the tests read those records back.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from medsum_local.deploy import parse_parameter_overrides
from medsum_local.poller import batch_item_failures
from medsum_local.stack import LocalStack, StackInfo
from medsum_local.testing import isolated_config, wait_for

APP = Path(__file__).parent / "local_stack_app"
MAX_RECEIVE_COUNT = 2


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalStack]:
    environ = {"MEDSUM_PARAMETER_OVERRIDES": f"MaxReceiveCount={MAX_RECEIVE_COUNT}"}
    local = LocalStack(isolated_config(APP, environ=environ))
    with local:
        yield local


@pytest.fixture(scope="module")
def aws(local_stack: LocalStack) -> dict[str, Any]:
    assert local_stack.emulator is not None
    return {service: local_stack.emulator.client(service) for service in ("s3", "sqs", "sns")}


def _observations(aws: dict[str, Any], info: StackInfo, prefix: str) -> list[dict[str, Any]]:
    s3 = aws["s3"]
    bucket = info.outputs["ObservationsBucket"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return [json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in keys]


def _dead_letters(aws: dict[str, Any], queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        aws["sqs"]
        .receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            MessageSystemAttributeNames=["All"],
        )
        .get("Messages", [])
    )
    return messages


def _at_least(count: int, observations: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return observations if len(observations) >= count else None


def _depth(aws: dict[str, Any], queue_url: str) -> int:
    attributes = aws["sqs"].get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_parameter_overrides_reach_the_deployed_queue(
    local_stack: LocalStack, info: StackInfo, aws: dict[str, Any]
) -> None:
    attributes = aws["sqs"].get_queue_attributes(
        QueueUrl=info.outputs["PartialQueueUrl"], AttributeNames=["All"]
    )
    redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])

    assert info.parameters["MaxReceiveCount"] == str(MAX_RECEIVE_COUNT)
    assert int(redrive["maxReceiveCount"]) == MAX_RECEIVE_COUNT
    assert [p.concurrency for p in local_stack.pollers] == [2, 2, 2]


def test_partial_batch_failures_stay_and_reach_the_dead_letter_queue(
    info: StackInfo, aws: dict[str, Any]
) -> None:
    # Given one batch with two good messages and one the function reports as failed
    test = f"partial-{uuid.uuid4().hex[:8]}"
    queue_url = info.outputs["PartialQueueUrl"]
    entries = [
        {"Id": name, "MessageBody": json.dumps({"test": test, "action": action, "name": name})}
        for name, action in (("first", "ok"), ("bad", "fail"), ("second", "ok"))
    ]
    sent = aws["sqs"].send_message_batch(QueueUrl=queue_url, Entries=entries)["Successful"]
    ids = {entry["Id"]: entry["MessageId"] for entry in sent}

    # When the poller has delivered it until the redrive policy gave up on the failed one
    dead = wait_for(
        lambda: _dead_letters(aws, info.outputs["PartialDeadLetterQueueUrl"]),
        timeout=30,
        message="the failed message in the dead-letter queue",
    )

    # Then only the failed message was redelivered (maxReceiveCount times) and moved to the DLQ,
    # and the successful ones were deleted after their first delivery
    seen = _observations(aws, info, f"seen/{test}/")
    deliveries: dict[str, list[int]] = {}
    for observation in seen:
        record = observation["record"]
        deliveries.setdefault(record["messageId"], []).append(
            int(record["attributes"]["ApproximateReceiveCount"])
        )
    assert sorted(deliveries[ids["first"]]) == [1]
    assert sorted(deliveries[ids["second"]]) == [1]
    assert sorted(deliveries[ids["bad"]]) == list(range(1, MAX_RECEIVE_COUNT + 1))
    assert [m["MessageId"] for m in dead] == [ids["bad"]]
    assert _depth(aws, queue_url) == 0


def test_function_error_deletes_nothing_and_the_message_ends_in_the_dead_letter_queue(
    info: StackInfo, aws: dict[str, Any]
) -> None:
    # Given a message whose processing raises
    test = f"error-{uuid.uuid4().hex[:8]}"
    message_id = aws["sqs"].send_message(
        QueueUrl=info.outputs["ErrorQueueUrl"], MessageBody=json.dumps({"test": test, "action": "raise"})
    )["MessageId"]

    # Then it is delivered maxReceiveCount times (never deleted) and then moved to the DLQ
    dead = wait_for(
        lambda: _dead_letters(aws, info.outputs["ErrorDeadLetterQueueUrl"]),
        timeout=30,
        message="the poison message in the dead-letter queue",
    )
    counts = sorted(
        int(o["record"]["attributes"]["ApproximateReceiveCount"])
        for o in _observations(aws, info, f"seen/{test}/")
    )
    assert [m["MessageId"] for m in dead] == [message_id]
    assert counts == list(range(1, MAX_RECEIVE_COUNT + 1))


def test_records_have_the_lambda_sqs_event_shape(info: StackInfo, aws: dict[str, Any]) -> None:
    # Given a message with attributes
    test = f"shape-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"test": test, "action": "ok"})
    aws["sqs"].send_message(
        QueueUrl=info.outputs["PartialQueueUrl"],
        MessageBody=body,
        MessageAttributes={"trace": {"DataType": "String", "StringValue": "abc"}},
    )

    # When the function receives it
    observation = wait_for(
        lambda: _observations(aws, info, f"seen/{test}/"), timeout=15, message="the delivery"
    )[0]

    # Then the record is shaped like Lambda's SQS event
    record = observation["record"]
    queue_arn = aws["sqs"].get_queue_attributes(
        QueueUrl=info.outputs["PartialQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert set(record) >= {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["body"] == body
    assert record["md5OfBody"] == hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue_arn
    assert record["awsRegion"] == info.region
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["trace"]["stringValue"] == "abc"
    assert record["messageAttributes"]["trace"]["dataType"] == "String"


def test_batches_respect_batch_size_and_window(info: StackInfo, aws: dict[str, Any]) -> None:
    # Given twelve messages sent at once to a source with BatchSize 10 and a 1 s window
    test = f"batch-{uuid.uuid4().hex[:8]}"
    queue_url = info.outputs["PartialQueueUrl"]
    for start in (0, 10):
        aws["sqs"].send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"test": test, "action": "ok", "i": i})}
                for i in range(start, min(start + 10, 12))
            ],
        )

    seen = wait_for(
        lambda: _at_least(12, _observations(aws, info, f"seen/{test}/")),
        timeout=15,
        message="twelve deliveries",
    )

    assert len(seen) == 12
    assert max(o["batch_size"] for o in seen) <= 10
    assert min(o["batch_size"] for o in seen) >= 1


def test_concurrency_is_bounded_by_maximum_concurrency(info: StackInfo, aws: dict[str, Any]) -> None:
    # Given six one-second messages on a source with BatchSize 1 and MaximumConcurrency 2
    test = f"slow-{uuid.uuid4().hex[:8]}"
    aws["sqs"].send_message_batch(
        QueueUrl=info.outputs["SlowQueueUrl"],
        Entries=[{"Id": str(i), "MessageBody": json.dumps({"test": test})} for i in range(6)],
    )

    runs = wait_for(
        lambda: _at_least(6, _observations(aws, info, f"slow/{test}/")),
        timeout=30,
        message="six slow invocations",
    )

    # Then at most two ran at the same time, and two did
    events = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2
    assert all(r["batch_size"] == 1 for r in runs)
    assert len({r["pid"] for r in runs}) <= 2


def test_sns_subscription_from_the_template_delivers_to_its_queue(
    info: StackInfo, aws: dict[str, Any]
) -> None:
    aws["sns"].publish(TopicArn=info.outputs["EventsTopicArn"], Message='{"report_id": "r-1"}')

    messages = wait_for(
        lambda: (
            aws["sqs"]
            .receive_message(QueueUrl=info.outputs["EventsInboxUrl"], WaitTimeSeconds=1)
            .get("Messages")
        ),
        timeout=10,
        message="the published event in the subscribed queue",
    )

    assert messages[0]["Body"] == '{"report_id": "r-1"}'  # RawMessageDelivery: true


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, None),
        ({"batchItemFailures": [{"id": "m2"}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, None),
        ({"batchItemFailures": "m2"}, None),
        ("not an object", None),
    ],
)
def test_partial_batch_response_rules(payload: Any, expected: set[str] | None) -> None:
    assert batch_item_failures(payload, {"m1", "m2"}) == expected


def test_parameter_overrides_syntax() -> None:
    assert parse_parameter_overrides("A=1 B=x=y", None, "ParameterKey=C,ParameterValue=3 A=2") == {
        "A": "2",
        "B": "x=y",
        "C": "3",
    }
    with pytest.raises(ValueError, match="not Key=Value"):
        parse_parameter_overrides("oops")
