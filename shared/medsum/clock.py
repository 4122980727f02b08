"""Time and id sources, injectable for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Timezone-aware current UTC time."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new opaque, URL-safe report id (UUID4 hex: unguessable, 32 characters)."""
    return uuid.uuid4().hex
