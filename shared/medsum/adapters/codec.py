"""Attribute encodings shared by the DynamoDB adapters."""

from __future__ import annotations

from datetime import UTC, datetime

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_ts(value: datetime) -> str:
    """Fixed-width UTC timestamp: lexicographic order equals time order (used in conditions)."""
    return value.astimezone(UTC).strftime(_TS_FORMAT)


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, _TS_FORMAT).replace(tzinfo=UTC)
