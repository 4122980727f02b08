"""DynamoDB implementation of ``AuditLog`` for the ``OperatorAudit`` table.

Item layout: ``audit_id`` is the partition key (a redrive job is read back with a strongly consistent
GetItem); every item also has ``log = "audit"`` and ``at`` (fixed-width UTC time), the keys of the
``ByTime`` index that lists entries newest first. Operator actions are rare (a handful a day), so one
index partition is plenty. Nothing in this module deletes, and the admin role has no DeleteItem.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.clients import client as default_client
from medsum.adapters.codec import format_ts, query_page
from medsum.errors import RepositoryError
from medsum.models import ActionCounts, AuditEntry
from medsum.pagetoken import PageTokenCodec
from medsum.ports import AuditLog

TIME_INDEX = "ByTime"
LOG_PARTITION = "audit"

_ser = TypeSerializer()
_de = TypeDeserializer()


def _to_item(entry: AuditEntry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "audit_id": entry.audit_id,
        "log": LOG_PARTITION,
        "at": format_ts(entry.at),
        "principal": entry.principal,
        "action": entry.action,
        "selection_json": json.dumps(entry.selection, sort_keys=True),
        "reason": entry.reason,
        "dry_run": entry.dry_run,
        "status": entry.status.value,
        "counts": entry.counts.model_dump(),
    }
    if entry.updated_at is not None:
        item["updated_at"] = format_ts(entry.updated_at)
    return {k: _ser.serialize(v) for k, v in item.items()}


def _from_item(raw: dict[str, Any]) -> AuditEntry:
    """The entry an item holds, validated by ``AuditEntry``: the stored names are the model's but for
    the selection's JSON (``selection_json``) and the index key ``log``, which is no field."""
    item = {k: _de.deserialize(v) for k, v in raw.items()}
    item["selection"] = json.loads(item.pop("selection_json"))
    return AuditEntry.model_validate({k: v for k, v in item.items() if k in AuditEntry.model_fields})


class DynamoAuditLog(AuditLog):
    """``AuditLog`` over the audit table (see the module docstring for the layout)."""

    def __init__(
        self, table_name: str, dynamodb_client: Any | None = None, page_tokens: PageTokenCodec | None = None
    ) -> None:
        self._table = table_name
        self._client = dynamodb_client or default_client("dynamodb")
        self._tokens = page_tokens or PageTokenCodec.derived_from(table_name)

    def record(self, entry: AuditEntry) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_to_item(entry),
                ConditionExpression="attribute_not_exists(audit_id)",
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("audit store unavailable") from exc

    def update_progress(self, audit_id: str, counts: ActionCounts, status: str, now: datetime) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"audit_id": {"S": audit_id}},
                UpdateExpression="SET #c = :counts, #s = :status, updated_at = :now",
                ConditionExpression="attribute_exists(audit_id)",
                ExpressionAttributeNames={"#c": "counts", "#s": "status"},
                ExpressionAttributeValues={
                    ":counts": _ser.serialize(counts.model_dump()),
                    ":status": {"S": status},
                    ":now": {"S": format_ts(now)},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("audit store unavailable") from exc

    def get(self, audit_id: str) -> AuditEntry | None:
        try:
            response = self._client.get_item(
                TableName=self._table, Key={"audit_id": {"S": audit_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("audit store unavailable") from exc
        raw = response.get("Item")
        return _from_item(raw) if raw else None

    def list(self, limit: int, next_token: str | None) -> tuple[list[AuditEntry], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": TIME_INDEX,
            "KeyConditionExpression": "#l = :log",
            "ExpressionAttributeNames": {"#l": "log"},
            "ExpressionAttributeValues": {":log": {"S": LOG_PARTITION}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if next_token:
            kwargs["ExclusiveStartKey"] = self._tokens.decode_key(
                "audit", next_token, {"audit_id", "log", "at"}, "log", LOG_PARTITION
            )
        response = query_page(self._client, kwargs, "audit store")
        last = response.get("LastEvaluatedKey")
        return [_from_item(raw) for raw in response.get("Items", [])], (
            self._tokens.encode_key("audit", last, "log") if last else None
        )
