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

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from medsum.consumers.ingest import IngestFunctionDeps
from medsum.errors import IngestRetryableError, RepositoryError
from medsum.logic.batches import settle_batch
from medsum.logic.ingest import (
    FinalizeStep,
    MarkFailedStep,
    PlanStep,
    WriteChunkStep,
    fail_upload,
    finalize_upload,
    parse_step,
    plan_upload,
    write_chunk,
)
from medsum.observability import logger, metrics, tracer
from medsum.settings import IngestSettings, settings_of


@cache
def _default_deps() -> IngestFunctionDeps:
    return IngestFunctionDeps.from_settings(settings_of(IngestSettings))


def _plan(step: PlanStep, deps: IngestFunctionDeps) -> dict[str, Any]:
    plan = plan_upload(deps.batch.batches, deps.uploads, step.bucket, step.key)
    metrics.add_metric(name="UploadLineErrors", unit="Count", value=len(plan.errors))
    return plan.to_dict()


def _write_chunk(step: WriteChunkStep, deps: IngestFunctionDeps) -> dict[str, Any]:
    result = write_chunk(deps.batch, deps.uploads, step.upload, step.batch_id, step.chunk, now=deps.clock())
    metrics.add_metric(name="UploadItemsWritten", unit="Count", value=result.written)
    return {"written": result.written, "existing": result.existing}


def _finalize(step: FinalizeStep, deps: IngestFunctionDeps) -> dict[str, Any]:
    batch = finalize_upload(deps.batch, step.batch_id, step.total, deps.clock())
    # Workers may have finished every item while the batch was still validating (they do not settle a
    # batch whose total is not final): settle it here.
    settled = settle_batch(
        deps.batch.batches, deps.publisher, batch.batch_id, deps.public_api_url, deps.clock()
    )
    metrics.add_metric(name="BatchesSubmitted", unit="Count", value=1)
    status = settled.value if settled else batch.status.value
    return {"batch_id": batch.batch_id, "status": status, "total": batch.total}


def _mark_failed(step: MarkFailedStep, deps: IngestFunctionDeps) -> dict[str, Any]:
    # The step's own reason (too many items, no valid line) is already on the batch; the state's
    # error names (exception types) are not part of the API.
    fail_upload(deps.batch, step.key, "ingest_failed", deps.clock())
    return {"status": "failed"}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: IngestFunctionDeps | None = None
) -> dict[str, Any]:
    """Run one step of the state machine. ``deps``: the environment's adapters unless given.

    An input that is no step's (``pydantic.ValidationError``) fails the task: the state machine's
    ``Catch`` marks the batch failed.
    """
    deps = deps or _default_deps()
    step = parse_step(event)
    logger.append_keys(step=step.step, batch_id=getattr(step, "batch_id", None))
    try:
        match step:
            case PlanStep():
                return _plan(step, deps)
            case WriteChunkStep():
                return _write_chunk(step, deps)
            case FinalizeStep():
                return _finalize(step, deps)
            case MarkFailedStep():
                return _mark_failed(step, deps)
    except RepositoryError as exc:  # includes PartialWriteError: stored ids are skipped on the retry
        raise IngestRetryableError("a store was unavailable; the step is retried") from exc


# What init made lives as long as the process: keep it out of every later collection.
gc.freeze()
gc.enable()


__all__ = ["lambda_handler"]
