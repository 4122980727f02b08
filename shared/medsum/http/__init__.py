"""The HTTP edge of the api and admin functions (Powertools REST resolver) and its small helpers.

The package holds the routers (one per resource: ``reports``, ``batches``, ``webhooks``, ``admin``,
``service``), the one error mapping (``errors``), what a request must be before it is routed
(``edge``), the dependencies object handed to a handler (``deps``) and the OpenAPI document
(``openapi``). This module itself keeps only pure helpers (no Powertools import), which the CLI shares.

Every error the API returns has the shape ``{"error": {"code", "message", "details"?}}`` with a fixed
message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from medsum.validation import problems

MAX_BODY_BYTES = 1_048_576  # 1 MiB: 100,000 characters of report text fit with room to spare
# Inline batches: a Lambda request payload is at most 6 MB; bigger batches use an upload.
MAX_BATCH_BODY_BYTES = 5_242_880
_JSON_CONTENT_TYPE = re.compile(r"^application/(?:[a-z0-9.+-]*\+)?json\s*(?:;.*)?$", re.IGNORECASE)
_NDJSON_CONTENT_TYPE = re.compile(r"^application/(?:x-ndjson|jsonl|x-jsonlines)\s*(?:;.*)?$", re.IGNORECASE)
_ASSUMED_ROLE = re.compile(r"^(arn:[^:]+:sts::\d{12}:assumed-role/[^/]+)/.+$")


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> str:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return json.dumps({"error": error})


def owner_from_identity(identity: dict[str, Any] | None) -> str | None:
    """The caller's IAM principal, as API Gateway's IAM authorizer reports it.

    Assumed-role sessions are reduced to the role (``…:assumed-role/Role``) so that every session
    of one role owns the same reports.
    """
    if not identity:
        return None
    arn = identity.get("userArn") or identity.get("caller")
    if not arn or not isinstance(arn, str):
        return None
    match = _ASSUMED_ROLE.match(arn)
    return match.group(1) if match else arn


def is_json_content_type(value: str | None) -> bool:
    return bool(value) and bool(_JSON_CONTENT_TYPE.match(value or ""))


def is_ndjson_content_type(value: str | None) -> bool:
    return bool(value) and bool(_NDJSON_CONTENT_TYPE.match(value or ""))


def body_size(event: dict[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode("utf-8"))


def validation_problem(
    errors: Iterable[Mapping[str, Any]],
) -> tuple[str, str, list[dict[str, Any]] | None]:
    """Map pydantic/Powertools validation errors to ``(code, message, details)`` of the error shape.

    ``details`` locate each problem by the names this service defines only (``medsum.validation``):
    a client's own keys are never echoed."""
    errors = list(errors)
    if any(err.get("type") == "json_invalid" for err in errors):
        return "invalid_json", "the request body is not valid JSON", None
    return "invalid_request", "the request is not valid", list(problems(errors)) or None
