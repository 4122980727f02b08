"""What a request must be before Powertools routes it, and the handler's last line of defence.

:func:`admit` looks at the raw API Gateway event, before routing: the body's size (1 MiB; 5 MiB for
``POST /batches``), its media type (JSON — ``application/json`` in any case, with parameters, or any
``+json`` suffix type — and, where a route takes it, JSON Lines), and its encoding (a body that is not
UTF-8 is not JSON). What passes is handed on in the one form Powertools parses: text (never base64)
and ``Content-Type: application/json`` for every JSON type. What fails raises a domain error, rendered
by the same mapping as every other error (``medsum.http.errors``).

:func:`serve` runs admission and the resolver, and turns anything unexpected into ``500
internal_error`` in the error shape (never a stack trace).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import CORSConfig
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from medsum.errors import InvalidJsonError, MedsumError, PayloadTooLargeError, UnsupportedMediaTypeError
from medsum.http import MAX_BODY_BYTES, is_json_content_type, is_ndjson_content_type
from medsum.http.errors import error_response
from medsum.observability import logger

JSON = "application/json"
NDJSON = "application/x-ndjson"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

#: CORS: what browsers may send and read (the API Gateway stage answers the preflights).
CORS_ALLOW_HEADERS = [
    "Content-Type",
    "Authorization",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "Idempotency-Key",
]
CORS_EXPOSE_HEADERS = ["Location", "Retry-After"]


def cors_config(allow_origin: str | None) -> CORSConfig | None:
    """Powertools' CORS answer headers for the template's ``CorsAllowOrigin`` (None: none)."""
    if not allow_origin:
        return None
    return CORSConfig(
        allow_origin=allow_origin,
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
        max_age=600,
    )


def admit(
    event: Mapping[str, Any],
    *,
    limits: Mapping[str, int] | None = None,
    ndjson_paths: Collection[str] = (),
) -> dict[str, Any]:
    """Check a REST proxy event's body and return the event as Powertools should see it.

    Parameters
    ----------
    event
        The API Gateway (REST, v1) proxy event; it is not modified.
    limits
        Body size limits (bytes) of particular paths; every other path: ``MAX_BODY_BYTES``.
    ndjson_paths
        Paths that also take JSON Lines (``application/x-ndjson``, ``application/jsonl``).

    Raises
    ------
    PayloadTooLargeError
        The body is over the path's limit.
    UnsupportedMediaTypeError
        A body (on POST, PUT, PATCH) that is not JSON (nor JSON Lines where the path takes it).
    InvalidJsonError
        A JSON or JSON Lines body that is not UTF-8.
    """
    path = str(event.get("path") or "")
    limit = (limits or {}).get(path, MAX_BODY_BYTES)
    raw = event.get("body")
    if not raw:
        return dict(event)
    if not isinstance(raw, str):
        raise InvalidJsonError("body is not text")
    if _size(event) > limit:
        raise PayloadTooLargeError(_too_large(limit))
    method = str(event.get("httpMethod") or "").upper()
    headers = {str(k): v for k, v in (event.get("headers") or {}).items()}
    content_type = next((str(v) for k, v in headers.items() if k.lower() == "content-type"), "").strip()
    if method not in _BODY_METHODS:
        return dict(event)
    takes_ndjson = path in ndjson_paths
    if is_json_content_type(content_type):
        canonical = JSON
    elif takes_ndjson and is_ndjson_content_type(content_type):
        canonical = NDJSON
    else:
        raise UnsupportedMediaTypeError(
            "send the body as application/json" + (" or application/x-ndjson" if takes_ndjson else "")
        )
    text = _text(raw, bool(event.get("isBase64Encoded")))
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    headers["Content-Type"] = canonical
    multi = {
        k: v for k, v in (event.get("multiValueHeaders") or {}).items() if str(k).lower() != "content-type"
    }
    multi["Content-Type"] = [canonical]
    return {**event, "body": text, "isBase64Encoded": False, "headers": headers, "multiValueHeaders": multi}


def _size(event: Mapping[str, Any]) -> int:
    body = str(event.get("body") or "")
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode("utf-8", "surrogatepass"))


def _too_large(limit: int) -> str:
    if limit > MAX_BODY_BYTES:
        return f"the request body exceeds {limit // 1_048_576} MiB; upload larger batches"
    return f"the request body exceeds {limit // 1_048_576} MiB"


def _text(raw: str, base64_encoded: bool) -> str:
    """The body as text: base64 decoded, and UTF-8 (else it is not JSON, RFC 8259 section 8.1)."""
    if not base64_encoded:
        return raw
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidJsonError("body is not UTF-8") from None


def serve(
    app: ApiGatewayResolver,
    event: Mapping[str, Any],
    context: LambdaContext,
    *,
    admission: Callable[[Mapping[str, Any]], dict[str, Any]],
    state: Mapping[str, Any],
    cors: CORSConfig | None = None,
) -> dict[str, Any]:
    """Admit the event, resolve it with ``state`` in the resolver's context (the deps), and answer
    every failure in the error shape.

    A domain error raised before routing (admission, operator check) is rendered by the shared
    mapping; anything else that escapes the resolver is a bug: ``500 internal_error``."""
    try:
        try:
            admitted = admission(event)
        except MedsumError as refused:
            logger.info("request refused before routing", status=refused.status, code=refused.code)
            return _proxy_response(error_response(refused), event, cors)
        app.append_context(**state)  # type: ignore[no-untyped-call]
        return app.resolve(admitted, context)
    except Exception as exc:
        return _proxy_response(error_response(exc), event, cors)


def _proxy_response(response: Any, event: Mapping[str, Any], cors: CORSConfig | None) -> dict[str, Any]:
    """An API Gateway proxy response for an answer given outside the resolver (CORS headers included)."""
    headers = {str(k): str(v) for k, v in response.headers.items()}
    if cors is not None:
        origin = next(
            (str(v) for k, v in (event.get("headers") or {}).items() if k.lower() == "origin"), None
        )
        allowed = cors.allowed_origin(origin) if origin else None
        if allowed is not None:
            headers.update(cors.to_dict(allowed))
    return {
        "statusCode": int(response.status_code),
        "headers": headers,
        "body": response.body,
        "isBase64Encoded": False,
    }
