"""API function: every route of the REST API (Powertools resolver, pydantic validation, OpenAPI).

Thin by design: parse and validate, call one domain function, map the result or error to HTTP.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
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
from medsum.adapters.batches import DynamoBatchRepository
from medsum.adapters.clients import client
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.adapters.sns import SnsEventPublisher
from medsum.adapters.sqs import SqsWorkQueue
from medsum.adapters.uploads import S3UploadStore
from medsum.adapters.webhooks import (
    DynamoDeliveryLog,
    DynamoWebhookRepository,
    KmsSecretCipher,
    SqsReplayQueue,
)
from medsum.clock import new_id, utcnow
from medsum.errors import (
    BatchInputError,
    BatchNotFoundError,
    EnqueueError,
    InvalidPageTokenError,
    ReportNotFoundError,
    ReportTooLargeError,
    RepositoryError,
)
from medsum.http import (
    MAX_BATCH_BODY_BYTES,
    MAX_BODY_BYTES,
    body_size,
    error_body,
    is_json_content_type,
    is_ndjson_content_type,
    owner_from_identity,
    raw_error,
    validation_problem,
)
from medsum.logic.batches import (
    BatchDeps,
    ParsedBatch,
    batch_links,
    cancel_batch,
    create_batch,
    deliver_results,
    get_batch,
    list_batches,
    parse_batch,
)
from medsum.logic.ingest import MAX_UPLOAD_ITEMS, UPLOAD_URL_SECONDS, create_upload_batch, upload_key
from medsum.logic.reports import SubmitDeps, delete_report, get_report, list_reports, submit_report
from medsum.logic.webhooks import (
    DeliveryNotFoundError,
    NoDefaultSecretError,
    TooManyWebhooksError,
    UrlPolicy,
    WebhookNotFoundError,
    register_callback,
    register_webhook,
    rotate_secret,
    set_default_secret,
)
from medsum.logic.webhooks import view as webhook_view
from medsum.models import (
    PATIENT_ID_PATTERN,
    Batch,
    BatchPage,
    BatchView,
    DeliveryPage,
    Links,
    ReplayAccepted,
    Report,
    ReportListItem,
    ReportPage,
    ReportView,
    ResultLine,
    ResultsLink,
    SubmitResponse,
    SummarizeRequest,
    UploadTarget,
    UploadView,
    WebhookCreateRequest,
    WebhookPage,
)
from medsum.netguard import UnsafeUrlError
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
    settings = get_api_settings()
    return DynamoReportRepository(settings.table_name, batches_table=settings.batches_table_name)


@lru_cache(maxsize=1)
def _batches() -> DynamoBatchRepository:
    return DynamoBatchRepository(get_api_settings().batches_table_name)


@lru_cache(maxsize=1)
def _uploads() -> S3UploadStore:
    settings = get_api_settings()
    return S3UploadStore(settings.uploads_bucket_name, settings.uploads_kms_key_id)


@lru_cache(maxsize=1)
def _batch_deps() -> BatchDeps:
    return BatchDeps(
        reports=_repository(),
        batches=_batches(),
        queue=SqsWorkQueue(get_api_settings().bulk_queue_url),
        publisher=SnsEventPublisher(get_api_settings().events_topic_arn),
        window=get_api_settings().bulk_window,
    )


@lru_cache(maxsize=1)
def _submit_deps() -> SubmitDeps:
    return SubmitDeps(repository=_repository(), queue=SqsWorkQueue(get_api_settings().work_queue_url))


@lru_cache(maxsize=1)
def _webhooks() -> DynamoWebhookRepository:
    return DynamoWebhookRepository(get_api_settings().webhooks_table_name)


@lru_cache(maxsize=1)
def _cipher() -> KmsSecretCipher:
    return KmsSecretCipher(get_api_settings().secrets_kms_key_id)


@lru_cache(maxsize=1)
def _deliveries() -> DynamoDeliveryLog:
    settings = get_api_settings()
    return DynamoDeliveryLog(settings.deliveries_table_name, settings.report_retention_days * 86_400)


@lru_cache(maxsize=1)
def _replays() -> SqsReplayQueue:
    return SqsReplayQueue(get_api_settings().notifier_queue_url)


@lru_cache(maxsize=1)
def _url_policy() -> UrlPolicy:
    settings = get_api_settings()
    return UrlPolicy(
        allow_local_http=settings.allow_local_http_webhooks, allowed_ports=settings.allowed_ports
    )


_idempotency_config = IdempotencyConfig(
    event_key_jmespath="[owner, key]",
    payload_validation_jmespath="request",
    expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    raise_on_no_idempotency_key=True,
)


def _submit(command: dict[str, Any]) -> dict[str, Any]:
    settings = get_api_settings()
    request = SummarizeRequest.model_validate(command["request"])
    report_id, now = new_id(), utcnow()
    if request.callback_url:
        # Recorded before the work is queued, so the report's event always finds it.
        register_callback(
            request.callback_url,
            command["owner"],
            report_id,
            ["report.completed", "report.failed"],
            _webhooks(),
            _url_policy(),
            now,
            expires_at=int((now + timedelta(days=settings.report_retention_days)).timestamp()),
        )
    report = submit_report(
        request,
        command["owner"],
        _submit_deps(),
        report_id=report_id,
        now=now,
        retention_days=settings.report_retention_days,
    )
    return {"report_id": report.report_id}


def _create_batch(command: dict[str, Any], parsed: ParsedBatch) -> dict[str, Any]:
    batch_id, now, retention_days = new_id(), utcnow(), get_api_settings().report_retention_days
    if parsed.callback_url:
        register_callback(
            parsed.callback_url,
            command["owner"],
            batch_id,
            ["batch.completed", "batch.cancelled"],
            _webhooks(),
            _url_policy(),
            now,
            expires_at=int((now + timedelta(days=retention_days)).timestamp()),
        )
    batch = create_batch(
        parsed,
        command["owner"],
        _batch_deps(),
        batch_id=batch_id,
        now=now,
        retention_days=retention_days,
        public_api_url=command["base_url"],
    )
    return {"batch_id": batch.batch_id}


@lru_cache(maxsize=1)
def _persistence() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(
        table_name=get_api_settings().idempotency_table_name, boto3_client=client("dynamodb")
    )


@lru_cache(maxsize=1)
def _idempotent_submit() -> Any:
    return idempotent_function(
        data_keyword_argument="command", persistence_store=_persistence(), config=_idempotency_config
    )(_submit)


@lru_cache(maxsize=1)
def _idempotent_create_batch() -> Any:
    return idempotent_function(
        data_keyword_argument="command", persistence_store=_persistence(), config=_idempotency_config
    )(_create_batch)


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
        batch_id=report.batch_id,
        custom_id=report.custom_id,
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


@app.get(
    "/reports/<report_id>",
    summary="Read one report's status and summary",
    responses={
        200: {
            "description": "The report: status, verified summary (items with certainty, `verification`)",
            "content": {"application/json": {"model": ReportView}},
        }
    },
)
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


@app.post("/batches", summary="Submit up to 1,000 reports at once (JSON or JSON Lines)")
def submit_batch(
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> Response[str]:
    owner = _owner()
    event = app.current_event
    body = event.decoded_body or ""
    parsed = parse_batch(body, ndjson=is_ndjson_content_type(event.headers.get("Content-Type")))
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    command = {"owner": owner, "request": digest, "base_url": _base_url()}
    if idempotency_key:
        result = _idempotent_create_batch()(command={**command, "key": idempotency_key}, parsed=parsed)
    else:
        result = _create_batch(command, parsed)
    batch = get_batch(_batches(), owner, result["batch_id"])
    view = _batch_view(batch, with_errors=True)
    metrics.add_metric(name="BatchesSubmitted", unit="Count", value=1)
    return _json(
        HTTPStatus.ACCEPTED,
        view.model_dump_json(),
        headers={"Location": view.links.self, "Retry-After": str(get_api_settings().retry_after_seconds)},
    )


@app.post("/batches/uploads", summary="Start a large batch: a presigned URL for a JSON Lines file")
def create_upload() -> Response[str]:
    """The batch starts ``validating``; uploading the file (at most 100,000 lines) to ``upload.url``
    with ``upload.headers`` starts its ingestion, and ``GET /batches/{id}`` follows it from there."""
    owner = _owner()
    now = utcnow()
    batch = create_upload_batch(
        _batches(),
        owner,
        batch_id=new_id(),
        now=now,
        retention_days=get_api_settings().report_retention_days,
    )
    url, headers = _uploads().presign_put(upload_key(owner, batch.batch_id), UPLOAD_URL_SECONDS)
    view = UploadView(
        batch_id=batch.batch_id,
        status=batch.status,
        upload=UploadTarget(
            url=url,
            headers=headers,
            expires_at=now + timedelta(seconds=UPLOAD_URL_SECONDS),
            max_items=MAX_UPLOAD_ITEMS,
        ),
        links=batch_links(_base_url(), batch.batch_id),
    )
    metrics.add_metric(name="BatchUploadsStarted", unit="Count", value=1)
    return _json(HTTPStatus.CREATED, view.model_dump_json(), headers={"Location": view.links.self})


@app.get("/batches", summary="List the caller's batches, newest first")
def list_batches_route(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    next_token: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
) -> Response[str]:
    batches, token = list_batches(_batches(), _owner(), limit, next_token, utcnow())
    page = BatchPage(items=[_batch_view(b, with_errors=False) for b in batches], next_token=token)
    return _json(HTTPStatus.OK, page.model_dump_json())


@app.get("/batches/<batch_id>", summary="A batch's status, counts and line errors")
def read_batch(batch_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    batch = get_batch(_batches(), _owner(), batch_id, utcnow())
    return _json(HTTPStatus.OK, _batch_view(batch, with_errors=True).model_dump_json())


@app.get(
    "/batches/<batch_id>/results",
    summary="One JSON line per item, joined on custom_id",
    responses={
        200: {
            "description": "The results, JSON Lines (batches of up to 1,000 items): one `ResultLine` a line",
            "content": {"application/x-ndjson": {"model": ResultLine}},
        },
        303: {"description": "Larger batches: `Location` is a presigned URL of the results file"},
    },
)
def read_batch_results(batch_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    results = deliver_results(_repository(), _batches(), _uploads(), _owner(), batch_id, utcnow())
    if isinstance(results, str):
        return Response(status_code=HTTPStatus.OK, content_type="application/x-ndjson", body=results)
    body = ResultsLink(url=results.url, expires_at=results.expires_at, size=results.size)
    return _json(HTTPStatus.SEE_OTHER, body.model_dump_json(), headers={"Location": results.url})


@app.post("/batches/<batch_id>/cancel", summary="Cancel the items that have not started")
def cancel_batch_route(batch_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    deps = _batch_deps()
    batch = cancel_batch(deps.batches, _owner(), batch_id, utcnow(), deps.publisher, _base_url())
    return _json(HTTPStatus.ACCEPTED, _batch_view(batch, with_errors=False).model_dump_json())


# --------------------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------------------
@app.post("/webhooks", summary="Register a webhook endpoint (the signing secret is shown once)")
def create_webhook(body: Annotated[WebhookCreateRequest, Body(embed=False)]) -> Response[str]:
    created = register_webhook(body, _owner(), _webhooks(), _cipher(), _url_policy(), utcnow())
    return _json(HTTPStatus.CREATED, created.model_dump_json())


@app.post(
    "/webhooks/default-secret",
    summary="Create (or rotate) the secret that signs per-request callback_url deliveries (shown once)",
)
def create_default_secret() -> Response[str]:
    secret = set_default_secret(_owner(), _webhooks(), _cipher(), utcnow())
    return _json(HTTPStatus.CREATED, secret.model_dump_json())


@app.get("/webhooks", summary="List the caller's webhook endpoints (never their secrets)")
def list_webhooks() -> Response[str]:
    now = utcnow()
    items = [webhook_view(w, now) for w in _webhooks().list_for_owner(_owner())]
    items.sort(key=lambda w: w.created_at)
    return _json(HTTPStatus.OK, WebhookPage(items=items).model_dump_json())


@app.delete("/webhooks/<webhook_id>", summary="Remove a webhook endpoint")
def delete_webhook(webhook_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    if not _webhooks().delete(_owner(), webhook_id):
        raise WebhookNotFoundError("webhook not found")
    return Response(status_code=HTTPStatus.NO_CONTENT, body="")


@app.post(
    "/webhooks/<webhook_id>/rotate-secret",
    summary="A new signing secret; the previous one keeps signing for 24 hours",
)
def rotate_webhook_secret(webhook_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    rotated = rotate_secret(_owner(), webhook_id, _webhooks(), _cipher(), utcnow())
    return _json(HTTPStatus.OK, rotated.model_dump_json())


@app.get("/reports/<report_id>/deliveries", summary="Webhook delivery attempts of a report's events")
def report_deliveries(report_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    owner = _owner()
    get_report(_repository(), owner, report_id)  # 404 unless the caller owns it
    page = DeliveryPage(items=_deliveries().attempts(report_id, owner))
    return _json(HTTPStatus.OK, page.model_dump_json())


@app.get("/batches/<batch_id>/deliveries", summary="Webhook delivery attempts of a batch's events")
def batch_deliveries(batch_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    owner = _owner()
    get_batch(_batches(), owner, batch_id)
    page = DeliveryPage(items=_deliveries().attempts(batch_id, owner))
    return _json(HTTPStatus.OK, page.model_dump_json())


@app.post(
    "/webhooks/deliveries/<delivery_id>/replay",
    summary="Send one delivery again (same webhook-id)",
    responses={202: {"description": "Accepted"}},
)
def replay_webhook_delivery(delivery_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    state = _deliveries().get_state(delivery_id)
    if state is None or state.owner != _owner():
        raise DeliveryNotFoundError("delivery not found")
    _replays().enqueue_replay(delivery_id)
    return _json(HTTPStatus.ACCEPTED, ReplayAccepted(delivery_id=delivery_id).model_dump_json())


def _batch_view(batch: Batch, *, with_errors: bool) -> BatchView:
    return BatchView(
        batch_id=batch.batch_id,
        status=batch.status,
        request_counts=batch.counts,
        created_at=batch.created_at,
        updated_at=batch.updated_at,
        completed_at=batch.completed_at,
        expires_at=datetime.fromtimestamp(batch.expires_at, UTC) if batch.expires_at else None,
        metadata=batch.metadata,
        errors=batch.errors if with_errors else None,
        links=batch_links(_base_url(), batch.batch_id),
    )


# --------------------------------------------------------------------------------------------------
# Errors: mapped in one place, fixed messages, never a stack trace
# --------------------------------------------------------------------------------------------------
@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    code, message, details = validation_problem(list(exc.errors()))
    return _error(HTTPStatus.BAD_REQUEST, code, message, details)


@app.exception_handler(ReportNotFoundError)
def _not_found_report(_: ReportNotFoundError) -> Response[str]:
    return _error(HTTPStatus.NOT_FOUND, "not_found", "report not found")


@app.exception_handler(BatchNotFoundError)
def _not_found_batch(_: BatchNotFoundError) -> Response[str]:
    return _error(HTTPStatus.NOT_FOUND, "not_found", "batch not found")


@app.exception_handler(BatchInputError)
def _bad_batch(exc: BatchInputError) -> Response[str]:
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if exc.code == "too_many_items" else HTTPStatus.BAD_REQUEST
    return _error(status, exc.code, exc.message, exc.details or None)


@app.exception_handler(UnsafeUrlError)
def _unsafe_url(exc: UnsafeUrlError) -> Response[str]:
    return _error(HTTPStatus.BAD_REQUEST, exc.code, exc.message)


@app.exception_handler(NoDefaultSecretError)
def _no_default_secret(_: NoDefaultSecretError) -> Response[str]:
    return _error(
        HTTPStatus.CONFLICT,
        "no_default_secret",
        "create a default secret with POST /webhooks/default-secret before using callback_url",
    )


@app.exception_handler(TooManyWebhooksError)
def _too_many_webhooks(_: TooManyWebhooksError) -> Response[str]:
    return _error(HTTPStatus.CONFLICT, "too_many_webhooks", "at most 10 webhooks per caller")


@app.exception_handler(WebhookNotFoundError)
def _not_found_webhook(_: WebhookNotFoundError) -> Response[str]:
    return _error(HTTPStatus.NOT_FOUND, "not_found", "webhook not found")


@app.exception_handler(DeliveryNotFoundError)
def _not_found_delivery(_: DeliveryNotFoundError) -> Response[str]:
    return _error(HTTPStatus.NOT_FOUND, "not_found", "delivery not found")


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
    """Reject what must never reach validation: oversize bodies and bodies of the wrong type."""
    method = str(event.get("httpMethod", "")).upper()
    batches = event.get("path") == "/batches"
    limit = MAX_BATCH_BODY_BYTES if batches else MAX_BODY_BYTES
    if body_size(event) > limit:
        return raw_error(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "payload_too_large",
            "the request body exceeds 5 MiB; upload larger batches"
            if batches
            else "the request body exceeds 1 MiB",
        )
    if method in {"POST", "PUT", "PATCH"} and event.get("body"):
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        content_type = headers.get("content-type")
        if not (is_json_content_type(content_type) or (batches and is_ndjson_content_type(content_type))):
            return raw_error(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json" + (" or application/x-ndjson" if batches else ""),
            )
    return None


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
        return raw_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")


__all__ = ["app", "lambda_handler"]
