"""DynamoDB implementation of ``ReportRepository`` for the ``PatientReports`` table.

Item layout: ``report_id`` is the partition key (GetItem is strongly consistent); the GSI
``ByOwnerPatient`` is keyed on ``owner_patient`` = ``<owner>#<patient_id>`` and ``created_at`` so that
listing a patient's reports for one owner is a Query, newest first. The report text is stored
zlib-compressed as a Binary attribute; the summary as a JSON string.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.clients import client as default_client
from medsum.errors import (
    ConflictError,
    InvalidPageTokenError,
    ReportNotFoundError,
    ReportTooLargeError,
    RepositoryError,
)
from medsum.models import ErrorInfo, Report, ReportStatus, Summary, Usage
from medsum.ports import Page, ReportRepository

GSI_NAME = "ByOwnerPatient"
# DynamoDB items are limited to 400 KB; leave room for the summary and the other attributes.
MAX_COMPRESSED_TEXT_BYTES = 300_000
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_ser = TypeSerializer()
_de = TypeDeserializer()


def format_ts(value: datetime) -> str:
    """Fixed-width UTC timestamp: lexicographic order equals time order (used in conditions)."""
    return value.astimezone(UTC).strftime(_TS_FORMAT)


def _parse_ts(value: str) -> datetime:
    return datetime.strptime(value, _TS_FORMAT).replace(tzinfo=UTC)


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


def _from_item(raw: dict[str, Any]) -> Report:
    item = {k: _de.deserialize(v) for k, v in raw.items()}
    text: str | None = None
    if "text_z" in item:
        text = zlib.decompress(bytes(item["text_z"].value)).decode("utf-8")
    summary = item.get("summary_json")
    return Report(
        report_id=item["report_id"],
        owner=item["owner"],
        patient_id=item["patient_id"],
        report_type=item["report_type"],
        status=item["status"],
        created_at=_parse_ts(item["created_at"]),
        updated_at=_parse_ts(item["updated_at"]),
        attempts=int(item.get("attempts", 0)),
        lease_expires_at=_parse_ts(item["lease_expires_at"]) if "lease_expires_at" in item else None,
        lease_token=item.get("lease_token"),
        text=text,
        metadata=item.get("metadata", {}),
        summary=Summary.model_validate_json(summary) if summary else None,
        error=ErrorInfo.model_validate(item["error"]) if "error" in item else None,
        usage=Usage.model_validate({k: (int(v) if k != "model_id" else v) for k, v in item["usage"].items()})
        if "usage" in item
        else None,
        batch_id=item.get("batch_id"),
        custom_id=item.get("custom_id"),
        expires_at=int(item["expires_at"]),
        version=int(item.get("version", 1)),
        event_published=bool(item.get("event_published", False)),
    )


def _values(**values: Any) -> dict[str, Any]:
    return {f":{k}": _ser.serialize(v) for k, v in values.items()}


class DynamoReportRepository(ReportRepository):
    """``ReportRepository`` over one DynamoDB table.

    Parameters
    ----------
    table_name:
        Physical name of the ``PatientReports`` table.
    dynamodb_client:
        Optional boto3 DynamoDB client (tests inject a Stubber-wrapped or moto-backed one).
    """

    def __init__(self, table_name: str, dynamodb_client: Any | None = None) -> None:
        self._table = table_name
        self._client = dynamodb_client or default_client("dynamodb")

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
        if next_token:
            kwargs["ExclusiveStartKey"] = _decode_token(next_token, partition)
        try:
            response = self._client.query(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ValidationException" and next_token:
                raise InvalidPageTokenError("next_token is not valid for this listing") from exc
            raise RepositoryError("report store unavailable") from exc
        except BotoCoreError as exc:
            raise RepositoryError("report store unavailable") from exc
        items = [_list_item(raw) for raw in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return Page(items=items, next_token=_encode_token(last) if last else None)

    # -- writes --------------------------------------------------------------------------------
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

    def claim(self, report_id: str, now: datetime, lease_seconds: int, lease_token: str) -> Report:
        lease = now.timestamp() + lease_seconds
        return self._update(
            report_id,
            update=(
                "SET #s = :processing, lease_expires_at = :lease, lease_token = :token, "
                "updated_at = :now, attempts = if_not_exists(attempts, :zero) + :one, "
                "version = version + :one"
            ),
            condition=(
                "attribute_exists(report_id) AND "
                "(#s = :pending OR (#s = :processing AND lease_expires_at < :now))"
            ),
            values=_values(
                processing=ReportStatus.PROCESSING.value,
                pending=ReportStatus.PENDING.value,
                lease=format_ts(datetime.fromtimestamp(lease, UTC)),
                token=lease_token,
                now=format_ts(now),
                zero=0,
                one=1,
            ),
        )

    def complete(
        self, report_id: str, lease_token: str, summary: Summary, usage: Usage, now: datetime
    ) -> Report:
        return self._update(
            report_id,
            update=(
                "SET #s = :completed, summary_json = :summary, #u = :usage, updated_at = :now, "
                "version = version + :one REMOVE lease_expires_at, lease_token, #e"
            ),
            condition="#s = :processing AND lease_token = :token",
            values=_values(
                completed=ReportStatus.COMPLETED.value,
                processing=ReportStatus.PROCESSING.value,
                summary=summary.model_dump_json(),
                usage=usage.model_dump(),
                now=format_ts(now),
                token=lease_token,
                one=1,
            ),
            names={"#u": "usage", "#e": "error"},
        )

    def fail(self, report_id: str, error: ErrorInfo, now: datetime, lease_token: str | None = None) -> Report:
        values = _values(
            failed=ReportStatus.FAILED.value,
            error=error.model_dump(),
            now=format_ts(now),
            one=1,
            processing=ReportStatus.PROCESSING.value,
        )
        if lease_token is not None:
            condition = "#s = :processing AND lease_token = :token"
            values.update(_values(token=lease_token))
        else:
            condition = "#s IN (:pending, :processing)"
            values.update(_values(pending=ReportStatus.PENDING.value))
        return self._update(
            report_id,
            update=(
                "SET #s = :failed, #e = :error, updated_at = :now, version = version + :one "
                "REMOVE lease_expires_at, lease_token"
            ),
            condition=condition,
            values=values,
            names={"#e": "error"},
        )

    def release(self, report_id: str, lease_token: str, now: datetime) -> None:
        self._update(
            report_id,
            update="SET #s = :pending, updated_at = :now REMOVE lease_expires_at, lease_token",
            condition="#s = :processing AND lease_token = :token",
            values=_values(
                pending=ReportStatus.PENDING.value,
                processing=ReportStatus.PROCESSING.value,
                now=format_ts(now),
                token=lease_token,
            ),
        )

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

    # -- internals -----------------------------------------------------------------------------
    def _update(
        self,
        report_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> Report:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"report_id": {"S": report_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status", **(names or {})},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                old = exc.response.get("Item")
                if not old:
                    raise ReportNotFoundError("report not found") from exc
                raise ConflictError("report state changed", current=_from_item(old)) from exc
            raise RepositoryError("report store unavailable") from exc
        except BotoCoreError as exc:
            raise RepositoryError("report store unavailable") from exc
        return _from_item(response["Attributes"])


def _list_item(raw: dict[str, Any]) -> Report:
    """Items from the GSI carry only the projected attributes; fill the rest for the list view."""
    item = {k: _de.deserialize(v) for k, v in raw.items()}
    return Report(
        report_id=item["report_id"],
        owner=item.get("owner", ""),
        patient_id=item["patient_id"],
        report_type=item["report_type"],
        status=item["status"],
        created_at=_parse_ts(item["created_at"]),
        updated_at=_parse_ts(item["updated_at"]),
        expires_at=0,
    )


def _encode_token(last_key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode()


def _decode_token(token: str, partition: str) -> dict[str, Any]:
    """Accept only a token we issued for this very partition (owner + patient)."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error) as exc:
        raise InvalidPageTokenError("next_token is not valid for this listing") from exc
    expected = {"report_id", "owner_patient", "created_at"}
    if (
        not isinstance(key, dict)
        or set(key) != expected
        or not all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values())
        or key["owner_patient"]["S"] != partition
    ):
        raise InvalidPageTokenError("next_token is not valid for this listing")
    return key
