"""A local Amazon Bedrock Runtime endpoint that speaks the Converse wire protocol.

An unchanged ``boto3.client("bedrock-runtime", endpoint_url=...)`` can call ``converse`` on it: the
route is ``POST /model/{modelId}/converse`` (any model id, URL-encoded ARNs included), the body and
the answer have the real shapes, and errors carry the status code and ``x-amzn-ErrorType`` header of
the real service, so botocore raises its modeled exceptions (``client.exceptions.ThrottlingException``
and friends). The answer is produced by the deterministic extractive model in
:mod:`medsum_local.clinical_model`: the summary contract as JSON text, or as a tool call's input.

What a request may carry (validated like the service: malformed parts get ``400 ValidationException``):

- ``system``: text and ``cachePoint`` blocks, or no system at all (instructions in the user message).
  The model reads the report between ``<report>`` and ``</report>`` in the user message
  (:mod:`medsum.prompting`, the framing ``medsum.logic.summarize`` writes).
- ``toolConfig``: ``tools`` (``toolSpec`` {name, description?, inputSchema.json with ``type: object``}
  and ``cachePoint`` entries; unique names) and ``toolChoice`` (``auto``, ``any`` or ``tool`` naming a
  declared tool). With a toolConfig the model **always** calls a tool, ``auto`` included (a real model
  may answer text under ``auto``; this one is deterministic): the content is one
  ``{"toolUse": {"toolUseId": "tooluse_…", "name", "input"}}`` block, ``input`` being the same object the
  text answer serializes, and ``stopReason`` is ``tool_use``. The tool is the one ``toolChoice.tool``
  names, else the first declared. Without a toolConfig the answer is JSON text (``end_turn``).
  ``toolUse``/``toolResult`` blocks in messages need a toolConfig, as in the service.
- ``guardrailConfig``: identifier and version are validated; no guardrail is applied.
- ``cachePoint`` blocks in ``system``, ``tools`` and message content (at most 4 per request).

``inferenceConfig.maxTokens`` is honoured (about four characters per token): a tight budget first
drops trailing list items, and only when even the bare summary cannot fit is the answer cut with
``stopReason: "max_tokens"``, as a real model's would be. A cut text answer is truncated JSON; a cut
tool call's ``input`` holds only the keys the model completed, in the contract's order (``{}`` when not
even the summary fit), and ``outputTokens`` is the whole budget.

**Context window.** A request whose estimated input (system + messages + tool specifications, four
characters a token) exceeds the window gets ``400 ValidationException`` "Input is too long for requested
model.", as the service answers. The window is the constructor's ``context_tokens``, else
``MEDSUM_BEDROCK_CONTEXT_TOKENS``, else 8192 tokens (about 32,000 characters: reports of a few thousand
characters fit, a 100,000-character report does not and must be split by the caller). ``maxTokens``
is not counted against it. One window for every model id.

**Prompt cache.** Prefixes are read in the model's order: tools, then system, then messages; each
``cachePoint`` marks the prefix before it. A completed call reads the longest prefix of its own still
cached for this model id (``cacheReadInputTokens``) and writes the rest up to its last cachePoint
(``cacheWriteInputTokens``); entries live 5 minutes (``ttl: "1h"``: an hour), refreshed by each hit.
``inputTokens`` excludes both, ``totalTokens`` includes them, as the service reports; the two cache
fields appear only when the request has a cachePoint. Unlike real models there is no minimum
cacheable length (Claude needs 1,024+ tokens per checkpoint), every model id caches, and failed calls
cache nothing. :meth:`LocalBedrock.clear_prompt_cache` empties it; ``/_local/reset`` does not.

**Scripted replies.** A test can dictate the model's answer to the requests whose user text (every
user turn, toolResult text included) contains a substring: ``{"match", "text"}`` answers a text block
whatever the toolConfig (a model ignoring the tool: prose, fenced JSON), ``{"match", "tool_input"}`` a
``toolUse`` block (named after the chosen tool, or ``record_summary`` without a toolConfig). Optional:
``stop_reason`` (any StopReason; default ``end_turn`` for text, ``tool_use`` for tool_input),
``usage`` ``{"inputTokens", "outputTokens"}`` reported as given (no cache fields) instead of the
estimates, and ``times`` (that many calls get it, then it is removed; default: until deleted). Several
can be active (tests share one stack): the longest matching ``match`` wins, between equally long ones
the most recently added; a PUT with an existing ``match`` replaces it. Requests are validated and
checked against the context window first, then faults apply (throttle, error dice, latency), and
only a call that gets through is answered by the script, verbatim (``maxTokens`` does not cut it).
Scripted calls count in the stats like any other (and in ``scripted_calls``).

**Faults** (:class:`FaultSettings`), applied in this order to each valid request:

- ``throttle_rps``: calls above this rate are turned away at once with ``ThrottlingException``;
- ``error_rate``: that share of the calls fails with ``error_code``, or, when ``error_codes`` lists
  several, with one of them drawn by the dice (a mix of throttling and 5xx errors);
- ``latency_ms``: added to every call that is not turned away (failing ones included);
- ``slow_rate`` / ``slow_latency_ms`` and ``overlong_rate`` / ``overlong_latency_ms``: a share of the
  calls that get through answers only after that much more time. *Slow* is a late but useful reply;
  *over-long* is meant to be longer than the caller's read timeout (the worker's Bedrock client gives
  up), which the server cannot know: it answers when the time is up like any call. A call whose caller
  has closed its connection by then (a client read timeout, a killed sandbox) still counts in
  ``completed_by_digest`` (the model did the work) and also in ``abandoned_by_digest``: delivered
  replies are ``completed - abandoned``. Abandonment is seen when the reply is ready (the socket has
  reached end-of-file), so a caller that hangs up a moment after that counts as delivered.
``in_flight`` in the stats is the number of calls being answered right now (not zeroed by a reset): a
benchmark waits for it to reach 0 before it reads the counts.

The dice (error, error code, slow/over-long) are one seeded generator: same ``seed`` and same call
order, same faults; the slow/over-long dice are drawn only when one of their rates is set, so older
settings keep their sequences. Latencies are interruptible: stopping the server ends them (the call
answers ``ServiceUnavailableException``).

Admin routes (faults are set at start too: constructor argument, or ``MEDSUM_BEDROCK_FAULTS`` JSON)::

    GET    /ping              {"status": "ok"}
    GET    /_local/faults     current fault settings
    PUT    /_local/faults     replace them (JSON body, validated; 400 on bad input)
    GET    /_local/stats      {"converse_calls", "errors", "errors_by_code", "calls_by_digest",
                               "completed_by_digest", "abandoned_by_digest", "scripted_calls",
                               "slow_calls", "overlong_calls", "in_flight"}
    POST   /_local/reset      zero the stats, reseed the error dice and refill the throttle bucket
    GET    /_local/replies    {"replies": [{...reply, "uses", "remaining"}]}, oldest first
    PUT    /_local/replies    add a scripted reply, or replace the one with its match (400 on bad input)
    DELETE /_local/replies    remove them all; ?match=... removes one ({"deleted": n})
    GET    /_local/{name}     what a control route added with :meth:`LocalBedrock.add_control_route`
                              answers; the local stack adds ``/_local/sandboxes`` (the function
                              sandboxes: function, index, pid, busy, request id, busy since)

``calls_by_digest`` and ``completed_by_digest`` are keyed by :func:`report_digest` of the report in
the prompt, so a test can assert "exactly one model call for this report" without seeing its text.

Report text is never logged: log lines carry the model id, sizes, status and latency only (nor are
a scripted reply's ``match`` or answer logged: sizes only).

Run standalone with ``python -m medsum_local.bedrock --port 3002 [--context-tokens N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import re
import secrets
import select
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from wsgiref.types import StartResponse, WSGIEnvironment

from medsum.prompting import carries_report, extract_report
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from medsum_local.clinical_model import ModelOutput, summarize_prompt
from medsum_local.ratelimit import TokenBucket

__all__ = [
    "CONTEXT_TOKENS_ENV",
    "DEFAULT_CONTEXT_TOKENS",
    "ERROR_STATUS",
    "FAULTS_ENV",
    "INPUT_TOO_LONG",
    "FaultSettings",
    "LocalBedrock",
    "ScriptedReply",
    "ScriptedUsage",
    "main",
    "report_digest",
]

logger = logging.getLogger(__name__)

FAULTS_ENV: Final = "MEDSUM_BEDROCK_FAULTS"
CONTEXT_TOKENS_ENV: Final = "MEDSUM_BEDROCK_CONTEXT_TOKENS"
DEFAULT_CONTEXT_TOKENS: Final = 8192
#: The service's message when the input does not fit the model's context window.
INPUT_TOO_LONG: Final = "Input is too long for requested model."

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

# The service model's StopReason enum (botocore/data/bedrock-runtime/*/service-2.json).
StopReason = Literal[
    "end_turn",
    "tool_use",
    "max_tokens",
    "stop_sequence",
    "guardrail_intervened",
    "content_filtered",
    "malformed_model_output",
    "malformed_tool_use",
    "model_context_window_exceeded",
]
#: Tool name of a scripted ``tool_input`` reply to a request that declares no tools.
DEFAULT_TOOL_NAME: Final = "record_summary"
# Patterns and limits of the service model (ToolName, GuardrailIdentifier, GuardrailVersion, CacheTTL).
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_GUARDRAIL_ID = re.compile(
    r"[a-z0-9]+|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+"
)
_GUARDRAIL_VERSION = re.compile(r"[1-9][0-9]{0,7}|DRAFT")
_GUARDRAIL_TRACE = frozenset({"enabled", "disabled", "enabled_full"})
_CACHE_TTL_SECONDS: Final[Mapping[str, float]] = {"5m": 300.0, "1h": 3600.0}
_MAX_CACHE_POINTS: Final = 4  # Anthropic's limit of cache checkpoints per request
_MAX_CACHE_ENTRIES: Final = 10_000


class FaultSettings(BaseModel):
    """What goes wrong, and how often. Immutable; replace the whole object to change it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="share of converse calls that fail")
    error_code: ErrorCode = Field(default="ThrottlingException", description="what the failing calls raise")
    error_codes: tuple[ErrorCode, ...] = Field(
        default=(),
        max_length=len(ERROR_STATUS),
        description="when set, each failing call raises one of these, drawn with the dice (not error_code)",
    )
    throttle_rps: float | None = Field(
        default=None, gt=0.0, description="calls per second above which ThrottlingException is returned"
    )
    latency_ms: int = Field(default=0, ge=0, le=120_000, description="added to every accepted call")
    slow_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="share of answered calls that are slow")
    slow_latency_ms: int = Field(default=0, ge=0, le=900_000, description="added to a slow call")
    overlong_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="share of answered calls slower than any client waits"
    )
    overlong_latency_ms: int = Field(default=0, ge=0, le=900_000, description="added to an over-long call")
    seed: int = Field(default=0, description="seed of the error dice: same seed, same failing calls")

    @model_validator(mode="after")
    def _coherent(self) -> FaultSettings:
        if self.slow_rate + self.overlong_rate > 1.0:
            raise ValueError("slow_rate + overlong_rate must not exceed 1")
        if self.slow_rate > 0 and self.slow_latency_ms == 0:
            raise ValueError("slow_rate needs a positive slow_latency_ms")
        if self.overlong_rate > 0 and self.overlong_latency_ms == 0:
            raise ValueError("overlong_rate needs a positive overlong_latency_ms")
        return self

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


class ScriptedUsage(BaseModel):
    """Token counts a scripted reply reports instead of the estimates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputTokens: int = Field(ge=0)
    outputTokens: int = Field(ge=0)


class ScriptedReply(BaseModel):
    """What the model answers to every request whose user text contains ``match``.

    Exactly one of ``text`` (a text content block, whatever the toolConfig) and ``tool_input`` (a
    ``toolUse`` block). ``times`` limits how many calls get it (then it is removed); None: until deleted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = Field(min_length=1, max_length=100_000, description="substring of the user message")
    text: str | None = Field(default=None, max_length=1_000_000)
    tool_input: dict[str, Any] | None = None
    stop_reason: StopReason | None = Field(
        default=None, description="default: end_turn for text, tool_use for tool_input"
    )
    usage: ScriptedUsage | None = None
    times: int | None = Field(default=None, ge=1, description="calls that get it; None: until deleted")

    @model_validator(mode="after")
    def _one_answer(self) -> ScriptedReply:
        if (self.text is None) == (self.tool_input is None):
            raise ValueError("exactly one of text and tool_input is required")
        return self

    @property
    def kind(self) -> Literal["text", "tool_input"]:
        return "text" if self.text is not None else "tool_input"

    @property
    def answer_stop_reason(self) -> str:
        return self.stop_reason or ("end_turn" if self.text is not None else "tool_use")


@dataclass
class _ActiveReply:
    reply: ScriptedReply
    remaining: int | None
    uses: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**self.reply.model_dump(exclude_none=True), "uses": self.uses, "remaining": self.remaining}


def _context_tokens_from_env(environ: Mapping[str, str] | None = None) -> int:
    raw = (os.environ if environ is None else environ).get(CONTEXT_TOKENS_ENV, "").strip()
    if not raw:
        return DEFAULT_CONTEXT_TOKENS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{CONTEXT_TOKENS_ENV} must be a positive integer")
    return value


def report_digest(report_text: str) -> str:
    """The key of a report in ``/_local/stats``: sha256 of the stripped text, first 16 hex digits."""
    return hashlib.sha256(report_text.strip().encode("utf-8")).hexdigest()[:16]


def _estimate_tokens(chars: int) -> int:
    return max(1, math.ceil(chars / _CHARS_PER_TOKEN)) if chars else 0


def _throttle_bucket(rps: float | None) -> TokenBucket | None:
    """``throttle_rps`` calls per second at the door, bursts up to ``max(1, rps)``; None: no limit."""
    return TokenBucket(rps, burst=rps) if rps else None


@dataclass
class _Stats:
    converse_calls: int = 0
    errors: int = 0
    errors_by_code: Counter[str] = field(default_factory=Counter)
    calls_by_digest: Counter[str] = field(default_factory=Counter)
    completed_by_digest: Counter[str] = field(default_factory=Counter)
    abandoned_by_digest: Counter[str] = field(default_factory=Counter)
    scripted_calls: int = 0
    slow_calls: int = 0
    overlong_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "converse_calls": self.converse_calls,
            "errors": self.errors,
            "errors_by_code": dict(self.errors_by_code),
            "calls_by_digest": dict(self.calls_by_digest),
            "completed_by_digest": dict(self.completed_by_digest),
            "abandoned_by_digest": dict(self.abandoned_by_digest),
            "scripted_calls": self.scripted_calls,
            "slow_calls": self.slow_calls,
            "overlong_calls": self.overlong_calls,
        }


class _BedrockError(Exception):
    """An error answered in the service's wire format (status + ``x-amzn-ErrorType`` + message)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or _ERROR_MESSAGES[code]


@dataclass(frozen=True)
class _ToolChoice:
    """The request's ``toolChoice`` and the tool the local model calls (the named one, else the first)."""

    kind: Literal["auto", "any", "tool"]
    name: str


@dataclass(frozen=True)
class _CachePoint:
    """A ``cachePoint``: the digest of everything before it (tools, system, messages) and its size."""

    prefix: str
    chars: int
    ttl: str


@dataclass(frozen=True)
class _Prompt:
    system: str
    user_text: str  # the user turn carrying the report: what the model reads
    conversation: str  # every user turn's text: what scripted replies match
    input_chars: int  # system + messages + tool specifications
    max_tokens: int | None
    tool: _ToolChoice | None
    cache_points: tuple[_CachePoint, ...]


@dataclass(frozen=True)
class _Answer:
    content: list[dict[str, Any]]
    stop_reason: str
    output_tokens: int
    usage: ScriptedUsage | None = None


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
    context_tokens:
        The model's context window in estimated tokens (four characters each, over system, messages
        and tool specifications); a longer request gets ``ValidationException`` "Input is too long for
        requested model.". When omitted, ``MEDSUM_BEDROCK_CONTEXT_TOKENS`` is read, else 8192.

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
        context_tokens: int | None = None,
    ) -> None:
        if context_tokens is not None and context_tokens < 1:
            raise ValueError("context_tokens must be a positive integer")
        self._host = host
        self._port = port
        self._context_tokens = _context_tokens_from_env() if context_tokens is None else context_tokens
        self._lock = threading.Lock()
        self._faults = FaultSettings.from_env() if faults is None else FaultSettings.model_validate(faults)
        self._rng = random.Random(self._faults.seed)
        self._bucket = _throttle_bucket(self._faults.throttle_rps)
        self._stats = _Stats()
        self._replies: dict[str, _ActiveReply] = {}  # by match, in the order they were added
        self._prompt_cache: dict[str, float] = {}  # cache key -> expiry (time.monotonic())
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # ends the injected latencies when the server stops
        self._in_flight = 0
        self._controls: dict[str, Callable[[], Any]] = {}
        self._routes = Map(
            [
                Rule("/model/<path:model_id>/converse", methods=["POST"], endpoint="converse"),
                Rule("/ping", methods=["GET"], endpoint="ping"),
                Rule("/_local/faults", methods=["GET"], endpoint="get_faults"),
                Rule("/_local/faults", methods=["PUT"], endpoint="put_faults"),
                Rule("/_local/stats", methods=["GET"], endpoint="stats"),
                Rule("/_local/reset", methods=["POST"], endpoint="reset"),
                Rule("/_local/replies", methods=["GET"], endpoint="get_replies"),
                Rule("/_local/replies", methods=["PUT"], endpoint="put_reply"),
                Rule("/_local/replies", methods=["DELETE"], endpoint="delete_replies"),
                Rule("/_local/<name>", methods=["GET"], endpoint="control"),
            ]
        )

    # ----------------------------------------------------------------------------------------------
    # Lifecycle
    # ----------------------------------------------------------------------------------------------
    def start(self) -> LocalBedrock:
        """Bind the port and serve in a daemon thread; returns once the socket is listening."""
        if self._server is not None:
            raise RuntimeError("LocalBedrock is already started")
        self._stopping.clear()
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
        self._stopping.set()  # calls sleeping on an injected latency answer now
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
        """The counts since the last reset, and ``in_flight``: calls being answered now (never reset)."""
        with self._lock:
            return {**self._stats.as_dict(), "in_flight": self._in_flight}

    def reset(self) -> None:
        """Zero the stats; reseed the error dice and refill the throttle bucket."""
        with self._lock:
            self._stats = _Stats()
            self._rearm()

    @property
    def context_tokens(self) -> int:
        """The context window, in estimated tokens."""
        return self._context_tokens

    def add_reply(self, reply: ScriptedReply | Mapping[str, Any]) -> ScriptedReply:
        """Script the answer to requests whose user text contains ``reply.match`` (replacing the
        reply with the same ``match``, if any).

        Raises
        ------
        pydantic.ValidationError
            When ``reply`` is a mapping that is not a valid :class:`ScriptedReply`.
        """
        scripted = ScriptedReply.model_validate(reply)
        with self._lock:
            self._replies.pop(scripted.match, None)  # a replaced reply counts as the newest
            self._replies[scripted.match] = _ActiveReply(scripted, scripted.times)
        return scripted

    def replies(self) -> list[dict[str, Any]]:
        """The active scripted replies, oldest first, each with its ``uses`` and ``remaining`` count."""
        with self._lock:
            return [active.as_dict() for active in self._replies.values()]

    def clear_replies(self, match: str | None = None) -> int:
        """Remove every scripted reply, or only the one with this ``match``; returns how many went."""
        with self._lock:
            if match is None:
                count = len(self._replies)
                self._replies.clear()
                return count
            return 1 if self._replies.pop(match, None) is not None else 0

    def add_control_route(self, name: str, provider: Callable[[], Any]) -> None:
        """Serve ``GET /_local/{name}`` with ``provider()`` as JSON (the local stack adds ``sandboxes``).

        Raises
        ------
        ValueError
            When ``name`` is one of the built-in admin routes or not a plain path segment.
        """
        if name in {"faults", "stats", "reset", "replies"} or not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
            raise ValueError(f"cannot add a control route named {name!r}")
        with self._lock:
            self._controls[name] = provider

    def clear_prompt_cache(self) -> None:
        """Forget every cached prompt prefix (the next call with a cachePoint writes again)."""
        with self._lock:
            self._prompt_cache.clear()

    def _take_reply(self, conversation: str) -> ScriptedReply | None:
        """The scripted reply for this conversation, if any (caller holds the lock): the longest
        matching ``match`` wins; between equally long ones, the most recently added."""
        best: _ActiveReply | None = None
        for active in self._replies.values():
            if active.reply.match in conversation and (
                best is None or len(active.reply.match) >= len(best.reply.match)
            ):
                best = active
        if best is None:
            return None
        best.uses += 1
        if best.remaining is not None:
            best.remaining -= 1
            if best.remaining == 0:
                del self._replies[best.reply.match]
        return best.reply

    def _use_prompt_cache(self, model_id: str, points: tuple[_CachePoint, ...]) -> tuple[int, int]:
        """Cached (read, written) characters of a completed call (caller holds the lock).

        The longest prefix still cached is read; what lies between it and the last cachePoint is
        written. Every checkpoint of the call is then (re)cached for its TTL, as a hit refreshes it.
        """
        if not points:
            return 0, 0
        now = time.monotonic()
        keys = [hashlib.sha256(f"{model_id}\0{point.prefix}".encode()).hexdigest() for point in points]
        read_chars = 0
        for key, point in zip(reversed(keys), reversed(points), strict=True):
            expiry = self._prompt_cache.get(key)
            if expiry is not None and expiry > now:
                read_chars = point.chars
                break
        for key, point in zip(keys, points, strict=True):
            self._prompt_cache.pop(key, None)  # re-inserted: the dict stays in least-recently-used order
            self._prompt_cache[key] = now + _CACHE_TTL_SECONDS[point.ttl]
        if len(self._prompt_cache) > _MAX_CACHE_ENTRIES:
            for key in [key for key, expiry in self._prompt_cache.items() if expiry <= now]:
                del self._prompt_cache[key]
            while len(self._prompt_cache) > _MAX_CACHE_ENTRIES:
                del self._prompt_cache[next(iter(self._prompt_cache))]
        return read_chars, max(0, points[-1].chars - read_chars)

    def _rearm(self) -> None:
        self._rng = random.Random(self._faults.seed)
        self._bucket = _throttle_bucket(self._faults.throttle_rps)

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
            response = self._converse(
                request, str(arguments["model_id"]), request.environ.get("werkzeug.socket")
            )
        elif endpoint == "ping":
            response = _json_response({"status": "ok"})
        elif endpoint == "get_faults":
            response = _json_response(self.faults.model_dump())
        elif endpoint == "put_faults":
            response = self._put_faults(request)
        elif endpoint == "stats":
            response = _json_response(self.stats())
        elif endpoint == "get_replies":
            response = _json_response({"replies": self.replies()})
        elif endpoint == "put_reply":
            response = self._put_reply(request)
        elif endpoint == "control":
            with self._lock:
                provider = self._controls.get(str(arguments["name"]))
            if provider is None:
                response = _error_response("UnknownOperationException", "Unknown operation.", 404)
            else:
                response = _json_response(provider())
        elif endpoint == "delete_replies":
            match = request.args.get("match")
            deleted = self.clear_replies(match)
            logger.info("scripted replies deleted", extra={"deleted": deleted, "all": match is None})
            response = _json_response({"deleted": deleted})
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
            return _invalid_body(exc, "Invalid fault settings.")
        logger.info("fault settings replaced", extra={"faults": settings.model_dump()})
        return _json_response(settings.model_dump())

    def _put_reply(self, request: Request) -> Response:
        try:
            reply = self.add_reply(_json_object(request))
        except _BedrockError as exc:
            return _error_response(exc.code, exc.message)
        except ValidationError as exc:
            return _invalid_body(exc, "Invalid scripted reply.")
        # Sizes only: the match and the scripted answer may be report text.
        answer = reply.text if reply.text is not None else json.dumps(reply.tool_input)
        logger.info(
            "scripted reply set",
            extra={"kind": reply.kind, "match_chars": len(reply.match), "answer_chars": len(answer)},
        )
        with self._lock:
            active = self._replies.get(reply.match)
            body = active.as_dict() if active is not None else _ActiveReply(reply, reply.times).as_dict()
        return _json_response(body)

    def _converse(self, request: Request, model_id: str, connection: Any = None) -> Response:
        with self._lock:
            self._in_flight += 1
        try:
            return self._answer(request, model_id, connection)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, request: Request, model_id: str, connection: Any) -> Response:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        try:
            prompt = _parse_converse(request)
            input_tokens = _estimate_tokens(prompt.input_chars)
            if input_tokens > self._context_tokens:
                raise _BedrockError("ValidationException", INPUT_TOO_LONG)
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
                if faults.error_codes:
                    error = self._rng.choice(faults.error_codes)
            delay_ms = 0 if at_the_door else faults.latency_ms  # a rate-limited call is turned away at once
            if error is None and (faults.slow_rate or faults.overlong_rate):
                dice = self._rng.random()
                if dice < faults.overlong_rate:
                    delay_ms += faults.overlong_latency_ms
                    self._stats.overlong_calls += 1
                elif dice < faults.overlong_rate + faults.slow_rate:
                    delay_ms += faults.slow_latency_ms
                    self._stats.slow_calls += 1
            if error is not None:
                self._record_error(error)

        if delay_ms and self._stopping.wait(delay_ms / 1000):
            return _error_response("ServiceUnavailableException", request_id=request_id)  # shutting down
        if error is not None:
            logger.info(
                "converse fault injected",
                extra={"model_id": model_id, "error": error, "input_chars": prompt.input_chars},
            )
            return _error_response(error, request_id=request_id)

        # Faults first, then the answer: a scripted reply is what the model says once the call gets through.
        with self._lock:
            scripted = self._take_reply(prompt.conversation)
            if scripted is not None:
                self._stats.scripted_calls += 1
        if scripted is not None:
            answer = _scripted_answer(scripted, prompt.tool)
        else:
            try:
                output = summarize_prompt(prompt.system, prompt.user_text)
            except Exception as exc:  # the model has a bug: answer like the service, keep text out of logs
                logger.error(
                    "local model failed", extra={"model_id": model_id, "error_type": type(exc).__name__}
                )
                with self._lock:
                    self._record_error("InternalServerException")
                return _error_response("InternalServerException", request_id=request_id)
            answer = _model_answer(output, prompt)
        abandoned = _client_gone(connection)
        with self._lock:
            self._stats.completed_by_digest[digest] += 1
            if abandoned:
                self._stats.abandoned_by_digest[digest] += 1
            read_chars, write_chars = self._use_prompt_cache(model_id, prompt.cache_points)
        usage = _usage(prompt, answer, read_chars, write_chars)
        latency_ms = round((time.monotonic() - started) * 1000)
        logger.info(
            "converse completed",
            extra={
                "model_id": model_id,
                "input_chars": prompt.input_chars,
                "output_tokens": usage["outputTokens"],
                "stop_reason": answer.stop_reason,
                "tool_use": any("toolUse" in block for block in answer.content),
                "scripted": scripted is not None,
                "cache_read_tokens": usage.get("cacheReadInputTokens", 0),
                "cache_write_tokens": usage.get("cacheWriteInputTokens", 0),
                "latency_ms": latency_ms,
                "abandoned": abandoned,
            },
        )
        body = {
            "output": {"message": {"role": "assistant", "content": answer.content}},
            "stopReason": answer.stop_reason,
            "usage": usage,
            "metrics": {"latencyMs": latency_ms},
        }
        return _json_response(body, request_id=request_id)

    def _record_error(self, code: str) -> None:
        self._stats.errors += 1
        self._stats.errors_by_code[code] += 1


# --------------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------------
def _fits(value: object, max_tokens: int | None) -> bool:
    return max_tokens is None or _estimate_tokens(len(json.dumps(value))) <= max_tokens


def _within_budget(output: ModelOutput, max_tokens: int | None) -> tuple[ModelOutput, bool]:
    """The answer shortened to ``maxTokens``, and whether it fits.

    A well-instructed model answers more briefly when its budget is small, so trailing list items
    are dropped first (from the longest list). When even the bare summary does not fit, that bare
    summary is returned with ``False``.
    """
    if _fits(output, max_tokens):
        return output, True
    candidate = output
    lists = [
        output["key_findings"],
        output["diagnoses"],
        output["medications"],
        output["follow_up"],
        output["allergies"],
    ]
    trimmed = [list(items) for items in lists]
    while any(trimmed):
        max(trimmed, key=len).pop()
        candidate = ModelOutput(
            summary=output["summary"],
            key_findings=trimmed[0],
            diagnoses=trimmed[1],
            medications=trimmed[2],
            follow_up=trimmed[3],
            allergies=trimmed[4],
        )
        if _fits(candidate, max_tokens):
            return candidate, True
    return candidate, False


def _fit_to_budget(output: ModelOutput, max_tokens: int | None) -> tuple[str, str]:
    """Serialize the answer within ``maxTokens``; returns the text and the stop reason.

    Only when even the bare summary does not fit is the text cut mid-JSON with
    ``stopReason: max_tokens``, as a real model's would be.
    """
    candidate, fits = _within_budget(output, max_tokens)
    text = json.dumps(candidate)
    if fits or max_tokens is None:
        return text, "end_turn"
    return text[: max_tokens * _CHARS_PER_TOKEN], "max_tokens"


def _fit_tool_input(output: ModelOutput, max_tokens: int | None) -> tuple[dict[str, Any], str]:
    """The tool input within ``maxTokens``; returns it and the stop reason.

    Trailing list items go first, as in the text answer. When even the bare summary does not fit,
    the model was cut off while writing the tool input: the input holds only the keys it completed,
    in the contract's order (``{}`` when not even the summary fit), with ``stopReason: max_tokens``.
    """
    candidate, fits = _within_budget(output, max_tokens)
    if fits:
        return dict(candidate), "tool_use"
    partial: dict[str, Any] = {}
    for key, value in output.items():
        if not _fits({**partial, key: value}, max_tokens):
            break
        partial[key] = value
    return partial, "max_tokens"


def _tool_use(name: str, tool_input: Mapping[str, Any]) -> dict[str, Any]:
    # Ids like the service's: "tooluse_" and 22 URL-safe characters (pattern [a-zA-Z0-9_.:-]+).
    return {
        "toolUse": {"toolUseId": f"tooluse_{secrets.token_urlsafe(16)}", "name": name, "input": tool_input}
    }


def _model_answer(output: ModelOutput, prompt: _Prompt) -> _Answer:
    """The stand-in model's answer: JSON text, or a tool call whenever the request declares tools."""
    if prompt.tool is None:
        text, stop_reason = _fit_to_budget(output, prompt.max_tokens)
        return _Answer([{"text": text}], stop_reason, _estimate_tokens(len(text)))
    tool_input, stop_reason = _fit_tool_input(output, prompt.max_tokens)
    if stop_reason == "max_tokens" and prompt.max_tokens is not None:
        output_tokens = prompt.max_tokens  # the whole budget went into the unfinished call
    else:
        output_tokens = _estimate_tokens(len(json.dumps(tool_input)))
    return _Answer([_tool_use(prompt.tool.name, tool_input)], stop_reason, output_tokens)


def _scripted_answer(reply: ScriptedReply, tool: _ToolChoice | None) -> _Answer:
    """A scripted reply, verbatim: no token budget applies to it."""
    if reply.text is not None:
        block: dict[str, Any] = {"text": reply.text}
        size = len(reply.text)
    else:
        block = _tool_use(tool.name if tool is not None else DEFAULT_TOOL_NAME, reply.tool_input or {})
        size = len(json.dumps(reply.tool_input))
    return _Answer([block], reply.answer_stop_reason, _estimate_tokens(size), reply.usage)


def _usage(prompt: _Prompt, answer: _Answer, read_chars: int, write_chars: int) -> dict[str, int]:
    """``TokenUsage``: ``inputTokens`` excludes the tokens read from or written to the prompt cache, and
    ``totalTokens`` adds all of them, as the service reports. A scripted ``usage`` is reported as given."""
    if answer.usage is not None:
        given = answer.usage
        return {
            "inputTokens": given.inputTokens,
            "outputTokens": given.outputTokens,
            "totalTokens": given.inputTokens + given.outputTokens,
        }
    read_tokens = _estimate_tokens(read_chars)
    write_tokens = _estimate_tokens(read_chars + write_chars) - read_tokens
    input_tokens = max(0, _estimate_tokens(prompt.input_chars) - read_tokens - write_tokens)
    usage = {
        "inputTokens": input_tokens,
        "outputTokens": answer.output_tokens,
        "totalTokens": input_tokens + answer.output_tokens + read_tokens + write_tokens,
    }
    if prompt.cache_points:
        usage["cacheReadInputTokens"] = read_tokens
        usage["cacheWriteInputTokens"] = write_tokens
    return usage


# --------------------------------------------------------------------------------------------------
# Wire helpers
# --------------------------------------------------------------------------------------------------
def _client_gone(connection: Any) -> bool:
    """Whether the caller has closed its connection (a client read timeout, a killed process).

    A closed peer makes the socket readable with nothing to read (EOF); a caller waiting for its answer
    sends nothing more. Without a socket (an in-process WSGI client) the caller is never gone.
    """
    if not isinstance(connection, socket.socket):
        return False
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BedrockError("ValidationException", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise _BedrockError("ValidationException", "The request body must be a JSON object.")
    return body


def _invalid(message: str) -> _BedrockError:
    return _BedrockError("ValidationException", message)


def _member(block: object, where: str, allowed: frozenset[str] | None = None) -> str:
    """The one member set in a union structure (a content block, a tool, a tool choice)."""
    if not isinstance(block, dict) or len(block) != 1:
        raise _invalid(f"Each {where} entry must be an object with exactly one member set.")
    (key,) = block
    if allowed is not None and key not in allowed:
        raise _invalid(f"Unsupported member in {where}; expected one of: {', '.join(sorted(allowed))}.")
    return str(key)


class _Prefix:
    """Tools, then system, then messages, as the model reads them: the cachePoints along the way."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.chars = 0
        self.points: list[_CachePoint] = []

    def add(self, part: str, block: object, chars: int) -> None:
        self._hash.update(f"{part}\0{json.dumps(block, sort_keys=True)}\0".encode())
        self.chars += chars

    def cache_point(self, block: object, where: str) -> None:
        if not isinstance(block, dict) or block.get("type") != "default":
            raise _invalid(f"The cachePoint in {where} must have type default.")
        ttl = block.get("ttl", "5m")
        if ttl not in _CACHE_TTL_SECONDS or set(block) - {"type", "ttl"}:
            raise _invalid(f"The cachePoint in {where} is invalid: ttl must be 5m or 1h.")
        self.points.append(_CachePoint(self._hash.copy().hexdigest(), self.chars, str(ttl)))
        if len(self.points) > _MAX_CACHE_POINTS:
            raise _invalid(f"A maximum of {_MAX_CACHE_POINTS} cachePoint blocks may be provided.")


_TOOL_MEMBERS = frozenset({"toolSpec", "cachePoint"})
_CHOICE_MEMBERS = frozenset({"auto", "any", "tool"})
_SYSTEM_MEMBERS = frozenset({"text", "guardContent", "cachePoint"})


def _parse_tool_config(raw: object, prefix: _Prefix) -> _ToolChoice | None:
    """Validate ``toolConfig`` like the service; returns the tool choice (None without tools)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _invalid("toolConfig must be an object.")
    tools = raw.get("tools")
    if not isinstance(tools, list) or not tools:
        raise _invalid("toolConfig.tools must be a non-empty list.")
    names: list[str] = []
    for index, tool in enumerate(tools):
        if _member(tool, "toolConfig.tools", _TOOL_MEMBERS) == "cachePoint":
            prefix.cache_point(tool["cachePoint"], "toolConfig.tools")
            continue
        spec = tool["toolSpec"]
        where = f"toolConfig.tools.{index}.toolSpec"
        if not isinstance(spec, dict):
            raise _invalid(f"{where} must be an object.")
        name = spec.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            raise _invalid(f"{where}.name must match [a-zA-Z0-9_-]{{1,64}}.")
        description = spec.get("description")
        if description is not None and (not isinstance(description, str) or not description):
            raise _invalid(f"{where}.description must be a non-empty string.")
        schema = spec.get("inputSchema")
        if not isinstance(schema, dict) or set(schema) != {"json"} or not isinstance(schema["json"], dict):
            raise _invalid(f"{where}.inputSchema must hold a JSON schema object in its json member.")
        if schema["json"].get("type") != "object":
            raise _invalid(
                f"The value at {where}.inputSchema.json.type must be one of the following: object."
            )
        names.append(name)
        prefix.add("tool", spec, len(json.dumps(spec)))
    if not names:
        raise _invalid("toolConfig.tools must declare at least one toolSpec.")
    if len(set(names)) != len(names):
        raise _invalid("Tool names must be unique.")
    choice = raw.get("toolChoice")
    if choice is None:
        return _ToolChoice("auto", names[0])
    kind = _member(choice, "toolConfig.toolChoice", _CHOICE_MEMBERS)
    value = choice[kind]
    if not isinstance(value, dict):
        raise _invalid(f"toolConfig.toolChoice.{kind} must be an object.")
    if kind == "tool":
        name = value.get("name")
        if not isinstance(name, str) or name not in names:
            raise _invalid("toolConfig.toolChoice.tool.name must name a tool in toolConfig.tools.")
        return _ToolChoice("tool", name)
    return _ToolChoice("any" if kind == "any" else "auto", names[0])


def _parse_system(raw: object, prefix: _Prefix) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, list):
        raise _invalid("The system field must be a list of content blocks.")
    texts: list[str] = []
    for block in raw:
        member = _member(block, "system", _SYSTEM_MEMBERS)
        if member == "cachePoint":
            prefix.cache_point(block["cachePoint"], "system")
        elif member == "text":
            text = block["text"]
            if not isinstance(text, str) or not text:
                raise _invalid("A system text block must be a non-empty string.")
            texts.append(text)
            prefix.add("system", block, len(text))
        else:
            prefix.add("system", block, len(json.dumps(block)))
    return "\n".join(texts)


def _tool_result_texts(result: object) -> list[str]:
    content = result.get("content") if isinstance(result, dict) else None
    if not isinstance(content, list):
        return []
    return [
        block["text"] for block in content if isinstance(block, dict) and isinstance(block.get("text"), str)
    ]


def _parse_messages(messages: list[dict[str, Any]], prefix: _Prefix) -> tuple[list[str], bool]:
    """The text of each user turn, and whether the conversation holds toolUse / toolResult blocks."""
    user_texts: list[str] = []
    tool_blocks = False
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            raise _invalid("Each message must have a content list.")
        role = str(message.get("role"))
        texts: list[str] = []
        for block in content:
            member = _member(block, "message content")
            if member == "cachePoint":
                prefix.cache_point(block["cachePoint"], "messages")
                continue
            if member == "text":
                if not isinstance(block["text"], str):
                    raise _invalid("A text content block must be a string.")
                texts.append(block["text"])
                prefix.add(role, block, len(block["text"]))
                continue
            if member in ("toolUse", "toolResult"):
                tool_blocks = True
                if member == "toolResult":
                    texts.extend(_tool_result_texts(block["toolResult"]))
            prefix.add(role, block, len(json.dumps(block)))
        if role == "user":
            user_texts.append("\n".join(texts))
    return user_texts, tool_blocks


def _check_guardrail(raw: object) -> None:
    """Validate ``guardrailConfig`` (the local model applies no guardrail)."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise _invalid("guardrailConfig must be an object.")
    identifier, version = raw.get("guardrailIdentifier"), raw.get("guardrailVersion")
    if not isinstance(identifier, str) or not _GUARDRAIL_ID.fullmatch(identifier):
        raise _invalid("guardrailConfig.guardrailIdentifier must be a guardrail id or ARN.")
    if not isinstance(version, str) or not _GUARDRAIL_VERSION.fullmatch(version):
        raise _invalid("guardrailConfig.guardrailVersion must be a version number or DRAFT.")
    trace = raw.get("trace")
    if trace is not None and trace not in _GUARDRAIL_TRACE:
        raise _invalid("guardrailConfig.trace must be enabled, disabled or enabled_full.")


def _parse_converse(request: Request) -> _Prompt:
    """Read the parts of a Converse request this model uses; reject malformed ones like the service."""
    body = _json_object(request)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("The messages field must be a non-empty list.")
    if not all(isinstance(message, dict) for message in messages):
        raise _invalid("Each message must be an object.")
    if messages[-1].get("role") != "user":
        raise _invalid("A conversation must end with a user message.")
    prefix = _Prefix()  # the model reads tools, then system, then messages
    tool = _parse_tool_config(body.get("toolConfig"), prefix)
    system = _parse_system(body.get("system"), prefix)
    user_messages, tool_blocks = _parse_messages(messages, prefix)
    if tool_blocks and tool is None:
        raise _invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    _check_guardrail(body.get("guardrailConfig"))
    user_text = user_messages[-1]
    if not user_text.strip():
        raise _invalid("The last user message must contain text content.")
    if not carries_report(user_text):
        # A multi-turn repair conversation may carry the report in an earlier user turn.
        user_text = next((text for text in reversed(user_messages) if carries_report(text)), user_text)
    inference = body.get("inferenceConfig")
    max_tokens = inference.get("maxTokens") if isinstance(inference, dict) else None
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise _invalid("inferenceConfig.maxTokens must be a positive integer.")
    return _Prompt(
        system=system,
        user_text=user_text,
        conversation="\n".join(user_messages),
        input_chars=prefix.chars,
        max_tokens=max_tokens,
        tool=tool,
        cache_points=tuple(prefix.points),
    )


def _json_response(body: Mapping[str, Any], status: int = 200, request_id: str | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["x-amzn-RequestId"] = request_id or str(uuid.uuid4())
    return response


def _invalid_body(exc: ValidationError, message: str) -> Response:
    """A 400 ValidationException listing where an admin body is wrong (never the values it holds)."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return _error_response("ValidationException", message, extra={"errors": json.loads(json.dumps(errors))})


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
    parser.add_argument(
        "--context-tokens",
        type=int,
        help=f"context window in tokens (default: ${CONTEXT_TOKENS_ENV}, else {DEFAULT_CONTEXT_TOKENS})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        faults = FaultSettings.model_validate_json(args.faults) if args.faults else FaultSettings.from_env()
    except ValidationError as exc:
        parser.error(f"invalid fault settings: {exc}")
    if args.context_tokens is not None and args.context_tokens < 1:
        parser.error("--context-tokens must be a positive integer")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Explicit handlers: a shell starting us in the background leaves SIGINT ignored.
        signal.signal(signum, lambda *_: stop.set())
    bedrock = LocalBedrock(args.host, args.port, faults, args.context_tokens).start()
    print(f"local bedrock runtime listening on {bedrock.url}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        bedrock.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
