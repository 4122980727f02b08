"""Converse requests as botocore's bedrock-runtime service model accepts them (Stubber validates every
parameter against the model), for a tool-use family and a prompt-JSON family, and replies mapped back."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from medsum.adapters.bedrock import BedrockSummarizer
from medsum.errors import NonRetryableSummarizerError
from medsum.logic.summarize import SUMMARY_TOOL_NAME, SYSTEM_PROMPT, TOOL_SYSTEM_PROMPT, summary_tool
from medsum.models import ModelSummary
from medsum.ports import ModelRequest

CONTRACT = {
    "summary": "Mild cardiomegaly.",
    "key_findings": [{"text": "Cardiomegaly", "evidence": ["Mild cardiomegaly."]}],
}


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


def response(content: list[dict[str, Any]], stop_reason: str, **usage: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": 900, "outputTokens": 120, "totalTokens": 1020, **usage},
        "metrics": {"latencyMs": 800},
    }


def tool_request() -> ModelRequest:
    return ModelRequest(
        system=TOOL_SYSTEM_PROMPT, user_text="<report>x</report>", tool=summary_tool(), max_tokens=2048
    )


def test_a_tool_family_forces_the_summary_tool_and_caches_the_fixed_prefix(client: Any) -> None:
    # Given a Claude inference profile (forced tool, prompt caching) and a guardrail
    summarizer = BedrockSummarizer(
        "us.anthropic.claude-haiku-4-5-20251001-v1:0", 2048, bedrock_client=client, guardrail=("gr1abc", "3")
    )
    expected = {
        "modelId": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "system": [{"text": TOOL_SYSTEM_PROMPT}, {"cachePoint": {"type": "default"}}],
        "messages": [{"role": "user", "content": [{"text": "<report>x</report>"}]}],
        "inferenceConfig": {"maxTokens": 2048, "temperature": 0.0},
        "toolConfig": {
            "tools": [
                {"toolSpec": {"name": SUMMARY_TOOL_NAME, "description": ANY, "inputSchema": {"json": ANY}}},
                {"cachePoint": {"type": "default"}},
            ],
            "toolChoice": {"tool": {"name": SUMMARY_TOOL_NAME}},
        },
        "guardrailConfig": {"guardrailIdentifier": "gr1abc", "guardrailVersion": "3"},
    }
    tool_use = {"toolUse": {"toolUseId": "tooluse_1", "name": SUMMARY_TOOL_NAME, "input": CONTRACT}}
    with Stubber(client) as stub:
        stub.add_response("converse", response([tool_use], "tool_use", cacheReadInputTokens=700), expected)
        reply = summarizer.complete(tool_request())
        stub.assert_no_pending_responses()
    # Then the structured answer is the tool's input, with the cache usage reported
    assert reply.tool_input == CONTRACT and reply.stop_reason == "tool_use"
    assert reply.cache_read_input_tokens == 700 and reply.input_tokens == 900


def test_the_tool_schema_is_the_contract_without_references() -> None:
    schema = summary_tool().input_schema
    assert "$ref" not in repr(schema) and "$defs" not in schema
    assert set(schema["properties"]) == set(ModelSummary.model_fields)
    item = schema["properties"]["key_findings"]["items"]
    assert {"text", "evidence", "certainty"} <= set(item["properties"])


def test_a_prompt_json_family_sends_no_tool_and_reads_the_text(client: Any) -> None:
    summarizer = BedrockSummarizer("meta.llama3-1-70b-instruct-v1:0", 2048, bedrock_client=client)
    expected = {
        "modelId": "meta.llama3-1-70b-instruct-v1:0",
        "system": [{"text": SYSTEM_PROMPT}],
        "messages": [{"role": "user", "content": [{"text": "<report>x</report>"}]}],
        "inferenceConfig": {"maxTokens": 4096, "temperature": 0.0},
    }
    with Stubber(client) as stub:
        stub.add_response("converse", response([{"text": '{"summary": "ok"}'}], "end_turn"), expected)
        reply = summarizer.complete(
            ModelRequest(
                system=SYSTEM_PROMPT, user_text="<report>x</report>", tool=summary_tool(), max_tokens=4096
            )
        )
    assert reply.tool_input is None and reply.text == '{"summary": "ok"}'


def test_a_family_without_system_prompts_gets_the_instructions_in_the_user_message(client: Any) -> None:
    summarizer = BedrockSummarizer("amazon.titan-text-express-v1", 1024, bedrock_client=client)
    expected = {
        "modelId": "amazon.titan-text-express-v1",
        "messages": [{"role": "user", "content": [{"text": f"{SYSTEM_PROMPT}\n\n<report>x</report>"}]}],
        "inferenceConfig": {"maxTokens": 1024, "temperature": 0.0},
    }
    with Stubber(client) as stub:
        stub.add_response("converse", response([{"text": "{}"}], "end_turn"), expected)
        summarizer.complete(ModelRequest(system=SYSTEM_PROMPT, user_text="<report>x</report>"))


def test_mistral_large_must_call_a_tool_and_is_offered_only_ours(client: Any) -> None:
    summarizer = BedrockSummarizer("mistral.mistral-large-2407-v1:0", 2048, bedrock_client=client)
    params = summarizer.converse_request(tool_request())
    assert params["toolConfig"]["toolChoice"] == {"any": {}}
    assert [tool["toolSpec"]["name"] for tool in params["toolConfig"]["tools"]] == [SUMMARY_TOOL_NAME]
    with Stubber(client) as stub:
        stub.add_response("converse", response([{"text": "{}"}], "end_turn"), params)
        summarizer.complete(tool_request())


@pytest.mark.parametrize(
    ("stop_reason", "code"),
    [("guardrail_intervened", "model_guardrail_intervened"), ("content_filtered", "model_content_filtered")],
)
def test_a_blocked_reply_is_a_non_retryable_error(client: Any, stop_reason: str, code: str) -> None:
    summarizer = BedrockSummarizer("amazon.nova-lite-v1:0", 2048, bedrock_client=client)
    with Stubber(client) as stub:
        stub.add_response("converse", response([{"text": "Sorry."}], stop_reason))
        with pytest.raises(NonRetryableSummarizerError) as raised:
            summarizer.complete(tool_request())
    assert raised.value.code == code


def test_a_truncated_reply_is_reported_as_such(client: Any) -> None:
    summarizer = BedrockSummarizer("amazon.nova-lite-v1:0", 2048, bedrock_client=client)
    partial = {"toolUse": {"toolUseId": "t", "name": SUMMARY_TOOL_NAME, "input": {"summary": "Mild"}}}
    with Stubber(client) as stub:
        stub.add_response("converse", response([partial], "max_tokens"))
        reply = summarizer.complete(tool_request())
    assert reply.stop_reason == "max_tokens"
