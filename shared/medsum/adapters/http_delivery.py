"""``WebhookSender`` over urllib3 (the HTTP library botocore already ships in every Lambda runtime).

The connection goes to an address the SSRF guard already checked (``addresses``), never to a fresh DNS
answer: urllib3 connects to the IP while TLS uses the original host name for SNI and certificate
verification, and ``Host`` carries the original host. Redirects are not followed (a 3xx is just a
status), urllib3's own retries are off (the notifier's queue schedule is the retry loop), the whole
attempt is bounded by ``timeout_seconds`` and at most ``max_body_bytes`` of the response are read.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from medsum.netguard import Target
from medsum.ports import SendResult, WebhookSender

MAX_RETRY_AFTER_SECONDS = 43_200  # SQS visibility can be extended to 12 hours at most


def parse_retry_after(value: str | None, now: datetime | None = None) -> int | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(int(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = int((when - (now or datetime.now(UTC))).total_seconds())
    return max(0, min(seconds, MAX_RETRY_AFTER_SECONDS))


class Urllib3WebhookSender(WebhookSender):
    """``ca_certs``: a CA bundle to trust instead of the system's (tests with a private CA)."""

    def __init__(
        self, timeout_seconds: float = 10.0, max_body_bytes: int = 1024, ca_certs: str | None = None
    ) -> None:
        self._timeout = min(10.0, timeout_seconds)
        self._max_body = max_body_bytes
        self._ca_certs = ca_certs

    def _pool(self, target: Target, address: str) -> urllib3.HTTPConnectionPool:
        timeout = urllib3.Timeout(total=self._timeout, connect=min(5.0, self._timeout))
        if target.scheme == "https":
            return urllib3.HTTPSConnectionPool(
                address,
                target.port,
                timeout=timeout,
                retries=False,
                maxsize=1,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self._ca_certs,
                server_hostname=target.host,
                assert_hostname=target.host,
            )
        return urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False, maxsize=1)

    def send(
        self, target: Target, addresses: Sequence[str], headers: dict[str, str], body: bytes
    ) -> SendResult:
        started = time.monotonic()
        error = "connection_error"
        for address in addresses[:3]:
            pool = self._pool(target, address)
            try:
                response = pool.urlopen(
                    "POST",
                    target.request_target,
                    body=body,
                    headers={**headers, "Host": target.host_header},
                    redirect=False,
                    retries=False,
                    assert_same_host=False,
                    preload_content=False,
                )
                try:
                    response.read(self._max_body)  # a small cap; the content is never used or logged
                finally:
                    response.close()
                return SendResult(
                    status_code=response.status,
                    latency_ms=int((time.monotonic() - started) * 1000),
                    retry_after_seconds=parse_retry_after(response.headers.get("Retry-After")),
                )
            except NewConnectionError:
                error = "connection_error"  # try the next checked address
                continue
            except Urllib3TimeoutError:
                error = "timeout"
                break
            except SSLError:
                error = "tls_error"
                break
            except HTTPError:
                error = "connection_error"
                break
            finally:
                pool.close()
        return SendResult(status_code=None, latency_ms=int((time.monotonic() - started) * 1000), error=error)
