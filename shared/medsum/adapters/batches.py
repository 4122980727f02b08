"""DynamoDB implementation of ``BatchRepository`` for the ``Batches`` table.

Item layout (partition ``batch_id``, sort key ``sk``):
- ``meta``: owner, status, timestamps, total, line errors (JSON), metadata; the only item with an
  ``owner`` attribute, so the ``ByOwner`` index (owner, created_at) lists batches and nothing else;
- ``count#00`` … ``count#09``: counter shards. Each report transition adds to one random shard in the
  same transaction as the report's conditional write, so a transition is counted exactly once and no
  single item takes every write of a busy batch. Reading a batch is one strongly consistent Query of
  its partition (meta + at most ten shards).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.clients import client as default_client
from medsum.adapters.codec import format_ts, query_page
from medsum.errors import RepositoryError
from medsum.models import Batch, BatchStatus, LineError, RequestCounts
from medsum.pagetoken import PageTokenCodec
from medsum.ports import BatchRepository

SHARDS = 10
META = "meta"
OWNER_INDEX = "ByOwner"
COUNTER_FIELDS = ("processing", "completed", "failed", "cancelled")
MAX_STORED_ERRORS = 1_000

_ser = TypeSerializer()
_de = TypeDeserializer()


def counter_update(table: str, batch_id: str, deltas: Mapping[str, int]) -> dict[str, Any]:
    """A ``TransactWriteItems`` element adding ``deltas`` to one random counter shard of a batch."""
    names = {f"#{field}": field for field in deltas}
    values = {f":{field}": {"N": str(delta)} for field, delta in deltas.items()}
    return {
        "Update": {
            "TableName": table,
            "Key": {"batch_id": {"S": batch_id}, "sk": {"S": f"count#{random.randrange(SHARDS):02d}"}},
            "UpdateExpression": "ADD " + ", ".join(f"#{field} :{field}" for field in deltas),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def _batch_from_items(items: list[dict[str, Any]]) -> Batch | None:
    meta: dict[str, Any] | None = None
    sums = dict.fromkeys(COUNTER_FIELDS, 0)
    for raw in items:
        item = {k: _de.deserialize(v) for k, v in raw.items()}
        if item["sk"] == META:
            meta = item
        else:
            for field in COUNTER_FIELDS:
                sums[field] += int(item.get(field, 0))
    if meta is None:
        return None
    total = int(meta.get("total", 0))
    counts = RequestCounts(
        total=total,
        pending=max(0, total - sum(sums.values())),
        **sums,
    )
    errors = json.loads(meta.pop("errors_json", "[]"))
    return Batch.model_validate({**meta, "total": total, "counts": counts, "errors": errors})


class DynamoBatchRepository(BatchRepository):
    """``BatchRepository`` over the ``Batches`` table (see the module docstring for the layout)."""

    def __init__(
        self, table_name: str, dynamodb_client: Any | None = None, page_tokens: PageTokenCodec | None = None
    ) -> None:
        self.table = table_name
        self._client = dynamodb_client or default_client("dynamodb")
        self._tokens = page_tokens or PageTokenCodec.derived_from(table_name)

    def create(self, batch: Batch) -> None:
        item = {
            "batch_id": batch.batch_id,
            "sk": META,
            "owner": batch.owner,
            "status": batch.status.value,
            "created_at": format_ts(batch.created_at),
            "updated_at": format_ts(batch.updated_at),
            "total": batch.total,
            "errors_json": json.dumps([e.model_dump() for e in batch.errors[:MAX_STORED_ERRORS]]),
            "metadata": dict(batch.metadata),
            "expires_at": batch.expires_at,
        }
        try:
            self._client.put_item(
                TableName=self.table,
                Item={k: _ser.serialize(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(batch_id)",
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("batch store unavailable") from exc

    def get(self, batch_id: str) -> Batch | None:
        try:
            response = self._client.query(
                TableName=self.table,
                KeyConditionExpression="batch_id = :b",
                ExpressionAttributeValues={":b": {"S": batch_id}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("batch store unavailable") from exc
        return _batch_from_items(response.get("Items", []))

    def list_for_owner(
        self, owner: str, limit: int, next_token: str | None
    ) -> tuple[list[Batch], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "#o = :o",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": {"S": owner}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        scope = f"batches:{owner}"
        if next_token:
            kwargs["ExclusiveStartKey"] = self._tokens.decode_key(
                scope, next_token, {"batch_id", "sk", "owner", "created_at"}, "owner", owner
            )
        response = query_page(self._client, kwargs, "batch store")
        # The index holds meta items only; counts need each batch's partition.
        batches = [
            b for b in (self.get(_de.deserialize(i["batch_id"])) for i in response.get("Items", [])) if b
        ]
        last = response.get("LastEvaluatedKey")
        token = self._tokens.encode_key(scope, last, "owner") if last else None
        return batches, token

    def set_status(
        self, batch_id: str, expected: Sequence[BatchStatus], status: BatchStatus, now: datetime
    ) -> bool:
        values: dict[str, Any] = {":new": {"S": status.value}, ":now": {"S": format_ts(now)}}
        placeholders = []
        for index, state in enumerate(expected):
            values[f":e{index}"] = {"S": state.value}
            placeholders.append(f":e{index}")
        update = "SET #s = :new, updated_at = :now"
        if status.terminal:
            update += ", completed_at = :now"
        return self._update_meta(
            batch_id,
            UpdateExpression=update,
            ConditionExpression=f"#s IN ({', '.join(placeholders)})",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
        )

    def mark_event_published(self, batch_id: str) -> None:
        self._update_meta(
            batch_id,
            UpdateExpression="SET event_published = :t",
            ConditionExpression="attribute_exists(batch_id)",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )

    def record_errors(self, batch_id: str, errors: Sequence[LineError]) -> None:
        stored = json.dumps([e.model_dump() for e in errors[:MAX_STORED_ERRORS]])
        if not self._update_meta(
            batch_id,
            UpdateExpression="SET errors_json = :e",
            ConditionExpression="attribute_exists(batch_id)",
            ExpressionAttributeValues={":e": {"S": stored}},
        ):
            raise RepositoryError("batch store unavailable")

    def start(self, batch_id: str, total: int, now: datetime) -> bool:
        return self._update_meta(
            batch_id,
            UpdateExpression="SET #s = :new, #t = :total, updated_at = :now",
            ConditionExpression="#s = :validating",
            ExpressionAttributeNames={"#s": "status", "#t": "total"},
            ExpressionAttributeValues={
                ":new": {"S": BatchStatus.IN_PROGRESS.value},
                ":validating": {"S": BatchStatus.VALIDATING.value},
                ":total": {"N": str(total)},
                ":now": {"S": format_ts(now)},
            },
        )

    def _update_meta(self, batch_id: str, **request: Any) -> bool:
        """One conditional ``UpdateItem`` of a batch's meta item: False when its condition failed,
        ``RepositoryError`` when the store did."""
        try:
            self._client.update_item(
                TableName=self.table, Key={"batch_id": {"S": batch_id}, "sk": {"S": META}}, **request
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise RepositoryError("batch store unavailable") from exc
        except BotoCoreError as exc:
            raise RepositoryError("batch store unavailable") from exc
        return True
