"""The service itself: health (no authentication)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel, ConfigDict

from medsum.http.openapi import VERSION
from medsum.http.params import answers

router = Router()  # type: ignore[no-untyped-call]


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    service: str
    version: str


@router.get(
    "/",
    summary="Health check (no authentication)",
    tags=["service"],
    responses=answers({200: {"description": "The service answers"}}, 429, 500),
)
def health() -> Response[Health]:
    return Response(
        200, content_types.APPLICATION_JSON, Health(status="ok", service="medsum", version=VERSION)
    )
