"""Environment, modeled once per cold start and read through one cached getter.

Every name is set by ``template.yaml``; there are no silent defaults for required names. A function's
settings class is made of the groups of names it shares with other functions (the tables and queues,
the events, the uploads, webhooks, the HTTP edge) plus its own; :func:`settings_of` validates
``os.environ`` against it once per process. Tests build their own with :meth:`FunctionSettings.from_env`
(or ``model_validate``), never through the cache.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class FunctionSettings(BaseModel):
    """The base of every function's settings: environment names are the fields' aliases."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True, defer_build=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Validate ``environ`` (default: ``os.environ``) against this function's settings."""
        return cls.model_validate(dict(os.environ if environ is None else environ))


_S = TypeVar("_S", bound=FunctionSettings)


def settings_of(kind: type[_S]) -> _S:
    """``kind`` validated from the environment once per cold start (a function's deps factory reads it)."""
    validated = _validated(kind)
    assert isinstance(validated, kind)
    return validated


@cache
def _validated(kind: type[FunctionSettings]) -> FunctionSettings:
    return kind.from_env()


# --------------------------------------------------------------------------------------------------
# Groups of names shared between functions
# --------------------------------------------------------------------------------------------------
class _StoreSettings(FunctionSettings):
    """The report and batch tables, and the bulk lane's queue: every function but the notifier."""

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    batches_table_name: str = Field(alias="BATCHES_TABLE_NAME", min_length=1)
    bulk_queue_url: str = Field(alias="BULK_QUEUE_URL", min_length=1)


class _WorkQueueSettings(FunctionSettings):
    """The interactive lane's queue (api, worker, admin)."""

    work_queue_url: str = Field(alias="WORK_QUEUE_URL", min_length=1)


class _EventSettings(FunctionSettings):
    """What the functions that publish events (api, worker, ingest) need: the topic and the links."""

    events_topic_arn: str = Field(alias="EVENTS_TOPIC_ARN", min_length=1)
    #: The API's public base URL (stage included), from which ``Location`` and every link is built,
    #: never from request headers. On AWS the api function's reads ``https://{api_id}.execute-api...``
    #: and ``{api_id}`` is filled from API Gateway's ``requestContext.apiId``: the template cannot name
    #: the API's id in the function that API invokes (a circular dependency). See docs/decisions.md.
    public_api_url: str = Field(alias="PUBLIC_API_URL", pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")


class _UploadSettings(FunctionSettings):
    """Batch uploads (api: presigned URLs; ingest: reading them) and the bulk lane's window."""

    uploads_bucket_name: str = Field(alias="UPLOADS_BUCKET_NAME", min_length=1)
    uploads_kms_key_id: str = Field(alias="UPLOADS_KMS_KEY_ID", min_length=1)
    bulk_window: int = Field(alias="BULK_WINDOW", ge=1)


class _WebhookSettings(FunctionSettings):
    """What the api (registration) and the notifier (delivery) both need of webhooks."""

    webhooks_table_name: str = Field(alias="WEBHOOKS_TABLE_NAME", min_length=1)
    deliveries_table_name: str = Field(alias="DELIVERIES_TABLE_NAME", min_length=1)
    secrets_kms_key_id: str = Field(alias="SECRETS_KMS_KEY_ID", min_length=1)
    notifier_queue_url: str = Field(alias="NOTIFIER_QUEUE_URL", min_length=1)
    allow_local_http_webhooks: bool = Field(alias="ALLOW_LOCAL_HTTP_WEBHOOKS")
    webhook_allowed_ports: str = Field(alias="WEBHOOK_ALLOWED_PORTS", default="")

    @property
    def allowed_ports(self) -> frozenset[int]:
        """``"8443,9443"`` -> the extra ports webhook URLs may use (empty: the default port only)."""
        return frozenset(int(p) for p in self.webhook_allowed_ports.replace(" ", "").split(",") if p)


class _EdgeSettings(FunctionSettings):
    """What both HTTP functions (api, admin) need to answer like the rest of the API."""

    #: The template's ``CorsAllowOrigin``: ``Access-Control-Allow-Origin`` of every answer.
    cors_allow_origin: str = Field(alias="CORS_ALLOW_ORIGIN", min_length=1)


# --------------------------------------------------------------------------------------------------
# One class per function
# --------------------------------------------------------------------------------------------------
class ApiSettings(
    _StoreSettings, _WorkQueueSettings, _EventSettings, _UploadSettings, _WebhookSettings, _EdgeSettings
):
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME", min_length=1)
    report_retention_days: int = Field(alias="REPORT_RETENTION_DAYS", ge=1)
    retry_after_seconds: int = Field(alias="RETRY_AFTER_SECONDS", ge=1, default=5)


class WorkerSettings(_StoreSettings, _WorkQueueSettings, _EventSettings):
    bedrock_model_id: str = Field(alias="BEDROCK_MODEL_ID", min_length=1)
    # Optional guardrail (empty: none) and the input token budget of one call (0: the model family's).
    bedrock_guardrail_id: str = Field(alias="BEDROCK_GUARDRAIL_ID", default="")
    bedrock_guardrail_version: str = Field(alias="BEDROCK_GUARDRAIL_VERSION", default="DRAFT")
    bedrock_context_tokens: int = Field(alias="BEDROCK_CONTEXT_TOKENS", ge=0, default=0)
    max_receive_count: int = Field(alias="MAX_RECEIVE_COUNT", ge=1)
    lease_seconds: int = Field(alias="LEASE_SECONDS", ge=1)
    bedrock_retry_budget_seconds: float = Field(alias="BEDROCK_RETRY_BUDGET_SECONDS", gt=0)
    bedrock_max_attempts: int = Field(alias="BEDROCK_MAX_ATTEMPTS", ge=1)
    bedrock_max_tokens: int = Field(alias="BEDROCK_MAX_TOKENS", ge=64, default=2048)
    #: How long one model call may wait for its reply; a call starts only if this fits in the time left.
    bedrock_read_timeout_seconds: int = Field(alias="BEDROCK_READ_TIMEOUT_SECONDS", ge=1, default=120)
    requeue_base_delay_seconds: int = Field(alias="REQUEUE_BASE_DELAY_SECONDS", ge=0)


class IngestSettings(_StoreSettings, _EventSettings, _UploadSettings):
    pass


class AdminSettings(_StoreSettings, _WorkQueueSettings, _EdgeSettings):
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL", min_length=1)
    bulk_dead_letter_queue_url: str = Field(alias="BULK_DEAD_LETTER_QUEUE_URL", min_length=1)
    audit_table_name: str = Field(alias="AUDIT_TABLE_NAME", min_length=1)
    # Comma-separated IAM principal ARNs (the template's OperatorPrincipalArns); may be empty: no operators.
    operator_principals_raw: str = Field(alias="OPERATOR_PRINCIPAL_ARNS")

    @property
    def operator_principals(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.operator_principals_raw.split(",") if p.strip())


class NotifierSettings(_WebhookSettings):
    max_receive_count: int = Field(alias="NOTIFIER_MAX_RECEIVE_COUNT", ge=1)
    retry_base_delay_seconds: int = Field(alias="NOTIFIER_RETRY_BASE_DELAY_SECONDS", ge=1)
    retry_max_delay_seconds: int = Field(alias="NOTIFIER_RETRY_MAX_DELAY_SECONDS", ge=1, le=43_200)
    delivery_log_retention_days: int = Field(alias="DELIVERY_LOG_RETENTION_DAYS", ge=1)
