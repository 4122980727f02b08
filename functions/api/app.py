"""API function: every route of the REST API (Powertools resolver, pydantic validation, OpenAPI).

Thin by design: parse and validate, call one domain function, map the result or error to HTTP.
"""

from __future__ import annotations

from functools import lru_cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from medsum.adapters.clients import client
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.adapters.sqs import SqsWorkQueue
from medsum.clock import new_id, utcnow
from medsum.errors import (
    EnqueueError,
    InvalidPageTokenError,
    ReportNotFoundError,
    ReportTooLargeError,
    RepositoryError,
)
from medsum.http import MAX_BODY_BYTES, body_size, error_body, is_json_content_type, owner_from_identity
from medsum.logic.reports import SubmitDeps, delete_report, get_report, list_reports, submit_report
from medsum.models import (
    PATIENT_ID_PATTERN,
    Links,
    Report,
    ReportListItem,
    ReportPage,
    ReportView,
    SubmitResponse,
    SummarizeRequest,
)
from medsum.observability import logger, metrics, safe_exception_fields, tracer
from medsum.settings import get_api_settings

SERVICE_VERSION = "0.1.0"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600

cors = CORSConfig(
    allow_origin="*",
    allow_headers=["Content-Type", "Authorization", "X-Amz-Date", "X-Amz-Security-Token", "Idempotency-Key"],
    expose_headers=["Location", "Retry-After"],
    max_age=600,
)
app = APIGatewayRestResolver(enable_validation=True, cors=cors)


# --------------------------------------------------------------------------------------------------
# Wiring (once per cold start)
# --------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _repository() -> DynamoReportRepository:
    return DynamoReportRepository(get_api_settings().table_name)


@lru_cache(maxsize=1)
def _submit_deps() -> SubmitDeps:
    return SubmitDeps(repository=_repository(), queue=SqsWorkQueue(get_api_settings().work_queue_url))


_idempotency_config = IdempotencyConfig(
    event_key_jmespath="[owner, key]",
    payload_validation_jmespath="request",
    expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    raise_on_no_idempotency_key=True,
)


def _submit(command: dict[str, Any]) -> dict[str, Any]:
    settings = get_api_settings()
    report = submit_report(
        SummarizeRequest.model_validate(command["request"]),
        command["owner"],
        _submit_deps(),
        report_id=new_id(),
        now=utcnow(),
        retention_days=settings.report_retention_days,
    )
    return {"report_id": report.report_id}


@lru_cache(maxsize=1)
def _idempotent_submit() -> Any:
    persistence = DynamoDBPersistenceLayer(
        table_name=get_api_settings().idempotency_table_name, boto3_client=client("dynamodb")
    )
    return idempotent_function(
        data_keyword_argument="command", persistence_store=persistence, config=_idempotency_config
    )(_submit)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
def _owner() -> str:
    owner = owner_from_identity(app.current_event.request_context.identity.raw_event)
    if owner is None:
        # API Gateway's IAM authorizer always sets it; without it we cannot tell whose data this is.
        raise PermissionError("caller identity missing")
    return owner


def _base_url() -> str:
    """Absolute URL of the API root as the client called it (stage or custom base path kept)."""
    event = app.current_event
    context = event.request_context
    host = event.headers.get("Host") or context.domain_name or "localhost"
    proto = event.headers.get("X-Forwarded-Proto") or "https"
    full_path = context.path or event.path
    prefix = full_path[: len(full_path) - len(event.path)] if full_path.endswith(event.path) else ""
    return f"{proto}://{host}{prefix}"


def _self_link(report_id: str) -> Links:
    return Links(self=f"{_base_url()}/reports/{report_id}")


def _json(status: HTTPStatus, body: str, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


def _error(
    status: HTTPStatus, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> Response[str]:
    return _json(status, error_body(code, message, details))


def _view(report: Report) -> ReportView:
    return ReportView(
        report_id=report.report_id,
        patient_id=report.patient_id,
        report_type=report.report_type,
        status=report.status,
        created_at=report.created_at,
        updated_at=report.updated_at,
        attempts=report.attempts,
        metadata=report.metadata,
        summary=report.summary,
        error=report.error,
        usage=report.usage,
        links=_self_link(report.report_id),
    )


# --------------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------------
@app.get("/", summary="Health check (no authentication)")
def health() -> dict[str, str]:
    return {"status": "ok", "service": "medsum", "version": SERVICE_VERSION}


@app.get("/openapi.json", summary="The OpenAPI document of this API", include_in_schema=False)
def openapi_document() -> Response[str]:
    return _json(HTTPStatus.OK, app.get_openapi_json_schema(title="medsum API", version=SERVICE_VERSION))


@app.post(
    "/summarize", summary="Submit a report for summarization", responses={202: {"description": "Accepted"}}
)
def summarize(
    body: Annotated[SummarizeRequest, Body(embed=False)],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> Response[str]:
    owner = _owner()
    if idempotency_key:
        command = {"owner": owner, "key": idempotency_key, "request": body.model_dump(mode="json")}
        result = _idempotent_submit()(command=command)
    else:
        result = _submit({"owner": owner, "request": body.model_dump(mode="json")})
    report_id = result["report_id"]
    links = _self_link(report_id)
    response = SubmitResponse(report_id=report_id, status="PENDING", links=links)  # type: ignore[arg-type]
    metrics.add_metric(name="ReportsSubmitted", unit="Count", value=1)
    return _json(
        HTTPStatus.ACCEPTED,
        response.model_dump_json(),
        headers={"Location": links.self, "Retry-After": str(get_api_settings().retry_after_seconds)},
    )


@app.get("/reports/<report_id>", summary="Read one report's status and summary")
def read_report(report_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    report = get_report(_repository(), _owner(), report_id)
    return _json(HTTPStatus.OK, _view(report).model_dump_json())


@app.delete("/reports/<report_id>", summary="Erase a report (text and summary)")
def erase_report(report_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    delete_report(_repository(), _owner(), report_id)
    return Response(status_code=HTTPStatus.NO_CONTENT, body="")


@app.get("/patients/<patient_id>/reports", summary="List the caller's reports for a patient, newest first")
def patient_reports(
    patient_id: Annotated[str, Path(pattern=PATIENT_ID_PATTERN)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    next_token: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
) -> Response[str]:
    page = list_reports(_repository(), _owner(), patient_id, limit, next_token)
    items = [
        ReportListItem(
            report_id=r.report_id,
            patient_id=r.patient_id,
            report_type=r.report_type,
            status=r.status,
            created_at=r.created_at,
            updated_at=r.updated_at,
            links=_self_link(r.report_id),
        )
        for r in page.items
    ]
    return _json(HTTPStatus.OK, ReportPage(items=items, next_token=page.next_token).model_dump_json())


# --------------------------------------------------------------------------------------------------
# Errors: mapped in one place, fixed messages, never a stack trace
# --------------------------------------------------------------------------------------------------
@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    errors = exc.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        return _error(HTTPStatus.BAD_REQUEST, "invalid_json", "the request body is not valid JSON")
    details = [
        {"location": ".".join(str(p) for p in err.get("loc", ())), "problem": str(err.get("msg", "invalid"))}
        for err in errors
    ]
    return _error(HTTPStatus.BAD_REQUEST, "invalid_request", "the request is not valid", details)


@app.exception_handler(ReportNotFoundError)
def _not_found_report(_: ReportNotFoundError) -> Response[str]:
    return _error(HTTPStatus.NOT_FOUND, "not_found", "report not found")


@app.exception_handler(InvalidPageTokenError)
def _bad_token(_: InvalidPageTokenError) -> Response[str]:
    return _error(HTTPStatus.BAD_REQUEST, "invalid_next_token", "next_token is not valid for this listing")


@app.exception_handler(ReportTooLargeError)
def _too_large(_: ReportTooLargeError) -> Response[str]:
    return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "report_too_large", "the report is too large to store")


@app.exception_handler(IdempotencyValidationError)
def _idempotency_mismatch(_: IdempotencyValidationError) -> Response[str]:
    return _error(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was already used with a different request body",
    )


@app.exception_handler(IdempotencyAlreadyInProgressError)
def _idempotency_in_progress(_: IdempotencyAlreadyInProgressError) -> Response[str]:
    return _error(
        HTTPStatus.CONFLICT, "request_in_progress", "a request with this Idempotency-Key is in progress"
    )


@app.exception_handler(PermissionError)
def _forbidden(_: PermissionError) -> Response[str]:
    return _error(HTTPStatus.FORBIDDEN, "forbidden", "the caller's identity could not be determined")


@app.exception_handler(EnqueueError)
def _enqueue_failed(_: EnqueueError) -> Response[str]:
    return _error(
        HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", "the service is temporarily unavailable; retry"
    )


@app.exception_handler(RepositoryError)
def _store_failed(_: RepositoryError) -> Response[str]:
    return _error(
        HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", "the service is temporarily unavailable; retry"
    )


@app.not_found
def _unknown_route(_: NotFoundError) -> Response[str]:
    path, method = app.current_event.path, app.current_event.http_method.upper()
    allowed = sorted(
        {route.method for route in app._static_routes + app._dynamic_routes if route.rule.match(path)}
    )
    if allowed and method not in allowed:
        response = _error(
            HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", f"use one of: {', '.join(allowed)}"
        )
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return _error(HTTPStatus.NOT_FOUND, "route_not_found", "no such route")


def _precheck(event: dict[str, Any]) -> dict[str, Any] | None:
    """Reject what must never reach validation: oversize bodies and non-JSON bodies."""
    method = str(event.get("httpMethod", "")).upper()
    if body_size(event) > MAX_BODY_BYTES:
        return _raw_error(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large", "the request body exceeds 1 MiB"
        )
    if method in {"POST", "PUT", "PATCH"} and event.get("body"):
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        if not is_json_content_type(headers.get("content-type")):
            return _raw_error(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            )
    return None


def _raw_error(status: HTTPStatus, code: str, message: str) -> dict[str, Any]:
    return {
        "statusCode": int(status),
        "headers": {"Content-Type": content_types.APPLICATION_JSON, "Access-Control-Allow-Origin": "*"},
        "body": error_body(code, message),
        "isBase64Encoded": False,
    }


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _idempotency_config.register_lambda_context(context)
    rejected = _precheck(event)
    if rejected is not None:
        logger.info("request rejected before routing", status=rejected["statusCode"])
        return rejected
    try:
        return app.resolve(event, context)
    except Exception as exc:
        # Last line of defence: a 500 in our error shape. The log gets the type and frames only,
        # never the exception text (it could echo request data).
        logger.error("unhandled error", extra=safe_exception_fields(exc))
        return _raw_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")


__all__ = ["app", "lambda_handler"]
