"""Admin function: the operators' routes under ``/admin`` (dead-letter queue, audit, retries).

Thin by design: check that the caller is an operator, validate, call one ``medsum.logic.dlq`` function,
map the result or error to HTTP. Every caller whose IAM principal is not in ``OPERATOR_PRINCIPAL_ARNS``
gets ``403 forbidden`` on every path, before routing. Responses carry ids, codes, counts and times,
never report text or summaries.
"""

from __future__ import annotations

from functools import lru_cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from medsum.adapters.audit import DynamoAuditLog
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.adapters.sqs import SqsDeadLetterQueue, SqsWorkQueue
from medsum.errors import (
    DeadLetterQueueError,
    EnqueueError,
    InvalidPageTokenError,
    OperatorRequestError,
    RedriveJobNotFoundError,
    ReportNotFoundError,
    RepositoryError,
)
from medsum.http import (
    MAX_BODY_BYTES,
    body_size,
    error_body,
    is_json_content_type,
    owner_from_identity,
    raw_error,
    validation_problem,
)
from medsum.logic.dlq import (
    AdminDeps,
    get_job,
    list_audit,
    list_dead_letters,
    purge,
    redrive,
    retry_report,
    show_dead_letter,
    summarize_dead_letters,
)
from medsum.logic.lanes import LaneDeadLetters, LaneQueues
from medsum.models import Lane, PurgeRequest, RedriveRequest, RetryRequest
from medsum.observability import logger, metrics, safe_exception_fields, tracer
from medsum.pagetoken import PageTokenCodec
from medsum.settings import get_admin_settings

app = APIGatewayRestResolver(enable_validation=True)

ReportIdPath = Annotated[str, Path(min_length=1, max_length=64)]


# --------------------------------------------------------------------------------------------------
# Wiring (once per cold start)
# --------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _deps() -> AdminDeps:
    settings = get_admin_settings()
    reports = DynamoReportRepository(settings.table_name, batches_table=settings.batches_table_name)
    return AdminDeps(
        dlq=LaneDeadLetters(
            {
                Lane.INTERACTIVE: SqsDeadLetterQueue(settings.dead_letter_queue_url, lane=Lane.INTERACTIVE),
                Lane.BULK: SqsDeadLetterQueue(settings.bulk_dead_letter_queue_url, lane=Lane.BULK),
            }
        ),
        reports=reports,
        repository=reports,
        queue=LaneQueues(
            {
                Lane.INTERACTIVE: SqsWorkQueue(settings.work_queue_url),
                Lane.BULK: SqsWorkQueue(settings.bulk_queue_url),
            }
        ),
        audit=DynamoAuditLog(settings.audit_table_name),
        page_tokens=PageTokenCodec.derived_from(settings.dead_letter_queue_url),
    )


def _principal() -> str:
    principal = owner_from_identity(app.current_event.request_context.identity.raw_event)
    assert principal is not None  # checked in lambda_handler before routing
    return principal


def _json(status: HTTPStatus, body: str) -> Response[str]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _error(
    status: HTTPStatus, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> Response[str]:
    return _json(status, error_body(code, message, details))


# --------------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------------
@app.get("/admin/dlq", summary="Dead-lettered work, oldest failure first (no report text)")
def dlq_list(
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    next_token: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
    error_code: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,64}$")] = None,
    older_than: Annotated[str | None, Query(pattern=r"^[0-9]{1,7}[smhd]?$")] = None,
) -> Response[str]:
    page = list_dead_letters(_deps(), limit, next_token, error_code, older_than)
    return _json(HTTPStatus.OK, page.model_dump_json())


@app.get("/admin/dlq/summary", summary="Dead-lettered work counted by error code and by age")
def dlq_summary() -> Response[str]:
    return _json(HTTPStatus.OK, summarize_dead_letters(_deps()).model_dump_json())


@app.get("/admin/dlq/reports/<report_id>", summary="The dead-lettered work of one report")
def dlq_show(report_id: ReportIdPath) -> Response[str]:
    return _json(HTTPStatus.OK, show_dead_letter(_deps(), report_id).model_dump_json())


@app.post("/admin/dlq/redrive", summary="Put dead-lettered work back on the work queue (audited)")
def dlq_redrive(body: Annotated[RedriveRequest, Body(embed=False)]) -> Response[str]:
    job = redrive(_deps(), _principal(), body)
    metrics.add_metric(name="DeadLettersRedriven", unit="Count", value=job.moved)
    return _json(HTTPStatus.OK, job.model_dump_json())


@app.get("/admin/dlq/redrive/<job_id>", summary="A redrive job's progress")
def dlq_redrive_job(job_id: Annotated[str, Path(pattern=r"^[a-f0-9]{32}$")]) -> Response[str]:
    return _json(HTTPStatus.OK, get_job(_deps(), job_id).model_dump_json())


@app.post("/admin/dlq/purge", summary="Delete dead-lettered work; reports stay FAILED (purged) (audited)")
def dlq_purge(body: Annotated[PurgeRequest, Body(embed=False)]) -> Response[str]:
    entry = purge(_deps(), _principal(), body)
    return _json(HTTPStatus.OK, entry.model_dump_json())


@app.get("/admin/audit", summary="Operator actions, newest first (never deletable)")
def audit(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    next_token: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
) -> Response[str]:
    return _json(HTTPStatus.OK, list_audit(_deps(), limit, next_token).model_dump_json())


@app.post("/admin/reports/<report_id>/retry", summary="Retry a report that failed non-retryably (audited)")
def retry(report_id: ReportIdPath, body: Annotated[RetryRequest, Body(embed=False)]) -> Response[str]:
    entry = retry_report(_deps(), _principal(), report_id, body.reason)
    return _json(HTTPStatus.ACCEPTED, entry.model_dump_json())


# --------------------------------------------------------------------------------------------------
# Errors: mapped in one place, fixed messages, never a stack trace
# --------------------------------------------------------------------------------------------------
@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    code, message, details = validation_problem(list(exc.errors()))
    return _error(HTTPStatus.BAD_REQUEST, code, message, details)


@app.exception_handler(OperatorRequestError)
def _bad_operator_request(exc: OperatorRequestError) -> Response[str]:
    return _error(HTTPStatus.CONFLICT if exc.conflict else HTTPStatus.BAD_REQUEST, exc.code, exc.message)


@app.exception_handler(ReportNotFoundError)
def _not_found_report(_: ReportNotFoundError) -> Response[str]:
    return _error(HTTPStatus.NOT_FOUND, "not_found", "report not found (or no dead-lettered work for it)")


@app.exception_handler(RedriveJobNotFoundError)
def _not_found_job(_: RedriveJobNotFoundError) -> Response[str]:
    return _error(HTTPStatus.NOT_FOUND, "not_found", "redrive job not found")


@app.exception_handler(InvalidPageTokenError)
def _bad_token(_: InvalidPageTokenError) -> Response[str]:
    return _error(HTTPStatus.BAD_REQUEST, "invalid_next_token", "next_token is not valid for this listing")


@app.exception_handler([EnqueueError, RepositoryError, DeadLetterQueueError])
def _unavailable(_: Exception) -> Response[str]:
    return _error(
        HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", "the service is temporarily unavailable; retry"
    )


@app.not_found
def _unknown_route(_: NotFoundError) -> Response[str]:
    return _error(HTTPStatus.NOT_FOUND, "route_not_found", "no such route")


def _precheck(event: dict[str, Any]) -> dict[str, Any] | None:
    """Operators only (403 for everyone else, on every path), then body size and type."""
    principal = owner_from_identity((event.get("requestContext") or {}).get("identity"))
    if principal is None or principal not in get_admin_settings().operator_principals:
        return raw_error(HTTPStatus.FORBIDDEN, "forbidden", "operators only")
    if body_size(event) > MAX_BODY_BYTES:
        return raw_error(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large", "the request body exceeds 1 MiB"
        )
    if str(event.get("httpMethod", "")).upper() == "POST" and event.get("body"):
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        if not is_json_content_type(headers.get("content-type")):
            return raw_error(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            )
    return None


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        rejected = _precheck(event)
        if rejected is not None:
            logger.info("admin request rejected before routing", status=rejected["statusCode"])
            return rejected
        return app.resolve(event, context)
    except Exception as exc:
        logger.error("unhandled error", extra=safe_exception_fields(exc))
        return raw_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")


__all__ = ["app", "lambda_handler"]
