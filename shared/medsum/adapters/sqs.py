"""SQS implementation of ``WorkQueue``."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.clients import client as default_client
from medsum.errors import EnqueueError
from medsum.models import WorkMessage
from medsum.observability import logger
from medsum.ports import WorkQueue

MAX_VISIBILITY_SECONDS = 43_200  # SQS limit: 12 hours


class SqsWorkQueue(WorkQueue):
    """Work messages carry ids only (never report text)."""

    def __init__(self, queue_url: str, sqs_client: Any | None = None) -> None:
        self._url = queue_url
        self._client = sqs_client or default_client("sqs")

    def enqueue(self, report_id: str) -> None:
        body = WorkMessage(report_id=report_id).model_dump_json()
        try:
            self._client.send_message(QueueUrl=self._url, MessageBody=body)
        except (ClientError, BotoCoreError) as exc:
            raise EnqueueError("work queue unavailable") from exc

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        try:
            self._client.change_message_visibility(
                QueueUrl=self._url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=max(0, min(delay_seconds, MAX_VISIBILITY_SECONDS)),
            )
        except (ClientError, BotoCoreError) as exc:
            # Not fatal: the message still reappears after the queue's visibility timeout.
            logger.warning("could not shorten message visibility", error_type=type(exc).__name__)
