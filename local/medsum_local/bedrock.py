"""A local Amazon Bedrock Runtime endpoint that speaks the Converse wire protocol.

An unchanged ``boto3.client("bedrock-runtime", endpoint_url=...)`` can call ``converse`` on it: the
route is ``POST /model/{modelId}/converse`` (any model id, URL-encoded ARNs included), the body and
the answer have the real shapes, and errors carry the status code and ``x-amzn-ErrorType`` header of
the real service, so botocore raises its modeled exceptions (``client.exceptions.ThrottlingException``
and friends). The answer is produced by the deterministic extractive model in
:mod:`medsum_local.clinical_model`, serialized as the JSON text an LLM would be asked to return.

Faults can be injected to exercise the worker's retry path, at start (constructor argument, or the
``MEDSUM_BEDROCK_FAULTS`` environment variable holding JSON) and at run time through admin routes::

    GET  /ping              {"status": "ok"}
    GET  /_local/faults     current fault settings
    PUT  /_local/faults     replace them (JSON body, validated; 400 on bad input)
    GET  /_local/stats      {"converse_calls", "errors", "errors_by_code", "calls_by_digest",
                             "completed_by_digest"}
    POST /_local/reset      zero the stats, reseed the error dice and refill the throttle bucket

``calls_by_digest`` and ``completed_by_digest`` are keyed by :func:`report_digest` of the report in
the prompt, so a test can assert "exactly one model call for this report" without seeing its text.

``inferenceConfig.maxTokens`` is honoured (about four characters per token): a tight budget first
drops trailing list items, and only when even the bare summary cannot fit is the answer cut with
``stopReason: "max_tokens"``, as a real model's would be.

Report text is never logged: log lines carry the model id, sizes, status and latency only.

Run standalone with ``python -m medsum_local.bedrock --port 3002``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from wsgiref.types import StartResponse, WSGIEnvironment

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from medsum_local.clinical_model import ModelOutput, extract_report, summarize_prompt

__all__ = ["ERROR_STATUS", "FAULTS_ENV", "FaultSettings", "LocalBedrock", "main", "report_digest"]

logger = logging.getLogger(__name__)

FAULTS_ENV: Final = "MEDSUM_BEDROCK_FAULTS"

ErrorCode = Literal[
    "ThrottlingException",
    "ServiceUnavailableException",
    "ModelNotReadyException",
    "ModelTimeoutException",
    "InternalServerException",
    "ValidationException",
    "AccessDeniedException",
    "ModelErrorException",
    "ResourceNotFoundException",
]

# Status codes from the bedrock-runtime service model (botocore/data/bedrock-runtime/*/service-2.json).
ERROR_STATUS: Final[Mapping[str, int]] = {
    "ThrottlingException": 429,
    "ServiceUnavailableException": 503,
    "ModelNotReadyException": 429,
    "ModelTimeoutException": 408,
    "InternalServerException": 500,
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ModelErrorException": 424,
    "ResourceNotFoundException": 404,
}
# Fixed messages in the service's wording. Never echo request content into them.
_ERROR_MESSAGES: Final[Mapping[str, str]] = {
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
    "ModelNotReadyException": "Model is not ready to serve inference requests.",
    "ModelTimeoutException": "Model has timed out in processing the request.",
    "InternalServerException": "The system encountered an unexpected error during processing.",
    "ValidationException": "The request failed validation.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
    "ModelErrorException": "The model returned an error while processing the request.",
    "ResourceNotFoundException": "The requested resource could not be found.",
}
_CHARS_PER_TOKEN: Final = 4


class FaultSettings(BaseModel):
    """What goes wrong, and how often. Immutable; replace the whole object to change it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="share of converse calls that fail")
    error_code: ErrorCode = Field(default="ThrottlingException", description="what the failing calls raise")
    throttle_rps: float | None = Field(
        default=None, gt=0.0, description="calls per second above which ThrottlingException is returned"
    )
    latency_ms: int = Field(default=0, ge=0, le=120_000, description="added to every accepted call")
    seed: int = Field(default=0, description="seed of the error dice: same seed, same failing calls")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FaultSettings:
        """Settings from ``MEDSUM_BEDROCK_FAULTS`` (JSON), or the defaults when it is unset or empty.

        Raises
        ------
        pydantic.ValidationError
            When the variable holds invalid JSON or invalid settings.
        """
        raw = (os.environ if environ is None else environ).get(FAULTS_ENV, "").strip()
        return cls.model_validate_json(raw) if raw else cls()


def report_digest(report_text: str) -> str:
    """The key of a report in ``/_local/stats``: sha256 of the stripped text, first 16 hex digits."""
    return hashlib.sha256(report_text.strip().encode("utf-8")).hexdigest()[:16]


def _estimate_tokens(chars: int) -> int:
    return max(1, math.ceil(chars / _CHARS_PER_TOKEN)) if chars else 0


class _TokenBucket:
    """Allows ``rate`` calls per second on average, bursts up to ``max(1, rate)``."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass
class _Stats:
    converse_calls: int = 0
    errors: int = 0
    errors_by_code: Counter[str] = field(default_factory=Counter)
    calls_by_digest: Counter[str] = field(default_factory=Counter)
    completed_by_digest: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "converse_calls": self.converse_calls,
            "errors": self.errors,
            "errors_by_code": dict(self.errors_by_code),
            "calls_by_digest": dict(self.calls_by_digest),
            "completed_by_digest": dict(self.completed_by_digest),
        }


class _BedrockError(Exception):
    """An error answered in the service's wire format (status + ``x-amzn-ErrorType`` + message)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or _ERROR_MESSAGES[code]


@dataclass(frozen=True)
class _Prompt:
    system: str
    user_text: str
    input_chars: int
    max_tokens: int | None


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to the module logger at debug level instead of stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("http request", extra={"path": self.path.split("?", 1)[0], "status": code})


class LocalBedrock:
    """A Bedrock Runtime look-alike on a local port.

    Parameters
    ----------
    host, port:
        Where to listen; ``port=0`` picks a free port (read it back from :attr:`url`).
    faults:
        Initial fault settings (a :class:`FaultSettings` or a mapping validated into one). When
        omitted, ``MEDSUM_BEDROCK_FAULTS`` is read; when that is unset too, nothing fails.

    Examples
    --------
    >>> with LocalBedrock() as bedrock:  # doctest: +SKIP
    ...     client = boto3.client("bedrock-runtime", endpoint_url=bedrock.url, region_name="us-east-1")
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultSettings | Mapping[str, Any] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._faults = FaultSettings.from_env() if faults is None else FaultSettings.model_validate(faults)
        self._rng = random.Random(self._faults.seed)
        self._bucket = _TokenBucket(self._faults.throttle_rps) if self._faults.throttle_rps else None
        self._stats = _Stats()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = Map(
            [
                Rule("/model/<path:model_id>/converse", methods=["POST"], endpoint="converse"),
                Rule("/ping", methods=["GET"], endpoint="ping"),
                Rule("/_local/faults", methods=["GET"], endpoint="get_faults"),
                Rule("/_local/faults", methods=["PUT"], endpoint="put_faults"),
                Rule("/_local/stats", methods=["GET"], endpoint="stats"),
                Rule("/_local/reset", methods=["POST"], endpoint="reset"),
            ]
        )

    # ----------------------------------------------------------------------------------------------
    # Lifecycle
    # ----------------------------------------------------------------------------------------------
    def start(self) -> LocalBedrock:
        """Bind the port and serve in a daemon thread; returns once the socket is listening."""
        if self._server is not None:
            raise RuntimeError("LocalBedrock is already started")
        server = make_server(
            self._host, self._port, self.wsgi_app, threaded=True, request_handler=_QuietHandler
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-bedrock", daemon=True
        )
        self._thread.start()
        logger.info("local bedrock listening", extra={"url": self.url})
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LocalBedrock:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("LocalBedrock is not started")
        host = self._host if ":" not in self._host else f"[{self._host}]"
        return f"http://{host}:{self._server.port}"

    # ----------------------------------------------------------------------------------------------
    # In-process control (the admin routes call these too)
    # ----------------------------------------------------------------------------------------------
    @property
    def faults(self) -> FaultSettings:
        with self._lock:
            return self._faults

    def set_faults(self, faults: FaultSettings | Mapping[str, Any]) -> FaultSettings:
        """Replace the fault settings; reseeds the error dice and refills the throttle bucket."""
        settings = FaultSettings.model_validate(faults)
        with self._lock:
            self._faults = settings
            self._rearm()
        return settings

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.as_dict()

    def reset(self) -> None:
        """Zero the stats; reseed the error dice and refill the throttle bucket."""
        with self._lock:
            self._stats = _Stats()
            self._rearm()

    def _rearm(self) -> None:
        self._rng = random.Random(self._faults.seed)
        self._bucket = _TokenBucket(self._faults.throttle_rps) if self._faults.throttle_rps else None

    # ----------------------------------------------------------------------------------------------
    # WSGI
    # ----------------------------------------------------------------------------------------------
    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application (usable without a socket, e.g. with ``werkzeug.test.Client``)."""
        request = Request(environ)
        try:
            endpoint, arguments = self._routes.bind_to_environ(environ).match()
        except HTTPException as exc:
            code = exc.code or 404
            response = _error_response("UnknownOperationException", "Unknown operation.", code)
            return response(environ, start_response)
        try:
            response = self._dispatch(endpoint, arguments, request)
        except Exception as exc:  # a bug here must look like the service's 500, never a stack trace
            logger.error("local bedrock handler failed", extra={"error_type": type(exc).__name__})
            response = _error_response("InternalServerException")
        return response(environ, start_response)

    def _dispatch(self, endpoint: str, arguments: Mapping[str, Any], request: Request) -> Response:
        if endpoint == "converse":
            response = self._converse(request, str(arguments["model_id"]))
        elif endpoint == "ping":
            response = _json_response({"status": "ok"})
        elif endpoint == "get_faults":
            response = _json_response(self.faults.model_dump())
        elif endpoint == "put_faults":
            response = self._put_faults(request)
        elif endpoint == "stats":
            response = _json_response(self.stats())
        else:
            self.reset()
            response = _json_response(self.stats())
        return response

    def _put_faults(self, request: Request) -> Response:
        try:
            settings = self.set_faults(_json_object(request))
        except _BedrockError as exc:
            return _error_response(exc.code, exc.message)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            return _error_response(
                "ValidationException",
                "Invalid fault settings.",
                extra={"errors": json.loads(json.dumps(errors))},
            )
        logger.info("fault settings replaced", extra={"faults": settings.model_dump()})
        return _json_response(settings.model_dump())

    def _converse(self, request: Request, model_id: str) -> Response:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        try:
            prompt = _parse_converse(request)
        except _BedrockError as exc:
            with self._lock:
                self._stats.converse_calls += 1
                self._record_error(exc.code)
            logger.info("converse rejected", extra={"model_id": model_id, "error": exc.code})
            return _error_response(exc.code, exc.message, request_id=request_id)

        digest = report_digest(extract_report(prompt.user_text))
        with self._lock:
            self._stats.converse_calls += 1
            self._stats.calls_by_digest[digest] += 1
            faults = self._faults
            error: str | None = None
            at_the_door = self._bucket is not None and not self._bucket.take()
            if at_the_door:
                error = "ThrottlingException"
            elif faults.error_rate > 0 and self._rng.random() < faults.error_rate:
                error = faults.error_code
            if error is not None:
                self._record_error(error)

        if faults.latency_ms and not at_the_door:
            time.sleep(faults.latency_ms / 1000)  # a rate-limited call is turned away at once
        if error is not None:
            logger.info(
                "converse fault injected",
                extra={"model_id": model_id, "error": error, "input_chars": prompt.input_chars},
            )
            return _error_response(error, request_id=request_id)

        try:
            output = summarize_prompt(prompt.system, prompt.user_text)
        except Exception as exc:  # the model has a bug: answer like the service, keep the text out of logs
            logger.error("local model failed", extra={"model_id": model_id, "error_type": type(exc).__name__})
            with self._lock:
                self._record_error("InternalServerException")
            return _error_response("InternalServerException", request_id=request_id)
        output_text, stop_reason = _fit_to_budget(output, prompt.max_tokens)
        with self._lock:
            self._stats.completed_by_digest[digest] += 1
        input_tokens = _estimate_tokens(prompt.input_chars)
        output_tokens = _estimate_tokens(len(output_text))
        latency_ms = round((time.monotonic() - started) * 1000)
        logger.info(
            "converse completed",
            extra={
                "model_id": model_id,
                "input_chars": prompt.input_chars,
                "output_chars": len(output_text),
                "stop_reason": stop_reason,
                "latency_ms": latency_ms,
            },
        )
        body = {
            "output": {"message": {"role": "assistant", "content": [{"text": output_text}]}},
            "stopReason": stop_reason,
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
            "metrics": {"latencyMs": latency_ms},
        }
        return _json_response(body, request_id=request_id)

    def _record_error(self, code: str) -> None:
        self._stats.errors += 1
        self._stats.errors_by_code[code] += 1


def _fit_to_budget(output: ModelOutput, max_tokens: int | None) -> tuple[str, str]:
    """Serialize the answer within ``maxTokens``; returns the text and the stop reason.

    A well-instructed model answers more briefly when its budget is small, so trailing list items
    are dropped first (from the longest list); only when even the bare summary does not fit is the
    answer cut mid-JSON with ``stopReason: max_tokens``, as a real model would be.
    """
    text = json.dumps(output)
    if max_tokens is None or _estimate_tokens(len(text)) <= max_tokens:
        return text, "end_turn"
    lists = [output["key_findings"], output["diagnoses"], output["medications"], output["follow_up"]]
    trimmed = [list(items) for items in lists]
    while any(trimmed):
        max(trimmed, key=len).pop()
        candidate = ModelOutput(
            summary=output["summary"],
            key_findings=trimmed[0],
            diagnoses=trimmed[1],
            medications=trimmed[2],
            follow_up=trimmed[3],
        )
        text = json.dumps(candidate)
        if _estimate_tokens(len(text)) <= max_tokens:
            return text, "end_turn"
    return text[: max_tokens * _CHARS_PER_TOKEN], "max_tokens"


# --------------------------------------------------------------------------------------------------
# Wire helpers
# --------------------------------------------------------------------------------------------------
def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BedrockError("ValidationException", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise _BedrockError("ValidationException", "The request body must be a JSON object.")
    return body


def _texts(content: object) -> list[str]:
    if not isinstance(content, list):
        return []
    return [
        block["text"] for block in content if isinstance(block, dict) and isinstance(block.get("text"), str)
    ]


def _parse_converse(request: Request) -> _Prompt:
    """Read the parts of a Converse request this model uses; reject malformed ones like the service."""
    body = _json_object(request)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BedrockError("ValidationException", "The messages field must be a non-empty list.")
    if not all(isinstance(message, dict) for message in messages):
        raise _BedrockError("ValidationException", "Each message must be an object.")
    if messages[-1].get("role") != "user":
        raise _BedrockError("ValidationException", "A conversation must end with a user message.")
    user_messages = ["\n".join(_texts(m.get("content"))) for m in messages if m.get("role") == "user"]
    user_text = user_messages[-1]
    if not user_text.strip():
        raise _BedrockError("ValidationException", "The last user message must contain text content.")
    if "<report>" not in user_text:
        # A multi-turn repair conversation may carry the report in an earlier user turn.
        user_text = next((text for text in reversed(user_messages) if "<report>" in text), user_text)
    system = "\n".join(_texts(body.get("system")))
    inference = body.get("inferenceConfig")
    max_tokens = inference.get("maxTokens") if isinstance(inference, dict) else None
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise _BedrockError("ValidationException", "inferenceConfig.maxTokens must be a positive integer.")
    input_chars = len(system) + sum(len(text) for text in user_messages)
    return _Prompt(system=system, user_text=user_text, input_chars=input_chars, max_tokens=max_tokens)


def _json_response(body: Mapping[str, Any], status: int = 200, request_id: str | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["x-amzn-RequestId"] = request_id or str(uuid.uuid4())
    return response


def _error_response(
    code: str,
    message: str | None = None,
    status: int | None = None,
    request_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """An error botocore parses into the modeled exception: status, ``x-amzn-ErrorType``, message."""
    body: dict[str, Any] = {"message": message or _ERROR_MESSAGES.get(code, code), **(extra or {})}
    response = _json_response(body, status or ERROR_STATUS.get(code, 400), request_id)
    response.headers["x-amzn-ErrorType"] = code
    return response


# --------------------------------------------------------------------------------------------------
# Standalone entry point
# --------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Serve in the foreground until Ctrl-C: ``python -m medsum_local.bedrock --port 3002``."""
    parser = argparse.ArgumentParser(
        prog="python -m medsum_local.bedrock", description="Local Bedrock Runtime (Converse) endpoint."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=3002, help="port to bind, 0 for any (default: %(default)s)"
    )
    parser.add_argument("--faults", help=f"fault settings as JSON (default: ${FAULTS_ENV}, else none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        faults = FaultSettings.model_validate_json(args.faults) if args.faults else FaultSettings.from_env()
    except ValidationError as exc:
        parser.error(f"invalid fault settings: {exc}")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Explicit handlers: a shell starting us in the background leaves SIGINT ignored.
        signal.signal(signum, lambda *_: stop.set())
    bedrock = LocalBedrock(args.host, args.port, faults).start()
    print(f"local bedrock runtime listening on {bedrock.url}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        bedrock.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
