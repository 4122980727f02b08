"""A small, SigV4-signed HTTP client for the medsum API.

Requests are signed for service ``execute-api`` with botocore's own signer and sent with ``requests``.
Every call has a timeout; ``429`` and ``503`` answers are retried (tenacity) a few times with a small
exponential backoff that honours ``Retry-After``. Responses are returned as the API's JSON, unchanged
(batch results as the API's NDJSON bytes).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from medsum.http import MAX_BODY_BYTES, validation_problem
from medsum.models import SummarizeRequest
from pydantic import ValidationError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from medsum_cli._version import __version__

JSONObject = dict[str, Any]
StatusCallback = Callable[[JSONObject], None]
_Send = Callable[[str, str, bytes | None, Mapping[str, str]], requests.Response]
WaitKind = Literal["report", "batch"]

SERVICE_NAME = "execute-api"
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED"})
BATCH_TERMINAL_STATUSES = frozenset({"completed", "cancelled", "failed"})
NDJSON_CONTENT_TYPE = "application/x-ndjson"
RETRY_STATUSES = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE})
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # (connect, read) seconds
DEFAULT_MAX_ATTEMPTS = 4
MAX_RETRY_AFTER = 20.0  # never sleep longer than this between retries, whatever the server says
DEFAULT_POLL_INTERVAL = 1.0
MAX_POLL_INTERVAL = 5.0
DEFAULT_BATCH_POLL_INTERVAL = 1.0  # batches are polled at a steady pace (a progress bar is watching)
UPLOAD_READ_TIMEOUT = 120.0  # seconds: the storage answers a large PUT once it has stored all of it
_S3_ERROR_CODE = re.compile(r"<Code>([A-Za-z0-9._-]{1,64})</Code>")
_S3_ERROR_MESSAGE = re.compile(r"<Message>([^<]{1,300})</Message>")
_BACKOFF = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)  # 0.5, 1, 2, 4 s (+ jitter)


class MedsumClientError(Exception):
    """Base class of every error raised by :class:`MedsumClient`."""


class ApiError(MedsumClientError):
    """The API answered with an error (or with something that is not the API's JSON).

    Parameters
    ----------
    status
        HTTP status code.
    code
        The ``error.code`` of the API's error body (or a code derived from the status).
    message
        The ``error.message`` of the API's error body (or the status phrase).

    details
        The ``error.details`` of the API's error body (e.g. ``{"location", "problem"}`` per invalid
        field), empty when it has none.
    local
        The request was refused by the client's own check of the API's limits, before it was sent.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[Mapping[str, Any]] = (),
        *,
        local: bool = False,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: list[JSONObject] = [dict(detail) for detail in details]
        self.local = local

    @property
    def is_client_error(self) -> bool:
        """Whether this is a ``4xx`` answer: the request must change before it can succeed."""
        return 400 <= self.status < 500

    def document(self) -> JSONObject:
        """The error in the API's shape: ``{"error": {"code", "message", "details"?}}`` plus ``status``."""
        error: JSONObject = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        document: JSONObject = {"error": error, "status": int(self.status)}
        if self.local:
            document["sent"] = False
        return document


class TransportError(MedsumClientError):
    """No HTTP answer: connection refused or reset, DNS failure, TLS error or timeout."""


class ConnectionFailedError(TransportError):
    """The API could not be reached at all (refused, reset, DNS or TLS failure, connect timeout)."""


class WaitTimeoutError(MedsumClientError):
    """A report (or a batch) did not reach a terminal status within the wait timeout.

    Parameters
    ----------
    report_id
        The report (or batch) waited for.
    timeout
        The timeout, in seconds.
    last_status
        The last status seen (``None`` if it was never read).
    kind
        What was waited for: ``"report"`` or ``"batch"``.
    """

    def __init__(
        self, report_id: str, timeout: float, last_status: str | None, kind: WaitKind = "report"
    ) -> None:
        super().__init__(
            f"timed out after {timeout:g}s waiting for {kind} {report_id} "
            f"(last status: {last_status or 'unknown'})"
        )
        self.report_id = report_id
        self.timeout = timeout
        self.last_status = last_status
        self.kind: WaitKind = kind


class _RetryableResponse(Exception):
    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class MedsumClient:
    """Client of the medsum REST API.

    Parameters
    ----------
    api_url
        Base URL of the API, e.g. ``http://127.0.0.1:3000`` or an API Gateway stage URL.
    credentials
        botocore credentials used to sign every request.
    region
        Signing region.
    session
        ``requests.Session`` to send with (tests inject one with a fake transport adapter).
    timeout
        ``(connect, read)`` timeout in seconds, applied to every HTTP call.
    max_attempts
        Attempts per call when the API answers ``429`` or ``503``.
    sleep, clock
        Injectable ``time.sleep`` and ``time.monotonic`` (for tests).
    """

    def __init__(
        self,
        api_url: str,
        credentials: Any,
        region: str,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.region = region
        self._credentials = credentials
        self._session = session if session is not None else requests.Session()
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._sleep = sleep if sleep is not None else time.sleep
        self._clock = clock if clock is not None else time.monotonic

    # ------------------------------------------------------------------------------------------
    # API operations
    # ------------------------------------------------------------------------------------------
    def submit(
        self,
        *,
        patient_id: str,
        report_text: str,
        report_type: str = "other",
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> JSONObject:
        """Submit a report for summarization (``POST /summarize``).

        Parameters
        ----------
        patient_id
            The caller's patient identifier (``[A-Za-z0-9._-]{1,64}``).
        report_text
            The report, verbatim; evidence offsets in the summary index into this string.
        report_type
            One of the API's report types (``radiology``, ``discharge``, ...).
        metadata
            Free-form string pairs stored with the report.
        idempotency_key
            Sent as the ``Idempotency-Key`` header so that a retried submit is not accepted twice.

        Returns
        -------
        dict
            The ``202`` body: ``{"report_id", "status", "links"}``.

        Raises
        ------
        ApiError
            If the API rejects the request, or the request breaks the API's rules and is not sent
            (:func:`check_summarize_request`, ``local`` set).
        TransportError
            If the API cannot be reached.
        """
        body = {
            "patient_id": patient_id,
            "report_text": report_text,
            "report_type": report_type,
            "metadata": dict(metadata or {}),
        }
        check_summarize_request(body)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._call("POST", "/summarize", body=body, headers=headers)

    def get(self, report_id: str) -> JSONObject:
        """Read one report (``GET /reports/{id}``).

        Parameters
        ----------
        report_id
            The id returned by :meth:`submit`.

        Returns
        -------
        dict
            The report view: status, and summary or error once the report is done.

        Raises
        ------
        ApiError
            ``404`` if the report does not exist or belongs to someone else.
        TransportError
            If the API cannot be reached.
        """
        return self._call("GET", f"/reports/{_segment(report_id)}")

    def list(self, patient_id: str, limit: int | None = None, next_token: str | None = None) -> JSONObject:
        """Read one page of a patient's reports (``GET /patients/{pid}/reports``).

        Parameters
        ----------
        patient_id
            The patient whose reports to list (only the caller's own reports are returned).
        limit
            Page size.
        next_token
            Token of the page to read, from a previous page's ``next_token``.

        Returns
        -------
        dict
            ``{"items": [...], "next_token": str | None}``.

        Raises
        ------
        ApiError
            If the API rejects the request (e.g. an invalid ``next_token``).
        TransportError
            If the API cannot be reached.
        """
        return self._call(
            "GET", f"/patients/{_segment(patient_id)}/reports", params=_page_params(limit, next_token)
        )

    def iter_pages(
        self, patient_id: str, limit: int | None = None, next_token: str | None = None
    ) -> Iterator[JSONObject]:
        """Yield every page of a patient's reports, following ``next_token``.

        Parameters
        ----------
        patient_id
            The patient whose reports to list.
        limit
            Page size.
        next_token
            Page to start from (default: the first).

        Yields
        ------
        dict
            Each page, as returned by :meth:`list`.
        """
        return _follow_pages(lambda token: self.list(patient_id, limit=limit, next_token=token), next_token)

    def delete(self, report_id: str) -> None:
        """Delete a report (``DELETE /reports/{id}``).

        Parameters
        ----------
        report_id
            The report to delete.

        Raises
        ------
        ApiError
            ``404`` if the report does not exist or belongs to someone else.
        TransportError
            If the API cannot be reached.
        """
        self._call("DELETE", f"/reports/{_segment(report_id)}", expect_body=False)

    def wait(
        self,
        report_id: str,
        timeout: float = 300.0,
        on_status: StatusCallback | None = None,
        *,
        poll_interval: float | None = None,
    ) -> JSONObject:
        """Poll a report until it is ``COMPLETED`` or ``FAILED``.

        Parameters
        ----------
        report_id
            The report to wait for.
        timeout
            Give up after this many seconds.
        on_status
            Called with every report view read (e.g. to update a spinner).
        poll_interval
            First delay between polls (default 1 s); it grows up to 5 s.

        Returns
        -------
        dict
            The terminal report view.

        Raises
        ------
        WaitTimeoutError
            If the report is still pending or processing when ``timeout`` expires.
        ApiError, TransportError
            As :meth:`get`.
        """
        deadline = self._clock() + timeout
        interval = DEFAULT_POLL_INTERVAL if poll_interval is None else poll_interval
        last_status: str | None = None
        while True:
            report = self.get(report_id)
            last_status = str(report.get("status"))
            if on_status is not None:
                on_status(report)
            if last_status in TERMINAL_STATUSES:
                return report
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise WaitTimeoutError(report_id, timeout, last_status)
            self._sleep(min(interval, remaining))
            interval = min(interval * 1.5, MAX_POLL_INTERVAL)

    # ------------------------------------------------------------------------------------------
    # Batches
    # ------------------------------------------------------------------------------------------
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
        return _json_object(response), parse_retry_after(response.headers.get("Retry-After"))

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
        response = self._send_with_retries("PUT", url, data, send_headers, send=self._send_presigned)
        if response.status_code >= 300:
            raise _storage_error(response)

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
        return self._call("GET", f"/batches/{_segment(batch_id)}")

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
            "GET", f"/batches/{_segment(batch_id)}/results", headers={"Accept": NDJSON_CONTENT_TYPE}
        )
        if response.status_code == HTTPStatus.SEE_OTHER and response.headers.get("Location"):
            return self._download(response.headers["Location"])
        return response.content

    def _download(self, url: str) -> bytes:
        """GET a presigned URL (a large batch's results file): no SigV4, the URL carries its own."""
        try:
            response = self._session.get(url, timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise TransportError("cannot download the results file") from exc
        if response.status_code != HTTPStatus.OK:
            raise TransportError(f"the results file answered {response.status_code}")
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
        return self._call("GET", "/batches", params=_page_params(limit, next_token))

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
        return _follow_pages(lambda token: self.list_batches(limit=limit, next_token=token), next_token)

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
        return self._call("POST", f"/batches/{_segment(batch_id)}/cancel")

    # ------------------------------------------------------------------------------------------
    # Operator routes (/admin; the API answers 403 to anyone not named in OperatorPrincipalArns)
    # ------------------------------------------------------------------------------------------
    def dlq_summary(self) -> JSONObject:
        """Dead-lettered work counted by error code and by age (``GET /admin/dlq/summary``)."""
        return self._call("GET", "/admin/dlq/summary")

    def dlq_list(
        self,
        *,
        error_code: str | None = None,
        older_than: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> JSONObject:
        """One page of dead-lettered work, oldest failure first (``GET /admin/dlq``)."""
        params = _page_params(limit, next_token)
        if error_code:
            params["error_code"] = error_code
        if older_than:
            params["older_than"] = older_than
        return self._call("GET", "/admin/dlq", params=params)

    def dlq_show(self, report_id: str) -> JSONObject:
        """The dead-lettered work of one report (``GET /admin/dlq/reports/{id}``)."""
        return self._call("GET", f"/admin/dlq/reports/{_segment(report_id)}")

    def dlq_redrive(self, body: JSONObject) -> JSONObject:
        """Start or continue (``{"job_id"}``) a redrive job (``POST /admin/dlq/redrive``)."""
        return self._call("POST", "/admin/dlq/redrive", body=body)

    def dlq_purge(self, body: JSONObject) -> JSONObject:
        """Delete dead-lettered work; its reports stay FAILED (``POST /admin/dlq/purge``)."""
        return self._call("POST", "/admin/dlq/purge", body=body)

    def audit(self, limit: int | None = None, next_token: str | None = None) -> JSONObject:
        """Operator actions, newest first (``GET /admin/audit``)."""
        return self._call("GET", "/admin/audit", params=_page_params(limit, next_token))

    def retry_report(self, report_id: str, reason: str) -> JSONObject:
        """Retry a report that failed non-retryably (``POST /admin/reports/{id}/retry``)."""
        return self._call("POST", f"/admin/reports/{_segment(report_id)}/retry", body={"reason": reason})

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
            response = self._request("GET", f"/batches/{_segment(batch_id)}")
            batch = _json_object(response)
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

    # ------------------------------------------------------------------------------------------
    # HTTP plumbing
    # ------------------------------------------------------------------------------------------
    # -- webhooks ---------------------------------------------------------------------------------------

    def create_webhook(self, url: str, event_types: Sequence[str] | None = None) -> JSONObject:
        """Register a webhook endpoint (``POST /webhooks``); the answer holds the secret, once."""
        body: JSONObject = {"url": url}
        if event_types:
            body["event_types"] = [str(t) for t in event_types]
        return self._call("POST", "/webhooks", body=body)

    def list_webhooks(self) -> JSONObject:
        """The caller's endpoints (``GET /webhooks``), without secrets."""
        return self._call("GET", "/webhooks")

    def delete_webhook(self, webhook_id: str) -> None:
        """Remove an endpoint (``DELETE /webhooks/{id}``)."""
        self._call("DELETE", f"/webhooks/{_segment(webhook_id)}", expect_body=False)

    def rotate_webhook_secret(self, webhook_id: str) -> JSONObject:
        """A new secret; the previous one keeps signing for 24 hours."""
        return self._call("POST", f"/webhooks/{_segment(webhook_id)}/rotate-secret")

    def deliveries(self, report_id: str) -> JSONObject:
        """Delivery attempts of a report's events (``GET /reports/{id}/deliveries``)."""
        return self._call("GET", f"/reports/{_segment(report_id)}/deliveries")

    def replay_delivery(self, delivery_id: str) -> JSONObject:
        """Send one delivery again (``POST /webhooks/deliveries/{id}/replay``)."""
        return self._call("POST", f"/webhooks/deliveries/{_segment(delivery_id)}/replay")

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: JSONObject | None = None,
        headers: Mapping[str, str] | None = None,
        expect_body: bool = True,
    ) -> JSONObject:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        response = self._request(method, path, params=params, data=data, headers=headers)
        if not expect_body or response.status_code == HTTPStatus.NO_CONTENT:
            return {}
        return _json_object(response)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send a signed request (with retries) and return the answer; raise :class:`ApiError` on >= 400."""
        url = self.api_url + path
        if params:
            url += "?" + urlencode(sorted(params.items()), quote_via=quote, safe="-_.~")
        response = self._send_with_retries(method, url, data, headers or {})
        if response.status_code >= 400:
            raise _api_error(response)
        return response

    def _send_with_retries(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: Mapping[str, str],
        *,
        send: _Send | None = None,
    ) -> requests.Response:
        send = self._send if send is None else send
        retrying = Retrying(
            retry=retry_if_exception_type(_RetryableResponse),
            stop=stop_after_attempt(self._max_attempts),
            wait=_wait_retry_after,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = send(method, url, data, headers)
                    if response.status_code in RETRY_STATUSES:
                        raise _RetryableResponse(response)
                    return response
        except _RetryableResponse as exc:
            return exc.response
        raise AssertionError("unreachable: tenacity either returns, retries or re-raises")  # pragma: no cover

    def _send(
        self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]
    ) -> requests.Response:
        signed = self.sign(method, url, data, headers)
        try:
            return self._session.request(
                method, url, data=data, headers=signed, timeout=self._timeout, allow_redirects=False
            )
        except requests.ConnectTimeout as exc:
            raise ConnectionFailedError(f"cannot connect to {self.api_url} (timed out)") from exc
        except requests.Timeout as exc:
            raise TransportError(f"{method} {url} timed out") from exc
        except requests.ConnectionError as exc:
            raise ConnectionFailedError(f"cannot connect to {self.api_url}") from exc
        except requests.RequestException as exc:
            raise TransportError(f"{method} {url} failed: {type(exc).__name__}") from exc

    def _send_presigned(
        self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]
    ) -> requests.Response:
        """Send a request to a presigned URL as it is: not signed, and never named in errors."""
        host = urlsplit(url).netloc
        all_headers = {"User-Agent": f"medsum-cli/{__version__}", **headers}
        timeout = (self._timeout[0], max(self._timeout[1], UPLOAD_READ_TIMEOUT))
        try:
            return self._session.request(
                method, url, data=data, headers=all_headers, timeout=timeout, allow_redirects=False
            )
        except requests.ConnectTimeout as exc:
            raise ConnectionFailedError(f"cannot connect to {host} (timed out)") from exc
        except requests.Timeout as exc:
            raise TransportError(f"{method} to {host} timed out") from exc
        except requests.ConnectionError as exc:
            raise ConnectionFailedError(f"cannot connect to {host}") from exc
        except requests.RequestException as exc:
            raise TransportError(f"{method} to {host} failed: {type(exc).__name__}") from exc

    def sign(self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]) -> dict[str, str]:
        """Sign a request with SigV4 for ``execute-api`` and return the headers to send.

        Parameters
        ----------
        method
            HTTP method.
        url
            Full URL, query string included, exactly as it will be sent.
        data
            Exact body bytes (``None`` for no body).
        headers
            Extra headers to send (and sign).

        Returns
        -------
        dict
            ``headers`` plus ``Content-Type`` (``application/json`` unless ``headers`` set one) when
            there is a body, ``Accept`` (``application/json`` unless set), ``X-Amz-Date``,
            ``Authorization`` and, for temporary credentials, ``X-Amz-Security-Token``.
        """
        all_headers: dict[str, str] = {"Accept": "application/json", **headers}
        if data is not None and not any(name.lower() == "content-type" for name in all_headers):
            all_headers["Content-Type"] = "application/json"
        request = AWSRequest(method=method, url=url, data=data or b"", headers=all_headers)
        SigV4Auth(self._credentials, SERVICE_NAME, self.region).add_auth(request)
        signed = {str(name): str(value) for name, value in request.headers.items()}
        # User-Agent is never signed (botocore skips it); it only helps server logs.
        signed["User-Agent"] = f"medsum-cli/{__version__}"
        return signed


def _segment(value: str) -> str:
    return quote(value, safe="")


def _page_params(limit: int | None, next_token: str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if limit is not None:
        params["limit"] = str(limit)
    if next_token:
        params["next_token"] = next_token
    return params


def _follow_pages(
    read_page: Callable[[str | None], JSONObject], next_token: str | None
) -> Iterator[JSONObject]:
    token = next_token
    seen: set[str] = set()
    while True:
        page = read_page(token)
        yield page
        token = page.get("next_token")
        if not token or token in seen:  # a repeated token would loop forever
            return
        seen.add(token)


def _json_object(response: requests.Response) -> JSONObject:
    try:
        payload = response.json()
    except ValueError as exc:
        raise ApiError(response.status_code, "invalid_response", "the API did not answer with JSON") from exc
    if not isinstance(payload, dict):
        raise ApiError(response.status_code, "invalid_response", "the API did not answer with a JSON object")
    return payload


def _wait_retry_after(state: RetryCallState) -> float:
    backoff = float(_BACKOFF(state))
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    if isinstance(exc, _RetryableResponse):
        retry_after = parse_retry_after(exc.response.headers.get("Retry-After"))
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
    return backoff


def parse_retry_after(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header (delay in seconds, or an HTTP date).

    Parameters
    ----------
    value
        The header value.

    Returns
    -------
    float or None
        Seconds to wait (never negative), or ``None`` if the header is absent or unparseable.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _api_error(response: requests.Response) -> ApiError:
    status = response.status_code
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = response.reason or "error"
    code, message = f"http_{status}", phrase
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    details: list[JSONObject] = []
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            code = str(error.get("code") or code)
            message = str(error.get("message") or message)
            raw_details = error.get("details")
            if isinstance(raw_details, list):
                details = [detail for detail in raw_details if isinstance(detail, dict)]
        elif isinstance(payload.get("message"), str):
            # API Gateway's own answers (e.g. a bad signature) look like {"message": "..."}.
            code = response.headers.get("x-amzn-ErrorType", "").split(":")[0] or code
            message = payload["message"]
    return ApiError(status, code, message, details)


def _storage_error(response: requests.Response) -> ApiError:
    """Map an S3 error answer (``<Error><Code>…</Code><Message>…</Message></Error>``) to ApiError."""
    status = response.status_code
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = response.reason or "error"
    # A regular expression, not an XML parser: only two short fields are wanted from an answer that
    # is not trusted, and nothing else of it is ever printed.
    text = response.content[:4096].decode("utf-8", errors="replace")
    code = _S3_ERROR_CODE.search(text)
    message = _S3_ERROR_MESSAGE.search(text)
    return ApiError(
        status,
        code.group(1) if code else f"http_{status}",
        f"the upload was refused: {message.group(1) if message else phrase}",
    )


def collect_items(pages: Iterator[JSONObject]) -> list[JSONObject]:
    """Concatenate the ``items`` of pages from :meth:`MedsumClient.iter_pages`.

    Parameters
    ----------
    pages
        Pages to read.

    Returns
    -------
    list of dict
        Every item, in page order.
    """
    items: list[JSONObject] = []
    for page in pages:
        items.extend(item for item in page.get("items") or [] if isinstance(item, dict))
    return items


def check_summarize_request(body: JSONObject) -> None:
    """Check a ``POST /summarize`` body against the API's own model and size limit, without sending it.

    A report the API would refuse is refused here, with the code and details the API would answer,
    before its bytes travel (a 10 MB file is not uploaded only to be refused).

    Parameters
    ----------
    body
        The request body.

    Raises
    ------
    ApiError
        ``400 invalid_request`` with ``details`` (e.g. ``body.report_text``: at most 100,000
        characters), or ``413 payload_too_large`` (body over 1 MiB); ``local`` is set.
    """
    try:
        SummarizeRequest.model_validate(body)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_input=False)]
        code, message, details = validation_problem(errors)
        raise ApiError(HTTPStatus.BAD_REQUEST, code, message, details or (), local=True) from None
    if len(json.dumps(body, ensure_ascii=False).encode("utf-8")) > MAX_BODY_BYTES:
        raise ApiError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "payload_too_large",
            "the request body exceeds 1 MiB",
            local=True,
        )
