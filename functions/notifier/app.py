"""Notifier function: report events from the topic (through its own SQS queue) → signed webhooks.

Thin by design: parse the SNS notification (or a replay request), call one domain function, and map
``RetryLaterError`` to a batch item failure whose message becomes visible again after the retry
delay (ChangeMessageVisibility). The queue's redrive policy sends a message that exhausted the schedule
to the notifier's dead-letter queue.
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
from medsum.consumers.notifier import NotifierFunctionDeps
from medsum.logic.webhooks import RetryLaterError, deliver_event, replay_delivery
from medsum.models import ReplayMessage
from medsum.observability import logger, metrics, tracer
from medsum.records.notifications import NotifierRecord
from medsum.settings import NotifierSettings, settings_of

# A record whose body is neither a report event (as SNS delivers it) nor a replay request fails
# validation (NotifierRecord): a batch item failure, which the redrive policy ends in the DLQ.
processor = BatchProcessor(
    event_type=EventType.SQS, model=NotifierRecord, raise_on_entire_batch_failure=False
)


@cache
def _default_deps() -> NotifierFunctionDeps:
    return NotifierFunctionDeps.from_settings(settings_of(NotifierSettings))


def record_handler(record: NotifierRecord, deps: NotifierFunctionDeps) -> None:
    """Deliver one event (or one replay); raising makes it a batch item failure (it is retried)."""
    body, receive_count = record.body, record.receive_count
    logger.append_keys(message_id=record.messageId)
    try:
        if isinstance(body, ReplayMessage):
            replay_delivery(body.replay_delivery_id, receive_count, deps.deliveries)
            return
        logger.append_keys(event_id=body.Message.id)
        sent = deliver_event(body.Message, body.owner, receive_count, deps.deliveries)
        logger.info("event handled", endpoints=sent)
    except RetryLaterError as retry:
        if retry.last_receive:
            # Visible again at once: the next receive moves it to the dead-letter queue.
            logger.warning("webhook retries exhausted; message goes to the dead-letter queue")
            deps.queue.retry_later(record.receiptHandle, 0)
        else:
            deps.queue.retry_later(record.receiptHandle, retry.delay_seconds)
        raise
    finally:
        logger.remove_keys(["message_id", "event_id"])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: NotifierFunctionDeps | None = None
) -> PartialItemFailureResponse:
    """Deliver one batch of the notifier queue's messages. ``deps``: the environment's adapters unless
    given."""
    return process_partial_response(
        event=event,
        record_handler=partial(record_handler, deps=deps or _default_deps()),
        processor=processor,
        context=context,
    )


# What init made lives as long as the process: keep it out of every later collection.
gc.freeze()
gc.enable()
