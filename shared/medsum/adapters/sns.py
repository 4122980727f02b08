"""SNS implementation of ``EventPublisher``: thin events, ids and links only.

Every message carries three String attributes so subscribers can filter with SNS filter policies:
``type`` (``report.completed`` ...), ``status`` (``COMPLETED``, ``completed`` ...) and ``owner`` (the IAM
principal ARN that owns the report or batch), e.g. ``{"owner": ["arn:aws:iam::123456789012:user/clinic-a"],
"type": ["report.completed"]}``.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.clients import client as default_client
from medsum.errors import PublishError
from medsum.models import ReportEvent
from medsum.ports import EventPublisher


class SnsEventPublisher(EventPublisher):
    def __init__(self, topic_arn: str, sns_client: Any | None = None) -> None:
        self._topic = topic_arn
        self._client = sns_client or default_client("sns")

    def publish(self, event: ReportEvent, owner: str) -> None:
        try:
            self._client.publish(
                TopicArn=self._topic,
                Message=event.model_dump_json(),
                MessageAttributes={
                    "type": {"DataType": "String", "StringValue": event.type},
                    "status": {"DataType": "String", "StringValue": event.data.status.value},
                    "owner": {"DataType": "String", "StringValue": owner},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise PublishError("event topic unavailable") from exc
