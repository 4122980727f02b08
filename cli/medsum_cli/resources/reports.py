"""Report calls: submit a report, read, list, delete and wait for it.

``POST /summarize``, ``GET``/``DELETE /reports/{id}`` and ``GET /patients/{pid}/reports``, built on
:class:`~medsum_cli.transport.Transport`. A report the API would refuse is refused here first, before its
bytes travel (:func:`check_summarize_request`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from http import HTTPStatus

from medsum.http import MAX_BODY_BYTES, validation_problem
from medsum.models import SummarizeRequest
from pydantic import ValidationError

from medsum_cli.transport import (
    ApiError,
    JSONObject,
    StatusCallback,
    Transport,
    WaitTimeoutError,
    follow_pages,
    page_params,
    segment,
)

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED"})
DEFAULT_POLL_INTERVAL = 1.0
MAX_POLL_INTERVAL = 5.0


class ReportCalls(Transport):
    """The report routes of the API (see :class:`~medsum_cli.transport.Transport` for the parameters)."""

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
        return self._call("GET", f"/reports/{segment(report_id)}")

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
            "GET", f"/patients/{segment(patient_id)}/reports", params=page_params(limit, next_token)
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
        return follow_pages(lambda token: self.list(patient_id, limit=limit, next_token=token), next_token)

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
        self._call("DELETE", f"/reports/{segment(report_id)}", expect_body=False)

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
