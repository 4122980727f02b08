"""Upload calls: start a large batch and upload its file to the presigned URL.

``POST /batches/uploads`` answers a presigned URL; the file goes there in one plain ``PUT`` (not
SigV4-signed: the URL carries its own signature), sent by :class:`~medsum_cli.transport.Transport`, which
never names the URL in an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from medsum_cli.transport import ApiError, JSONObject, Transport


class UploadCalls(Transport):
    """The upload route of the API (see :class:`~medsum_cli.transport.Transport` for the parameters)."""

    def create_upload(self) -> JSONObject:
        """Start a large batch (``POST /batches/uploads``): a presigned URL to upload its file to.

        The batch is ``validating`` (no items, zero counts) until its file is uploaded with
        :meth:`upload_batch_file`; the upload starts its ingestion. The API takes no
        ``Idempotency-Key`` here: every call creates a new batch.

        Returns
        -------
        dict
            The ``201`` body: ``{"batch_id", "status", "upload": {"url", "method", "headers",
            "expires_at", "max_items"}, "links"}``.

        Raises
        ------
        ApiError
            If the API rejects the request.
        TransportError
            If the API cannot be reached.
        """
        return self._call("POST", "/batches/uploads")

    def upload_batch_file(self, upload: Mapping[str, Any], data: bytes) -> None:
        """Upload a batch's JSON Lines file to the presigned URL of :meth:`create_upload`.

        A plain HTTP ``PUT`` of ``data`` to ``upload["url"]`` with exactly ``upload["headers"]`` (the
        URL carries its own signature, so the request is not SigV4-signed). ``429`` and ``503``
        answers (S3's ``SlowDown``) are retried like the API's; the URL is never put in an error
        message (it grants write access until it expires).

        Parameters
        ----------
        upload
            The ``upload`` object of :meth:`create_upload`'s answer.
        data
            The file's bytes, JSON Lines (at most ``upload["max_items"]`` items).

        Raises
        ------
        ApiError
            If the storage refuses the upload (e.g. ``403 AccessDenied`` once the URL has expired;
            the code and message are the storage's), or ``upload`` has no URL
            (``invalid_response``).
        TransportError
            If the storage cannot be reached or does not answer in time.
        """
        url = upload.get("url")
        headers = upload.get("headers") or {}
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ApiError(HTTPStatus.CREATED, "invalid_response", "the API's upload target has no URL")
        if not isinstance(headers, Mapping):
            raise ApiError(HTTPStatus.CREATED, "invalid_response", "the API's upload headers are no object")
        send_headers = {str(name): str(value) for name, value in headers.items()}
        self._presigned_request("PUT", url, data, send_headers)
