"""The transport of the medsum API client: one place for how a call travels.

:class:`Transport` holds the base URL, the ``requests`` session and the credentials; it signs every call
(SigV4 for ``execute-api``, with :func:`medsum_cli.signing.sign_request`), applies the timeouts, retries
``429`` and ``503`` answers (tenacity, a small exponential backoff that honours ``Retry-After``) and maps
every failure to a typed exception: :class:`ApiError` (an error answer, the API's or the storage's),
:class:`TransportError` (no answer). Responses are returned as the API's JSON, unchanged.

The calls of each resource are built on it, in :mod:`medsum_cli.resources`;
:class:`medsum_cli.client.MedsumClient` puts them together.
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
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from medsum_cli._version import __version__
from medsum_cli.signing import sign_request

JSONObject = dict[str, Any]
StatusCallback = Callable[[JSONObject], None]
_Send = Callable[[str, str, bytes | None, Mapping[str, str]], requests.Response]
WaitKind = Literal["report", "batch"]

RETRY_STATUSES = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE})
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # (connect, read) seconds
DEFAULT_MAX_ATTEMPTS = 4
MAX_RETRY_AFTER = 20.0  # never sleep longer than this between retries, whatever the server says
UPLOAD_READ_TIMEOUT = 120.0  # seconds: the storage answers a large PUT once it has stored all of it
_S3_ERROR_CODE = re.compile(r"<Code>([A-Za-z0-9._-]{1,64})</Code>")
_S3_ERROR_MESSAGE = re.compile(r"<Message>([^<]{1,300})</Message>")
_BACKOFF = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)  # 0.5, 1, 2, 4 s (+ jitter)


class MedsumClientError(Exception):
    """Base class of every error raised by :class:`~medsum_cli.client.MedsumClient`."""


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


class Transport:
    """Signed, retried HTTP calls to the medsum API (the base of every resource's calls).

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
        return json_object(response)

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
        return self._exchange(
            method, url, data, signed, self._timeout, target=self.api_url, label=f"{method} {url}"
        )

    def _send_presigned(
        self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]
    ) -> requests.Response:
        """Send a request to a presigned URL as it is: not signed, and never named in errors."""
        host = urlsplit(url).netloc
        all_headers = {"User-Agent": f"medsum-cli/{__version__}", **headers}
        timeout = (self._timeout[0], max(self._timeout[1], UPLOAD_READ_TIMEOUT))
        return self._exchange(
            method, url, data, all_headers, timeout, target=host, label=f"{method} to {host}"
        )

    def _exchange(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        *,
        target: str,
        label: str,
    ) -> requests.Response:
        """One HTTP exchange; no answer raises :class:`TransportError` (``target`` and ``label`` name it)."""
        try:
            return self._session.request(
                method, url, data=data, headers=headers, timeout=timeout, allow_redirects=False
            )
        except requests.ConnectTimeout as exc:
            raise ConnectionFailedError(f"cannot connect to {target} (timed out)") from exc
        except requests.Timeout as exc:
            raise TransportError(f"{label} timed out") from exc
        except requests.ConnectionError as exc:
            raise ConnectionFailedError(f"cannot connect to {target}") from exc
        except requests.RequestException as exc:
            raise TransportError(f"{label} failed: {type(exc).__name__}") from exc

    def _presigned_request(
        self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]
    ) -> requests.Response:
        """Send to a presigned URL (retried like the API); raise the storage's :class:`ApiError` on >= 300."""
        response = self._send_with_retries(method, url, data, headers, send=self._send_presigned)
        if response.status_code >= 300:
            raise _storage_error(response)
        return response

    def _download(self, url: str) -> bytes:
        """GET a presigned URL (a large batch's results file): no SigV4, the URL carries its own."""
        try:
            response = self._session.get(url, timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise TransportError("cannot download the results file") from exc
        if response.status_code != HTTPStatus.OK:
            raise TransportError(f"the results file answered {response.status_code}")
        return response.content

    def sign(self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers to send: the request signed for ``execute-api`` by :func:`.signing.sign_request`.

        ``data`` is the exact body (``None`` for none) and ``headers`` the extra headers to send (and
        sign). The API's defaults are added first: ``Accept: application/json`` and, when there is a
        body, ``Content-Type: application/json`` (unless ``headers`` set them); ``User-Agent`` last
        (never signed).
        """
        all_headers: dict[str, str] = {"Accept": "application/json", **headers}
        if data is not None and not any(name.lower() == "content-type" for name in all_headers):
            all_headers["Content-Type"] = "application/json"
        signed = sign_request(
            method, url, credentials=self._credentials, region=self.region, body=data, headers=all_headers
        )
        # User-Agent is never signed (botocore skips it); it only helps server logs.
        signed["User-Agent"] = f"medsum-cli/{__version__}"
        return signed


def segment(value: str) -> str:
    """``value`` quoted as one URL path segment (``/`` included)."""
    return quote(value, safe="")


def page_params(limit: int | None, next_token: str | None) -> dict[str, str]:
    """The query parameters of one page of a list: ``limit`` and ``next_token``, when given."""
    params: dict[str, str] = {}
    if limit is not None:
        params["limit"] = str(limit)
    if next_token:
        params["next_token"] = next_token
    return params


def follow_pages(
    read_page: Callable[[str | None], JSONObject], next_token: str | None
) -> Iterator[JSONObject]:
    """Yield ``read_page(token)`` for every page, following ``next_token`` (stops on a repeated token)."""
    token = next_token
    seen: set[str] = set()
    while True:
        page = read_page(token)
        yield page
        token = page.get("next_token")
        if not token or token in seen:  # a repeated token would loop forever
            return
        seen.add(token)


def json_object(response: requests.Response) -> JSONObject:
    """The answer's JSON object; :class:`ApiError` ``invalid_response`` if it is not one."""
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
    """Concatenate the ``items`` of pages from :meth:`~medsum_cli.resources.reports.ReportCalls.iter_pages`.

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
