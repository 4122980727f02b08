"""What the code does for each Bedrock model family: the one place that knows model differences.

``BedrockModelId`` may be any Bedrock model id (``anthropic.claude-haiku-4-5-20251001-v1:0``), an
inference-profile id (``us.``/``eu.``/``apac.``/``global.``… prefixes) or an ARN of either. The family
decides:

- **output**: how the summary contract is asked for. ``tool`` forces one tool whose input schema is the
  contract (Converse ``toolChoice.tool``); ``any_tool`` offers only that tool with ``toolChoice.any`` (the
  model must call a tool, and there is one); ``prompt_json`` asks for the JSON in the prompt and parses
  the text (models whose Converse tool use cannot be forced).
- **prompt_caching**: whether a ``cachePoint`` follows the fixed system prompt and tool schema.
- **system_prompt**: whether Converse accepts a ``system`` block (Titan and Mistral 7B/Mixtral do not;
  the instructions then lead the user message).
- **context_tokens** / **max_output_tokens**: the input budget of one call (long reports above it are
  summarized by sections) and the room a truncated reply is retried with.

An unknown family (new providers, application inference profiles whose ARN names no model) gets the
conservative default: prompt JSON, a system prompt, no caching, a 32k context.

docs/deploy.md carries this table for operators; tests keep the two in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class OutputMode(StrEnum):
    TOOL = "tool"
    ANY_TOOL = "any_tool"
    PROMPT_JSON = "prompt_json"


@dataclass(frozen=True)
class ModelFamily:
    """How medsum drives one family of Bedrock models (see the module docstring)."""

    name: str
    output: OutputMode
    prompt_caching: bool
    context_tokens: int
    max_output_tokens: int
    system_prompt: bool = True


#: Geographic prefixes of cross-region inference profiles (``us.anthropic…``, ``global.anthropic…``).
PROFILE_PREFIXES: Final = ("us", "eu", "apac", "global", "us-gov", "jp", "au", "ca")

_DEFAULT: Final = ModelFamily(
    "other", OutputMode.PROMPT_JSON, prompt_caching=False, context_tokens=32_000, max_output_tokens=4_096
)

# (pattern on the base model id, family); the first match wins, so specific entries come first.
_FAMILIES: Final[tuple[tuple[re.Pattern[str], ModelFamily], ...]] = tuple(
    (re.compile(pattern), family)
    for pattern, family in (
        # Claude 3.5 Haiku, 3.7 Sonnet and every Claude 4+ model cache prompts; Claude 3 / 3.5 Sonnet do not.
        (
            r"^anthropic\.claude-(3-5-haiku|3-7-|(sonnet|opus|haiku)-[4-9])",
            ModelFamily("anthropic.claude", OutputMode.TOOL, True, 200_000, 16_384),
        ),
        (
            r"^anthropic\.claude-3",
            ModelFamily("anthropic.claude-3", OutputMode.TOOL, False, 200_000, 4_096),
        ),
        (
            r"^anthropic\.",  # Claude 2.x / Instant: no tool use
            ModelFamily("anthropic.claude-2", OutputMode.PROMPT_JSON, False, 100_000, 4_096),
        ),
        (
            r"^amazon\.nova-micro",
            ModelFamily("amazon.nova-micro", OutputMode.TOOL, True, 128_000, 10_000),
        ),
        (
            r"^amazon\.nova-premier",
            ModelFamily("amazon.nova-premier", OutputMode.TOOL, True, 1_000_000, 32_000),
        ),
        (
            r"^amazon\.nova-",
            ModelFamily("amazon.nova", OutputMode.TOOL, True, 300_000, 10_000),
        ),
        (
            r"^amazon\.titan-text-premier",
            ModelFamily("amazon.titan-text-premier", OutputMode.PROMPT_JSON, False, 32_000, 3_072, False),
        ),
        (
            r"^amazon\.titan-",
            ModelFamily("amazon.titan", OutputMode.PROMPT_JSON, False, 8_000, 4_096, False),
        ),
        (
            r"^mistral\.mistral-large",
            ModelFamily("mistral.mistral-large", OutputMode.ANY_TOOL, False, 128_000, 8_192),
        ),
        (
            r"^mistral\.(mistral-7b|mixtral-8x7b)",
            ModelFamily("mistral.instruct", OutputMode.PROMPT_JSON, False, 32_000, 8_192, False),
        ),
        (
            r"^mistral\.",
            ModelFamily("mistral", OutputMode.PROMPT_JSON, False, 128_000, 8_192),
        ),
        (
            r"^meta\.llama3-(8b|70b)-",
            ModelFamily("meta.llama3", OutputMode.PROMPT_JSON, False, 8_000, 2_048),
        ),
        (
            r"^meta\.llama",
            ModelFamily("meta.llama", OutputMode.PROMPT_JSON, False, 128_000, 4_096),
        ),
        (
            r"^cohere\.command-r",
            ModelFamily("cohere.command-r", OutputMode.PROMPT_JSON, False, 128_000, 4_096),
        ),
        (
            r"^ai21\.jamba",
            ModelFamily("ai21.jamba", OutputMode.PROMPT_JSON, False, 256_000, 4_096),
        ),
        (
            r"^deepseek\.",
            ModelFamily("deepseek", OutputMode.PROMPT_JSON, False, 128_000, 8_192),
        ),
        (
            r"^openai\.",
            ModelFamily("openai.gpt-oss", OutputMode.PROMPT_JSON, False, 128_000, 8_192),
        ),
        (
            r"^qwen\.",
            ModelFamily("qwen", OutputMode.PROMPT_JSON, False, 128_000, 8_192),
        ),
    )
)

_ARN = re.compile(
    r"^arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d{0,12}:"
    r"(?P<kind>foundation-model|inference-profile|application-inference-profile|provisioned-model|"
    r"custom-model|imported-model)/(?P<id>.+)$"
)


def base_model_id(model_id: str) -> str:
    """The foundation model id behind a model id, inference-profile id or ARN.

    >>> base_model_id("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0")
    'amazon.nova-lite-v1:0'
    >>> base_model_id("global.anthropic.claude-haiku-4-5-20251001-v1:0")
    'anthropic.claude-haiku-4-5-20251001-v1:0'
    """
    match = _ARN.match(model_id)
    candidate = match.group("id") if match else model_id
    head, dot, rest = candidate.partition(".")
    if dot and head in PROFILE_PREFIXES:
        return rest
    return candidate


def family_for(model_id: str) -> ModelFamily:
    """The family of ``model_id`` (any form ``base_model_id`` accepts); unknown ids get the default."""
    base = base_model_id(model_id)
    for pattern, family in _FAMILIES:
        if pattern.search(base):
            return family
    return _DEFAULT


def families() -> list[ModelFamily]:
    """Every known family and the default, in table order (for docs and tests)."""
    return [family for _, family in _FAMILIES] + [_DEFAULT]
