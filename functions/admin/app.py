"""Admin function: the operators' routes under ``/admin`` (dead-letter queue, audit, retries).

Thin by design: every caller whose IAM principal is not an operator (``OPERATOR_PRINCIPAL_ARNS``) gets
``403 forbidden`` on every ``/admin`` path, before routing; the rest is the admin router of
``medsum.http`` with the same error mapping as the api function.
"""

# ruff: noqa: E402 - the imports follow gc.disable()
from __future__ import annotations

import gc

# Init makes long-lived objects only (modules, classes, models): a garbage collection during the imports
# would scan them all and free nothing. Collections resume at the end of this module, without what init
# made (docs/decisions.md, "Cold start").
gc.disable()

from collections.abc import Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from medsum import safejson
from medsum.errors import ForbiddenError
from medsum.http import admin, errors, owner_from_identity
from medsum.http.deps import OperatorDeps, context_entry
from medsum.http.edge import admit, cors_config, serve
from medsum.observability import logger, metrics, tracer
from medsum.settings import AdminSettings, settings_of


def create_app(cors_allow_origin: str | None = None) -> APIGatewayRestResolver:
    """The resolver with the operators' router and the one error mapping."""
    app = APIGatewayRestResolver(
        enable_validation=True, cors=cors_config(cors_allow_origin), json_body_deserializer=safejson.loads
    )
    app.include_router(admin.router)
    errors.register(app)
    return app


_resolver = cache(create_app)
app = _resolver(None)


@cache
def _default_deps() -> OperatorDeps:
    return OperatorDeps.from_settings(settings_of(AdminSettings))


def _operators_only(operators: frozenset[str]) -> Any:
    def admission(event: Mapping[str, Any]) -> dict[str, Any]:
        principal = owner_from_identity((event.get("requestContext") or {}).get("identity"))
        if principal is None or principal not in operators:
            raise ForbiddenError("operators only")
        return admit(event)

    return admission


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: OperatorDeps | None = None
) -> dict[str, Any]:
    """Answer one ``/admin`` request (operators only). ``deps``: the environment's adapters unless given."""
    deps = deps or _default_deps()
    return serve(
        _resolver(deps.cors_allow_origin),
        event,
        context,
        admission=_operators_only(deps.operators),
        state=context_entry(deps),
        cors=cors_config(deps.cors_allow_origin),
    )


# What init made lives as long as the process: keep it out of every later collection.
gc.freeze()
gc.enable()


__all__ = ["app", "create_app", "lambda_handler"]
