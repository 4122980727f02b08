"""Amazon Bedrock (Converse API) implementation of the ``Summarizer`` port.

The adapter makes exactly one call per ``complete``; retries belong to the domain's tenacity policy
(botocore's own retries are disabled for this client, see ``clients.py``). What the request looks like
for a model (forced tool or prompt JSON, prompt caching, system prompt) is decided by its family in
``medsum.modelfamily``, the one place that knows model differences.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from medsum.adapters.clients import client as default_client
from medsum.errors import NonRetryableSummarizerError, RetryableSummarizerError, ThrottledSummarizerError
from medsum.modelfamily import OutputMode
from medsum.ports import ModelReply, ModelRequest, Summarizer

RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "ModelTimeoutException",
        "InternalServerException",
    }
)
# Error codes we name in the report's error; anything else non-retryable is ``model_rejected``.
NON_RETRYABLE_CODES = {
    "ValidationException": "model_validation_error",
    "AccessDeniedException": "model_access_denied",
    "ResourceNotFoundException": "model_not_found",
}
_CONNECTION_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


#: Stop reasons after which the reply must not be used, and the report's error code for each.
BLOCKED_STOP_REASONS = {
    "guardrail_intervened": "model_guardrail_intervened",
    "content_filtered": "model_content_filtered",
}
_CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}


class BedrockSummarizer(Summarizer):
    """Calls ``bedrock-runtime:Converse`` for one model, shaped by its family (``medsum.modelfamily``):
    a forced tool or prompt JSON, a cache point after the fixed prefix, the system prompt in ``system``
    or leading the user message.

    Parameters
    ----------
    model_id:
        Bedrock model id, inference-profile id or ARN.
    max_tokens:
        Upper bound on output tokens when a request does not set its own.
    bedrock_client:
        Optional injected ``bedrock-runtime`` client.
    guardrail:
        ``(identifier, version)`` of a Bedrock guardrail applied to every call, or None.
    """

    def __init__(
        self,
        model_id: str,
        max_tokens: int,
        bedrock_client: Any | None = None,
        guardrail: tuple[str, str] | None = None,
    ) -> None:
        self.model_id = model_id
        self._max_tokens = max_tokens
        self._client = bedrock_client or default_client("bedrock-runtime")
        self._guardrail = guardrail

    def converse_request(self, request: ModelRequest) -> dict[str, Any]:
        """The ``converse`` keyword arguments for ``request`` (public so tests can inspect them)."""
        family = self.family
        user_text = request.user_text
        params: dict[str, Any] = {"modelId": self.model_id}
        if family.system_prompt:
            params["system"] = [{"text": request.system}] + ([_CACHE_POINT] if family.prompt_caching else [])
        else:
            user_text = f"{request.system}\n\n{user_text}"
        params["messages"] = [{"role": "user", "content": [{"text": user_text}]}]
        params["inferenceConfig"] = {"maxTokens": request.max_tokens or self._max_tokens, "temperature": 0.0}
        if request.tool is not None and family.output is not OutputMode.PROMPT_JSON:
            tools: list[dict[str, Any]] = [
                {
                    "toolSpec": {
                        "name": request.tool.name,
                        "description": request.tool.description,
                        "inputSchema": {"json": request.tool.input_schema},
                    }
                }
            ]
            if family.prompt_caching:
                tools.append(_CACHE_POINT)
            choice = (
                {"tool": {"name": request.tool.name}} if family.output is OutputMode.TOOL else {"any": {}}
            )
            params["toolConfig"] = {"tools": tools, "toolChoice": choice}
        if self._guardrail is not None:
            identifier, version = self._guardrail
            params["guardrailConfig"] = {"guardrailIdentifier": identifier, "guardrailVersion": version}
        return params

    def complete(self, request: ModelRequest) -> ModelReply:
        started = time.perf_counter()
        try:
            response = self._client.converse(**self.converse_request(request))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ThrottlingException":
                raise ThrottledSummarizerError(code) from exc
            if code in RETRYABLE_CODES:
                raise RetryableSummarizerError(code) from exc
            raise NonRetryableSummarizerError(
                NON_RETRYABLE_CODES.get(code, "model_rejected"),
                "the model rejected the request",
            ) from exc
        except _CONNECTION_ERRORS as exc:
            raise RetryableSummarizerError(type(exc).__name__) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        stop_reason = str(response.get("stopReason", "end_turn"))
        if stop_reason in BLOCKED_STOP_REASONS:
            raise NonRetryableSummarizerError(
                BLOCKED_STOP_REASONS[stop_reason], "the model's guardrail or content filter blocked the reply"
            )
        content = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block.get("text", "") for block in content)
        tool_input = next(
            (
                block["toolUse"].get("input")
                for block in content
                if "toolUse" in block and isinstance(block["toolUse"].get("input"), dict)
            ),
            None,
        )
        usage = response.get("usage", {})
        return ModelReply(
            text=text,
            input_tokens=int(usage.get("inputTokens", 0)),
            output_tokens=int(usage.get("outputTokens", 0)),
            model_id=self.model_id,
            latency_ms=latency_ms,
            tool_input=tool_input,
            stop_reason=stop_reason,
            cache_read_input_tokens=int(usage.get("cacheReadInputTokens", 0)),
            cache_write_input_tokens=int(usage.get("cacheWriteInputTokens", 0)),
        )
