"""Webhooks: registration (api function) and delivery (notifier function).

Registration checks the URL with the SSRF guard (static rules and every DNS answer), creates a
``whsec_`` secret, stores it KMS-encrypted and shows it once. Rotation adds a new secret and keeps
the old one signing for ``ROTATION_OVERLAP`` (both sign every delivery meanwhile).

Delivery: one notifier message is one event. It goes to each of the owner's enabled endpoints that
subscribe to its type; a per-(event, endpoint) state item remembers which ones were delivered, so a
retry caused by one failing endpoint never re-sends to the others. Each attempt is logged (no body).
Outcomes: 2xx delivered; 410 disables the endpoint; 429, 5xx, timeouts and connection errors are
retried on the queue's schedule (exponential backoff with jitter, at least ``Retry-After``); any other
status (3xx redirects included) fails for good; after the last allowed receive the message goes to the
notifier's dead-letter queue.
"""

from __future__ import annotations

import hashlib
import random
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit

from medsum.clock import new_id, utcnow
from medsum.errors import MedsumError
from medsum.models import (
    MAX_WEBHOOKS_PER_OWNER,
    DefaultSecret,
    DeliveryAttempt,
    DeliveryOutcome,
    DeliveryState,
    EventData,
    EventType,
    ReportEvent,
    SecretRotated,
    StoredSecret,
    Webhook,
    WebhookCreated,
    WebhookCreateRequest,
    WebhookStatus,
    WebhookView,
)
from medsum.netguard import Resolver, UnsafeUrlError, parse_target, resolve_public
from medsum.observability import logger, metrics
from medsum.ports import DeliveryLog, SecretCipher, SendResult, WebhookRepository, WebhookSender
from medsum.signing import new_secret, webhook_headers

ROTATION_OVERLAP = timedelta(hours=24)
ENDPOINT_PREFIX = "wh_"  # registered endpoints
CALLBACK_PREFIX = "cb_"  # per-request callback_url of one report: cb_<report_id>
DEFAULT_SECRET_ID = "default"  # noqa: S105 - the item id of the owner's default secret, not a secret
MAX_VISIBILITY_SECONDS = 43_200
USER_AGENT = "medsum-webhooks/1"
# Errors without a response that retrying cannot fix (DNS failures and timeouts can be transient).
_PERMANENT_ERRORS = frozenset(
    {"url_address", "url_scheme", "url_port", "url_host", "url_credentials", "invalid_url", "no_secret"}
)


class WebhookNotFoundError(MedsumError):
    """No such endpoint (or another owner's: indistinguishable on purpose)."""

    status, code, message = 404, "not_found", "webhook not found"


class DeliveryNotFoundError(MedsumError):
    """No such delivery (or another owner's)."""

    status, code, message = 404, "not_found", "delivery not found"


class NoDefaultSecretError(MedsumError):
    """A ``callback_url`` was given but the owner has no default secret to sign it with."""

    status, code = 409, "no_default_secret"
    message = "create a default secret with POST /webhooks/default-secret before using callback_url"


class TooManyWebhooksError(MedsumError):
    """The owner already has ``MAX_WEBHOOKS_PER_OWNER`` endpoints."""

    status, code, message = 409, "too_many_webhooks", f"at most {MAX_WEBHOOKS_PER_OWNER} webhooks per caller"


class RetryLaterError(Exception):
    """Some endpoint must be retried: the message becomes visible again after ``delay_seconds``."""

    def __init__(self, delay_seconds: int, last_receive: bool) -> None:
        super().__init__("webhook delivery will be retried")
        self.delay_seconds = delay_seconds
        self.last_receive = last_receive


@dataclass(frozen=True)
class UrlPolicy:
    """What the SSRF guard allows (``allow_local_http``: the local stack's explicit flag)."""

    allow_local_http: bool = False
    allowed_ports: Collection[int] = ()
    resolver: Resolver = socket.getaddrinfo

    def check(self, url: str) -> None:
        """Raises ``UnsafeUrlError`` (a ``400``) for a URL we must neither store nor contact."""
        resolve_public(
            parse_target(url, allow_local_http=self.allow_local_http, allowed_ports=self.allowed_ports),
            self.resolver,
        )


def _context(owner: str, webhook_id: str) -> dict[str, str]:
    return {"medsum:owner": owner, "medsum:webhook_id": webhook_id}


def view(webhook: Webhook, now: datetime) -> WebhookView:
    previous = [s.expires_at for s in webhook.secrets if s.expires_at is not None and s.expires_at > now]
    return WebhookView(
        webhook_id=webhook.webhook_id,
        url=webhook.url,
        event_types=webhook.event_types,
        status=webhook.status,
        disabled_reason=webhook.disabled_reason,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
        previous_secret_expires_at=max(previous) if previous else None,
    )


def register_webhook(
    request: WebhookCreateRequest,
    owner: str,
    repository: WebhookRepository,
    cipher: SecretCipher,
    policy: UrlPolicy,
    now: datetime,
    webhook_id: str | None = None,
) -> WebhookCreated:
    """Check the URL, create the endpoint and its first secret (returned once, stored encrypted).

    Raises ``UnsafeUrlError`` (refused URL) and ``TooManyWebhooksError``.
    """
    policy.check(request.url)
    if len(repository.list_for_owner(owner)) >= MAX_WEBHOOKS_PER_OWNER:
        raise TooManyWebhooksError("too many webhooks")
    webhook_id = webhook_id or f"{ENDPOINT_PREFIX}{new_id()}"
    secret = new_secret()
    webhook = Webhook(
        owner=owner,
        webhook_id=webhook_id,
        url=request.url,
        event_types=sorted(set(request.event_types)),
        created_at=now,
        updated_at=now,
        secrets=[
            StoredSecret(ciphertext=cipher.encrypt(secret, _context(owner, webhook_id)), created_at=now)
        ],
    )
    repository.create(webhook)
    logger.info("webhook registered", webhook_id=webhook_id, event_types=len(webhook.event_types))
    return WebhookCreated(**view(webhook, now).model_dump(), secret=secret)


def rotate_secret(
    owner: str, webhook_id: str, repository: WebhookRepository, cipher: SecretCipher, now: datetime
) -> SecretRotated:
    """A new secret; the current ones keep signing for ``ROTATION_OVERLAP``.

    Raises ``WebhookNotFoundError``.
    """
    webhook = repository.get(owner, webhook_id)
    if webhook is None:
        raise WebhookNotFoundError("webhook not found")
    ends = now + ROTATION_OVERLAP
    kept = [
        s.model_copy(update={"expires_at": min(ends, s.expires_at) if s.expires_at else ends})
        for s in webhook.active_secrets(now)
    ]
    secret = new_secret()
    fresh = StoredSecret(ciphertext=cipher.encrypt(secret, _context(owner, webhook_id)), created_at=now)
    if not repository.replace_secrets(owner, webhook_id, [fresh, *kept], now):
        raise WebhookNotFoundError("webhook not found")
    logger.info("webhook secret rotated", webhook_id=webhook_id)
    return SecretRotated(webhook_id=webhook_id, secret=secret, previous_secret_expires_at=ends)


def set_default_secret(
    owner: str, repository: WebhookRepository, cipher: SecretCipher, now: datetime
) -> DefaultSecret:
    """Create the owner's default secret, or rotate it (the previous one signs for ``ROTATION_OVERLAP``)."""
    secret = new_secret()
    fresh = StoredSecret(
        ciphertext=cipher.encrypt(secret, _context(owner, DEFAULT_SECRET_ID)), created_at=now
    )
    current = repository.get(owner, DEFAULT_SECRET_ID)
    if current is None:
        repository.create(
            Webhook(
                owner=owner,
                webhook_id=DEFAULT_SECRET_ID,
                url="",
                event_types=[],
                created_at=now,
                updated_at=now,
                secrets=[fresh],
            )
        )
        logger.info("default webhook secret created")
        return DefaultSecret(secret=secret)
    rotated = rotate_secret(owner, DEFAULT_SECRET_ID, repository, cipher, now)
    return DefaultSecret(secret=rotated.secret, previous_secret_expires_at=rotated.previous_secret_expires_at)


def register_callback(
    url: str,
    owner: str,
    subject_id: str,
    event_types: list[EventType],
    repository: WebhookRepository,
    policy: UrlPolicy,
    now: datetime,
    expires_at: int,
) -> None:
    """Record a per-request ``callback_url`` for one report or batch (before its work is queued).

    Raises ``UnsafeUrlError`` and ``NoDefaultSecretError``.
    """
    policy.check(url)
    if repository.get(owner, DEFAULT_SECRET_ID) is None:
        raise NoDefaultSecretError("no default secret")
    repository.create(
        Webhook(
            owner=owner,
            webhook_id=f"{CALLBACK_PREFIX}{subject_id}",
            url=url,
            event_types=event_types,
            created_at=now,
            updated_at=now,
            secrets=[],
            expires_at=expires_at,
        )
    )


# --------------------------------------------------------------------------------------------------
# Delivery (notifier)
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NotifierDeps:
    webhooks: WebhookRepository
    cipher: SecretCipher
    log: DeliveryLog
    sender: WebhookSender
    policy: UrlPolicy
    max_receive_count: int
    base_delay_seconds: int
    max_delay_seconds: int
    clock: Callable[[], datetime] = field(default=utcnow)
    jitter: Callable[[float, float], float] = field(default=random.uniform)


def delivery_id_for(event_id: str, webhook_id: str) -> str:
    """Stable id of one (event, endpoint) pair: retries and replays share it."""
    return "dlv_" + hashlib.sha256(f"{event_id}|{webhook_id}".encode()).hexdigest()[:32]


def retry_delay(deps: NotifierDeps, receive_count: int, retry_after: int | None) -> int:
    """Exponential backoff with equal jitter (half fixed, half random), never below ``Retry-After``."""
    ceiling = min(deps.max_delay_seconds, deps.base_delay_seconds * 2 ** max(0, receive_count - 1))
    delay = ceiling / 2 + deps.jitter(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return int(min(MAX_VISIBILITY_SECONDS, max(1, delay)))


def _subject(event: ReportEvent) -> str:
    data = event.data
    return data.report_id if isinstance(data, EventData) else data.batch_id


def deliver_event(event: ReportEvent, owner: str, receive_count: int, deps: NotifierDeps) -> int:
    """Deliver one event to every matching endpoint of ``owner``; returns how many were sent.

    Raises ``RetryLaterError`` when at least one endpoint must be retried.
    """
    endpoints = [
        w
        for w in deps.webhooks.list_for_owner(owner)
        if w.status is WebhookStatus.ENABLED and event.type in w.event_types
    ]
    callback = deps.webhooks.get(owner, f"{CALLBACK_PREFIX}{_subject(event)}")
    if (
        callback is not None
        and callback.status is WebhookStatus.ENABLED
        and event.type in callback.event_types
    ):
        endpoints.append(callback)
    delays = [
        d
        for w in endpoints
        if (d := _deliver_once(event, owner, w, receive_count, deps, force=False)) is not None
    ]
    if delays:
        raise RetryLaterError(max(delays), last_receive=receive_count >= deps.max_receive_count)
    return len(endpoints)


def replay_delivery(delivery_id: str, receive_count: int, deps: NotifierDeps) -> None:
    """Re-send one delivery (same ``webhook-id``) even if it was delivered. Unknown ids, removed or
    disabled endpoints are dropped. Raises ``RetryLaterError`` like :func:`deliver_event`."""
    state = deps.log.get_state(delivery_id)
    if state is None:
        logger.warning("replay of an unknown delivery dropped", delivery_id=delivery_id)
        return
    webhook = deps.webhooks.get(state.owner, state.webhook_id)
    if webhook is None or webhook.status is not WebhookStatus.ENABLED:
        logger.info("replay dropped: endpoint removed or disabled", delivery_id=delivery_id)
        return
    event = ReportEvent.model_validate_json(state.event)
    delay = _deliver_once(event, state.owner, webhook, receive_count, deps, force=True)
    if delay is not None:
        raise RetryLaterError(delay, last_receive=receive_count >= deps.max_receive_count)


def _signing_secrets(owner: str, webhook: Webhook, deps: NotifierDeps, now: datetime) -> list[str]:
    """The endpoint's live secrets; callbacks are signed with the owner's default secret."""
    key_holder = webhook
    if webhook.webhook_id.startswith(CALLBACK_PREFIX):
        key_holder = deps.webhooks.get(owner, DEFAULT_SECRET_ID) or webhook
    return [
        deps.cipher.decrypt(s.ciphertext, _context(owner, key_holder.webhook_id))
        for s in key_holder.active_secrets(now)
    ]


def _deliver_once(
    event: ReportEvent, owner: str, webhook: Webhook, receive_count: int, deps: NotifierDeps, *, force: bool
) -> int | None:
    """One attempt to one endpoint; returns a retry delay, or None when nothing more is to be done."""
    delivery_id = delivery_id_for(event.id, webhook.webhook_id)
    body = event.model_dump_json().encode("utf-8")
    state = deps.log.get_state(delivery_id)
    if state is not None and state.delivered and not force:
        return None
    state = state or DeliveryState(
        delivery_id=delivery_id,
        owner=owner,
        webhook_id=webhook.webhook_id,
        subject_id=_subject(event),
        event=body.decode("utf-8"),
    )
    now = deps.clock()
    try:
        target = parse_target(
            webhook.url,
            allow_local_http=deps.policy.allow_local_http,
            allowed_ports=deps.policy.allowed_ports,
        )
        addresses = resolve_public(target, deps.policy.resolver)
    except UnsafeUrlError as refused:
        # Resolution failures may be transient; an address we must not contact is not.
        result = SendResult(status_code=None, latency_ms=0, error=refused.code)
    else:
        secrets = _signing_secrets(owner, webhook, deps, now)
        if secrets:
            headers = webhook_headers(secrets, event.id, int(now.timestamp()), body)
            headers.update({"Content-Type": "application/json", "User-Agent": USER_AGENT})
            result = deps.sender.send(target, addresses, headers, body)
        else:  # a callback whose owner deleted the default secret: never sent unsigned
            result = SendResult(status_code=None, latency_ms=0, error="no_secret")

    code = result.status_code
    last = receive_count >= deps.max_receive_count
    delay: int | None = None
    if code is not None and 200 <= code < 300:
        outcome = DeliveryOutcome.DELIVERED
    elif code == 410:
        outcome = DeliveryOutcome.DISABLED
        deps.webhooks.disable(owner, webhook.webhook_id, "410 Gone", now)
    elif (
        code == 429
        or (code is not None and code >= 500)
        or (code is None and result.error not in _PERMANENT_ERRORS)
    ):
        outcome = DeliveryOutcome.EXHAUSTED if last else DeliveryOutcome.RETRYING
        delay = retry_delay(deps, receive_count, result.retry_after_seconds)
    else:
        outcome = DeliveryOutcome.FAILED
    attempt = DeliveryAttempt(
        delivery_id=delivery_id,
        event_id=event.id,
        event_type=event.type,
        webhook_id=webhook.webhook_id,
        url=webhook.url,
        attempt=state.attempts + 1,
        attempted_at=now,
        status_code=code,
        latency_ms=result.latency_ms,
        outcome=outcome,
        error=result.error,
        next_retry_at=now + timedelta(seconds=delay) if delay is not None and not last else None,
    )
    deps.log.record_attempt(state.subject_id, owner, attempt)
    deps.log.put_state(
        state.model_copy(
            update={
                "attempts": attempt.attempt,
                "delivered": state.delivered or outcome is DeliveryOutcome.DELIVERED,
            }
        )
    )
    metrics.add_metric(name=f"Webhook{outcome.value.capitalize()}", unit=MetricUnit.Count, value=1)
    logger.info(
        "webhook attempt",
        delivery_id=delivery_id,
        webhook_id=webhook.webhook_id,
        status_code=code,
        outcome=outcome.value,
        error=result.error,
        latency_ms=result.latency_ms,
    )
    return delay
