"""Batch calls: submit a batch inline, read, list, cancel and wait for it, download its results.

``POST /batches`` (NDJSON, sent and signed byte for byte), ``GET /batches[/{id}]``,
``GET /batches/{id}/results`` (a presigned download for large batches) and ``POST /batches/{id}/cancel``,
built on :class:`~medsum_cli.transport.Transport`. Large batches are uploaded instead:
:mod:`medsum_cli.resources.uploads`.
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus

from medsum_cli.transport import (
    MAX_RETRY_AFTER,
    JSONObject,
    StatusCallback,
    Transport,
    WaitTimeoutError,
    follow_pages,
    json_object,
    page_params,
    parse_retry_after,
    segment,
)

BATCH_TERMINAL_STATUSES = frozenset({"completed", "cancelled", "failed"})
NDJSON_CONTENT_TYPE = "application/x-ndjson"
DEFAULT_BATCH_POLL_INTERVAL = 1.0  # batches are polled at a steady pace (a progress bar is watching)


class BatchCalls(Transport):
    """The batch routes of the API (see :class:`~medsum_cli.transport.Transport` for the parameters)."""

    def create_batch(self, ndjson: bytes, idempotency_key: str | None = None) -> JSONObject:
        """Submit a batch of reports (``POST /batches``).

        Parameters
        ----------
        ndjson
            The request body, sent (and signed) byte for byte as ``application/x-ndjson``: one JSON
            object a line, ``{"custom_id", "patient_id", "report_text", "report_type"?, "metadata"?}``.
        idempotency_key
            Sent as the ``Idempotency-Key`` header so that a retried submit creates one batch.

        Returns
        -------
        dict
            The ``202`` body: ``{"batch_id", "status", "request_counts", "links"}`` (the answer's
            ``Retry-After`` is returned by :meth:`create_batch_response`).

        Raises
        ------
        ApiError
            If the API rejects the batch (e.g. ``400 duplicate_custom_id``, ``400 no_valid_items``,
            ``413 payload_too_large``).
        TransportError
            If the API cannot be reached.
        """
        return self.create_batch_response(ndjson, idempotency_key)[0]

    def create_batch_response(
        self, ndjson: bytes, idempotency_key: str | None = None
    ) -> tuple[JSONObject, float | None]:
        """Like :meth:`create_batch`, and also return the answer's ``Retry-After`` delay.

        Parameters
        ----------
        ndjson
            The request body (NDJSON bytes).
        idempotency_key
            Optional ``Idempotency-Key``.

        Returns
        -------
        tuple
            ``(batch, retry_after)``: the ``202`` body, and the seconds to wait before the first poll
            (``None`` if the API did not say).
        """
        headers = {"Content-Type": NDJSON_CONTENT_TYPE}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = self._request("POST", "/batches", data=ndjson, headers=headers)
        return json_object(response), parse_retry_after(response.headers.get("Retry-After"))

    def get_batch(self, batch_id: str) -> JSONObject:
        """Read one batch (``GET /batches/{id}``).

        Parameters
        ----------
        batch_id
            The id returned by :meth:`create_batch`.

        Returns
        -------
        dict
            The batch: ``status``, ``request_counts``, timestamps, ``errors`` (input lines that were
            not accepted) and ``links``.

        Raises
        ------
        ApiError
            ``404`` if the batch does not exist or belongs to someone else.
        TransportError
            If the API cannot be reached.
        """
        return self._call("GET", f"/batches/{segment(batch_id)}")

    def batch_results(self, batch_id: str) -> bytes:
        """Read a batch's results (``GET /batches/{id}/results``).

        Parameters
        ----------
        batch_id
            The batch.

        Returns
        -------
        bytes
            The API's NDJSON, unchanged: one line per item,
            ``{"custom_id", "report_id", "status", "summary", "error"}``. For batches over 1,000 items
            the API answers ``303`` with a presigned URL of the results file, which is downloaded.

        Raises
        ------
        ApiError
            If the API rejects the request.
        TransportError
            If the API cannot be reached.
        """
        response = self._request(
            "GET", f"/batches/{segment(batch_id)}/results", headers={"Accept": NDJSON_CONTENT_TYPE}
        )
        if response.status_code == HTTPStatus.SEE_OTHER and response.headers.get("Location"):
            return self._download(response.headers["Location"])
        return response.content

    def list_batches(self, limit: int | None = None, next_token: str | None = None) -> JSONObject:
        """Read one page of the caller's batches (``GET /batches``).

        Parameters
        ----------
        limit
            Page size.
        next_token
            Token of the page to read, from a previous page's ``next_token``.

        Returns
        -------
        dict
            ``{"items": [batch, ...], "next_token": str | None}`` (items have no ``errors``).

        Raises
        ------
        ApiError
            If the API rejects the request (e.g. an invalid ``next_token``).
        TransportError
            If the API cannot be reached.
        """
        return self._call("GET", "/batches", params=page_params(limit, next_token))

    def iter_batch_pages(
        self, limit: int | None = None, next_token: str | None = None
    ) -> Iterator[JSONObject]:
        """Yield every page of the caller's batches, following ``next_token``.

        Parameters
        ----------
        limit
            Page size.
        next_token
            Page to start from (default: the first).

        Yields
        ------
        dict
            Each page, as returned by :meth:`list_batches`.
        """
        return follow_pages(lambda token: self.list_batches(limit=limit, next_token=token), next_token)

    def cancel_batch(self, batch_id: str) -> JSONObject:
        """Cancel a batch (``POST /batches/{id}/cancel``): items not started yet will not be.

        Parameters
        ----------
        batch_id
            The batch.

        Returns
        -------
        dict
            The batch, ``cancelling`` (or already terminal, then unchanged).

        Raises
        ------
        ApiError
            ``404`` if the batch does not exist or belongs to someone else.
        TransportError
            If the API cannot be reached.
        """
        return self._call("POST", f"/batches/{segment(batch_id)}/cancel")

    def wait_batch(
        self,
        batch_id: str,
        timeout: float = 3600.0,
        on_update: StatusCallback | None = None,
        *,
        poll_interval: float | None = None,
        first_delay: float | None = None,
    ) -> JSONObject:
        """Poll a batch until it is ``completed``, ``cancelled`` or ``failed``.

        Polls are ``poll_interval`` apart, or further apart when the API answers with a
        ``Retry-After`` header (capped at 20 s, and never past the deadline).

        Parameters
        ----------
        batch_id
            The batch to wait for.
        timeout
            Give up after this many seconds.
        on_update
            Called with every batch read (e.g. to update a progress bar).
        poll_interval
            Delay between polls (default 1 s).
        first_delay
            Delay before the first poll (e.g. the ``Retry-After`` of :meth:`create_batch_response`).

        Returns
        -------
        dict
            The terminal batch.

        Raises
        ------
        WaitTimeoutError
            If the batch is not done when ``timeout`` expires (``kind == "batch"``).
        ApiError, TransportError
            As :meth:`get_batch`.
        """
        deadline = self._clock() + timeout
        interval = DEFAULT_BATCH_POLL_INTERVAL if poll_interval is None else poll_interval
        if first_delay:
            self._sleep(min(first_delay, MAX_RETRY_AFTER, max(0.0, deadline - self._clock())))
        while True:
            response = self._request("GET", f"/batches/{segment(batch_id)}")
            batch = json_object(response)
            status = str(batch.get("status"))
            if on_update is not None:
                on_update(batch)
            if status in BATCH_TERMINAL_STATUSES:
                return batch
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise WaitTimeoutError(batch_id, timeout, status, kind="batch")
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = interval if retry_after is None else max(interval, min(retry_after, MAX_RETRY_AFTER))
            self._sleep(min(delay, remaining))
