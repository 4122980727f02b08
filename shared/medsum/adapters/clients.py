"""boto3 client factory: one place for timeouts and botocore retry settings.

Retry at one layer (BRIEF principle 7): the Bedrock client does not retry at all (tenacity owns that
budget); data-plane clients keep botocore's standard mode with a small attempt count.

Cold start (docs/decisions.md, "Cold start"):

- every client of a process comes from one boto3 session: a session loads and caches botocore's endpoint
  rules, partitions and defaults once, and a client of a new session pays that again (about as much as
  the client itself). A session is not thread-safe, so clients are made under a lock (the worker's
  heartbeat thread uses clients while its main thread may be making the Bedrock client);
- a client is made when it is first used, not when an adapter is built: a function builds adapters for
  every service it may call (the api function: DynamoDB, SQS, S3, SNS, KMS), its first event calls one
  or two of them, and each client costs its service model's loading.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_DATA_PLANE = Config(
    retries={"mode": "standard", "total_max_attempts": 3},
    connect_timeout=3,
    read_timeout=10,
)
# Presigned URLs must be SigV4: S3 refuses other signatures for SSE-KMS objects (and botocore may
# still presign with SigV2 in us-east-1 unless told).
_S3 = _DATA_PLANE.merge(Config(signature_version="s3v4"))
#: Seconds to open a connection to Bedrock; with the read timeout, the longest one call can take.
BEDROCK_CONNECT_TIMEOUT = 5
_BEDROCK = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=BEDROCK_CONNECT_TIMEOUT,
    read_timeout=60,  # the worker's client overrides it (bedrock_client)
)
# The bulk lane's Bedrock client: still one attempt per call (tenacity retries), but botocore's
# adaptive mode adds its client-side rate limiter, which slows this sandbox's calls down after a
# throttle and speeds them up again as calls succeed (CUBIC). Bulk work thus backs off first.
_BEDROCK_BULK = _BEDROCK.merge(Config(retries={"mode": "adaptive", "total_max_attempts": 1}))


class LazyClient:
    """A boto3 client that is made on first use: reading any attribute (an operation, ``meta``,
    ``exceptions``) makes the client once and answers from it."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if name in ("_make", "_client"):  # not set yet (e.g. a copy): never recurse
            raise AttributeError(name)
        if self._client is None:
            made = self._make()
            if self._client is None:  # two threads may race to make it: keep the first
                self._client = made
        return getattr(self._client, name)


@cache
def session() -> boto3.session.Session:
    """The process's boto3 session, made on first use."""
    return boto3.session.Session()


_MAKING = threading.Lock()


def _make(service: str, config: Config) -> Callable[[], Any]:
    def make() -> Any:
        with _MAKING:
            return session().client(service, config=config)

    return make


@cache
def client(service: str) -> Any:
    """A cached boto3 client (made on first use). Endpoints come from the environment
    (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``), which is how the local stack
    redirects them."""
    config = {"bedrock-runtime": _BEDROCK, "s3": _S3}.get(service, _DATA_PLANE)
    return LazyClient(_make(service, config))


@cache
def bedrock_client(read_timeout: int, *, bulk: bool = False) -> Any:
    """A ``bedrock-runtime`` client that waits at most ``read_timeout`` seconds for a reply (the
    worker's time budget starts a call only if that fits); ``bulk``: the bulk lane's (adaptive
    client-side rate limiting). Made on first use."""
    config = (_BEDROCK_BULK if bulk else _BEDROCK).merge(Config(read_timeout=read_timeout))
    return LazyClient(_make("bedrock-runtime", config))
