"""Local SQS event source mapping: poll a queue and invoke a function the way Lambda's pollers do.

Semantics reproduced from Lambda's SQS event source (and read from the deployed mapping):

* batches of up to ``BatchSize`` messages, gathered for at most ``MaximumBatchingWindowInSeconds``
  (long polling, at most 10 messages per ``ReceiveMessage``);
* at most ``ScalingConfig.MaximumConcurrency`` batches in flight at once;
* AWS-shaped SQS events (``messageId``, ``receiptHandle``, ``body``, ``attributes``,
  ``messageAttributes``, ``md5OfBody``, ``eventSource``, ``eventSourceARN``, ``awsRegion``);
* a successful invocation deletes its messages with ``DeleteMessageBatch``; with
  ``ReportBatchItemFailures`` the ``batchItemFailures`` stay on the queue and the rest are deleted (an
  invalid response fails the whole batch); a function error deletes nothing, so the messages come back
  after their visibility timeout;
* the queue's redrive policy: messages received ``maxReceiveCount`` times move to the dead-letter queue.
  moto's SQS implements that move itself, on the next ``ReceiveMessage`` after the last allowed receive
  (as SQS does), so the poller only has to keep polling.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from medsum_local.deploy import DeployedEventSource

__all__ = ["SqsEventSourcePoller", "batch_item_failures", "sqs_record"]

Invoker = Callable[[str, dict[str, Any]], dict[str, Any]]
_MAX_MESSAGES_PER_RECEIVE = 10


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """SQS API message attribute -> the lower-camel-case shape of Lambda's SQS event."""
    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes | bytearray) else binary,
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": [
            base64.b64encode(item).decode() if isinstance(item, bytes | bytearray) else item
            for item in value.get("BinaryListValues") or []
        ],
        "dataType": value.get("DataType", "String"),
    }


def sqs_record(message: Mapping[str, Any], *, event_source_arn: str, region: str) -> dict[str, Any]:
    """Build one record of Lambda's SQS event from a ``ReceiveMessage`` message."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {str(k): str(v) for k, v in (message.get("Attributes") or {}).items()},
        "messageAttributes": {
            name: _lambda_message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": event_source_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def batch_item_failures(payload: Any, message_ids: set[str]) -> set[str] | None:
    """Interpret a partial batch response.

    Returns
    -------
    set of str or None
        The message ids that failed (empty: complete success), or None when the response makes the
        whole batch a failure (Lambda's rules: not an object, ``batchItemFailures`` not a list, or an
        ``itemIdentifier`` that is missing, empty or not in the batch).
    """
    if payload is None:
        return set()
    if not isinstance(payload, dict):
        return None
    failures = payload.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return None
        failed.add(identifier)
    return failed


class SqsEventSourcePoller:
    """Poll one SQS queue for one event source mapping and invoke its function.

    Parameters
    ----------
    source
        The deployed mapping (batch size, window, concurrency, response types, queue ARN, function).
    sqs
        A boto3 SQS client pointed at the emulator.
    invoke
        ``invoke(function_logical_id, event) -> Lambda Invoke result``.
    region
        ``awsRegion`` of the records.
    default_concurrency
        Concurrency when the mapping sets no ``MaximumConcurrency``.
    wait_seconds
        Long-polling wait of each ``ReceiveMessage`` (bounded so :meth:`stop` is prompt).
    log
        Receives poller records (invocation failures, delete failures).
    """

    def __init__(
        self,
        source: DeployedEventSource,
        sqs: Any,
        invoke: Invoker,
        *,
        region: str,
        default_concurrency: int = 5,
        wait_seconds: int = 1,
        log: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.source = source
        self._sqs = sqs
        self._invoke = invoke
        self._region = region
        self.concurrency = max(1, source.maximum_concurrency or default_concurrency)
        self._wait_seconds = max(0, min(20, wait_seconds))
        self._log = log or (lambda record: print(json.dumps(record), flush=True))
        _, _, _, _, account, name = source.event_source_arn.split(":", 5)
        self.queue_url: str = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        self._stopping = threading.Event()
        self._slots = threading.Semaphore(self.concurrency)
        self._executor: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self.stats = {"batches": 0, "messages": 0, "deleted": 0, "function_errors": 0, "partial_failures": 0}
        self._stats_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start polling in the background (no-op if the mapping is disabled in the template)."""
        if not self.source.enabled or self._thread is not None:
            return
        self._executor = ThreadPoolExecutor(
            self.concurrency, thread_name_prefix=f"esm-{self.source.logical_id}"
        )
        self._thread = threading.Thread(
            target=self._poll, name=f"poller-{self.source.logical_id}", daemon=True
        )
        self._thread.start()

    def signal_stop(self) -> None:
        """Stop receiving new batches (in-flight invocations finish)."""
        self._stopping.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop receiving and wait for in-flight batches (idempotent)."""
        self.signal_stop()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    # -- polling ---------------------------------------------------------------------------------------

    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(_MAX_MESSAGES_PER_RECEIVE, count)),
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _collect_batch(self) -> list[dict[str, Any]]:
        """Long-poll for a first message, then fill the batch until it is full or the window closes."""
        batch = self._receive(self.source.batch_size, self._wait_seconds)
        if not batch:
            return batch
        deadline = time.monotonic() + self.source.maximum_batching_window_seconds
        while len(batch) < self.source.batch_size and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            more = self._receive(self.source.batch_size - len(batch), int(min(remaining, self._wait_seconds)))
            if more:
                batch.extend(more)
            elif remaining < 1:
                time.sleep(min(remaining, 0.05))
        return batch

    def _poll(self) -> None:
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            try:
                batch = [] if self._stopping.is_set() else self._collect_batch()
            except Exception as exc:  # emulator hiccup or shutdown: back off and retry, never die
                self._slots.release()
                if not self._stopping.is_set():
                    self._log(
                        {
                            "type": "poller.receiveError",
                            "eventSource": self.source.logical_id,
                            "error": repr(exc),
                        }
                    )
                    self._stopping.wait(1.0)
                continue
            if not batch:
                self._slots.release()
                continue
            assert self._executor is not None
            try:
                self._executor.submit(self._process, batch)
            except RuntimeError:  # executor shut down while stopping
                self._slots.release()

    def _process(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._process_batch(batch)
        except Exception as exc:
            self._log({"type": "poller.error", "eventSource": self.source.logical_id, "error": repr(exc)})
        finally:
            self._slots.release()

    def _process_batch(self, batch: list[dict[str, Any]]) -> None:
        records = [
            sqs_record(m, event_source_arn=self.source.event_source_arn, region=self._region) for m in batch
        ]
        self._count(batches=1, messages=len(records))
        result = self._invoke(self.source.function_logical_id, {"Records": records})
        if "FunctionError" in result:
            # Nothing is deleted: every message becomes visible again after its visibility timeout.
            self._count(function_errors=1)
            if self._stopping.is_set():
                return  # the sandbox was stopped under this batch; not the function's fault
            self._log(
                {
                    "type": "poller.functionError",
                    "eventSource": self.source.logical_id,
                    "requestId": result.get("RequestId"),
                    "errorType": (result.get("Payload") or {}).get("errorType"),
                    "messages": len(records),
                }
            )
            return
        to_delete = records
        if self.source.reports_batch_item_failures:
            failed = batch_item_failures(result.get("Payload"), {r["messageId"] for r in records})
            if failed is None:
                self._count(function_errors=1)
                self._log({"type": "poller.invalidBatchResponse", "eventSource": self.source.logical_id})
                return
            if failed:
                self._count(partial_failures=len(failed))
            to_delete = [r for r in records if r["messageId"] not in failed]
        self._delete(to_delete)

    def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), _MAX_MESSAGES_PER_RECEIVE):
            chunk = records[start : start + _MAX_MESSAGES_PER_RECEIVE]
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)]
            response = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            self._count(deleted=len(response.get("Successful", [])))
            for failure in response.get("Failed", []):
                self._log(
                    {
                        "type": "poller.deleteFailed",
                        "eventSource": self.source.logical_id,
                        "messageId": chunk[int(failure["Id"])]["messageId"],
                        "code": failure.get("Code"),
                    }
                )

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            for key, value in increments.items():
                self.stats[key] += value
