"""DynamoDB, KMS and SQS adapters of the webhook ports.

``Webhooks`` table: ``owner`` (partition) + ``webhook_id`` (sort), so an owner's endpoints are one
Query and another owner's are never found. Secrets are stored as KMS ciphertext (``Encrypt`` with the
stack's data key and an encryption context naming the owner and endpoint), inside a table that is
itself encrypted with the same key.

``Deliveries`` table (``pk``/``sk``, TTL ``expires_at``): attempts under ``subject#<report or batch id>``
sorted by time, and one ``state`` item per (event, endpoint) under ``delivery#<id>``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.clients import client as default_client
from medsum.adapters.codec import format_ts
from medsum.errors import EnqueueError, RepositoryError
from medsum.models import DeliveryAttempt, DeliveryState, ReplayMessage, StoredSecret, Webhook
from medsum.ports import DeliveryLog, ReplayQueue, SecretCipher, WebhookRepository

_ser = TypeSerializer()
_de = TypeDeserializer()


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def _plain(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in raw.items()}


class DynamoWebhookRepository(WebhookRepository):
    def __init__(self, table_name: str, dynamodb_client: Any | None = None) -> None:
        self._table = table_name
        self._client = dynamodb_client or default_client("dynamodb")

    def create(self, webhook: Webhook) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_item(webhook.model_dump(mode="json")),
                ConditionExpression="attribute_not_exists(webhook_id)",
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("webhook store unavailable") from exc

    def list_for_owner(self, owner: str) -> list[Webhook]:
        try:
            paginator = self._client.get_paginator("query")
            pages = paginator.paginate(
                TableName=self._table,
                # Registered endpoints only: not the default secret or per-report callbacks.
                KeyConditionExpression="#o = :o AND begins_with(webhook_id, :prefix)",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":o": {"S": owner}, ":prefix": {"S": "wh_"}},
                ConsistentRead=True,
            )
            return [Webhook.model_validate(_plain(i)) for page in pages for i in page.get("Items", [])]
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("webhook store unavailable") from exc

    def get(self, owner: str, webhook_id: str) -> Webhook | None:
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={"owner": {"S": owner}, "webhook_id": {"S": webhook_id}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("webhook store unavailable") from exc
        item = response.get("Item")
        return Webhook.model_validate(_plain(item)) if item else None

    def delete(self, owner: str, webhook_id: str) -> bool:
        try:
            response = self._client.delete_item(
                TableName=self._table,
                Key={"owner": {"S": owner}, "webhook_id": {"S": webhook_id}},
                ReturnValues="ALL_OLD",
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("webhook store unavailable") from exc
        return bool(response.get("Attributes"))

    def _set(self, owner: str, webhook_id: str, values: dict[str, Any]) -> bool:
        names = {f"#{k}": k for k in values}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"owner": {"S": owner}, "webhook_id": {"S": webhook_id}},
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in values),
                ConditionExpression="attribute_exists(webhook_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={f":{k}": _ser.serialize(v) for k, v in values.items()},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise RepositoryError("webhook store unavailable") from exc
        except BotoCoreError as exc:
            raise RepositoryError("webhook store unavailable") from exc
        return True

    def replace_secrets(
        self, owner: str, webhook_id: str, secrets: Sequence[StoredSecret], now: datetime
    ) -> bool:
        return self._set(
            owner,
            webhook_id,
            {
                "secrets": [json.loads(s.model_dump_json(exclude_none=True)) for s in secrets],
                "updated_at": now.isoformat(),
            },
        )

    def disable(self, owner: str, webhook_id: str, reason: str, now: datetime) -> None:
        self._set(
            owner,
            webhook_id,
            {"status": "disabled", "disabled_reason": reason, "updated_at": now.isoformat()},
        )


class KmsSecretCipher(SecretCipher):
    """KMS ``Encrypt``/``Decrypt`` with the data key (secrets are far below the 4 KB limit)."""

    def __init__(self, key_id: str, kms_client: Any | None = None) -> None:
        self._key = key_id
        self._client = kms_client or default_client("kms")

    def encrypt(self, plaintext: str, context: dict[str, str]) -> str:
        try:
            response = self._client.encrypt(
                KeyId=self._key, Plaintext=plaintext.encode("utf-8"), EncryptionContext=context
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("key service unavailable") from exc
        return base64.b64encode(response["CiphertextBlob"]).decode("ascii")

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str:
        try:
            response = self._client.decrypt(
                KeyId=self._key, CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=context
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("key service unavailable") from exc
        return bytes(response["Plaintext"]).decode("utf-8")


class DynamoDeliveryLog(DeliveryLog):
    def __init__(self, table_name: str, retention_seconds: int, dynamodb_client: Any | None = None) -> None:
        self._table = table_name
        self._retention = retention_seconds
        self._client = dynamodb_client or default_client("dynamodb")

    def _put(self, values: dict[str, Any]) -> None:
        try:
            self._client.put_item(TableName=self._table, Item=_item(values))
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("delivery log unavailable") from exc

    def record_attempt(self, subject_id: str, owner: str, attempt: DeliveryAttempt) -> None:
        values = attempt.model_dump(mode="json")
        values.update(
            pk=f"subject#{subject_id}",
            sk=f"{format_ts(attempt.attempted_at)}#{attempt.delivery_id}#{attempt.attempt}",
            owner=owner,
            expires_at=int(attempt.attempted_at.timestamp()) + self._retention,
        )
        self._put(values)

    def attempts(self, subject_id: str, owner: str) -> list[DeliveryAttempt]:
        fields = set(DeliveryAttempt.model_fields)
        try:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"subject#{subject_id}"}},
            )
            items = [_plain(i) for page in pages for i in page.get("Items", [])]
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("delivery log unavailable") from exc
        return [
            DeliveryAttempt.model_validate({k: v for k, v in i.items() if k in fields})
            for i in items
            if i.get("owner") == owner
        ]

    def get_state(self, delivery_id: str) -> DeliveryState | None:
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": f"delivery#{delivery_id}"}, "sk": {"S": "state"}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("delivery log unavailable") from exc
        item = response.get("Item")
        return DeliveryState.model_validate(_plain(item)) if item else None

    def put_state(self, state: DeliveryState) -> None:
        values = state.model_dump(mode="json")
        values.update(
            pk=f"delivery#{state.delivery_id}", sk="state", expires_at=_now_epoch() + self._retention
        )
        self._put(values)


def _now_epoch() -> int:
    return int(time.time())


class SqsReplayQueue(ReplayQueue):
    def __init__(self, queue_url: str, sqs_client: Any | None = None) -> None:
        self._url = queue_url
        self._client = sqs_client or default_client("sqs")

    def enqueue_replay(self, delivery_id: str) -> None:
        try:
            self._client.send_message(
                QueueUrl=self._url,
                MessageBody=ReplayMessage(replay_delivery_id=delivery_id).model_dump_json(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise EnqueueError("notifier queue unavailable") from exc
