"""Batches: submit inline (JSON or JSON Lines) or by upload, list, read, results, cancel, deliveries."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Request, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from medsum.http import idempotency
from medsum.http.deps import ApiDeps, BaseUrl, Caller, Deps
from medsum.http.edge import JSON, NDJSON
from medsum.http.params import (
    BODY_ERRORS,
    LOCATION_HEADER,
    RETRY_AFTER_HEADER,
    SIGNED,
    SIGNED_ERRORS,
    IdempotencyKey,
    Limit,
    NextToken,
    ResourceId,
    answers,
)
from medsum.logic.batches import (
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
from medsum.models import (
    Batch,
    BatchPage,
    BatchView,
    DeliveryPage,
    ResultLine,
    ResultsLink,
    UploadTarget,
    UploadView,
)
from medsum.observability import metrics

router = Router()  # type: ignore[no-untyped-call]
TAGS = ["batches"]

#: ``POST /batches`` has no ``Body()`` parameter (each item is validated on its own, a bad one becomes
#: a line error): its request body is declared here, and ``medsum.http.openapi`` adds the schemas.
BATCH_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Up to 1,000 reports: a JSON envelope, or JSON Lines (one `BatchItemRequest` a "
        "line). At most 5 MiB.",
        "content": {
            JSON: {"schema": {"$ref": "#/components/schemas/BatchRequest"}},
            NDJSON: {"schema": {"$ref": "#/components/schemas/BatchItemRequest"}},
        },
    }
}


def batch_view(batch: Batch, base_url: str, *, with_errors: bool) -> BatchView:
    """What a client sees of a batch (``errors`` only where a single batch is read)."""
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
        links=batch_links(base_url, batch.batch_id),
    )


def _create(command: dict[str, Any], parsed: ParsedBatch, deps: ApiDeps, base_url: str) -> dict[str, Any]:
    """Accept one batch (the unit of work an ``Idempotency-Key`` makes happen once)."""
    batch = create_batch(
        parsed,
        command["owner"],
        deps.batch,
        batch_id=deps.new_id(),
        now=deps.clock(),
        retention_days=deps.retention_days,
        public_api_url=base_url,
    )
    return {"batch_id": batch.batch_id}


@router.post(
    "/batches",
    summary="Submit up to 1,000 reports at once (JSON or JSON Lines)",
    tags=TAGS,
    security=SIGNED,
    openapi_extensions=BATCH_REQUEST_BODY,
    responses=answers(
        {
            202: {
                "description": "Accepted: the batch, with the lines that were not (`errors`)",
                "headers": LOCATION_HEADER | RETRY_AFTER_HEADER,
            }
        },
        *SIGNED_ERRORS,
        *BODY_ERRORS,
        409,
        422,
        s400="`invalid_json`, `invalid_request`, `duplicate_custom_id`, `no_valid_items`, or a refused "
        "`callback_url`",
        s409="`request_in_progress`, `no_default_secret`",
        s413="`payload_too_large` (over 5 MiB) or `too_many_items` (over 1,000)",
        s415="`unsupported_media_type`: neither JSON nor JSON Lines",
    ),
)
def submit_batch(
    request: Request, deps: Deps, owner: Caller, base_url: BaseUrl, idempotency_key: IdempotencyKey = None
) -> Response[BatchView]:
    body = request.resolved_event.decoded_body or ""
    parsed = parse_batch(body, ndjson=request.headers.get("Content-Type") == NDJSON)
    command = {"owner": owner, "request": hashlib.sha256(body.encode("utf-8")).hexdigest()}
    if idempotency_key:
        result = idempotency.at_most_once(
            _create,
            deps.idempotency,
            {**command, "key": idempotency_key},
            parsed=parsed,
            deps=deps,
            base_url=base_url,
        )
    else:
        result = _create(command, parsed, deps, base_url)
    view = batch_view(get_batch(deps.batches, owner, result["batch_id"]), base_url, with_errors=True)
    metrics.add_metric(name="BatchesSubmitted", unit="Count", value=1)
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type=content_types.APPLICATION_JSON,
        body=view,
        headers={"Location": view.links.self, "Retry-After": str(deps.retry_after_seconds)},
    )


@router.post(
    "/batches/uploads",
    summary="Start a large batch: a presigned URL for a JSON Lines file",
    description="The batch starts `validating`; uploading the file (at most 100,000 lines) to `upload.url` "
    "with `upload.headers` starts its ingestion, and `GET /batches/{batch_id}` follows it from there.",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {201: {"description": "Created: where to upload the file", "headers": LOCATION_HEADER}},
        *SIGNED_ERRORS,
        *BODY_ERRORS,
    ),
)
def create_upload(deps: Deps, owner: Caller, base_url: BaseUrl) -> Response[UploadView]:
    now = deps.clock()
    batch = create_upload_batch(
        deps.batches, owner, batch_id=deps.new_id(), now=now, retention_days=deps.retention_days
    )
    url, headers = deps.uploads.presign_put(upload_key(owner, batch.batch_id), UPLOAD_URL_SECONDS)
    view = UploadView(
        batch_id=batch.batch_id,
        status=batch.status,
        upload=UploadTarget(
            url=url,
            headers=headers,
            expires_at=now + timedelta(seconds=UPLOAD_URL_SECONDS),
            max_items=MAX_UPLOAD_ITEMS,
        ),
        links=batch_links(base_url, batch.batch_id),
    )
    metrics.add_metric(name="BatchUploadsStarted", unit="Count", value=1)
    return Response(
        status_code=HTTPStatus.CREATED,
        content_type=content_types.APPLICATION_JSON,
        body=view,
        headers={"Location": view.links.self},
    )


@router.get(
    "/batches",
    summary="List the caller's batches, newest first",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {200: {"description": "One page (`errors` omitted; `next_token` is null on the last)"}},
        *SIGNED_ERRORS,
        s400="`invalid_request`, or `invalid_next_token` (a token not issued for this listing and caller)",
    ),
)
def list_batches_route(
    deps: Deps, owner: Caller, base_url: BaseUrl, limit: Limit = 20, next_token: NextToken = None
) -> Response[BatchPage]:
    batches, token = list_batches(deps.batches, owner, limit, next_token, deps.clock())
    page = BatchPage(items=[batch_view(b, base_url, with_errors=False) for b in batches], next_token=token)
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, page)


@router.get(
    "/batches/<batch_id>",
    summary="A batch's status, counts and line errors",
    tags=TAGS,
    security=SIGNED,
    responses=answers({200: {"description": "The batch"}}, *SIGNED_ERRORS, 404),
)
def read_batch(batch_id: ResourceId, deps: Deps, owner: Caller, base_url: BaseUrl) -> Response[BatchView]:
    batch = get_batch(deps.batches, owner, batch_id, deps.clock())
    return Response(
        HTTPStatus.OK, content_types.APPLICATION_JSON, batch_view(batch, base_url, with_errors=True)
    )


@router.get(
    "/batches/<batch_id>/results",
    summary="One JSON line per item, joined on custom_id",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {
            200: {
                "description": "The results, JSON Lines (batches of up to 1,000 items): one `ResultLine` a "
                "line",
                "content": {NDJSON: {"model": ResultLine}},
            },
            303: {
                "description": "Larger batches: `Location` is a presigned URL of the results file",
                "headers": LOCATION_HEADER,
                "content": {JSON: {"model": ResultsLink}},
            },
        },
        *SIGNED_ERRORS,
        404,
    ),
)
def read_batch_results(batch_id: ResourceId, deps: Deps, owner: Caller) -> Response[str | ResultsLink]:
    results = deliver_results(deps.reports, deps.batches, deps.uploads, owner, batch_id, deps.clock())
    if isinstance(results, str):
        return Response(status_code=HTTPStatus.OK, content_type=NDJSON, body=results)
    link = ResultsLink(url=results.url, expires_at=results.expires_at, size=results.size)
    return Response(
        status_code=HTTPStatus.SEE_OTHER,
        content_type=content_types.APPLICATION_JSON,
        body=link,
        headers={"Location": results.url},
    )


@router.post(
    "/batches/<batch_id>/cancel",
    summary="Cancel the items that have not started",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {202: {"description": "Accepted: the batch (`cancelling`, or `cancelled` at once)"}},
        *SIGNED_ERRORS,
        *BODY_ERRORS,
        404,
    ),
)
def cancel_batch_route(
    batch_id: ResourceId, deps: Deps, owner: Caller, base_url: BaseUrl
) -> Response[BatchView]:
    batch = cancel_batch(deps.batches, owner, batch_id, deps.clock(), deps.publisher, base_url)
    return Response(
        HTTPStatus.ACCEPTED, content_types.APPLICATION_JSON, batch_view(batch, base_url, with_errors=False)
    )


@router.get(
    "/batches/<batch_id>/deliveries",
    summary="Webhook delivery attempts of a batch's events",
    tags=TAGS,
    security=SIGNED,
    responses=answers({200: {"description": "Attempts, oldest first"}}, *SIGNED_ERRORS, 404),
)
def batch_deliveries(batch_id: ResourceId, deps: Deps, owner: Caller) -> Response[DeliveryPage]:
    get_batch(deps.batches, owner, batch_id)  # 404 unless the caller owns it
    page = DeliveryPage(items=deps.deliveries.attempts(batch_id, owner))
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, page)
