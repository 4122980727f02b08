"""Operators (``/admin``): the dead-letter queue, redrive and purge (audited), the audit trail, retries.

Served by the admin function, whose handler refuses every caller that is not an operator before
routing (``403 forbidden``). Answers carry ids, codes, counts and times, never report text.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from medsum.http.deps import Caller, Operations
from medsum.http.params import BODY_ERRORS, SIGNED, SIGNED_ERRORS, NextToken, ResourceId, answers
from medsum.logic.dlq import (
    get_job,
    list_audit,
    list_dead_letters,
    purge,
    redrive,
    retry_report,
    show_dead_letter,
    summarize_dead_letters,
)
from medsum.models import (
    AuditEntry,
    AuditPage,
    DeadLetterEntry,
    DeadLetterPage,
    DeadLetterSummary,
    PurgeRequest,
    RedriveJobView,
    RedriveRequest,
    RetryRequest,
)
from medsum.observability import metrics

router = Router()  # type: ignore[no-untyped-call]
TAGS = ["operators"]
#: Every admin route: the signed-route errors, ``403 forbidden`` for non-operators included.
ADMIN_ERRORS = SIGNED_ERRORS
_S403 = "`forbidden`: not an operator (`OperatorPrincipalArns`), or API Gateway's auth answers"
_S400 = "`invalid_request`, `invalid_json`, `invalid_selection`, `reason_required`"


@router.get(
    "/admin/dlq",
    summary="Dead-lettered work, oldest failure first (no report text)",
    tags=TAGS,
    security=SIGNED,
    responses=answers({200: {"description": "One page"}}, *ADMIN_ERRORS, s403=_S403),
)
def dlq_list(
    ops: Operations,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    next_token: NextToken = None,
    error_code: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,64}$")] = None,
    older_than: Annotated[str | None, Query(pattern=r"^[0-9]{1,7}[smhd]?$")] = None,
) -> Response[DeadLetterPage]:
    page = list_dead_letters(ops, limit, next_token, error_code, older_than)
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, page)


@router.get(
    "/admin/dlq/summary",
    summary="Dead-lettered work counted by error code and by age",
    tags=TAGS,
    security=SIGNED,
    responses=answers({200: {"description": "Counts"}}, *ADMIN_ERRORS, s403=_S403),
)
def dlq_summary(ops: Operations) -> Response[DeadLetterSummary]:
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, summarize_dead_letters(ops))


@router.get(
    "/admin/dlq/reports/<report_id>",
    summary="The dead-lettered work of one report",
    tags=TAGS,
    security=SIGNED,
    responses=answers({200: {"description": "The entry"}}, *ADMIN_ERRORS, 404, s403=_S403),
)
def dlq_show(report_id: ResourceId, ops: Operations) -> Response[DeadLetterEntry]:
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, show_dead_letter(ops, report_id))


@router.post(
    "/admin/dlq/redrive",
    summary="Put dead-lettered work back on the work queue (audited)",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {200: {"description": "The job (`running` with `remaining` > 0: continue with its `job_id`)"}},
        *ADMIN_ERRORS,
        *BODY_ERRORS,
        404,
        s400=_S400,
        s403=_S403,
    ),
)
def dlq_redrive(
    body: Annotated[RedriveRequest, Body(embed=False)], ops: Operations, principal: Caller
) -> Response[RedriveJobView]:
    job = redrive(ops, principal, body)
    metrics.add_metric(name="DeadLettersRedriven", unit="Count", value=job.moved)
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, job)


@router.get(
    "/admin/dlq/redrive/<job_id>",
    summary="A redrive job's progress",
    tags=TAGS,
    security=SIGNED,
    responses=answers({200: {"description": "The job"}}, *ADMIN_ERRORS, 404, s403=_S403),
)
def dlq_redrive_job(
    job_id: Annotated[str, Path(pattern=r"^[a-f0-9]{32}$")], ops: Operations
) -> Response[RedriveJobView]:
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, get_job(ops, job_id))


@router.post(
    "/admin/dlq/purge",
    summary="Delete dead-lettered work; reports stay FAILED (purged) (audited)",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {200: {"description": "The audit entry (`counts.purged`)"}},
        *ADMIN_ERRORS,
        *BODY_ERRORS,
        s400=_S400,
        s403=_S403,
    ),
)
def dlq_purge(
    body: Annotated[PurgeRequest, Body(embed=False)], ops: Operations, principal: Caller
) -> Response[AuditEntry]:
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, purge(ops, principal, body))


@router.get(
    "/admin/audit",
    summary="Operator actions, newest first (never deletable)",
    tags=TAGS,
    security=SIGNED,
    responses=answers({200: {"description": "One page"}}, *ADMIN_ERRORS, s403=_S403),
)
def audit(
    ops: Operations, limit: Annotated[int, Query(ge=1, le=200)] = 50, next_token: NextToken = None
) -> Response[AuditPage]:
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, list_audit(ops, limit, next_token))


@router.post(
    "/admin/reports/<report_id>/retry",
    summary="Retry a report that failed non-retryably (audited)",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {202: {"description": "Accepted: the audit entry"}},
        *ADMIN_ERRORS,
        *BODY_ERRORS,
        404,
        409,
        s403=_S403,
        s409="`not_failed` (the report is not FAILED), `in_dead_letter_queue` (redrive it instead)",
    ),
)
def retry(
    report_id: ResourceId,
    body: Annotated[RetryRequest, Body(embed=False)],
    ops: Operations,
    principal: Caller,
) -> Response[AuditEntry]:
    entry = retry_report(ops, principal, report_id, body.reason)
    return Response(HTTPStatus.ACCEPTED, content_types.APPLICATION_JSON, entry)
