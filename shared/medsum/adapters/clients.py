"""boto3 client factory: one place for timeouts and botocore retry settings.

Retry at one layer (BRIEF principle 7): the Bedrock client does not retry at all (tenacity owns that
budget); data-plane clients keep botocore's standard mode with a small attempt count.
"""

from __future__ import annotations

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


@cache
def client(service: str) -> Any:
    """A cached boto3 client. Endpoints come from the environment (``AWS_ENDPOINT_URL``,
    ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``), which is how the local stack redirects them."""
    config = {"bedrock-runtime": _BEDROCK, "s3": _S3}.get(service, _DATA_PLANE)
    return boto3.session.Session().client(service, config=config)


@cache
def bedrock_client(read_timeout: int, *, bulk: bool = False) -> Any:
    """A ``bedrock-runtime`` client that waits at most ``read_timeout`` seconds for a reply (the
    worker's time budget starts a call only if that fits); ``bulk``: the bulk lane's (adaptive
    client-side rate limiting)."""
    config = (_BEDROCK_BULK if bulk else _BEDROCK).merge(Config(read_timeout=read_timeout))
    return boto3.session.Session().client("bedrock-runtime", config=config)
