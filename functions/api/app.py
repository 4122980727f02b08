"""API function: every client route of the REST API (Powertools resolver, pydantic models, OpenAPI).

Thin by design: build the resolver from the routers in ``medsum.http``, and hand each event, once
admitted (size, media type, encoding), to it with the dependencies. Routes, the error mapping and the
dependencies live in ``shared/medsum/http`` (docs/decisions.md, 2026-11-30).
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

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from medsum import safejson
from medsum.http import (
    MAX_BATCH_BODY_BYTES,
    batches,
    errors,
    idempotency,
    openapi,
    reports,
    service,
    webhooks,
)
from medsum.http.deps import ApiDeps, BaseUrl, context_entry
from medsum.http.edge import admit, cors_config, serve
from medsum.observability import logger, metrics, tracer
from medsum.settings import ApiSettings, settings_of


def create_app(cors_allow_origin: str | None = None) -> APIGatewayRestResolver:
    """The resolver with every client router, the one error mapping and ``GET /openapi.json``."""
    app = APIGatewayRestResolver(
        enable_validation=True, cors=cors_config(cors_allow_origin), json_body_deserializer=safejson.loads
    )
    for router in (service.router, reports.router, batches.router, webhooks.router):
        app.include_router(router)
    errors.register(app)

    @app.get("/openapi.json", summary="The OpenAPI document of this API", include_in_schema=False)
    def openapi_document(base_url: BaseUrl) -> Response[dict[str, Any]]:
        # The server is this API itself, as configured (stage included), never the request's Host.
        return Response(200, content_types.APPLICATION_JSON, {**_document(), "servers": [{"url": base_url}]})

    return app


#: One resolver per CORS origin (in practice: one per cold start, the template's ``CorsAllowOrigin``).
_resolver = cache(create_app)
#: The routes as the OpenAPI document describes them (CORS headers do not change the document).
app = _resolver(None)


@cache
def _document() -> dict[str, Any]:
    return openapi.whole_api(app)


@cache
def _default_deps() -> ApiDeps:
    return ApiDeps.from_settings(settings_of(ApiSettings))


def _admit(event: Any) -> dict[str, Any]:
    return admit(event, limits={"/batches": MAX_BATCH_BODY_BYTES}, ndjson_paths={"/batches"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: ApiDeps | None = None
) -> dict[str, Any]:
    """Answer one API Gateway request. ``deps``: the adapters of the environment unless given."""
    deps = deps or _default_deps()
    idempotency.CONFIG.register_lambda_context(context)
    return serve(
        _resolver(deps.cors_allow_origin),
        event,
        context,
        admission=_admit,
        state=context_entry(deps),
        cors=cors_config(deps.cors_allow_origin),
    )


# What init made lives as long as the process: keep it out of every later collection.
gc.freeze()
gc.enable()


__all__ = ["app", "create_app", "lambda_handler"]
