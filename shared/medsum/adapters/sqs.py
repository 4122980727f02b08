"""SQS implementation of ``WorkQueue``."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.clients import client as default_client
from medsum.errors import EnqueueError
from medsum.models import WorkMessage
from medsum.observability import logger
from medsum.ports import WorkQueue

MAX_VISIBILITY_SECONDS = 43_200  # SQS limit: 12 hours
SEND_CHUNK = 10  # SendMessageBatch limit
SEND_RETRIES = 6


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))


class SqsWorkQueue(WorkQueue):
    """Work messages carry ids only (never report text)."""

    def __init__(self, queue_url: str, sqs_client: Any | None = None) -> None:
        self._url = queue_url
        self._client = sqs_client or default_client("sqs")

    def enqueue(self, report_id: str, batch_id: str | None = None) -> None:
        body = WorkMessage(report_id=report_id, batch_id=batch_id).model_dump_json(exclude_none=True)
        try:
            self._client.send_message(QueueUrl=self._url, MessageBody=body)
        except (ClientError, BotoCoreError) as exc:
            raise EnqueueError("work queue unavailable") from exc

    def enqueue_many(self, report_ids: Sequence[str], batch_id: str | None = None) -> list[str]:
        """SendMessageBatch in tens; entries SQS reports as failed are retried with backoff (a sender
        fault is not retried). Returns the ids that could not be sent, never drops one silently."""
        unsent: list[str] = []
        for start in range(0, len(report_ids), SEND_CHUNK):
            pending = {str(index): rid for index, rid in enumerate(report_ids[start : start + SEND_CHUNK])}
            for attempt in range(SEND_RETRIES):
                entries = [
                    {
                        "Id": entry_id,
                        "MessageBody": WorkMessage(report_id=rid, batch_id=batch_id).model_dump_json(
                            exclude_none=True
                        ),
                    }
                    for entry_id, rid in pending.items()
                ]
                try:
                    response = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
                except (ClientError, BotoCoreError) as exc:
                    logger.warning(
                        "send_message_batch failed", error_type=type(exc).__name__, attempt=attempt
                    )
                    _backoff(attempt)
                    continue
                failed = response.get("Failed", [])
                for entry in failed:
                    if entry.get("SenderFault"):
                        unsent.append(pending.pop(entry["Id"]))
                pending = {f["Id"]: pending[f["Id"]] for f in failed if f["Id"] in pending}
                if not pending:
                    break
                _backoff(attempt)
            unsent.extend(pending.values())
        return unsent

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
