"""Specs for ``medsum.modelfamily``: which family a model id, inference-profile id or ARN belongs to, and
the table of families in docs/deploy.md ("Choosing a model"), which must say what the code does."""

from __future__ import annotations

import re
from typing import Any

import pytest
from medsum.modelfamily import PROFILE_PREFIXES, ModelFamily, OutputMode, base_model_id, families, family_for
from medsum_local.template import load_template

from tests.support.events import ROOT

DOCS = ROOT / "docs" / "deploy.md"
TABLE_HEADER = "| Family | Example model ids | Output |"
OUTPUT_LABELS = {
    OutputMode.TOOL: "forced tool",
    OutputMode.ANY_TOOL: "tool with `any`",
    OutputMode.PROMPT_JSON: "prompt JSON",
}

HAIKU_45 = "anthropic.claude-haiku-4-5-20251001-v1:0"

# (model id as configured, its base model id, its family)
MODEL_IDS = [
    (HAIKU_45, HAIKU_45, "anthropic.claude"),
    *((f"{prefix}.{HAIKU_45}", HAIKU_45, "anthropic.claude") for prefix in PROFILE_PREFIXES),
    (
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "anthropic.claude",
    ),
    (
        "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        "anthropic.claude",
    ),
    (
        "anthropic.claude-opus-4-1-20250805-v1:0",
        "anthropic.claude-opus-4-1-20250805-v1:0",
        "anthropic.claude",
    ),
    (
        "anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3",
    ),
    (
        "apac.anthropic.claude-3-5-sonnet-20241022-v2:0",
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "anthropic.claude-3",
    ),
    ("anthropic.claude-v2:1", "anthropic.claude-v2:1", "anthropic.claude-2"),
    ("amazon.nova-micro-v1:0", "amazon.nova-micro-v1:0", "amazon.nova-micro"),
    ("us.amazon.nova-premier-v1:0", "amazon.nova-premier-v1:0", "amazon.nova-premier"),
    ("jp.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0", "amazon.nova"),
    ("amazon.titan-text-premier-v1:0", "amazon.titan-text-premier-v1:0", "amazon.titan-text-premier"),
    ("amazon.titan-text-express-v1", "amazon.titan-text-express-v1", "amazon.titan"),
    ("mistral.mistral-large-2407-v1:0", "mistral.mistral-large-2407-v1:0", "mistral.mistral-large"),
    ("mistral.mixtral-8x7b-instruct-v0:1", "mistral.mixtral-8x7b-instruct-v0:1", "mistral.instruct"),
    ("us.mistral.pixtral-large-2502-v1:0", "mistral.pixtral-large-2502-v1:0", "mistral"),
    ("meta.llama3-70b-instruct-v1:0", "meta.llama3-70b-instruct-v1:0", "meta.llama3"),
    ("us.meta.llama3-1-70b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0", "meta.llama"),
    ("cohere.command-r-plus-v1:0", "cohere.command-r-plus-v1:0", "cohere.command-r"),
    ("ai21.jamba-1-5-mini-v1:0", "ai21.jamba-1-5-mini-v1:0", "ai21.jamba"),
    ("us.deepseek.r1-v1:0", "deepseek.r1-v1:0", "deepseek"),
    ("openai.gpt-oss-120b-1:0", "openai.gpt-oss-120b-1:0", "openai.gpt-oss"),
    ("qwen.qwen3-32b-v1:0", "qwen.qwen3-32b-v1:0", "qwen"),
    ("writer.palmyra-x5-v1:0", "writer.palmyra-x5-v1:0", "other"),
    ("usa.anthropic.claude-x", "usa.anthropic.claude-x", "other"),  # not a profile prefix
    # ARNs
    (
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
        "amazon.nova-pro-v1:0",
        "amazon.nova",
    ),
    (
        f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.{HAIKU_45}",
        HAIKU_45,
        "anthropic.claude",
    ),
    (
        "arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/"
        "us-gov.anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3",
    ),
    (
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
        "a1b2c3d4e5f6",
        "other",
    ),
    ("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefgh1234", "abcdefgh1234", "other"),
    ("arn:aws:bedrock:us-west-2:123456789012:imported-model/abcd1234efgh", "abcd1234efgh", "other"),
]


@pytest.mark.parametrize(("model_id", "base", "family"), MODEL_IDS, ids=[m for m, _, _ in MODEL_IDS])
def test_every_shape_of_model_id_maps_to_its_base_model_and_family(
    model_id: str, base: str, family: str
) -> None:
    assert base_model_id(model_id) == base
    assert family_for(model_id).name == family
    assert family_for(model_id) == family_for(base)


def test_the_families_are_uniquely_named_and_end_with_the_conservative_default() -> None:
    # Given
    table = families()
    names = [f.name for f in table]

    # Then
    assert len(names) == len(set(names))
    default = table[-1]
    assert default.name == "other"
    assert (default.output, default.prompt_caching, default.system_prompt) == (
        OutputMode.PROMPT_JSON,
        False,
        True,
    )
    for family in table:
        assert 0 < family.max_output_tokens < family.context_tokens, family


# --------------------------------------------------------------------------------------------------------
# docs/deploy.md
# --------------------------------------------------------------------------------------------------------
def _docs_table() -> list[list[str]]:
    lines = DOCS.read_text(encoding="utf-8").splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith(TABLE_HEADER)]
    rows: list[list[str]] = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _row(family: ModelFamily) -> list[str]:
    return [
        OUTPUT_LABELS[family.output],
        "yes" if family.prompt_caching else "no",
        "yes" if family.system_prompt else "no",
        f"{family.context_tokens:,}",
        f"{family.max_output_tokens:,}",
    ]


def test_the_docs_table_of_model_families_is_what_the_code_does() -> None:
    # Given
    rows = _docs_table()

    # Then: one row per family, in the code's order, each column as the code has it
    assert [re.findall(r"`([^`]+)`", row[0])[0] for row in rows] == [f.name for f in families()]
    assert [row[2:] for row in rows] == [_row(f) for f in families()]


def test_the_docs_examples_belong_to_their_row_and_pass_the_template(template: dict[str, Any]) -> None:
    # Given
    pattern = template["Parameters"]["BedrockModelId"]["AllowedPattern"]

    # Then
    for row, family in zip(_docs_table(), families(), strict=True):
        examples = re.findall(r"`([^`]+)`", row[1])
        assert examples, row
        for example in examples:
            assert family_for(example) == family, (example, family.name)
            assert re.fullmatch(pattern, example), example


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")
