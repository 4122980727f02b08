"""The one error mapping of the HTTP edge, shared by the api and admin functions.

Every domain error carries its HTTP ``status``, ``code`` and fixed ``message`` (``medsum.errors``), so
mapping is rendering: :func:`error_response` is registered once, for ``MedsumError`` (Powertools looks
handlers up along the exception's class hierarchy), and also receives the two errors Powertools raises
itself (request validation, unsupported content type), translated into ours. A 5xx answer never carries
exception text; its type and frames are logged (never its message, which could echo request data).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field

from medsum.errors import (
    InvalidJsonError,
    InvalidRequestError,
    MedsumError,
    MethodNotAllowedError,
    RouteNotFoundError,
    UnsupportedMediaTypeError,
)
from medsum.observability import logger, safe_exception_fields
from medsum.validation import problems

ERROR_CONTENT_TYPE = content_types.APPLICATION_JSON


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code``, a fixed ``message`` and, for some codes, ``details``
    (locations of invalid fields, repeated ``custom_id``s, rejected lines) — never request data."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="stable, machine-readable (docs/api.md lists them)")
    message: str = Field(description="fixed, human-readable")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="locations (`location`, `problem`), ids or line errors; absent when empty"
    )


class ErrorBody(BaseModel):
    """Every error the API answers, whatever the status."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


def as_medsum_error(exc: Exception) -> MedsumError:
    """The domain error an exception stands for (anything unknown is ``500 internal_error``)."""
    if isinstance(exc, MedsumError):
        return exc
    if isinstance(exc, RequestValidationError):
        errors = list(exc.errors())
        if any(tuple(err.get("loc", ()))[:1] == ("response",) for err in errors):
            return MedsumError("response validation")  # our answer broke its own model: a bug
        if any(err.get("type") == "json_invalid" for err in errors):
            return InvalidJsonError("invalid json")
        return InvalidRequestError(problems(errors))
    if isinstance(exc, RequestUnsupportedContentType):
        return UnsupportedMediaTypeError("send the body as application/json")
    return MedsumError("internal error")


def error_body(error: MedsumError) -> ErrorBody:
    """The error shape of a domain error (5xx answers say only what their class says)."""
    details = [dict(d) for d in error.details] or None
    return ErrorBody(error=ErrorDetail(code=error.code, message=error.message, details=details))


def error_response(exc: Exception) -> Response[str]:
    """Render any exception that reached the edge as ``{"error": {...}}`` with its status."""
    error = as_medsum_error(exc)
    if error.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.error("request failed", status=error.status, extra=safe_exception_fields(exc))
    body = error_body(error).model_dump_json(exclude_none=True)
    return Response(
        status_code=error.status, content_type=ERROR_CONTENT_TYPE, body=body, headers=dict(error.headers)
    )


def register(app: ApiGatewayResolver) -> None:
    """Register the one error handler (and the unknown-route answer) on a resolver."""
    app.exception_handler([MedsumError, RequestValidationError, RequestUnsupportedContentType])(
        error_response
    )

    @app.not_found
    def _unknown_route(_: NotFoundError) -> Response[str]:
        return error_response(_unrouted(app, app.current_event.path, app.current_event.http_method.upper()))


#: A path parameter as routing sees it when its characters are not checked: any one segment.
_ANY_SEGMENT = r"(?P<\1>[^/]*)"


def _unrouted(app: ApiGatewayResolver, path: str, method: str) -> MedsumError:
    """Why no route took the request: a path parameter with characters Powertools does not route
    (``400 invalid_request``: the parameter is invalid, the operation exists), another method
    (``405``), or no such path (``404 route_not_found``)."""
    routes = app._static_routes + app._dynamic_routes
    allowed = sorted({route.method for route in routes if route.rule.match(path)})
    if not allowed:
        loose = [
            route for route in routes if re.fullmatch(re.sub(r"<(\w+)>", _ANY_SEGMENT, route.path), path)
        ]
        if any(route.method == method for route in loose):
            return InvalidRequestError([{"location": "path", "problem": "a path parameter is not valid"}])
        allowed = sorted({route.method for route in loose})
    if allowed and method not in allowed:
        return MethodNotAllowedError(allowed)
    return RouteNotFoundError("no such route")


# --------------------------------------------------------------------------------------------------
# OpenAPI: the error answers of a route (``responses=``), all with the ErrorBody schema
# --------------------------------------------------------------------------------------------------
#: What each status means, as the OpenAPI document says it (codes as in docs/api.md).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "`invalid_request` (fields or parameters; `details` says where), `invalid_json`, or a more "
    "specific code of the route",
    403: "`missing_authentication`, `invalid_signature`, `access_denied` (API Gateway: unsigned, badly "
    "signed or unauthorized), `forbidden` (no caller identity)",
    404: "`not_found`: no such resource, or another caller's (indistinguishable)",
    409: "`conflict` codes of the route (see docs/api.md)",
    413: "`payload_too_large`: the body is over the route's limit",
    415: "`unsupported_media_type`: a body that is not JSON (`application/json`, `*/*+json`)",
    422: "`idempotency_key_reused`: the `Idempotency-Key` was used with a different body",
    429: "`throttled`: the stage's rate limit (API Gateway)",
    500: "`internal_error`: a bug; details are only in the logs",
    503: "`unavailable`: a store or queue is unavailable; retry",
}


def error_responses(*statuses: int, **descriptions: str) -> dict[int, OpenAPIResponse]:
    """``responses=`` entries for error statuses, each with the ``ErrorBody`` schema.

    ``descriptions`` override the default text per status (``s409="..."``)."""
    return {
        status: {
            "description": descriptions.get(f"s{status}", ERROR_DESCRIPTIONS[status]),
            "content": {ERROR_CONTENT_TYPE: {"model": ErrorBody}},
        }
        for status in sorted(set(statuses))
    }


def statuses(*groups: Iterable[int]) -> tuple[int, ...]:
    """The union of status groups, sorted."""
    return tuple(sorted({s for group in groups for s in group}))
