"""Attribute encodings and the paged ``Query`` shared by the DynamoDB adapters.

Page tokens are :mod:`medsum.pagetoken`'s (:meth:`~medsum.pagetoken.PageTokenCodec.encode_key`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from medsum.errors import InvalidPageTokenError, RepositoryError

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_ts(value: datetime) -> str:
    """Fixed-width UTC timestamp: lexicographic order equals time order (used in conditions)."""
    return value.astimezone(UTC).strftime(_TS_FORMAT)


def query_page(client: Any, kwargs: dict[str, Any], store: str) -> dict[str, Any]:
    """One ``Query`` page. A token DynamoDB rejects (``ValidationException`` with an
    ``ExclusiveStartKey``) is the caller's ``InvalidPageTokenError``; anything else is
    ``RepositoryError("<store> unavailable")``."""
    try:
        response: dict[str, Any] = client.query(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationException" and "ExclusiveStartKey" in kwargs:
            raise InvalidPageTokenError(InvalidPageTokenError.message) from exc
        raise RepositoryError(f"{store} unavailable") from exc
    except BotoCoreError as exc:
        raise RepositoryError(f"{store} unavailable") from exc
    return response
