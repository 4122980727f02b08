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

from functools import cache, partial
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from medsum.consumers.worker import WorkerFunctionDeps
from medsum.errors import PublishError
from medsum.logic.process import RequeueError, process_report, requeue_delay
from medsum.observability import logger, metrics, tracer
from medsum.records.work import WorkRecord
from medsum.settings import WorkerSettings, settings_of

# Always answer with a partial batch response, even when every record failed: each failure has
# already set its own retry delay, and a whole-invocation error would count as a worker crash. A record
# whose body is not a work message fails validation (WorkRecord) and is a batch item failure too.
processor = BatchProcessor(event_type=EventType.SQS, model=WorkRecord, raise_on_entire_batch_failure=False)


@cache
def _default_deps() -> WorkerFunctionDeps:
    return WorkerFunctionDeps.from_settings(settings_of(WorkerSettings))


def record_handler(record: WorkRecord, lambda_context: LambdaContext, deps: WorkerFunctionDeps) -> None:
    """Process one work message; raising makes it a batch item failure (it is retried)."""
    message, receive_count = record.body, record.receive_count
    lane = deps.lane_of(record.eventSourceARN)
    lane_deps, queue = deps.lane(lane).deps, deps.lane(lane).queue
    logger.append_keys(report_id=message.report_id, message_id=record.messageId, lane=lane.value)
    try:
        outcome = process_report(
            message.report_id,
            receive_count,
            lane_deps,
            remaining_seconds=lambda: lambda_context.get_remaining_time_in_millis() / 1000,
            batch_id=message.batch_id,
            message=message,
            keep_invisible=partial(queue.retry_later, record.receiptHandle),
        )
        logger.info("work message done", outcome=outcome.value)
    except RequeueError as requeue:
        logger.info(
            "work message returned to queue", reason=requeue.reason, delay_seconds=requeue.delay_seconds
        )
        queue.retry_later(record.receiptHandle, requeue.delay_seconds)
        raise
    except PublishError:
        # The report's terminal state is written but its event is not out: the message comes back
        # soon (not after the 12-minute visibility timeout) and the redelivery publishes it.
        delay = requeue_delay(lane_deps.requeue_base_delay_seconds, receive_count)
        logger.warning("event publish failed; message returned to queue", delay_seconds=delay)
        queue.retry_later(record.receiptHandle, delay)
        raise
    finally:
        logger.remove_keys(["report_id", "message_id", "lane"])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: WorkerFunctionDeps | None = None
) -> PartialItemFailureResponse:
    """Process one batch of work messages. ``deps``: the environment's adapters unless given."""
    return process_partial_response(
        event=event,
        record_handler=partial(record_handler, deps=deps or _default_deps()),
        processor=processor,
        context=context,
    )


# What init made lives as long as the process: keep it out of every later collection.
gc.freeze()
gc.enable()
