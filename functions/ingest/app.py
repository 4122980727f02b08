"""Ingest function: the Lambda tasks of ``IngestStateMachine`` (``statemachine/ingest.asl.json``).

Thin by design: the state passes ``step`` and ids (never report text); each step calls one function
of ``medsum.logic.ingest`` and returns a small JSON result. Transient failures surface as
``IngestRetryableError`` (the state machine retries the step with backoff); anything else fails the
step, and the state machine's ``Catch`` marks the batch failed.
"""

# ruff: noqa: E402 - the imports follow gc.disable()
from __future__ import annotations

import gc

# Init makes long-lived objects only (modules, classes, models): a garbage collection during the imports
# would scan them all and free nothing. Collections resume at the end of this module, without what init
# made (docs/decisions.md, "Cold start").
gc.disable()

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from medsum.adapters.batches import DynamoBatchRepository
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.adapters.sns import SnsEventPublisher
from medsum.adapters.sqs import SqsWorkQueue
from medsum.adapters.uploads import S3UploadStore
from medsum.clock import utcnow
from medsum.errors import IngestRetryableError, RepositoryError
from medsum.logic.batches import BatchDeps, settle_batch
from medsum.logic.ingest import Chunk, fail_upload, finalize_upload, plan_upload, write_chunk
from medsum.observability import logger, metrics, tracer
from medsum.ports import UploadObject
from medsum.settings import get_ingest_settings


@lru_cache(maxsize=1)
def _deps() -> BatchDeps:
    settings = get_ingest_settings()
    return BatchDeps(
        reports=DynamoReportRepository(settings.table_name, batches_table=settings.batches_table_name),
        batches=DynamoBatchRepository(settings.batches_table_name),
        queue=SqsWorkQueue(settings.bulk_queue_url),
        window=settings.bulk_window,
    )


@lru_cache(maxsize=1)
def _uploads() -> S3UploadStore:
    settings = get_ingest_settings()
    return S3UploadStore(settings.uploads_bucket_name, settings.uploads_kms_key_id)


def _upload(event: dict[str, Any]) -> UploadObject:
    return UploadObject(
        bucket=str(event["bucket"]), key=str(event["key"]), etag=str(event["etag"]), size=int(event["size"])
    )


def _plan(event: dict[str, Any]) -> dict[str, Any]:
    plan = plan_upload(_deps().batches, _uploads(), str(event["bucket"]), str(event["key"]))
    metrics.add_metric(name="UploadLineErrors", unit="Count", value=len(plan.errors))
    return plan.to_dict()


def _write_chunk(event: dict[str, Any]) -> dict[str, Any]:
    chunk = Chunk.from_dict(event["chunk"])
    result = write_chunk(_deps(), _uploads(), _upload(event), str(event["batch_id"]), chunk, now=utcnow())
    metrics.add_metric(name="UploadItemsWritten", unit="Count", value=result.written)
    return {"written": result.written, "existing": result.existing}


def _finalize(event: dict[str, Any]) -> dict[str, Any]:
    batch = finalize_upload(_deps(), str(event["batch_id"]), int(event["total"]), utcnow())
    # Workers may have finished every item while the batch was still validating (they do not settle a
    # batch whose total is not final): settle it here.
    settings = get_ingest_settings()
    settled = settle_batch(
        _deps().batches,
        SnsEventPublisher(settings.events_topic_arn),
        batch.batch_id,
        settings.public_api_url,
        utcnow(),
    )
    metrics.add_metric(name="BatchesSubmitted", unit="Count", value=1)
    status = settled.value if settled else batch.status.value
    return {"batch_id": batch.batch_id, "status": status, "total": batch.total}


def _mark_failed(event: dict[str, Any]) -> dict[str, Any]:
    # The step's own reason (too many items, no valid line) is already on the batch; the state's
    # error names (exception types) are not part of the API.
    fail_upload(_deps(), str(event["key"]), "ingest_failed", utcnow())
    return {"status": "failed"}


_STEPS = {"plan": _plan, "write_chunk": _write_chunk, "finalize": _finalize, "mark_failed": _mark_failed}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = _STEPS[str(event["step"])]
    logger.append_keys(step=event["step"], batch_id=event.get("batch_id"))
    try:
        return step(event)
    except RepositoryError as exc:  # includes PartialWriteError: stored ids are skipped on the retry
        raise IngestRetryableError("a store was unavailable; the step is retried") from exc


# What init made lives as long as the process: keep it out of every later collection.
gc.freeze()
gc.enable()


__all__ = ["lambda_handler"]
