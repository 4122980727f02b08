"""What a batched AWS call leaves unprocessed is sent again, alone, with backoff, a bounded number of
times; what is still left then is an error (or returned to the caller), never dropped. botocore
Stubber: exact request shapes; the waits are recorded, never slept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from medsum.adapters.dynamodb import BATCH_RETRIES, DynamoReportRepository, _to_item
from medsum.adapters.retry import retry_unprocessed
from medsum.adapters.sqs import SEND_RETRIES, SqsWorkQueue
from medsum.errors import PartialWriteError, RepositoryError
from medsum.models import WorkMessage

from scripts.restore_items import ATTEMPTS, write
from tests.support.fakes import pending_report

NOW = datetime(2026, 1, 1, tzinfo=UTC)
URL = "https://sqs.us-east-1.amazonaws.com/123456789012/work"


class Waits:
    """An injected ``sleep`` that records each wait instead of sleeping."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def _client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


# ---------------------------------------------------------------------------------------------- helper
def test_only_what_is_left_is_sent_again_until_nothing_is() -> None:
    sent: list[list[str]] = []

    def send(pending: list[str]) -> list[str]:
        sent.append(pending)
        return pending[1:]

    waits = Waits()
    assert retry_unprocessed(send, ["a", "b", "c"], attempts=5, sleep=waits) == []
    assert sent == [["a", "b", "c"], ["b", "c"], ["c"]]
    assert len(waits.seconds) == 2  # between calls, not after the last


def test_what_is_still_left_after_the_last_attempt_is_returned_without_a_final_wait() -> None:
    calls: list[list[str]] = []

    def send(pending: list[str]) -> list[str]:
        calls.append(pending)
        return pending

    waits = Waits()
    assert retry_unprocessed(send, ["a"], attempts=4, sleep=waits) == ["a"]
    assert len(calls) == 4 and len(waits.seconds) == 3


def test_waits_are_full_jitter_exponential_capped_at_two_seconds() -> None:
    waits = Waits()
    retry_unprocessed(lambda pending: pending, ["a"], attempts=12, sleep=waits)
    windows = [min(2.0, 0.05 * 2**n) for n in range(11)]
    assert all(0 <= wait <= window for wait, window in zip(waits.seconds, windows, strict=True))


def test_an_exception_from_the_call_ends_the_retries_unchanged() -> None:
    def send(pending: list[str]) -> list[str]:
        raise RepositoryError("report store unavailable")

    waits = Waits()
    with pytest.raises(RepositoryError):
        retry_unprocessed(send, ["a"], attempts=5, sleep=waits)
    assert waits.seconds == []


# -------------------------------------------------------------------------------------------- DynamoDB
def test_writes_still_unprocessed_after_every_retry_raise_with_what_was_written() -> None:
    client = _client("dynamodb")
    waits = Waits()
    repository = DynamoReportRepository("Reports", client, sleep=waits)
    reports = [pending_report(f"r{n}", "FINDINGS: Normal.", NOW) for n in range(27)]
    with Stubber(client) as stub:
        stub.add_response("batch_write_item", {})  # the first 25
        stuck = {"PutRequest": {"Item": {"report_id": {"S": "r26"}}}}
        for _ in range(BATCH_RETRIES):
            stub.add_response("batch_write_item", {"UnprocessedItems": {"Reports": [stuck]}})
        with pytest.raises(PartialWriteError) as raised:
            repository.create_many(reports)
        stub.assert_no_pending_responses()
    assert raised.value.written == [f"r{n}" for n in range(26)]
    assert len(waits.seconds) == BATCH_RETRIES - 1


def test_unprocessed_keys_are_read_again_and_a_read_that_never_finishes_is_an_error() -> None:
    client = _client("dynamodb")
    repository = DynamoReportRepository("Reports", client, sleep=Waits())
    item = _to_item(pending_report("r1", "FINDINGS: Normal.", NOW))
    keys = [{"report_id": {"S": "r1"}}, {"report_id": {"S": "r2"}}]
    with Stubber(client) as stub:
        stub.add_response(
            "batch_get_item",
            {"Responses": {"Reports": [item]}, "UnprocessedKeys": {"Reports": {"Keys": keys[1:]}}},
            {"RequestItems": {"Reports": {"Keys": keys, "ConsistentRead": True}}},
        )
        stub.add_response(
            "batch_get_item",
            {"Responses": {"Reports": []}},
            {"RequestItems": {"Reports": {"Keys": keys[1:]}}},
        )
        assert [r.report_id for r in repository.get_many(["r1", "r2"])] == ["r1"]
        for _ in range(BATCH_RETRIES):
            stub.add_response("batch_get_item", {"UnprocessedKeys": {"Reports": {"Keys": keys}}})
        with pytest.raises(RepositoryError):
            repository.get_many(["r1", "r2"])
        stub.assert_no_pending_responses()


# ------------------------------------------------------------------------------------------------- SQS
def test_messages_sqs_keeps_failing_are_returned_unsent_after_the_last_attempt() -> None:
    client = _client("sqs")
    queue = SqsWorkQueue(URL, client, sleep=Waits())
    messages = [WorkMessage(report_id="r1"), WorkMessage(report_id="r2")]
    with Stubber(client) as stub:
        # A whole call fails, then the second message fails each time the rest of the attempts.
        stub.add_client_error("send_message_batch", "ServiceUnavailable", http_status_code=503)
        failed = {"Id": "1", "SenderFault": False, "Code": "InternalError"}
        stub.add_response(
            "send_message_batch",
            {"Successful": [{"Id": "0", "MessageId": "m", "MD5OfMessageBody": "x"}], "Failed": [failed]},
        )
        for _ in range(SEND_RETRIES - 2):
            stub.add_response(
                "send_message_batch",
                {"Successful": [], "Failed": [failed]},
                {
                    "QueueUrl": URL,
                    "Entries": [{"Id": "1", "MessageBody": messages[1].model_dump_json(exclude_none=True)}],
                },
            )
        assert queue.enqueue_many(messages) == [messages[1]]
        stub.assert_no_pending_responses()


# ----------------------------------------------------------------------------------- restore_items.py
def test_the_restore_script_gives_up_loudly_when_items_stay_unprocessed() -> None:
    client = _client("dynamodb")
    item = {"report_id": {"S": "r1"}}
    waits = Waits()
    with Stubber(client) as stub:
        for _ in range(ATTEMPTS):
            stub.add_response(
                "batch_write_item", {"UnprocessedItems": {"Live": [{"PutRequest": {"Item": item}}]}}
            )
        with pytest.raises(SystemExit, match="1 items still unprocessed"):
            write(client, "Live", [item], sleep=waits)
        stub.assert_no_pending_responses()
    assert len(waits.seconds) == ATTEMPTS - 1
