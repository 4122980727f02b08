"""Worker function: SQS work messages → summaries (Powertools BatchProcessor, partial batch responses).

Thin by design: parse the message, call ``process_report``, map ``RequeueError`` to a batch item
failure with a shorter visibility timeout (the queue's redrive policy is the outer retry loop).
``process_report`` keeps the message invisible through a heartbeat while the model works, and starts
a model call only if it can finish within the invocation (docs/decisions.md, time is a budget).

The function has one event source per lane (``WorkQueue``: interactive, ``BulkQueue``: batch items),
each with its own maximum concurrency. A record's lane is its source queue; the bulk lane calls Bedrock
through a client with botocore's adaptive rate limiting and waits longer after a throttle, so it
yields model quota to the interactive lane (docs/decisions.md, fair lanes).
"""

# ruff: noqa: E402 - the imports follow gc.disable()
from __future__ import annotations

import gc

# Init makes long-lived objects only (modules, classes, models): a garbage collection during the imports
# would scan them all and free nothing. Collections resume at the end of this module, without what init
# made (docs/decisions.md, "Cold start").
gc.disable()

from functools import lru_cache, partial
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from medsum.adapters.batches import DynamoBatchRepository
from medsum.adapters.bedrock import BedrockSummarizer
from medsum.adapters.clients import BEDROCK_CONNECT_TIMEOUT, bedrock_client
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.adapters.sns import SnsEventPublisher
from medsum.adapters.sqs import SqsWorkQueue
from medsum.errors import PublishError
from medsum.logic.process import RequeueError, WorkerDeps, process_report, requeue_delay
from medsum.models import Lane, WorkMessage
from medsum.observability import logger, metrics, tracer
from medsum.settings import get_worker_settings

# Always answer with a partial batch response, even when every record failed: each failure has
# already set its own retry delay, and a whole-invocation error would count as a worker crash.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


#: Wait before retrying a throttled model call, per lane: the bulk lane waits longer (it yields).
THROTTLE_WAIT = {Lane.INTERACTIVE: (0.05, 0.3), Lane.BULK: (0.5, 1.5)}


@lru_cache(maxsize=2)
def _deps(lane: Lane = Lane.INTERACTIVE) -> WorkerDeps:
    settings = get_worker_settings()
    return WorkerDeps(
        repository=DynamoReportRepository(settings.table_name, batches_table=settings.batches_table_name),
        batches=DynamoBatchRepository(settings.batches_table_name),
        summarizer=BedrockSummarizer(
            settings.bedrock_model_id,
            settings.bedrock_max_tokens,
            bedrock_client=bedrock_client(settings.bedrock_read_timeout_seconds, bulk=lane is Lane.BULK),
            guardrail=(
                (settings.bedrock_guardrail_id, settings.bedrock_guardrail_version)
                if settings.bedrock_guardrail_id
                else None
            ),
        ),
        publisher=SnsEventPublisher(settings.events_topic_arn),
        public_api_url=settings.public_api_url,
        lease_seconds=settings.lease_seconds,
        max_receive_count=settings.max_receive_count,
        max_attempts=settings.bedrock_max_attempts,
        budget_seconds=settings.bedrock_retry_budget_seconds,
        requeue_base_delay_seconds=settings.requeue_base_delay_seconds,
        bulk_queue=_queue(Lane.BULK),
        throttle_wait=THROTTLE_WAIT[lane],
        max_tokens=settings.bedrock_max_tokens,
        context_tokens=settings.bedrock_context_tokens,
        call_seconds=BEDROCK_CONNECT_TIMEOUT + settings.bedrock_read_timeout_seconds,
    )


@lru_cache(maxsize=2)
def _queue(lane: Lane = Lane.INTERACTIVE) -> SqsWorkQueue:
    settings = get_worker_settings()
    return SqsWorkQueue(settings.bulk_queue_url if lane is Lane.BULK else settings.work_queue_url)


def _lane(record: SQSRecord) -> Lane:
    """The lane of the queue a record came from (its ARN ends with the queue name, as the URL does)."""
    queue_name = record.event_source_arn.rsplit(":", 1)[-1]
    return (
        Lane.BULK
        if get_worker_settings().bulk_queue_url.rstrip("/").endswith("/" + queue_name)
        else Lane.INTERACTIVE
    )


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """Process one work message; raising makes it a batch item failure (it is retried)."""
    message = WorkMessage.model_validate_json(record.body)
    receive_count = int(record.attributes.approximate_receive_count or "1")
    lane = _lane(record)
    logger.append_keys(report_id=message.report_id, message_id=record.message_id, lane=lane.value)
    try:
        outcome = process_report(
            message.report_id,
            receive_count,
            _deps(lane),
            remaining_seconds=lambda: lambda_context.get_remaining_time_in_millis() / 1000,
            batch_id=message.batch_id,
            message=message,
            keep_invisible=partial(_queue(lane).retry_later, record.receipt_handle),
        )
        logger.info("work message done", outcome=outcome.value)
    except RequeueError as requeue:
        logger.info(
            "work message returned to queue", reason=requeue.reason, delay_seconds=requeue.delay_seconds
        )
        _queue(lane).retry_later(record.receipt_handle, requeue.delay_seconds)
        raise
    except PublishError:
        # The report's terminal state is written but its event is not out: the message comes back
        # soon (not after the 12-minute visibility timeout) and the redelivery publishes it.
        delay = requeue_delay(_deps(lane).requeue_base_delay_seconds, receive_count)
        logger.warning("event publish failed; message returned to queue", delay_seconds=delay)
        _queue(lane).retry_later(record.receipt_handle, delay)
        raise
    finally:
        logger.remove_keys(["report_id", "message_id", "lane"])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


# What init made lives as long as the process: keep it out of every later collection.
gc.freeze()
gc.enable()
