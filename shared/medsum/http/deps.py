"""The dependencies of the HTTP functions, as one object a handler is given.

``lambda_handler(event, context, deps=None)``: on AWS ``deps`` is built once per cold start from the
validated settings (:meth:`ApiDeps.from_settings`); tests pass their own (fakes at the ports, or the
adapters of a moto account). The handler puts it in the resolver's context, and routes receive what
they need through Powertools' ``Depends()``: the deps object, the caller's identity, the API's base
URL. Nothing here imports boto3: the adapters do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler import Depends, Request

from medsum.adapters.audit import DynamoAuditLog
from medsum.adapters.batches import DynamoBatchRepository
from medsum.adapters.clients import client
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.adapters.sns import SnsEventPublisher
from medsum.adapters.sqs import SqsDeadLetterQueue, SqsWorkQueue
from medsum.adapters.uploads import S3UploadStore
from medsum.adapters.webhooks import (
    DynamoDeliveryLog,
    DynamoWebhookRepository,
    KmsSecretCipher,
    SqsReplayQueue,
)
from medsum.clock import new_id, utcnow
from medsum.errors import IdentityMissingError, MedsumError
from medsum.http import owner_from_identity
from medsum.logic.batches import BatchDeps
from medsum.logic.dlq import AdminDeps
from medsum.logic.lanes import LaneDeadLetters, LaneQueues
from medsum.logic.reports import SubmitDeps
from medsum.logic.webhooks import UrlPolicy
from medsum.models import Lane
from medsum.pagetoken import PageTokenCodec
from medsum.ports import (
    BatchRepository,
    DeliveryLog,
    EventPublisher,
    ReplayQueue,
    ReportRepository,
    SecretCipher,
    UploadStore,
    WebhookRepository,
    WorkQueue,
)
from medsum.settings import AdminSettings, ApiSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

_API_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_CONTEXT_KEY = "deps"


@dataclass(frozen=True)
class ApiDeps:
    """Everything the api function's routes use: ports, settings and the clock."""

    reports: ReportRepository
    batches: BatchRepository
    uploads: UploadStore
    #: The interactive lane (``POST /summarize``) and the bulk lane (batch items).
    work_queue: WorkQueue
    bulk_queue: WorkQueue
    publisher: EventPublisher
    webhooks: WebhookRepository
    cipher: SecretCipher
    deliveries: DeliveryLog
    replays: ReplayQueue
    url_policy: UrlPolicy
    #: Powertools' idempotency store (``Idempotency-Key``).
    idempotency: BasePersistenceLayer
    #: ``PUBLIC_API_URL`` (see ``ApiSettings.public_api_url``).
    public_api_url: str
    retention_days: int
    retry_after_seconds: int = 5
    bulk_window: int = 10
    cors_allow_origin: str | None = None
    clock: Callable[[], datetime] = field(default=utcnow)
    new_id: Callable[[], str] = field(default=new_id)

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> ApiDeps:
        """The AWS adapters named by the api function's environment."""
        # Here, not at the top: the admin function imports this module too and has no use for it.
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        reports = DynamoReportRepository(settings.table_name, batches_table=settings.batches_table_name)
        return cls(
            reports=reports,
            batches=DynamoBatchRepository(settings.batches_table_name),
            uploads=S3UploadStore(settings.uploads_bucket_name, settings.uploads_kms_key_id),
            work_queue=SqsWorkQueue(settings.work_queue_url),
            bulk_queue=SqsWorkQueue(settings.bulk_queue_url),
            publisher=SnsEventPublisher(settings.events_topic_arn),
            webhooks=DynamoWebhookRepository(settings.webhooks_table_name),
            cipher=KmsSecretCipher(settings.secrets_kms_key_id),
            deliveries=DynamoDeliveryLog(
                settings.deliveries_table_name, settings.report_retention_days * 86_400
            ),
            replays=SqsReplayQueue(settings.notifier_queue_url),
            url_policy=UrlPolicy(
                allow_local_http=settings.allow_local_http_webhooks, allowed_ports=settings.allowed_ports
            ),
            idempotency=DynamoDBPersistenceLayer(
                table_name=settings.idempotency_table_name, boto3_client=client("dynamodb")
            ),
            public_api_url=settings.public_api_url,
            retention_days=settings.report_retention_days,
            retry_after_seconds=settings.retry_after_seconds,
            bulk_window=settings.bulk_window,
            cors_allow_origin=settings.cors_allow_origin,
        )

    @property
    def submit(self) -> SubmitDeps:
        """What ``logic.reports.submit_report`` needs."""
        return SubmitDeps(
            repository=self.reports, queue=self.work_queue, webhooks=self.webhooks, url_policy=self.url_policy
        )

    @property
    def batch(self) -> BatchDeps:
        """What ``logic.batches`` needs."""
        return BatchDeps(
            reports=self.reports,
            batches=self.batches,
            queue=self.bulk_queue,
            publisher=self.publisher,
            window=self.bulk_window,
            webhooks=self.webhooks,
            url_policy=self.url_policy,
        )


@dataclass(frozen=True)
class OperatorDeps:
    """The admin function's dependencies: the operator use cases' and who the operators are."""

    operations: AdminDeps
    #: IAM principal ARNs allowed on ``/admin`` (the template's ``OperatorPrincipalArns``).
    operators: frozenset[str]
    cors_allow_origin: str | None = None

    @classmethod
    def from_settings(cls, settings: AdminSettings) -> OperatorDeps:
        """The AWS adapters named by the admin function's environment."""
        reports = DynamoReportRepository(settings.table_name, batches_table=settings.batches_table_name)
        return cls(
            operations=AdminDeps(
                dlq=LaneDeadLetters(
                    {
                        Lane.INTERACTIVE: SqsDeadLetterQueue(
                            settings.dead_letter_queue_url, lane=Lane.INTERACTIVE
                        ),
                        Lane.BULK: SqsDeadLetterQueue(settings.bulk_dead_letter_queue_url, lane=Lane.BULK),
                    }
                ),
                reports=reports,
                repository=reports,
                queue=LaneQueues(
                    {
                        Lane.INTERACTIVE: SqsWorkQueue(settings.work_queue_url),
                        Lane.BULK: SqsWorkQueue(settings.bulk_queue_url),
                    }
                ),
                audit=DynamoAuditLog(settings.audit_table_name),
                page_tokens=PageTokenCodec.derived_from(settings.dead_letter_queue_url),
            ),
            operators=settings.operator_principals,
            cors_allow_origin=settings.cors_allow_origin,
        )


# --------------------------------------------------------------------------------------------------
# What routes receive through Depends()
# --------------------------------------------------------------------------------------------------
def context_entry(deps: ApiDeps | OperatorDeps) -> dict[str, ApiDeps | OperatorDeps]:
    """The resolver context entry a handler appends before resolving (``app.append_context(**…)``)."""
    return {_CONTEXT_KEY: deps}


def api_deps(request: Request) -> ApiDeps:
    """The api function's deps of this invocation."""
    deps = request.context[_CONTEXT_KEY]
    assert isinstance(deps, ApiDeps)
    return deps


def operator_deps(request: Request) -> AdminDeps:
    """The operator use cases' deps of this invocation."""
    deps = request.context[_CONTEXT_KEY]
    assert isinstance(deps, OperatorDeps)
    return deps.operations


def caller(request: Request) -> str:
    """The caller's IAM principal (``IdentityMissingError`` without one: whose data would it be?)."""
    identity = (request.resolved_event.get("requestContext") or {}).get("identity")
    owner = owner_from_identity(identity)
    if owner is None:
        raise IdentityMissingError("caller identity missing")
    return owner


def base_url(request: Request) -> str:
    """The API's public base URL: ``PUBLIC_API_URL``, its ``{api_id}`` filled from API Gateway's
    ``requestContext.apiId``; never the request's ``Host`` or ``X-Forwarded-*`` headers."""
    configured = api_deps(request).public_api_url.rstrip("/")
    if "{api_id}" not in configured:
        return configured
    api_id = str((request.resolved_event.get("requestContext") or {}).get("apiId") or "")
    if not _API_ID.match(api_id):  # API Gateway always sets it: a bug, not a client error
        raise MedsumError("no api id in the request context")
    return configured.replace("{api_id}", api_id)


Deps = Annotated[ApiDeps, Depends(api_deps)]
Operations = Annotated[AdminDeps, Depends(operator_deps)]
Caller = Annotated[str, Depends(caller)]
BaseUrl = Annotated[str, Depends(base_url)]
