"""Attribute encodings shared by the DynamoDB adapters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from medsum.errors import InvalidPageTokenError, RepositoryError
from medsum.pagetoken import PageTokenCodec

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_ts(value: datetime) -> str:
    """Fixed-width UTC timestamp: lexicographic order equals time order (used in conditions)."""
    return value.astimezone(UTC).strftime(_TS_FORMAT)


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, _TS_FORMAT).replace(tzinfo=UTC)


def encode_page_token(
    tokens: PageTokenCodec, scope: str, last_key: dict[str, Any], partition_name: str
) -> str:
    """The ``next_token`` of DynamoDB's ``LastEvaluatedKey``: every key attribute but the partition
    (the caller's own, known again on the next request), sealed by :class:`PageTokenCodec` for ``scope``."""
    position = {name: value["S"] for name, value in last_key.items() if name != partition_name}
    return tokens.encode(scope, position)


def decode_page_token(
    tokens: PageTokenCodec,
    scope: str,
    token: str,
    key_names: set[str],
    partition_name: str,
    partition: str,
) -> dict[str, Any]:
    """The ``ExclusiveStartKey`` of a token issued for this very ``scope``: exactly ``key_names``, with
    ``partition_name`` set to the caller's own ``partition`` (no peeking into another owner's data)."""
    position = tokens.decode(scope, token)
    if set(position) != key_names - {partition_name}:
        raise InvalidPageTokenError("next_token is not valid for this listing")
    return {**{name: {"S": value} for name, value in position.items()}, partition_name: {"S": partition}}


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
