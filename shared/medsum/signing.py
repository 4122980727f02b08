"""Standard Webhooks signatures (https://www.standardwebhooks.com), made by the ``standardwebhooks`` package.

A secret is ``whsec_`` + base64 of 32 random bytes. A delivery carries ``webhook-id`` (the event id,
the same on every retry so receivers can de-duplicate), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, several separated by spaces
while a secret is being rotated (receivers accept any that verifies).

The signature itself is the reference library's (:meth:`standardwebhooks.Webhook.sign`), the same code a
receiver verifies with (``medsum webhooks listen`` does); making secrets and the rotation's several
signatures are ours, as the library has neither (``docs/decisions.md``, 2026-11-30, Standard Webhooks).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret (``whsec_…``) from the OS's CSPRNG."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``message_id.timestamp.body`` (``body``: UTF-8, as JSON is)."""
    return Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body.decode("utf-8"))


def webhook_headers(secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret in ``secrets_`` (newest first).

    Raises ``ValueError`` when there is no secret.
    """
    if not secrets_:
        raise ValueError("no signing secret")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets_),
    }
