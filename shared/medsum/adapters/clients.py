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
_BEDROCK = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=5,
    read_timeout=60,
)


@cache
def client(service: str) -> Any:
    """A cached boto3 client. Endpoints come from the environment (``AWS_ENDPOINT_URL``,
    ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``), which is how the local stack redirects them."""
    config = _BEDROCK if service == "bedrock-runtime" else _DATA_PLANE
    return boto3.session.Session().client(service, config=config)
