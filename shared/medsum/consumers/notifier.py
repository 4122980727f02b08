"""The notifier function's dependencies: webhook delivery, and its own queue (retry delays)."""

from __future__ import annotations

from dataclasses import dataclass

from medsum.adapters.http_delivery import Urllib3WebhookSender
from medsum.adapters.sqs import SqsWorkQueue
from medsum.adapters.webhooks import DynamoDeliveryLog, DynamoWebhookRepository, KmsSecretCipher
from medsum.logic.webhooks import NotifierDeps, UrlPolicy
from medsum.ports import Redelivery
from medsum.settings import NotifierSettings


@dataclass(frozen=True)
class NotifierFunctionDeps:
    """What ``deliver_event`` / ``replay_delivery`` use, and the queue a failed delivery waits in."""

    deliveries: NotifierDeps
    queue: Redelivery

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> NotifierFunctionDeps:
        """The AWS adapters named by the notifier function's environment."""
        return cls(
            deliveries=NotifierDeps(
                webhooks=DynamoWebhookRepository(settings.webhooks_table_name),
                cipher=KmsSecretCipher(settings.secrets_kms_key_id),
                log=DynamoDeliveryLog(
                    settings.deliveries_table_name, settings.delivery_log_retention_days * 86_400
                ),
                sender=Urllib3WebhookSender(),
                policy=UrlPolicy(
                    allow_local_http=settings.allow_local_http_webhooks, allowed_ports=settings.allowed_ports
                ),
                max_receive_count=settings.max_receive_count,
                base_delay_seconds=settings.retry_base_delay_seconds,
                max_delay_seconds=settings.retry_max_delay_seconds,
            ),
            queue=SqsWorkQueue(settings.notifier_queue_url),
        )
