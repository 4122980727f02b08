"""Webhooks: register endpoints (the secret is shown once), list, remove, rotate, the default secret
of per-request ``callback_url``s, and replaying one delivery."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from medsum.http.deps import Caller, Deps
from medsum.http.params import BODY_ERRORS, SIGNED, SIGNED_ERRORS, ResourceId, answers
from medsum.logic.webhooks import (
    DeliveryNotFoundError,
    WebhookNotFoundError,
    register_webhook,
    rotate_secret,
    set_default_secret,
    view,
)
from medsum.models import (
    DefaultSecret,
    ReplayAccepted,
    SecretRotated,
    WebhookCreated,
    WebhookCreateRequest,
    WebhookPage,
)

router = Router()  # type: ignore[no-untyped-call]
TAGS = ["webhooks"]


@router.post(
    "/webhooks",
    summary="Register a webhook endpoint (the signing secret is shown once)",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {201: {"description": "Created: the endpoint and its `secret` (never shown again)"}},
        *SIGNED_ERRORS,
        *BODY_ERRORS,
        409,
        s400="`invalid_request`, `invalid_json`, or a refused URL (`url_scheme`, `url_credentials`, "
        "`url_port`, `url_host`, `url_address`, `url_unresolvable`, `invalid_url`)",
        s409="`too_many_webhooks` (at most 10 per caller)",
    ),
)
def create_webhook(
    body: Annotated[WebhookCreateRequest, Body(embed=False)], deps: Deps, owner: Caller
) -> Response[WebhookCreated]:
    created = register_webhook(body, owner, deps.webhooks, deps.cipher, deps.url_policy, deps.clock())
    return Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, created)


@router.post(
    "/webhooks/default-secret",
    summary="Create (or rotate) the secret that signs per-request callback_url deliveries (shown once)",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {201: {"description": "Created: the `secret` (never shown again)"}}, *SIGNED_ERRORS, *BODY_ERRORS
    ),
)
def create_default_secret(deps: Deps, owner: Caller) -> Response[DefaultSecret]:
    secret = set_default_secret(owner, deps.webhooks, deps.cipher, deps.clock())
    return Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, secret)


@router.get(
    "/webhooks",
    summary="List the caller's webhook endpoints (never their secrets)",
    tags=TAGS,
    security=SIGNED,
    responses=answers({200: {"description": "Every endpoint, oldest first"}}, *SIGNED_ERRORS),
)
def list_webhooks(deps: Deps, owner: Caller) -> Response[WebhookPage]:
    now = deps.clock()
    items = sorted((view(w, now) for w in deps.webhooks.list_for_owner(owner)), key=lambda w: w.created_at)
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, WebhookPage(items=items))


@router.delete(
    "/webhooks/<webhook_id>",
    summary="Remove a webhook endpoint",
    tags=TAGS,
    security=SIGNED,
    responses=answers({204: {"description": "Removed", "content": {}}}, *SIGNED_ERRORS, 404),
)
def delete_webhook(webhook_id: ResourceId, deps: Deps, owner: Caller) -> Response[None]:
    if not deps.webhooks.delete(owner, webhook_id):
        raise WebhookNotFoundError("webhook not found")
    return Response(status_code=HTTPStatus.NO_CONTENT)


@router.post(
    "/webhooks/<webhook_id>/rotate-secret",
    summary="A new signing secret; the previous one keeps signing for 24 hours",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {200: {"description": "The new `secret` (never shown again)"}}, *SIGNED_ERRORS, *BODY_ERRORS, 404
    ),
)
def rotate_webhook_secret(webhook_id: ResourceId, deps: Deps, owner: Caller) -> Response[SecretRotated]:
    rotated = rotate_secret(owner, webhook_id, deps.webhooks, deps.cipher, deps.clock())
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, rotated)


@router.post(
    "/webhooks/deliveries/<delivery_id>/replay",
    summary="Send one delivery again (same webhook-id)",
    tags=TAGS,
    security=SIGNED,
    responses=answers(
        {202: {"description": "Accepted: the delivery is queued"}}, *SIGNED_ERRORS, *BODY_ERRORS, 404
    ),
)
def replay_webhook_delivery(delivery_id: ResourceId, deps: Deps, owner: Caller) -> Response[ReplayAccepted]:
    state = deps.deliveries.get_state(delivery_id)
    if state is None or state.owner != owner:
        raise DeliveryNotFoundError("delivery not found")
    deps.replays.enqueue_replay(delivery_id)
    return Response(
        HTTPStatus.ACCEPTED, content_types.APPLICATION_JSON, ReplayAccepted(delivery_id=delivery_id)
    )
