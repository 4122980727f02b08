"""Standard Webhooks signatures (https://www.standardwebhooks.com), pure functions.

A secret is ``whsec_`` + base64 of 32 random bytes. A delivery carries ``webhook-id`` (the event id,
the same on every retry so receivers can de-duplicate), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, several separated by spaces
while a secret is being rotated (receivers accept any that verifies).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret (``whsec_…``) from the OS's CSPRNG."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("not a whsec_ secret")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``message_id.timestamp.body``."""
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


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


def verify(secret: str, headers: dict[str, str], body: bytes, now: int, tolerance_seconds: int = 300) -> bool:
    """True when one of the ``v1`` signatures matches and the timestamp is within the tolerance
    (what a receiver does; the ``medsum webhooks listen`` receiver uses it)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    message_id, timestamp = lowered.get("webhook-id", ""), lowered.get("webhook-timestamp", "")
    if not message_id or not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_seconds:
        return False
    expected = sign(secret, message_id, int(timestamp), body)
    return any(
        hmac.compare_digest(expected, candidate) for candidate in lowered.get("webhook-signature", "").split()
    )
