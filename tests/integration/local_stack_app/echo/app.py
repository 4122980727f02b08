"""Test function: answers with the proxy event it received (and a little about its sandbox)."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from typing import Any

_ENV_KEYS = (
    "GREETING",
    "OBSERVATIONS_BUCKET",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_TIMEOUT",
    "POWERTOOLS_TRACE_DISABLED",
    "AWS_ACCESS_KEY_ID",
)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    resource = event["resource"]
    if resource == "/boom":
        raise RuntimeError("secret internal detail")
    if resource == "/sleep":
        time.sleep(30)
    if event.get("isBase64Encoded") and resource == "/files/{proxy+}":
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(base64.b64decode(event["body"])[::-1]).decode(),
            "isBase64Encoded": True,
        }
    answer = {
        "event": event,
        "env": {key: os.environ.get(key) for key in _ENV_KEYS},
        "env_size": len(os.environ),
        "context": {
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
        "sys_path": sys.path[:2],
        "pid": os.getpid(),
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "body": json.dumps(answer),
    }
