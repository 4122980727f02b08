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

import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from medsum.adapters.http_delivery import Urllib3WebhookSender
from medsum.adapters.sqs import SqsWorkQueue
from medsum.adapters.webhooks import DynamoDeliveryLog, DynamoWebhookRepository, KmsSecretCipher
from medsum.logic.webhooks import NotifierDeps, RetryLaterError, UrlPolicy, deliver_event, replay_delivery
from medsum.models import ReplayMessage, ReportEvent
from medsum.observability import logger, metrics, tracer
from medsum.settings import get_notifier_settings

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@lru_cache(maxsize=1)
def _deps() -> NotifierDeps:
    settings = get_notifier_settings()
    return NotifierDeps(
        webhooks=DynamoWebhookRepository(settings.webhooks_table_name),
        cipher=KmsSecretCipher(settings.secrets_kms_key_id),
        log=DynamoDeliveryLog(settings.deliveries_table_name, settings.delivery_log_retention_days * 86_400),
        sender=Urllib3WebhookSender(),
        policy=UrlPolicy(
            allow_local_http=settings.allow_local_http_webhooks, allowed_ports=settings.allowed_ports
        ),
        max_receive_count=settings.max_receive_count,
        base_delay_seconds=settings.retry_base_delay_seconds,
        max_delay_seconds=settings.retry_max_delay_seconds,
    )


@lru_cache(maxsize=1)
def _queue() -> SqsWorkQueue:
    return SqsWorkQueue(get_notifier_settings().notifier_queue_url)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """Deliver one event (or one replay); raising makes it a batch item failure (it is retried)."""
    receive_count = int(record.attributes.approximate_receive_count or "1")
    body: dict[str, Any] = json.loads(record.body)
    logger.append_keys(message_id=record.message_id)
    try:
        if "replay_delivery_id" in body:
            replay_delivery(ReplayMessage.model_validate(body).replay_delivery_id, receive_count, _deps())
            return
        # An SNS notification (the subscription does not use raw delivery): the event is the Message,
        # the owner is the message attribute the publisher sets.
        event = ReportEvent.model_validate_json(body["Message"])
        owner = str(body["MessageAttributes"]["owner"]["Value"])
        logger.append_keys(event_id=event.id)
        sent = deliver_event(event, owner, receive_count, _deps())
        logger.info("event handled", endpoints=sent)
    except RetryLaterError as retry:
        if retry.last_receive:
            # Visible again at once: the next receive moves it to the dead-letter queue.
            logger.warning("webhook retries exhausted; message goes to the dead-letter queue")
            _queue().retry_later(record.receipt_handle, 0)
        else:
            _queue().retry_later(record.receipt_handle, retry.delay_seconds)
        raise
    finally:
        logger.remove_keys(["message_id", "event_id"])


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
