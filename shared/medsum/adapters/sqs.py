"""SQS implementations of ``WorkQueue`` and ``DeadLetterQueue``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.clients import client as default_client
from medsum.adapters.retry import retry_unprocessed
from medsum.errors import DeadLetterQueueError, EnqueueError
from medsum.models import Lane, WorkMessage
from medsum.observability import logger
from medsum.ports import DeadLetter, DeadLetterQueue, WorkQueue

MAX_VISIBILITY_SECONDS = 43_200  # SQS limit: 12 hours
SEND_CHUNK = 10  # SendMessageBatch limit
SEND_RETRIES = 6


class SqsWorkQueue(WorkQueue):
    """One lane's work queue. Work messages carry ids only (never report text).

    Parameters
    ----------
    queue_url:
        The lane's queue.
    sqs_client:
        Optional boto3 SQS client (tests inject a Stubber-wrapped or moto-backed one).
    sleep:
        How to wait between retries of failed batch entries (tests inject one that does not).
    """

    def __init__(
        self, queue_url: str, sqs_client: Any | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._url = queue_url
        self._client = sqs_client or default_client("sqs")
        self._sleep = sleep

    @property
    def url(self) -> str:
        return self._url

    def enqueue(self, message: WorkMessage) -> None:
        try:
            self._client.send_message(QueueUrl=self._url, MessageBody=_body(message))
        except (ClientError, BotoCoreError) as exc:
            raise EnqueueError("work queue unavailable") from exc

    def enqueue_many(self, messages: Sequence[WorkMessage]) -> list[WorkMessage]:
        """SendMessageBatch in tens; entries SQS reports as failed, and whole calls that failed, are
        retried with backoff (a sender fault is not retried). Returns the messages that could not be
        sent, never drops one silently."""
        unsent: list[WorkMessage] = []

        def send(pending: dict[str, WorkMessage]) -> dict[str, WorkMessage]:
            entries = [{"Id": entry_id, "MessageBody": _body(m)} for entry_id, m in pending.items()]
            try:
                response = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                logger.warning("send_message_batch failed", error_type=type(exc).__name__)
                return pending
            failed = response.get("Failed", [])
            unsent.extend(pending[f["Id"]] for f in failed if f.get("SenderFault") and f["Id"] in pending)
            return {
                f["Id"]: pending[f["Id"]] for f in failed if not f.get("SenderFault") and f["Id"] in pending
            }

        for start in range(0, len(messages), SEND_CHUNK):
            chunk = {str(index): m for index, m in enumerate(messages[start : start + SEND_CHUNK])}
            unsent.extend(retry_unprocessed(send, chunk, SEND_RETRIES, self._sleep).values())
        return unsent

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        """Make a received message visible again ``delay_seconds`` from now (``ChangeMessageVisibility``):
        a retry's delay, or the worker's heartbeat keeping the message hidden while it works."""
        try:
            self._client.change_message_visibility(
                QueueUrl=self._url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=max(0, min(delay_seconds, MAX_VISIBILITY_SECONDS)),
            )
        except (ClientError, BotoCoreError) as exc:
            # Not fatal: the message reappears when its current visibility timeout ends.
            logger.warning("could not change message visibility", error_type=type(exc).__name__)


def _body(message: WorkMessage) -> str:
    return message.model_dump_json(exclude_none=True)


class SqsDeadLetterQueue(DeadLetterQueue):
    """The dead-letter queue, read by receiving every message once with a short visibility timeout.

    SQS cannot peek: a message is seen only by receiving it, which hides it and adds one to its
    ``ApproximateReceiveCount``. The dead-letter queue has no redrive policy of its own, so that count
    moves nothing anywhere; a redrive sends a *new* message to the work queue (receive count 0).
    """

    def __init__(self, queue_url: str, sqs_client: Any | None = None, lane: Lane = Lane.INTERACTIVE) -> None:
        self._url = queue_url
        self._client = sqs_client or default_client("sqs")
        self._lane = lane

    def snapshot(self, visibility_seconds: int, max_messages: int) -> tuple[list[DeadLetter], bool]:
        seen: dict[str, DeadLetter] = {}
        empty_polls = 0
        while len(seen) < max_messages:
            try:
                response = self._client.receive_message(
                    QueueUrl=self._url,
                    MaxNumberOfMessages=min(10, max_messages - len(seen)),
                    VisibilityTimeout=visibility_seconds,
                    # Short polls sample a subset of servers: one long poll confirms the queue is drained.
                    WaitTimeSeconds=1 if empty_polls else 0,
                    MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                )
            except (ClientError, BotoCoreError) as exc:
                self.release(list(seen.values()))
                raise DeadLetterQueueError("dead-letter queue unavailable") from exc
            messages = response.get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            if not fresh:
                empty_polls += 1
                if empty_polls >= 2:
                    return list(seen.values()), False
                continue
            empty_polls = 0
            for message in fresh:
                attributes = message.get("Attributes", {})
                seen[message["MessageId"]] = DeadLetter(
                    message_id=message["MessageId"],
                    receipt_handle=message["ReceiptHandle"],
                    body=message.get("Body", ""),
                    receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
                    sent_at=datetime.fromtimestamp(int(attributes.get("SentTimestamp", "0")) / 1000, UTC),
                    lane=self._lane,
                )
        return list(seen.values()), True

    def release(self, messages: Sequence[DeadLetter]) -> None:
        for start in range(0, len(messages), SEND_CHUNK):
            entries = [
                {"Id": str(index), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                for index, m in enumerate(messages[start : start + SEND_CHUNK])
            ]
            try:
                response = self._client.change_message_visibility_batch(QueueUrl=self._url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                # Not fatal: the messages reappear when their short visibility timeout ends.
                logger.warning("could not release dead letters", error_type=type(exc).__name__)
                continue
            if response.get("Failed"):
                logger.warning("some dead letters were not released", failed=len(response["Failed"]))

    def delete(self, message: DeadLetter) -> None:
        try:
            self._client.delete_message(QueueUrl=self._url, ReceiptHandle=message.receipt_handle)
        except (ClientError, BotoCoreError) as exc:
            raise DeadLetterQueueError("dead-letter queue unavailable") from exc
