"""Route parameters and the OpenAPI pieces every router shares (security, status groups)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader

from medsum.http.errors import error_responses

ResourceId = Annotated[str, Path(min_length=1, max_length=64, description="an id this API returned")]
Limit = Annotated[int, Query(ge=1, le=100, description="page size")]
NextToken = Annotated[
    str | None,
    Query(min_length=1, max_length=2048, description="opaque token of the previous page (`next_token`)"),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="the same key with the same body within 24 h answers the first answer again",
    ),
]

#: The security requirement of every signed route (the scheme is declared in ``medsum.http.openapi``).
SIGNED: list[dict[str, list[str]]] = [{"sigv4": []}]

#: Every signed route: bad parameters, API Gateway's auth answers, throttling, bugs, unavailability.
SIGNED_ERRORS = (400, 403, 429, 500, 503)
#: Routes that take a body (or may be sent one): size and media type.
BODY_ERRORS = (413, 415)

LOCATION_HEADER: dict[str, OpenAPIResponseHeader] = {
    "Location": {"description": "the resource's URL", "schema": {"type": "string"}}
}
RETRY_AFTER_HEADER: dict[str, OpenAPIResponseHeader] = {
    "Retry-After": {"description": "seconds until polling is worthwhile", "schema": {"type": "string"}}
}


def answers(ok: dict[int, OpenAPIResponse], *errors: int, **descriptions: str) -> dict[int, OpenAPIResponse]:
    """``responses=`` of a route: its success answers (the return model's schema unless ``content`` is
    given) and error statuses (``ErrorBody``)."""
    return {**ok, **error_responses(*errors, **descriptions)}
