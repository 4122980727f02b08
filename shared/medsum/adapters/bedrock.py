"""Amazon Bedrock (Converse API) implementation of the ``Summarizer`` port.

The adapter makes exactly one call per ``complete``; retries belong to the domain's tenacity policy
(botocore's own retries are disabled for this client, see ``clients.py``).
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
from medsum.ports import ModelReply, Summarizer

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


class BedrockSummarizer(Summarizer):
    """Calls ``bedrock-runtime:Converse`` for one model.

    Parameters
    ----------
    model_id:
        Bedrock model id or inference profile id.
    max_tokens:
        Upper bound on output tokens.
    bedrock_client:
        Optional injected ``bedrock-runtime`` client.
    """

    def __init__(self, model_id: str, max_tokens: int, bedrock_client: Any | None = None) -> None:
        self._model_id = model_id
        self._max_tokens = max_tokens
        self._client = bedrock_client or default_client("bedrock-runtime")

    def complete(self, system: str, messages: list[dict[str, str]]) -> ModelReply:
        started = time.perf_counter()
        try:
            response = self._client.converse(
                modelId=self._model_id,
                system=[{"text": system}],
                messages=[{"role": m["role"], "content": [{"text": m["text"]}]} for m in messages],
                inferenceConfig={"maxTokens": self._max_tokens, "temperature": 0.0},
            )
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
        content = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block.get("text", "") for block in content)
        usage = response.get("usage", {})
        return ModelReply(
            text=text,
            input_tokens=int(usage.get("inputTokens", 0)),
            output_tokens=int(usage.get("outputTokens", 0)),
            model_id=self._model_id,
            latency_ms=latency_ms,
        )
