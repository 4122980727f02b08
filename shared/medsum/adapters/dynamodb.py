"""DynamoDB implementation of ``ReportRepository`` for the ``PatientReports`` table.

Item layout: ``report_id`` is the partition key (GetItem is strongly consistent); the GSI
``ByOwnerPatient`` is keyed on ``owner_patient`` = ``<owner>#<patient_id>`` and ``created_at`` so that
listing a patient's reports for one owner is a Query, newest first. The report text is stored
zlib-compressed as a Binary attribute; the summary as a JSON string.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.batches import counter_update
from medsum.adapters.clients import client as default_client
from medsum.adapters.codec import format_ts, query_page
from medsum.adapters.retry import retry_unprocessed
from medsum.errors import (
    ConflictError,
    MedsumError,
    PartialWriteError,
    ReportNotFoundError,
    ReportTooLargeError,
    RepositoryError,
)
from medsum.models import ErrorInfo, Report, ReportStatus, Summary, Usage
from medsum.pagetoken import PageTokenCodec
from medsum.ports import BatchItemRef, OperatorReportStore, Page, ReportRepository

GSI_NAME = "ByOwnerPatient"
BATCH_INDEX = "ByBatch"
WRITE_CHUNK = 25  # BatchWriteItem limit
READ_CHUNK = 100  # BatchGetItem limit
BATCH_RETRIES = 8
# DynamoDB items are limited to 400 KB; leave room for the summary and the other attributes.
MAX_COMPRESSED_TEXT_BYTES = 300_000

_ser = TypeSerializer()
_de = TypeDeserializer()


def _owner_patient(owner: str, patient_id: str) -> str:
    return f"{owner}#{patient_id}"


def _to_item(report: Report) -> dict[str, Any]:
    compressed = zlib.compress((report.text or "").encode("utf-8"), 6)
    if len(compressed) > MAX_COMPRESSED_TEXT_BYTES:
        raise ReportTooLargeError("report text is too large to store")
    item: dict[str, Any] = {
        "report_id": report.report_id,
        "owner": report.owner,
        "owner_patient": _owner_patient(report.owner, report.patient_id),
        "patient_id": report.patient_id,
        "report_type": report.report_type.value,
        "status": report.status.value,
        "created_at": format_ts(report.created_at),
        "updated_at": format_ts(report.updated_at),
        "attempts": report.attempts,
        "text_z": Binary(compressed),
        "metadata": dict(report.metadata),
        "expires_at": report.expires_at,
        "version": report.version,
    }
    if report.error is not None:
        item["error"] = report.error.model_dump()
    for key in ("batch_id", "custom_id"):
        value = getattr(report, key)
        if value is not None:
            item[key] = value
    return {k: _ser.serialize(v) for k, v in item.items()}


def _from_item(raw: dict[str, Any], **defaults: Any) -> Report:
    """The report an item holds, validated by ``Report``: the stored names are the model's but for
    the compressed text (``text_z``) and the summary's JSON (``summary_json``). ``defaults`` fill what
    a projection leaves out."""
    item = {k: _de.deserialize(v) for k, v in raw.items()}
    if "text_z" in item:
        item["text"] = zlib.decompress(bytes(item.pop("text_z").value)).decode("utf-8")
    summary = item.pop("summary_json", None)
    if summary:
        item["summary"] = Summary.model_validate_json(summary)
    return Report.model_validate({**defaults, **item})


def _values(**values: Any) -> dict[str, Any]:
    return {f":{k}": _ser.serialize(v) for k, v in values.items()}


#: What operators may read of a report: never ``text_z`` or ``summary_json``.
OPERATOR_PROJECTION = (
    "report_id, #o, patient_id, report_type, #s, created_at, updated_at, attempts, lease_expires_at, "
    "#e, batch_id, custom_id, expires_at, version, event_published, next_released, first_failed_at, "
    "redriven_at, redrive_count, previous_error"
)


def _conditional(
    update: str, condition: str, values: dict[str, Any], names: dict[str, str] | None = None
) -> dict[str, Any]:
    """The expressions of a conditional write of a report (``#s`` always names ``status``)."""
    return {
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#s": "status", **(names or {})},
        "ExpressionAttributeValues": values,
    }


def _update_failure(exc: ClientError) -> MedsumError:
    """The domain error for an ``UpdateItem`` that failed: its condition (``ConflictError`` with the
    item as it was, or ``ReportNotFoundError``), or the store itself (``RepositoryError``)."""
    if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
        old = exc.response.get("Item")
        if not old:
            return ReportNotFoundError("report not found")
        return ConflictError("report state changed", current=_from_item(old))
    return RepositoryError("report store unavailable")


class DynamoReportRepository(ReportRepository, OperatorReportStore):
    """``ReportRepository`` (and the operators' ``OperatorReportStore``) over one DynamoDB table.

    Parameters
    ----------
    table_name:
        Physical name of the ``PatientReports`` table.
    dynamodb_client:
        Optional boto3 DynamoDB client (tests inject a Stubber-wrapped or moto-backed one).
    batches_table:
        The ``Batches`` table, whose counters a batch item's transitions change in the same transaction.
    page_tokens:
        Seals list positions into ``next_token`` (default: derived from the table name).
    sleep:
        How to wait between retries of unprocessed batch entries (tests inject one that does not).
    """

    def __init__(
        self,
        table_name: str,
        dynamodb_client: Any | None = None,
        batches_table: str | None = None,
        page_tokens: PageTokenCodec | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name
        self._sleep = sleep
        self._batches_table = batches_table
        self._client = dynamodb_client or default_client("dynamodb")
        self._tokens = page_tokens or PageTokenCodec.derived_from(table_name)

    # -- reads ---------------------------------------------------------------------------------
    def get(self, report_id: str) -> Report | None:
        try:
            response = self._client.get_item(
                TableName=self._table, Key={"report_id": {"S": report_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("report store unavailable") from exc
        raw = response.get("Item")
        return _from_item(raw) if raw else None

    def list_for_patient(self, owner: str, patient_id: str, limit: int, next_token: str | None) -> Page:
        partition = _owner_patient(owner, patient_id)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": GSI_NAME,
            "KeyConditionExpression": "owner_patient = :op",
            "ExpressionAttributeValues": {":op": {"S": partition}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        scope = f"reports:{partition}"
        if next_token:
            kwargs["ExclusiveStartKey"] = self._tokens.decode_key(
                scope,
                next_token,
                {"report_id", "owner_patient", "created_at"},
                "owner_patient",
                partition,
            )
        response = query_page(self._client, kwargs, "report store")
        items = [_list_item(raw) for raw in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        token = self._tokens.encode_key(scope, last, "owner_patient") if last else None
        return Page(items=items, next_token=token)

    def get_many(self, report_ids: Sequence[str]) -> list[Report]:
        return self._batch_get(report_ids, {})

    def _batch_get(self, report_ids: Sequence[str], projection: dict[str, Any]) -> list[Report]:
        """Strongly consistent ``BatchGetItem`` in chunks of 100, unprocessed keys retried with backoff."""
        found: list[Report] = []

        def send(request: dict[str, Any]) -> dict[str, Any]:
            try:
                response = self._client.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as exc:
                raise RepositoryError("report store unavailable") from exc
            found.extend(_from_item(raw) for raw in response.get("Responses", {}).get(self._table, []))
            return response.get("UnprocessedKeys") or {}

        for start in range(0, len(report_ids), READ_CHUNK):
            keys = [{"report_id": {"S": rid}} for rid in report_ids[start : start + READ_CHUNK]]
            request = {self._table: {"Keys": keys, "ConsistentRead": True, **projection}}
            if retry_unprocessed(send, request, BATCH_RETRIES, self._sleep):
                raise RepositoryError("report store kept throttling batched reads")
        return found

    def batch_items(self, batch_id: str) -> list[BatchItemRef]:
        items: list[BatchItemRef] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BATCH_INDEX,
            "KeyConditionExpression": "batch_id = :b",
            "ExpressionAttributeValues": {":b": {"S": batch_id}},
        }
        while True:
            try:
                response = self._client.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise RepositoryError("report store unavailable") from exc
            for raw in response.get("Items", []):
                items.append(
                    BatchItemRef(
                        custom_id=raw["custom_id"]["S"],
                        report_id=raw["report_id"]["S"],
                        status=ReportStatus(raw["status"]["S"]),
                    )
                )
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- writes --------------------------------------------------------------------------------
    def create_many(self, reports: Sequence[Report]) -> None:
        """BatchWriteItem in chunks of 25; unprocessed items are retried with backoff, never dropped."""
        written: list[str] = []

        def send(pending: dict[str, Any]) -> dict[str, Any]:
            try:
                response = self._client.batch_write_item(RequestItems=pending)
            except (ClientError, BotoCoreError) as exc:
                raise PartialWriteError("report store unavailable", written) from exc
            return response.get("UnprocessedItems") or {}

        for start in range(0, len(reports), WRITE_CHUNK):
            chunk = reports[start : start + WRITE_CHUNK]
            request = {self._table: [{"PutRequest": {"Item": _to_item(r)}} for r in chunk]}
            left = retry_unprocessed(send, request, BATCH_RETRIES, self._sleep)
            if left:
                unwritten = {r["PutRequest"]["Item"]["report_id"]["S"] for r in left.get(self._table, [])}
                written.extend(r.report_id for r in chunk if r.report_id not in unwritten)
                raise PartialWriteError("report store kept throttling batched writes", written)
            written.extend(r.report_id for r in chunk)

    def create(self, report: Report) -> None:
        item = _to_item(report)
        try:
            self._client.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(report_id)"
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("report store unavailable") from exc

    def delete(self, owner: str, report_id: str) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"report_id": {"S": report_id}},
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=_values(owner=owner),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise RepositoryError("report store unavailable") from exc
        except BotoCoreError as exc:
            raise RepositoryError("report store unavailable") from exc
        return True

    def claim(
        self, report_id: str, now: datetime, lease_seconds: int, lease_token: str, batch_id: str | None = None
    ) -> Report:
        lease = now.timestamp() + lease_seconds
        update = (
            "SET #s = :processing, lease_expires_at = :lease, lease_token = :token, "
            "updated_at = :now, attempts = if_not_exists(attempts, :zero) + :one, "
            "version = version + :one"
        )
        values = _values(
            processing=ReportStatus.PROCESSING.value,
            pending=ReportStatus.PENDING.value,
            lease=format_ts(datetime.fromtimestamp(lease, UTC)),
            token=lease_token,
            now=format_ts(now),
            zero=0,
            one=1,
        )
        if batch_id is None or not self._batches_table:
            return self._update(
                report_id,
                update=update,
                condition=(
                    "attribute_exists(report_id) AND "
                    "(#s = :pending OR (#s = :processing AND lease_expires_at < :now))"
                ),
                values=values,
            )
        # Batch items: a first claim moves the report from pending to processing in the counters; taking
        # over an expired lease changes no count. Two conditional writes keep the accounting exact.
        try:
            return self._update(
                report_id,
                update=update,
                condition="#s = :pending",
                values=values,
                batch_id=batch_id,
                deltas={"processing": 1},
            )
        except ConflictError as conflict:
            current = conflict.current
            if current is None or current.status is not ReportStatus.PROCESSING:
                raise
        return self._update(
            report_id,
            update=update,
            condition="#s = :processing AND lease_expires_at < :now",
            values={k: v for k, v in values.items() if k != ":pending"},
        )

    def complete(
        self,
        report_id: str,
        lease_token: str,
        summary: Summary,
        usage: Usage,
        now: datetime,
        batch_id: str | None = None,
    ) -> Report:
        return self._update(
            report_id,
            update=(
                "SET #s = :completed, summary_json = :summary, #u = :usage, updated_at = :now, "
                "version = version + :one REMOVE lease_expires_at, lease_token, #e"
            ),
            # Not the lease token: a late but valid reply is kept (see ``ReportRepository.complete``).
            condition="#s = :processing",
            values=_values(
                completed=ReportStatus.COMPLETED.value,
                processing=ReportStatus.PROCESSING.value,
                summary=summary.model_dump_json(),
                usage=usage.model_dump(),
                now=format_ts(now),
                one=1,
            ),
            names={"#u": "usage", "#e": "error"},
            batch_id=batch_id,
            deltas={"processing": -1, "completed": 1},
        )

    def fail(
        self,
        report_id: str,
        error: ErrorInfo,
        now: datetime,
        lease_token: str | None = None,
        batch_id: str | None = None,
    ) -> Report:
        values = _values(
            failed=ReportStatus.FAILED.value, error=error.model_dump(), now=format_ts(now), one=1
        )
        if lease_token is not None:
            condition = "#s = :processing AND lease_token = :token"
            values.update(_values(token=lease_token, processing=ReportStatus.PROCESSING.value))
            deltas = {"processing": -1, "failed": 1}
        else:
            condition = "#s = :pending"
            values.update(_values(pending=ReportStatus.PENDING.value))
            deltas = {"failed": 1}
        return self._update(
            report_id,
            update=(
                "SET #s = :failed, #e = :error, updated_at = :now, version = version + :one, "
                "first_failed_at = if_not_exists(first_failed_at, :now) REMOVE lease_expires_at, lease_token"
            ),
            condition=condition,
            values=values,
            names={"#e": "error"},
            batch_id=batch_id,
            deltas=deltas,
        )

    def cancel(self, report_id: str, batch_id: str, now: datetime) -> Report:
        return self._update(
            report_id,
            update="SET #s = :cancelled, updated_at = :now, version = version + :one",
            condition="#s = :pending",
            values=_values(
                cancelled=ReportStatus.CANCELLED.value,
                pending=ReportStatus.PENDING.value,
                now=format_ts(now),
                one=1,
            ),
            batch_id=batch_id,
            deltas={"cancelled": 1},
        )

    def extend_lease(self, report_id: str, lease_token: str, now: datetime, lease_seconds: int) -> None:
        # No version bump (a lease moving on is not a change a client can see) and nothing read back:
        # the heartbeat runs every third of the lease and must stay cheap.
        expression = _conditional(
            "SET lease_expires_at = :lease",
            "#s = :processing AND lease_token = :token",
            _values(
                lease=format_ts(datetime.fromtimestamp(now.timestamp() + lease_seconds, UTC)),
                processing=ReportStatus.PROCESSING.value,
                token=lease_token,
            ),
        )
        self._update_item(report_id, expression, "NONE")

    def release(self, report_id: str, lease_token: str, now: datetime, batch_id: str | None = None) -> None:
        self._update(
            report_id,
            update=(
                "SET #s = :pending, updated_at = :now, "
                "first_failed_at = if_not_exists(first_failed_at, :now) REMOVE lease_expires_at, lease_token"
            ),
            condition="#s = :processing AND lease_token = :token",
            values=_values(
                pending=ReportStatus.PENDING.value,
                processing=ReportStatus.PROCESSING.value,
                now=format_ts(now),
                token=lease_token,
            ),
            batch_id=batch_id,
            deltas={"processing": -1},
        )

    def mark_next_released(self, report_id: str) -> None:
        try:
            self._update(
                report_id,
                update="SET next_released = :true",
                condition="attribute_exists(#s)",
                values=_values(true=True),
            )
        except ReportNotFoundError:
            return

    def mark_event_published(self, report_id: str, status: ReportStatus) -> None:
        try:
            self._update(
                report_id,
                update="SET event_published = :true",
                condition="#s = :status",
                values=_values(true=True, status=status.value),
            )
        except (ConflictError, ReportNotFoundError):
            return

    # -- operators -------------------------------------------------------------------------------
    def describe_many(self, report_ids: Sequence[str]) -> list[Report]:
        # The projection never reads the text or the summary.
        return self._batch_get(
            list(dict.fromkeys(report_ids)),
            {
                "ProjectionExpression": OPERATOR_PROJECTION,
                "ExpressionAttributeNames": {"#o": "owner", "#s": "status", "#e": "error"},
            },
        )

    def reopen(self, report_id: str, now: datetime, batch_id: str | None = None) -> Report:
        return self._update(
            report_id,
            update=(
                "SET #s = :pending, previous_error = #e, redriven_at = :now, updated_at = :now, "
                "redrive_count = if_not_exists(redrive_count, :zero) + :one, version = version + :one "
                "REMOVE #e, event_published, lease_expires_at, lease_token"
            ),
            condition="#s = :failed",
            values=_values(
                pending=ReportStatus.PENDING.value,
                failed=ReportStatus.FAILED.value,
                now=format_ts(now),
                zero=0,
                one=1,
            ),
            names={"#e": "error"},
            batch_id=batch_id,
            deltas={"failed": -1},
        )

    def mark_purged(self, report_id: str, error: ErrorInfo, now: datetime) -> Report:
        return self._update(
            report_id,
            update="SET #e = :error, updated_at = :now, version = version + :one",
            condition="#s = :failed",
            values=_values(
                failed=ReportStatus.FAILED.value, error=error.model_dump(), now=format_ts(now), one=1
            ),
            names={"#e": "error"},
        )

    # -- internals -----------------------------------------------------------------------------
    def _update(
        self,
        report_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
        batch_id: str | None = None,
        deltas: Mapping[str, int] | None = None,
    ) -> Report:
        expression = _conditional(update, condition, values, names)
        if batch_id is not None and deltas and self._batches_table:
            return self._transact(report_id, expression, batch_id, deltas)
        return _from_item(self._update_item(report_id, expression, "ALL_NEW")["Attributes"])

    def _update_item(self, report_id: str, expression: dict[str, Any], read_back: str) -> dict[str, Any]:
        """One conditional ``UpdateItem`` of a report, its failure mapped by ``_update_failure``."""
        try:
            response: dict[str, Any] = self._client.update_item(
                TableName=self._table,
                Key={"report_id": {"S": report_id}},
                **expression,
                ReturnValues=read_back,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            raise _update_failure(exc) from exc
        except BotoCoreError as exc:
            raise RepositoryError("report store unavailable") from exc
        return response

    def _transact(
        self, report_id: str, expression: dict[str, Any], batch_id: str, deltas: Mapping[str, int]
    ) -> Report:
        """The report's conditional write and its batch counter change, atomically."""
        assert self._batches_table is not None
        report_update = {
            "Update": {"TableName": self._table, "Key": {"report_id": {"S": report_id}}, **expression}
        }
        try:
            self._client.transact_write_items(
                TransactItems=[report_update, counter_update(self._batches_table, batch_id, deltas)]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons") or []
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    current = self.get(report_id)
                    if current is None:
                        raise ReportNotFoundError("report not found") from exc
                    raise ConflictError("report state changed", current=current) from exc
            raise RepositoryError("report store unavailable") from exc
        except BotoCoreError as exc:
            raise RepositoryError("report store unavailable") from exc
        report = self.get(report_id)
        if report is None:
            raise ReportNotFoundError("report not found")
        return report


def _list_item(raw: dict[str, Any]) -> Report:
    """Items from the GSI carry only the projected attributes; fill the rest for the list view."""
    return _from_item(raw, owner="", expires_at=0)
