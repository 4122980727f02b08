"""``SqsDeadLetterQueue`` against moto's SQS: every message read once, hidden while read, released at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from medsum.adapters.sqs import SqsDeadLetterQueue
from moto import mock_aws


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_snapshot_reads_each_message_once_and_release_makes_them_visible(sqs: Any) -> None:
    # Given 25 dead letters
    url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    for n in range(25):
        sqs.send_message(QueueUrl=url, MessageBody=f'{{"report_id": "r{n:02d}", "version": 1}}')
    dlq = SqsDeadLetterQueue(url, sqs)
    # When all are read
    messages, truncated = dlq.snapshot(visibility_seconds=30, max_messages=100)
    # Then each came once, with its receive count and sent time, hidden until released
    assert len(messages) == 25 and len({m.message_id for m in messages}) == 25 and not truncated
    assert all(m.receive_count == 1 and m.sent_at.year >= 2024 for m in messages)
    assert visible(sqs, url) == 0
    dlq.release(messages)
    assert visible(sqs, url) == 25
    # And a bounded scan says it was truncated; deleting removes exactly the message
    some, truncated = dlq.snapshot(visibility_seconds=30, max_messages=20)
    assert len(some) == 20 and truncated
    dlq.delete(some[0])
    dlq.release(some[1:])
    assert visible(sqs, url) == 24
