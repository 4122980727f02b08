"""Reports: submit one (``POST /summarize``), read, erase, list a patient's, and their deliveries."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from medsum.http import idempotency
from medsum.http.deps import ApiDeps, BaseUrl, Caller, Deps
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
from medsum.logic.reports import delete_report, get_report, list_reports, report_link, submit_report
from medsum.models import (
    PATIENT_ID_PATTERN,
    DeliveryPage,
    Links,
    Report,
    ReportListItem,
    ReportPage,
    ReportStatus,
    ReportView,
    SubmitResponse,
    SummarizeRequest,
)
from medsum.observability import metrics

router = Router()  # type: ignore[no-untyped-call]
TAGS = ["reports"]


def report_view(report: Report, base_url: str) -> ReportView:
    """What a client may see of a stored report (never its text)."""
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
        links=Links(self=report_link(base_url, report.report_id)),
    )


def _submit(command: dict[str, Any], deps: ApiDeps) -> dict[str, Any]:
    """Accept one report (the unit of work an ``Idempotency-Key`` makes happen once)."""
    report = submit_report(
        SummarizeRequest.model_validate(command["request"]),
        command["owner"],
        deps.submit,
        report_id=deps.new_id(),
        now=deps.clock(),
        retention_days=deps.retention_days,
    )
    return {"report_id": report.report_id}


@router.post(
    "/summarize",
    summary="Submit a report for summarization",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {
            202: {
                "description": "Accepted: the report is PENDING",
                "headers": LOCATION_HEADER | RETRY_AFTER_HEADER,
            }
        },
        *SIGNED_ERRORS,
        *BODY_ERRORS,
        409,
        422,
        s400="`invalid_request`, `invalid_json`, or a refused `callback_url` (`url_*`, `invalid_url`)",
        s409="`request_in_progress` (same `Idempotency-Key` running), `no_default_secret` (`callback_url` "
        "without a default secret)",
        s413="`payload_too_large` (body over 1 MiB) or `report_too_large` (text too large to store)",
    ),
)
def summarize(
    body: Annotated[SummarizeRequest, Body(embed=False)],
    deps: Deps,
    owner: Caller,
    base_url: BaseUrl,
    idempotency_key: IdempotencyKey = None,
) -> Response[SubmitResponse]:
    command = {"owner": owner, "request": body.model_dump(mode="json")}
    if idempotency_key:
        result = idempotency.at_most_once(
            _submit, deps.idempotency, {**command, "key": idempotency_key}, deps=deps
        )
    else:
        result = _submit(command, deps)
    links = Links(self=report_link(base_url, result["report_id"]))
    metrics.add_metric(name="ReportsSubmitted", unit="Count", value=1)
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type=content_types.APPLICATION_JSON,
        body=SubmitResponse(report_id=result["report_id"], status=ReportStatus.PENDING, links=links),
        headers={"Location": links.self, "Retry-After": str(deps.retry_after_seconds)},
    )


@router.get(
    "/reports/<report_id>",
    summary="Read one report's status and summary",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {200: {"description": "The report: status, verified summary (items with certainty, `verification`)"}},
        *SIGNED_ERRORS,
        404,
    ),
)
def read_report(report_id: ResourceId, deps: Deps, owner: Caller, base_url: BaseUrl) -> Response[ReportView]:
    report = get_report(deps.reports, owner, report_id)
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, report_view(report, base_url))


@router.delete(
    "/reports/<report_id>",
    summary="Erase a report (text and summary)",
    tags=TAGS,
    security=SIGNED,
    responses=answers({204: {"description": "Erased", "content": {}}}, *SIGNED_ERRORS, 404),
)
def erase_report(report_id: ResourceId, deps: Deps, owner: Caller) -> Response[None]:
    delete_report(deps.reports, owner, report_id)
    return Response(status_code=HTTPStatus.NO_CONTENT)


@router.get(
    "/patients/<patient_id>/reports",
    summary="List the caller's reports for a patient, newest first",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {200: {"description": "One page (`next_token` is null on the last)"}},
        *SIGNED_ERRORS,
        404,
        s400="`invalid_request`, or `invalid_next_token` (a token not issued for this listing and caller)",
        s404="`route_not_found`: the path names no route (a `patient_id` holding `/`)",
    ),
)
def patient_reports(
    patient_id: Annotated[str, Path(pattern=PATIENT_ID_PATTERN)],
    deps: Deps,
    owner: Caller,
    base_url: BaseUrl,
    limit: Limit = 20,
    next_token: NextToken = None,
) -> Response[ReportPage]:
    page = list_reports(deps.reports, owner, patient_id, limit, next_token)
    items = [
        ReportListItem(
            report_id=r.report_id,
            patient_id=r.patient_id,
            report_type=r.report_type,
            status=r.status,
            created_at=r.created_at,
            updated_at=r.updated_at,
            links=Links(self=report_link(base_url, r.report_id)),
        )
        for r in page.items
    ]
    return Response(
        HTTPStatus.OK, content_types.APPLICATION_JSON, ReportPage(items=items, next_token=page.next_token)
    )


@router.get(
    "/reports/<report_id>/deliveries",
    summary="Webhook delivery attempts of a report's events",
    tags=TAGS,
    security=SIGNED,
    responses=answers({200: {"description": "Attempts, oldest first"}}, *SIGNED_ERRORS, 404),
)
def report_deliveries(report_id: ResourceId, deps: Deps, owner: Caller) -> Response[DeliveryPage]:
    get_report(deps.reports, owner, report_id)  # 404 unless the caller owns it
    page = DeliveryPage(items=deps.deliveries.attempts(report_id, owner))
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, page)
