"""The medsum API client: :class:`MedsumClient`, every resource's calls on one signed transport.

How a call travels (SigV4 signing, timeouts, retries of ``429``/``503``, errors as typed exceptions) is
:mod:`medsum_cli.transport`; which routes exist is :mod:`medsum_cli.resources` (one module per resource).
This module puts them together and is the import callers use: it re-exports the errors, the constants
and the helpers they need.
"""

from __future__ import annotations

from medsum_cli.resources.admin import AdminCalls
from medsum_cli.resources.batches import (
    BATCH_TERMINAL_STATUSES,
    DEFAULT_BATCH_POLL_INTERVAL,
    NDJSON_CONTENT_TYPE,
    BatchCalls,
)
from medsum_cli.resources.reports import (
    DEFAULT_POLL_INTERVAL,
    MAX_POLL_INTERVAL,
    TERMINAL_STATUSES,
    ReportCalls,
    check_summarize_request,
)
from medsum_cli.resources.uploads import UploadCalls
from medsum_cli.resources.webhooks import WebhookCalls
from medsum_cli.signing import SERVICE_NAME
from medsum_cli.transport import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT,
    MAX_RETRY_AFTER,
    RETRY_STATUSES,
    UPLOAD_READ_TIMEOUT,
    ApiError,
    ConnectionFailedError,
    JSONObject,
    MedsumClientError,
    StatusCallback,
    TransportError,
    WaitKind,
    WaitTimeoutError,
    collect_items,
    parse_retry_after,
)

__all__ = [
    "BATCH_TERMINAL_STATUSES",
    "DEFAULT_BATCH_POLL_INTERVAL",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "MAX_POLL_INTERVAL",
    "MAX_RETRY_AFTER",
    "NDJSON_CONTENT_TYPE",
    "RETRY_STATUSES",
    "SERVICE_NAME",
    "TERMINAL_STATUSES",
    "UPLOAD_READ_TIMEOUT",
    "ApiError",
    "ConnectionFailedError",
    "JSONObject",
    "MedsumClient",
    "MedsumClientError",
    "StatusCallback",
    "TransportError",
    "WaitKind",
    "WaitTimeoutError",
    "check_summarize_request",
    "collect_items",
    "parse_retry_after",
]


class MedsumClient(ReportCalls, BatchCalls, UploadCalls, WebhookCalls, AdminCalls):
    """Client of the medsum REST API: the calls of every resource, on one transport.

    Takes the parameters of :class:`~medsum_cli.transport.Transport` (``api_url``, ``credentials``,
    ``region``, and the optional ``session``, ``timeout``, ``max_attempts``, ``sleep``, ``clock``).
    """
