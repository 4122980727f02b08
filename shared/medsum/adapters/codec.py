"""Attribute encodings shared by the DynamoDB adapters."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from medsum.errors import InvalidPageTokenError, RepositoryError

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_ts(value: datetime) -> str:
    """Fixed-width UTC timestamp: lexicographic order equals time order (used in conditions)."""
    return value.astimezone(UTC).strftime(_TS_FORMAT)


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, _TS_FORMAT).replace(tzinfo=UTC)


def encode_page_token(last_key: dict[str, Any]) -> str:
    """An opaque ``next_token`` for DynamoDB's ``LastEvaluatedKey``."""
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode()


def decode_page_token(token: str, key_names: set[str], partition_name: str, partition: str) -> dict[str, Any]:
    """Accept only a token we issued for this very partition: exactly ``key_names``, all strings, and
    ``partition_name`` equal to the caller's own ``partition`` (no peeking into another owner's data)."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error) as exc:
        raise InvalidPageTokenError("next_token is not valid for this listing") from exc
    if (
        not isinstance(key, dict)
        or set(key) != key_names
        or not all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values())
        or key[partition_name]["S"] != partition
    ):
        raise InvalidPageTokenError("next_token is not valid for this listing")
    return key


def query_page(client: Any, kwargs: dict[str, Any], store: str) -> dict[str, Any]:
    """One ``Query`` page. A token DynamoDB rejects (``ValidationException`` with an
    ``ExclusiveStartKey``) is the caller's ``InvalidPageTokenError``; anything else is
    ``RepositoryError("<store> unavailable")``."""
    try:
        response: dict[str, Any] = client.query(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationException" and "ExclusiveStartKey" in kwargs:
            raise InvalidPageTokenError("next_token is not valid for this listing") from exc
        raise RepositoryError(f"{store} unavailable") from exc
    except BotoCoreError as exc:
        raise RepositoryError(f"{store} unavailable") from exc
    return response
