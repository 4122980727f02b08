"""Opaque, tamper-evident ``next_token`` values: the one page-token codec of every listing.

A token is ``base64url(version ‖ nonce ‖ AES-256-GCM(position))`` where ``position`` is the listing's
resume point (e.g. the DynamoDB key without its partition) as a JSON object of strings. The listing's
*scope* (its name and the caller's partition, e.g. ``reports:<owner>#<patient_id>``) is authenticated as
associated data but never stored in the token, so a token reveals nothing (no owner ARN, no patient id),
and a token that was changed, or issued for another listing or another owner, fails authentication.

Every listing reads and writes its tokens here: :meth:`PageTokenCodec.encode_key` and
:meth:`~PageTokenCodec.decode_key` for a DynamoDB ``LastEvaluatedKey`` / ``ExclusiveStartKey`` (reports,
batches, audit log), :meth:`~PageTokenCodec.encode` and :meth:`~PageTokenCodec.decode` for any other
position (the DLQ's).

The key is derived (HKDF-SHA256) from deployment-specific names already in the function's environment
(see ``docs/decisions.md``, 2026-11-30), so no template change is needed and the local stack works the
same way as AWS.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Collection, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from medsum.errors import InvalidPageTokenError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32
MAX_TOKEN_CHARS = 2048  # a resume point is a few ids and timestamps; refuse anything far larger unread
_HKDF_INFO = b"medsum page token v1"
_INVALID = InvalidPageTokenError.message


class PageTokenCodec:
    """Encrypt and authenticate a listing's resume point (AES-256-GCM, random 96-bit nonce).

    ``cryptography`` is imported on the first token, not at import time: every function builds the
    adapters that hold a codec, most never list anything, and the import would add to each cold start.

    Parameters
    ----------
    key
        32 bytes, or a function returning them (called when the first token is sealed or opened).
    """

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        if isinstance(key, bytes) and len(key) != KEY_BYTES:
            raise ValueError("a page-token key is 32 bytes")
        self._key_source = key

    @cached_property
    def _aead(self) -> AESGCM:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = self._key_source if isinstance(self._key_source, bytes) else self._key_source()
        return AESGCM(key)

    @classmethod
    def derived_from(cls, *names: str) -> PageTokenCodec:
        """A codec whose key is derived from deployment-specific names (e.g. a physical table name).

        Parameters
        ----------
        names
            Values the function already has in its environment; the same names give the same key on
            every instance, so a token issued by one instance is read by any other.

        Returns
        -------
        PageTokenCodec
            The codec (the key is derived on its first token).
        """
        material = "\x00".join(names).encode("utf-8")

        def derive() -> bytes:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_HKDF_INFO)
            return hkdf.derive(material)

        return cls(derive)

    def encode(self, scope: str, position: Mapping[str, str]) -> str:
        """Return the token of ``position`` within ``scope``.

        Parameters
        ----------
        scope
            The listing and the caller's partition (authenticated, not stored).
        position
            Where the next page starts: names to string values.

        Returns
        -------
        str
            URL-safe base64 without padding.
        """
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(dict(position), separators=(",", ":"), sort_keys=True).encode("utf-8")
        sealed = self._aead.encrypt(nonce, plaintext, scope.encode("utf-8"))
        return base64.urlsafe_b64encode(VERSION + nonce + sealed).decode("ascii").rstrip("=")

    def decode(self, scope: str, token: str, fields: Collection[str] | None = None) -> dict[str, str]:
        """Return the position of a token issued by :meth:`encode` for this very ``scope``.

        Parameters
        ----------
        scope
            The listing and the caller's partition.
        token
            The client's ``next_token``.
        fields
            If given, the names the position must have, exactly.

        Returns
        -------
        dict
            The position.

        Raises
        ------
        InvalidPageTokenError
            If the token is malformed, was changed, was issued for another scope or deployment, or its
            position does not have exactly ``fields``.
        """
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidPageTokenError(_INVALID)
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, binascii.Error) as exc:
            raise InvalidPageTokenError(_INVALID) from exc
        if not raw.startswith(VERSION) or len(raw) <= len(VERSION) + NONCE_BYTES:
            raise InvalidPageTokenError(_INVALID)
        nonce = raw[len(VERSION) : len(VERSION) + NONCE_BYTES]
        from cryptography.exceptions import InvalidTag

        try:
            plaintext = self._aead.decrypt(nonce, raw[len(VERSION) + NONCE_BYTES :], scope.encode("utf-8"))
            position = json.loads(plaintext)
        except (InvalidTag, ValueError) as exc:
            raise InvalidPageTokenError(_INVALID) from exc
        if not isinstance(position, dict) or not all(isinstance(v, str) for v in position.values()):
            raise InvalidPageTokenError(_INVALID)
        if fields is not None and set(position) != set(fields):
            raise InvalidPageTokenError(_INVALID)
        return position

    def encode_key(self, scope: str, last_key: Mapping[str, Any], partition_name: str) -> str:
        """Return the token of DynamoDB's ``LastEvaluatedKey``: every key attribute but the partition
        (the caller's own, known again on the next request), for ``scope``.

        Parameters
        ----------
        scope
            The listing and the caller's partition (authenticated, not stored).
        last_key
            ``LastEvaluatedKey`` in the low-level client's form (string attributes: ``{"S": value}``).
        partition_name
            The attribute left out of the token.

        Returns
        -------
        str
            The token (:meth:`encode`).
        """
        position = {name: value["S"] for name, value in last_key.items() if name != partition_name}
        return self.encode(scope, position)

    def decode_key(
        self, scope: str, token: str, key_names: Collection[str], partition_name: str, partition: str
    ) -> dict[str, Any]:
        """Return the ``ExclusiveStartKey`` of a token :meth:`encode_key` issued for this very ``scope``.

        Parameters
        ----------
        scope, token
            As for :meth:`decode`.
        key_names
            Every attribute of the key, the partition's included; the token must hold exactly the others.
        partition_name, partition
            The partition attribute, set to the caller's own value (no peeking into another owner's data).

        Returns
        -------
        dict
            The key in the low-level client's form.

        Raises
        ------
        InvalidPageTokenError
            As :meth:`decode`, and for a token whose position is not exactly this key.
        """
        position = self.decode(scope, token, fields=set(key_names) - {partition_name})
        return {**{name: {"S": value} for name, value in position.items()}, partition_name: {"S": partition}}
