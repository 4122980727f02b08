"""Specs for the local Bedrock Runtime endpoint, driven through an unchanged boto3 client.

The server listens on 127.0.0.1 only; nothing here talks to AWS (explicit endpoint and dummy keys).
Reports are synthetic.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import botocore.session
import pytest
import requests
from botocore.client import BaseClient
from botocore.config import Config
from medsum.models import ModelSummary
from medsum_local.bedrock import (
    CONTEXT_TOKENS_ENV,
    DEFAULT_CONTEXT_TOKENS,
    ERROR_STATUS,
    FAULTS_ENV,
    INPUT_TOO_LONG,
    FaultSettings,
    LocalBedrock,
    report_digest,
)
from medsum_local.clinical_model import summarize_report
from medsum_local.testing import wait_for

# Real sockets on the loopback interface (harmless if pytest-socket is not restricting them).
pytestmark = pytest.mark.enable_socket

MODEL_ID = "amazon.titan-text-express-v1"
REPORT = (
    "FINDINGS: Mild cardiomegaly. Small left pleural effusion. No pneumothorax.\n"
    "IMPRESSION: Cardiomegaly with small left effusion. Recommend follow-up radiograph in 4 weeks."
)
SYSTEM = "You summarize clinical reports. Answer with one JSON object."


def prompt(report: str = REPORT) -> str:
    return f"Summarize this report.\n<report>\n{report}\n</report>"


def converse(
    client: BaseClient, report: str = REPORT, model_id: str = MODEL_ID, **kwargs: Any
) -> dict[str, Any]:
    response: dict[str, Any] = client.converse(
        modelId=model_id,
        system=[{"text": SYSTEM}],
        messages=[{"role": "user", "content": [{"text": prompt(report)}]}],
        inferenceConfig={"maxTokens": 2000, "temperature": 0.0},
        **kwargs,
    )
    return response


@pytest.fixture(scope="module")
def bedrock() -> Iterator[LocalBedrock]:
    server = LocalBedrock(faults=FaultSettings()).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean_state(bedrock: LocalBedrock) -> None:
    bedrock.set_faults(FaultSettings())
    bedrock.reset()
    bedrock.clear_replies()
    bedrock.clear_prompt_cache()


@pytest.fixture(scope="module")
def client(bedrock: LocalBedrock) -> BaseClient:
    # One attempt only: the tests count calls, and retries belong to the worker (tenacity), not here.
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=bedrock.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOCALTEST",
        aws_secret_access_key="local-test-secret",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=10, connect_timeout=2
        ),
    )


# --------------------------------------------------------------------------------------------------
# Converse
# --------------------------------------------------------------------------------------------------
def test_converse_returns_the_contract_json(client: BaseClient) -> None:
    # When
    response = converse(client)

    # Then the envelope has the real shape
    assert response["stopReason"] == "end_turn"
    message = response["output"]["message"]
    assert message["role"] == "assistant"
    usage = response["usage"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert isinstance(response["metrics"]["latencyMs"], int)
    # And the text is the model's JSON, valid for the worker, quoting the report verbatim
    summary = json.loads(message["content"][0]["text"])
    ModelSummary.model_validate(summary)
    assert summary == summarize_report(REPORT)
    for item in summary["key_findings"] + summary["follow_up"]:
        assert all(quote in REPORT for quote in item["evidence"])
    assert "pneumothorax" not in json.dumps(summary["key_findings"]).lower()


def test_the_worker_summarizer_grounds_every_quote(client: BaseClient, bedrock: LocalBedrock) -> None:
    # Given the worker's own adapter and summarization logic, pointed at the local endpoint
    from medsum.adapters.bedrock import BedrockSummarizer
    from medsum.logic.summarize import RetryPolicy, summarize_text
    from medsum.models import ReportType

    summarizer = BedrockSummarizer(MODEL_ID, max_tokens=2048, bedrock_client=client)

    # When a report is summarized end to end (Titan: prompt JSON, the instructions in the user message)
    result = summarize_text(REPORT, ReportType.RADIOLOGY, summarizer, RetryPolicy(3, 10.0))

    # Then one model call sufficed, every quote became a span into the report, nothing was dropped
    verification = result.summary.verification
    assert verification is not None and verification.quotes_not_found == 0
    assert verification.items_kept == verification.items_checked > 0
    assert result.model_calls == 1
    assert bedrock.stats()["calls_by_digest"] == {report_digest(REPORT): 1}
    findings = result.summary.key_findings
    assert [REPORT[span.start : span.end] for span in findings[0].evidence] == ["Mild cardiomegaly"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ThrottlingException", "ThrottledSummarizerError"),
        ("ServiceUnavailableException", "RetryableSummarizerError"),
        ("ValidationException", "NonRetryableSummarizerError"),
    ],
)
def test_the_worker_adapter_tells_a_throttle_from_other_errors(
    client: BaseClient, bedrock: LocalBedrock, code: str, expected: str
) -> None:
    # Given the worker's adapter and a model failing every call with ``code``
    from medsum.adapters.bedrock import BedrockSummarizer
    from medsum.errors import SummarizerError
    from medsum.ports import ModelRequest

    bedrock.set_faults({"error_rate": 1.0, "error_code": code})
    summarizer = BedrockSummarizer(MODEL_ID, max_tokens=256, bedrock_client=client)
    # When it is called, Then the error's type says whether it is a throttle (retried on time only)
    with pytest.raises(SummarizerError) as caught:
        summarizer.complete(ModelRequest(system="s", user_text="FINDINGS: Clear lungs."))
    assert type(caught.value).__name__ == expected


def test_model_ids_with_slashes_and_colons_are_accepted(client: BaseClient) -> None:
    for model_id in (
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1",
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
    ):
        assert converse(client, model_id=model_id)["stopReason"] == "end_turn"


def test_repair_conversation_gets_a_fresh_summary(client: BaseClient) -> None:
    # Given a multi-turn repair: the report in the first turn, the bad reply, then the repair request
    messages = [
        {"role": "user", "content": [{"text": prompt()}]},
        {"role": "assistant", "content": [{"text": '{"summary": '}]},
        {"role": "user", "content": [{"text": 'Fix it.\n<previous_reply>{"summary": </previous_reply>'}]},
    ]

    response = client.converse(modelId=MODEL_ID, messages=messages)

    assert json.loads(response["output"]["message"]["content"][0]["text"]) == summarize_report(REPORT)


def test_small_token_budget_stops_mid_answer(client: BaseClient) -> None:
    response = client.converse(
        modelId=MODEL_ID,
        messages=[{"role": "user", "content": [{"text": prompt()}]}],
        inferenceConfig={"maxTokens": 5},
    )

    assert response["stopReason"] == "max_tokens"
    assert len(response["output"]["message"]["content"][0]["text"]) == 20
    assert response["usage"]["outputTokens"] == 5


def test_modest_token_budget_gets_a_shorter_but_valid_answer(client: BaseClient) -> None:
    full = json.dumps(summarize_report(REPORT))
    budget = len(full) // 4 - 20  # a little short of the full answer

    response = client.converse(
        modelId=MODEL_ID,
        messages=[{"role": "user", "content": [{"text": prompt()}]}],
        inferenceConfig={"maxTokens": budget},
    )

    text = response["output"]["message"]["content"][0]["text"]
    assert response["stopReason"] == "end_turn"
    assert len(text) <= budget * 4 < len(full)
    ModelSummary.model_validate(json.loads(text))


def test_malformed_conversation_is_a_validation_exception(client: BaseClient, bedrock: LocalBedrock) -> None:
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId=MODEL_ID, messages=[{"role": "assistant", "content": [{"text": "hi"}]}])

    assert bedrock.stats()["errors_by_code"] == {"ValidationException": 1}


# --------------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", sorted(ERROR_STATUS))
def test_each_fault_code_raises_the_modeled_exception(
    client: BaseClient, bedrock: LocalBedrock, code: str
) -> None:
    # Given every call fails with this code
    bedrock.set_faults({"error_rate": 1.0, "error_code": code})

    # When / Then botocore raises its modeled exception class, with the service's status code
    with pytest.raises(getattr(client.exceptions, code)) as caught:
        converse(client)
    error = caught.value.response
    assert error["Error"]["Code"] == code
    assert error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == ERROR_STATUS[code]
    assert "cardiomegaly" not in str(caught.value).lower()  # no report text in errors


def test_status_codes_match_the_service_model() -> None:
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    shapes = {shape.name: shape.metadata["error"]["httpStatusCode"] for shape in model.error_shapes}
    assert {code: shapes[code] for code in ERROR_STATUS} == dict(ERROR_STATUS)


def test_throttle_rps_rejects_calls_above_the_rate(client: BaseClient, bedrock: LocalBedrock) -> None:
    # Given one call per second is allowed
    bedrock.set_faults({"throttle_rps": 1})

    # When five calls arrive at once
    outcomes = []
    started = time.monotonic()
    for _ in range(5):
        try:
            converse(client)
            outcomes.append("ok")
        except client.exceptions.ThrottlingException:
            outcomes.append("throttled")
    assert time.monotonic() - started < 1.0, "calls too slow for this test to be meaningful"

    # Then only the first passes, and after a second the bucket has refilled
    assert outcomes == ["ok", "throttled", "throttled", "throttled", "throttled"]
    time.sleep(1.05)
    assert converse(client)["stopReason"] == "end_turn"
    assert bedrock.stats()["errors_by_code"] == {"ThrottlingException": 4}


def test_error_rate_is_deterministic_for_a_seed(client: BaseClient, bedrock: LocalBedrock) -> None:
    def run() -> list[bool]:
        results = []
        for _ in range(30):
            try:
                converse(client)
                results.append(True)
            except client.exceptions.ServiceUnavailableException:
                results.append(False)
        return results

    # Given half the calls fail, seeded
    bedrock.set_faults({"error_rate": 0.5, "error_code": "ServiceUnavailableException", "seed": 42})
    first = run()
    # When the dice are reseeded
    bedrock.reset()
    second = run()

    # Then the same calls fail, and some (not all) did
    assert first == second
    assert 5 < first.count(False) < 25


def test_latency_is_added(client: BaseClient, bedrock: LocalBedrock) -> None:
    bedrock.set_faults({"latency_ms": 250})

    started = time.monotonic()
    response = converse(client)

    assert time.monotonic() - started >= 0.25
    assert response["metrics"]["latencyMs"] >= 250


def test_error_codes_mix_the_failures(client: BaseClient, bedrock: LocalBedrock) -> None:
    # Given every call fails with one of two codes
    bedrock.set_faults(
        {"error_rate": 1.0, "error_codes": ["ThrottlingException", "InternalServerException"], "seed": 7}
    )

    # When twenty calls are made
    raised = []
    for _ in range(20):
        with pytest.raises(client.exceptions.ClientError) as failure:
            converse(client)
        raised.append(failure.value.response["Error"]["Code"])

    # Then both codes occur, with their own status, and nothing else
    assert set(raised) == {"ThrottlingException", "InternalServerException"}
    assert bedrock.stats()["errors_by_code"] == {code: raised.count(code) for code in set(raised)}


def test_slow_replies_are_late_but_delivered(client: BaseClient, bedrock: LocalBedrock) -> None:
    # Given every answered call is slow
    bedrock.set_faults({"slow_rate": 1.0, "slow_latency_ms": 300})

    started = time.monotonic()
    response = converse(client)

    assert time.monotonic() - started >= 0.3
    assert response["metrics"]["latencyMs"] >= 300
    stats = bedrock.stats()
    assert stats["slow_calls"] == 1 and stats["overlong_calls"] == 0
    assert stats["completed_by_digest"] == {report_digest(REPORT): 1}
    assert stats["abandoned_by_digest"] == {}


def test_overlong_reply_abandoned_by_the_client_is_counted_apart(bedrock: LocalBedrock) -> None:
    # Given every answered call takes longer than the client's read timeout
    bedrock.set_faults({"overlong_rate": 1.0, "overlong_latency_ms": 1000})
    impatient = boto3.client(
        "bedrock-runtime",
        endpoint_url=bedrock.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOCALTEST",
        aws_secret_access_key="local-test-secret",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=0.3, connect_timeout=2),
    )

    # When the client gives up
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        converse(impatient)

    # Then the server still completes the call (the model did the work), and counts it as abandoned
    digest = report_digest(REPORT)
    stats = wait_for(lambda: bedrock.stats() if bedrock.stats()["completed_by_digest"] else None)
    assert stats["overlong_calls"] == 1
    assert stats["completed_by_digest"] == {digest: 1}
    assert stats["abandoned_by_digest"] == {digest: 1}


def test_slow_and_overlong_dice_are_seeded(client: BaseClient, bedrock: LocalBedrock) -> None:
    # Given a quarter of the calls slow and a quarter over-long (short latencies: this client waits)
    settings = {
        "slow_rate": 0.25,
        "slow_latency_ms": 1,
        "overlong_rate": 0.25,
        "overlong_latency_ms": 2,
        "seed": 3,
    }

    def run() -> tuple[int, int]:
        bedrock.set_faults(settings)
        bedrock.reset()
        for _ in range(24):
            converse(client)
        stats = bedrock.stats()
        return stats["slow_calls"], stats["overlong_calls"]

    # Then the same seed draws the same calls, and some of each kind
    first = run()
    assert run() == first
    assert first[0] > 0 and first[1] > 0 and sum(first) < 24


def test_stopping_ends_an_injected_latency() -> None:
    # Given a call waiting on a long latency
    server = LocalBedrock(faults={"latency_ms": 60_000}).start()
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOCALTEST",
        aws_secret_access_key="local-test-secret",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30, connect_timeout=2),
    )
    outcome: list[str] = []
    caller = threading.Thread(target=lambda: outcome.append(_outcome(client)), daemon=True)
    caller.start()
    wait_for(lambda: server.stats()["converse_calls"] == 1)

    # When the server stops
    server.stop()
    caller.join(timeout=10)

    # Then the call has its answer long before the latency is up
    assert not caller.is_alive()
    assert outcome == ["ServiceUnavailableException"]


def _outcome(client: BaseClient) -> str:
    try:
        converse(client)
    except client.exceptions.ClientError as exc:
        return str(exc.response["Error"]["Code"])
    except botocore.exceptions.BotoCoreError as exc:
        return type(exc).__name__
    return "ok"


def test_faults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"error_rate": 0.25, "error_code": "ModelTimeoutException"}))

    assert LocalBedrock().faults == FaultSettings(error_rate=0.25, error_code="ModelTimeoutException")
    assert FaultSettings.from_env({}) == FaultSettings()
    with pytest.raises(ValueError, match="error_rate"):
        FaultSettings.from_env({FAULTS_ENV: '{"error_rate": 3}'})


# --------------------------------------------------------------------------------------------------
# Admin routes
# --------------------------------------------------------------------------------------------------
def test_ping(bedrock: LocalBedrock) -> None:
    response = requests.get(f"{bedrock.url}/ping", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_get_and_put_faults(bedrock: LocalBedrock) -> None:
    url = f"{bedrock.url}/_local/faults"
    assert requests.get(url, timeout=5).json() == {
        "error_rate": 0.0,
        "error_code": "ThrottlingException",
        "error_codes": [],
        "throttle_rps": None,
        "latency_ms": 0,
        "slow_rate": 0.0,
        "slow_latency_ms": 0,
        "overlong_rate": 0.0,
        "overlong_latency_ms": 0,
        "seed": 0,
    }

    # When settings are replaced (omitted fields fall back to their defaults)
    response = requests.put(url, json={"error_rate": 0.1, "error_code": "InternalServerException"}, timeout=5)

    assert response.status_code == 200
    assert response.json()["error_code"] == "InternalServerException"
    assert bedrock.faults == FaultSettings(error_rate=0.1, error_code="InternalServerException")
    assert requests.get(url, timeout=5).json() == response.json()


@pytest.mark.parametrize(
    "body",
    [
        {"error_rate": 1.5},
        {"error_rate": -0.1},
        {"error_code": "TeapotException"},
        {"throttle_rps": 0},
        {"latency_ms": -1},
        {"error_codes": ["TeapotException"]},
        {"slow_rate": 0.5},
        {"overlong_rate": 0.1, "overlong_latency_ms": 0},
        {"slow_rate": 0.6, "slow_latency_ms": 10, "overlong_rate": 0.6, "overlong_latency_ms": 10},
        {"unknown": True},
        ["not", "an", "object"],
        "not json",
    ],
)
def test_put_faults_rejects_bad_input(bedrock: LocalBedrock, body: object) -> None:
    url = f"{bedrock.url}/_local/faults"
    data = body if isinstance(body, str) else json.dumps(body)

    response = requests.put(url, data=data, headers={"content-type": "application/json"}, timeout=5)

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"
    assert response.json()["message"]
    assert bedrock.faults == FaultSettings()  # unchanged


def test_stats_count_calls_per_report_and_reset(client: BaseClient, bedrock: LocalBedrock) -> None:
    other = "FINDINGS: Calcified granuloma in the right upper lobe."
    # Given two calls for one report, one for another, and one failing call
    converse(client)
    converse(client)
    converse(client, report=other)
    bedrock.set_faults({"error_rate": 1.0, "error_code": "ModelTimeoutException"})
    with pytest.raises(client.exceptions.ModelTimeoutException):
        converse(client, report=other)

    stats = requests.get(f"{bedrock.url}/_local/stats", timeout=5).json()

    assert stats == {
        "converse_calls": 4,
        "errors": 1,
        "errors_by_code": {"ModelTimeoutException": 1},
        "calls_by_digest": {report_digest(REPORT): 2, report_digest(other): 2},
        "completed_by_digest": {report_digest(REPORT): 2, report_digest(other): 1},
        "abandoned_by_digest": {},
        "scripted_calls": 0,
        "slow_calls": 0,
        "overlong_calls": 0,
        "in_flight": 0,
    }
    # When reset
    reset = requests.post(f"{bedrock.url}/_local/reset", timeout=5)
    # Then all counts are zero
    assert reset.status_code == 200
    assert reset.json() == {
        "converse_calls": 0,
        "errors": 0,
        "errors_by_code": {},
        "calls_by_digest": {},
        "completed_by_digest": {},
        "abandoned_by_digest": {},
        "scripted_calls": 0,
        "slow_calls": 0,
        "overlong_calls": 0,
        "in_flight": 0,
    }


def test_control_routes_answer_their_provider(bedrock: LocalBedrock) -> None:
    # Given a control route added by whoever runs the server (the local stack adds "sandboxes")
    bedrock.add_control_route("things", lambda: {"things": [1, 2]})

    assert requests.get(f"{bedrock.url}/_local/things", timeout=5).json() == {"things": [1, 2]}
    assert requests.get(f"{bedrock.url}/_local/nothing", timeout=5).status_code == 404
    with pytest.raises(ValueError, match="faults"):
        bedrock.add_control_route("faults", dict)


def test_unknown_route_is_404(bedrock: LocalBedrock) -> None:
    response = requests.post(f"{bedrock.url}/model/x/invoke-with-response-stream", timeout=5)

    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"


# --------------------------------------------------------------------------------------------------
# Tool use (what the worker sends to Claude 3+, Nova and Mistral Large)
# --------------------------------------------------------------------------------------------------
TOOL_NAME = "record_summary"


def tool_spec(name: str = TOOL_NAME) -> dict[str, Any]:
    return {
        "toolSpec": {
            "name": name,
            "description": "Record the summary of the report.",
            "inputSchema": {"json": ModelSummary.model_json_schema()},
        }
    }


def tool_config(choice: dict[str, Any] | None = None, *extra_tools: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"tools": [tool_spec(), *extra_tools, {"cachePoint": {"type": "default"}}]}
    if choice is not None:
        config["toolChoice"] = choice
    return config


FORCED = tool_config({"tool": {"name": TOOL_NAME}})


def only_tool_use(response: dict[str, Any]) -> dict[str, Any]:
    content = response["output"]["message"]["content"]
    assert len(content) == 1 and set(content[0]) == {"toolUse"}, content
    tool_use: dict[str, Any] = content[0]["toolUse"]
    return tool_use


def test_forced_tool_answers_a_tool_use_with_the_contract(client: BaseClient) -> None:
    # When the worker forces its tool
    response = converse(client, toolConfig=FORCED)

    # Then the only content block is a call of that tool whose input is the contract object
    assert response["stopReason"] == "tool_use"
    tool_use = only_tool_use(response)
    assert tool_use["name"] == TOOL_NAME
    assert tool_use["toolUseId"].startswith("tooluse_")
    ModelSummary.model_validate(tool_use["input"])
    assert tool_use["input"] == summarize_report(REPORT)
    usage = response["usage"]
    assert usage["outputTokens"] == -(-len(json.dumps(tool_use["input"])) // 4)
    # And each call gets its own id
    assert only_tool_use(converse(client, toolConfig=FORCED))["toolUseId"] != tool_use["toolUseId"]


@pytest.mark.parametrize("choice", [{"any": {}}, {"auto": {}}, None], ids=["any", "auto", "no-choice"])
def test_any_and_auto_call_the_first_tool(client: BaseClient, choice: dict[str, Any] | None) -> None:
    # Given two tools (Mistral Large gets toolChoice any; auto is answered with a tool call too)
    config = tool_config(choice, tool_spec("other_tool"))

    response = converse(client, toolConfig=config)

    assert response["stopReason"] == "tool_use"
    tool_use = only_tool_use(response)
    assert tool_use["name"] == TOOL_NAME
    assert tool_use["input"] == summarize_report(REPORT)


def test_forced_choice_of_the_second_tool_is_honoured(client: BaseClient) -> None:
    config = tool_config({"tool": {"name": "other_tool"}}, tool_spec("other_tool"))

    assert only_tool_use(converse(client, toolConfig=config))["name"] == "other_tool"


def test_prompt_json_request_still_gets_text(client: BaseClient) -> None:
    # A prompt-JSON family sends no toolConfig: the answer is the JSON as text, as before
    response = converse(client)

    content = response["output"]["message"]["content"]
    assert [set(block) for block in content] == [{"text"}]
    assert json.loads(content[0]["text"]) == summarize_report(REPORT)
    assert response["stopReason"] == "end_turn"


def test_request_without_system_reads_instructions_from_the_user_message(client: BaseClient) -> None:
    # Given Titan-style: no system block, the instructions lead the user message
    text = f"{SYSTEM}\n\n{prompt()}"

    response = client.converse(
        modelId=MODEL_ID,
        messages=[{"role": "user", "content": [{"text": text}]}],
        inferenceConfig={"maxTokens": 2000},
    )

    assert json.loads(response["output"]["message"]["content"][0]["text"]) == summarize_report(REPORT)
    assert response["usage"]["inputTokens"] == -(-len(text) // 4)


def test_tool_use_and_tool_result_blocks_are_accepted_with_a_tool_config(client: BaseClient) -> None:
    # Given a repair turn: the model's bad tool call, then a toolResult saying what was wrong
    messages = [
        {"role": "user", "content": [{"text": prompt()}]},
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": TOOL_NAME, "input": {"summary": 1}}}],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "bad"}], "status": "error"}},
                {"text": "Call the tool again with valid input."},
            ],
        },
    ]

    response = client.converse(modelId=MODEL_ID, messages=messages, toolConfig=FORCED)

    assert only_tool_use(response)["input"] == summarize_report(REPORT)
    # Without a toolConfig the service rejects such a conversation
    with pytest.raises(client.exceptions.ValidationException, match="toolConfig"):
        client.converse(modelId=MODEL_ID, messages=messages)


def test_modest_token_budget_shortens_the_tool_input(client: BaseClient) -> None:
    full = json.dumps(summarize_report(REPORT))
    budget = len(full) // 4 - 20  # a little short of the full answer

    response = client.converse(
        modelId=MODEL_ID,
        messages=[{"role": "user", "content": [{"text": prompt()}]}],
        toolConfig=FORCED,
        inferenceConfig={"maxTokens": budget},
    )

    tool_input = only_tool_use(response)["input"]
    assert response["stopReason"] == "tool_use"
    assert len(json.dumps(tool_input)) <= budget * 4 < len(full)
    ModelSummary.model_validate(tool_input)


@pytest.mark.parametrize("keys", [[], ["summary"]], ids=["not-even-the-summary", "summary-only"])
def test_tiny_token_budget_cuts_the_tool_call(client: BaseClient, keys: list[str]) -> None:
    # When even the bare summary (with its empty lists) does not fit the budget
    summary = summarize_report(REPORT)["summary"]
    budget = -(-len(json.dumps({"summary": summary})) // 4) if keys else 2
    response = client.converse(
        modelId=MODEL_ID,
        messages=[{"role": "user", "content": [{"text": prompt()}]}],
        toolConfig=FORCED,
        inferenceConfig={"maxTokens": budget},
    )

    # Then the call is cut: the input has only the keys completed, and the whole budget was spent
    assert response["stopReason"] == "max_tokens"
    tool_input = only_tool_use(response)["input"]
    assert list(tool_input) == keys
    assert tool_input == {key: summarize_report(REPORT)[key] for key in keys}  # type: ignore[literal-required]
    assert response["usage"]["outputTokens"] == budget


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (tool_config({"tool": {"name": "undeclared"}}), "must name a tool"),
        ({"tools": [tool_spec(), tool_spec()]}, "unique"),
        ({"tools": [{"cachePoint": {"type": "default"}}]}, "at least one toolSpec"),
        ({"tools": [tool_spec("record summary")]}, "name must match"),
        (
            {"tools": [{"toolSpec": {"name": TOOL_NAME, "inputSchema": {"json": {"type": "array"}}}}]},
            "must be one of the following: object",
        ),
    ],
    ids=["undeclared-tool", "duplicate-names", "no-tool-spec", "bad-name", "schema-not-object"],
)
def test_invalid_tool_config_is_a_validation_exception(
    client: BaseClient, bedrock: LocalBedrock, config: dict[str, Any], problem: str
) -> None:
    with pytest.raises(client.exceptions.ValidationException, match=problem):
        converse(client, toolConfig=config)

    assert bedrock.stats()["errors_by_code"] == {"ValidationException": 1}


@pytest.mark.parametrize(
    "fields",
    [
        {"toolConfig": {"tools": []}},
        {"toolConfig": {"tools": [tool_spec()], "toolChoice": {"any": {}, "auto": {}}}},
        {"toolConfig": {"tools": [tool_spec()], "toolChoice": {"required": {}}}},
        {"toolConfig": {"tools": [{"toolSpec": {"name": TOOL_NAME}}]}},
        {"toolConfig": {"tools": [tool_spec(), {"cachePoint": {"type": "ephemeral"}}]}},
        {"system": [{"text": SYSTEM}, {"cachePoint": {"type": "default", "ttl": "2d"}}]},
        {"system": [{"text": SYSTEM, "cachePoint": {"type": "default"}}]},
        {"system": [{"text": SYSTEM}] + [{"cachePoint": {"type": "default"}}] * 5},
        {"guardrailConfig": {"guardrailIdentifier": "abc123"}},
        {"guardrailConfig": {"guardrailIdentifier": "abc123", "guardrailVersion": "latest"}},
    ],
    ids=[
        "no-tools",
        "two-choices",
        "unknown-choice",
        "no-input-schema",
        "bad-cache-point",
        "bad-cache-ttl",
        "two-members-in-a-block",
        "five-cache-points",
        "guardrail-without-version",
        "bad-guardrail-version",
    ],
)
def test_malformed_wire_requests_are_rejected(bedrock: LocalBedrock, fields: dict[str, Any]) -> None:
    # Requests botocore would refuse to send: posted as raw JSON, as another SDK might
    body = {"messages": [{"role": "user", "content": [{"text": prompt()}]}], **fields}

    response = requests.post(f"{bedrock.url}/model/{MODEL_ID}/converse", json=body, timeout=5)

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"
    assert response.json()["message"]


# --------------------------------------------------------------------------------------------------
# Prompt cache and guardrails
# --------------------------------------------------------------------------------------------------
def cached_converse(client: BaseClient, system: str = SYSTEM, model_id: str = MODEL_ID) -> dict[str, Any]:
    response: dict[str, Any] = client.converse(
        modelId=model_id,
        system=[{"text": system}, {"cachePoint": {"type": "default"}}],
        messages=[{"role": "user", "content": [{"text": prompt()}]}],
        toolConfig=FORCED,
        inferenceConfig={"maxTokens": 2000},
    )
    return response


def test_prompt_cache_is_written_then_read(client: BaseClient) -> None:
    # When the same tools and system prompt (each followed by a cachePoint) are sent twice
    first = cached_converse(client)["usage"]
    second = cached_converse(client)["usage"]

    # Then the first call writes the prefix and the second reads it
    prefix_tokens = -(-(len(json.dumps(tool_spec()["toolSpec"])) + len(SYSTEM)) // 4)
    assert first["cacheWriteInputTokens"] == prefix_tokens
    assert first["cacheReadInputTokens"] == 0
    assert second["cacheReadInputTokens"] == prefix_tokens
    assert second["cacheWriteInputTokens"] == 0
    # And inputTokens counts only the rest (the user message); totalTokens counts everything
    all_tokens = -(-(len(json.dumps(tool_spec()["toolSpec"])) + len(SYSTEM) + len(prompt())) // 4)
    assert first["inputTokens"] == second["inputTokens"] == all_tokens - prefix_tokens
    for usage in (first, second):
        assert usage["totalTokens"] == (
            usage["inputTokens"]
            + usage["outputTokens"]
            + usage["cacheReadInputTokens"]
            + usage["cacheWriteInputTokens"]
        )


def test_prompt_cache_reads_the_longest_cached_prefix(client: BaseClient) -> None:
    # Given the tools and system cached
    cached_converse(client)

    # When the system prompt changes, Then the tools are read and the new system prompt written
    changed = cached_converse(client, system=SYSTEM + " Be brief.")["usage"]
    tools_tokens = -(-len(json.dumps(tool_spec()["toolSpec"])) // 4)
    assert changed["cacheReadInputTokens"] == tools_tokens
    assert changed["cacheWriteInputTokens"] > 0
    # And another model has its own cache
    other_model = cached_converse(client, model_id="anthropic.claude-3-5-haiku-20241022-v1:0")["usage"]
    assert other_model["cacheReadInputTokens"] == 0


def test_cache_points_in_messages_are_accepted(client: BaseClient) -> None:
    messages = [{"role": "user", "content": [{"text": prompt()}, {"cachePoint": {"type": "default"}}]}]

    first = client.converse(modelId=MODEL_ID, messages=messages)["usage"]
    second = client.converse(modelId=MODEL_ID, messages=messages)["usage"]

    assert first["cacheWriteInputTokens"] == second["cacheReadInputTokens"] == -(-len(prompt()) // 4)
    assert second["inputTokens"] == 0


def test_no_cache_fields_without_a_cache_point(client: BaseClient) -> None:
    usage = converse(client, toolConfig={"tools": [tool_spec()]})["usage"]

    assert "cacheReadInputTokens" not in usage and "cacheWriteInputTokens" not in usage


def test_guardrail_config_is_accepted(client: BaseClient) -> None:
    guardrail = {"guardrailIdentifier": "gr1abc2def", "guardrailVersion": "DRAFT", "trace": "disabled"}

    response = converse(client, toolConfig=FORCED, guardrailConfig=guardrail)

    assert response["stopReason"] == "tool_use"


# --------------------------------------------------------------------------------------------------
# Context window
# --------------------------------------------------------------------------------------------------
def test_a_report_over_the_context_window_is_a_validation_exception(
    client: BaseClient, bedrock: LocalBedrock
) -> None:
    # Given a 100,000-character report (the API's limit) and the default 8192-token window
    assert bedrock.context_tokens == DEFAULT_CONTEXT_TOKENS
    long_report = (REPORT + "\n") * (100_000 // (len(REPORT) + 1))

    # When / Then the service's wording, with no report text in it
    with pytest.raises(client.exceptions.ValidationException) as caught:
        converse(client, report=long_report, toolConfig=FORCED)
    assert caught.value.response["Error"]["Message"] == INPUT_TOO_LONG
    assert bedrock.stats()["errors_by_code"] == {"ValidationException": 1}
    assert bedrock.stats()["calls_by_digest"] == {}


def test_the_window_counts_system_messages_and_tools(client: BaseClient) -> None:
    # Given a window just large enough for the request without tools
    without_tools = converse(client)["usage"]["inputTokens"]
    with LocalBedrock(context_tokens=without_tools) as small:
        narrow = boto3.client(
            "bedrock-runtime",
            endpoint_url=small.url,
            region_name="us-east-1",
            aws_access_key_id="AKIDLOCALTEST",
            aws_secret_access_key="local-test-secret",
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
        assert converse(narrow)["stopReason"] == "end_turn"
        # When the tool schema is added, Then it no longer fits
        with pytest.raises(narrow.exceptions.ValidationException, match="Input is too long"):
            converse(narrow, toolConfig=FORCED)


def test_context_window_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONTEXT_TOKENS_ENV, "200000")
    assert LocalBedrock().context_tokens == 200_000
    assert LocalBedrock(context_tokens=1000).context_tokens == 1000
    monkeypatch.setenv(CONTEXT_TOKENS_ENV, "lots")
    with pytest.raises(ValueError, match=CONTEXT_TOKENS_ENV):
        LocalBedrock()


# --------------------------------------------------------------------------------------------------
# Scripted replies
# --------------------------------------------------------------------------------------------------
def put_reply(bedrock: LocalBedrock, **reply: Any) -> requests.Response:
    return requests.put(f"{bedrock.url}/_local/replies", json=reply, timeout=5)


def test_scripted_text_reply_ignores_the_forced_tool(client: BaseClient, bedrock: LocalBedrock) -> None:
    # Given a model that answers fenced JSON in prose instead of calling the tool
    text = 'Here is the summary:\n```json\n{"summary": "Cardiomegaly."}\n```'
    assert put_reply(bedrock, match="Mild cardiomegaly", text=text).status_code == 200

    response = converse(client, toolConfig=FORCED)

    assert response["output"]["message"]["content"] == [{"text": text}]
    assert response["stopReason"] == "end_turn"
    assert response["usage"]["outputTokens"] == -(-len(text) // 4)


def test_scripted_tool_input_reply_under_a_forced_tool(client: BaseClient, bedrock: LocalBedrock) -> None:
    # Given a model whose tool input misses keys of the contract
    tool_input = {"summary": "Cardiomegaly.", "key_findings": "not a list"}
    put_reply(bedrock, match="Mild cardiomegaly", tool_input=tool_input)

    # When the tool is forced, Then the call carries the scripted input under the forced tool's name
    config = tool_config({"tool": {"name": "other_tool"}}, tool_spec("other_tool"))
    tool_use = only_tool_use(converse(client, toolConfig=config))
    assert tool_use == {"toolUseId": tool_use["toolUseId"], "name": "other_tool", "input": tool_input}
    # And without a toolConfig it is still a tool call, of record_summary
    response = converse(client)
    assert only_tool_use(response)["name"] == TOOL_NAME
    assert response["stopReason"] == "tool_use"


def test_scripted_stop_reason_and_usage(client: BaseClient, bedrock: LocalBedrock) -> None:
    # Given a reply cut by the token budget, with the usage a long answer would have had
    put_reply(
        bedrock,
        match="Mild cardiomegaly",
        tool_input={"summary": "Cardio"},
        stop_reason="max_tokens",
        usage={"inputTokens": 1500, "outputTokens": 2048},
    )

    response = converse(client, toolConfig=FORCED)

    assert response["stopReason"] == "max_tokens"
    assert only_tool_use(response)["input"] == {"summary": "Cardio"}
    assert response["usage"] == {"inputTokens": 1500, "outputTokens": 2048, "totalTokens": 3548}


@pytest.mark.parametrize(
    "stop_reason", ["guardrail_intervened", "content_filtered", "malformed_tool_use", "stop_sequence"]
)
def test_any_stop_reason_can_be_scripted(client: BaseClient, bedrock: LocalBedrock, stop_reason: str) -> None:
    put_reply(
        bedrock, match="Mild cardiomegaly", text="Sorry, I can't help with that.", stop_reason=stop_reason
    )

    assert converse(client)["stopReason"] == stop_reason


def test_several_scripted_replies_at_once(client: BaseClient, bedrock: LocalBedrock) -> None:
    other = "FINDINGS: Calcified granuloma in the right upper lobe."
    third = "FINDINGS: Healed rib fracture."
    # Given one reply per report, and a more specific one for the same report as the first
    put_reply(bedrock, match="cardiomegaly", text="first")
    put_reply(bedrock, match="granuloma", tool_input={"summary": "second"})
    put_reply(bedrock, match="Mild cardiomegaly. Small left pleural effusion", text="most specific")
    put_reply(bedrock, match="cardiomegaly", text="first, replaced")  # same match: replaces

    # Then each request gets the longest match, and unmatched ones the stand-in model
    assert converse(client)["output"]["message"]["content"] == [{"text": "most specific"}]
    assert only_tool_use(converse(client, report=other))["input"] == {"summary": "second"}
    assert json.loads(converse(client, report=third)["output"]["message"]["content"][0]["text"]) == (
        summarize_report(third)
    )
    assert converse(client, report="IMPRESSION: cardiomegaly.")["output"]["message"]["content"] == [
        {"text": "first, replaced"}
    ]
    # And the list shows each once, with its use count; the stats count scripted calls too
    listed = requests.get(f"{bedrock.url}/_local/replies", timeout=5).json()["replies"]
    assert [(reply["match"], reply["uses"]) for reply in listed] == [
        ("granuloma", 1),
        ("Mild cardiomegaly. Small left pleural effusion", 1),
        ("cardiomegaly", 1),
    ]
    stats = bedrock.stats()
    assert stats["scripted_calls"] == 3
    assert stats["converse_calls"] == 4
    assert stats["calls_by_digest"][report_digest(REPORT)] == 1
    assert stats["completed_by_digest"][report_digest(other)] == 1


def test_a_scripted_reply_matches_any_user_turn(client: BaseClient, bedrock: LocalBedrock) -> None:
    # Given the report in the first turn only (a repair conversation)
    put_reply(bedrock, match="Small left pleural effusion", text="scripted")
    messages = [
        {"role": "user", "content": [{"text": prompt()}]},
        {"role": "assistant", "content": [{"text": "{"}]},
        {"role": "user", "content": [{"text": "Fix it."}]},
    ]

    response = client.converse(modelId=MODEL_ID, messages=messages)

    assert response["output"]["message"]["content"] == [{"text": "scripted"}]


def test_times_limits_a_scripted_reply(client: BaseClient, bedrock: LocalBedrock) -> None:
    # Given a bad answer for the first call only (then the stand-in model answers the repair)
    created = put_reply(bedrock, match="Mild cardiomegaly", text="not json", times=1)
    assert created.json() == {
        "match": "Mild cardiomegaly",
        "text": "not json",
        "times": 1,
        "uses": 0,
        "remaining": 1,
    }

    assert converse(client)["output"]["message"]["content"] == [{"text": "not json"}]
    assert json.loads(converse(client)["output"]["message"]["content"][0]["text"]) == summarize_report(REPORT)
    assert bedrock.replies() == []


def test_delete_clears_scripted_replies(client: BaseClient, bedrock: LocalBedrock) -> None:
    url = f"{bedrock.url}/_local/replies"
    put_reply(bedrock, match="cardiomegaly", text="one")
    put_reply(bedrock, match="granuloma", text="two")
    put_reply(bedrock, match="fracture", text="three")

    # When one is deleted by its match, Then the others stay
    deleted = requests.delete(url, params={"match": "granuloma"}, timeout=5)
    assert deleted.status_code == 200 and deleted.json() == {"deleted": 1}
    assert requests.delete(url, params={"match": "granuloma"}, timeout=5).json() == {"deleted": 0}
    assert [reply["match"] for reply in requests.get(url, timeout=5).json()["replies"]] == [
        "cardiomegaly",
        "fracture",
    ]
    # When all are deleted, Then the stand-in model answers again
    assert requests.delete(url, timeout=5).json() == {"deleted": 2}
    assert requests.get(url, timeout=5).json() == {"replies": []}
    assert json.loads(converse(client)["output"]["message"]["content"][0]["text"]) == summarize_report(REPORT)


def test_faults_apply_before_scripted_replies(client: BaseClient, bedrock: LocalBedrock) -> None:
    put_reply(bedrock, match="Mild cardiomegaly", text="scripted", times=1)
    bedrock.set_faults({"error_rate": 1.0, "error_code": "ServiceUnavailableException"})

    with pytest.raises(client.exceptions.ServiceUnavailableException):
        converse(client)

    # The failed call did not use the reply up: the retry gets it
    bedrock.set_faults(FaultSettings())
    assert converse(client)["output"]["message"]["content"] == [{"text": "scripted"}]


def test_the_context_window_applies_before_scripted_replies(
    client: BaseClient, bedrock: LocalBedrock
) -> None:
    put_reply(bedrock, match="Mild cardiomegaly", text="scripted")

    with pytest.raises(client.exceptions.ValidationException, match="Input is too long"):
        converse(client, report=REPORT * 400)
    assert bedrock.replies()[0]["uses"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"match": "x", "text": "a", "tool_input": {"summary": "b"}},
        {"match": "x"},
        {"match": "", "text": "a"},
        {"text": "a"},
        {"match": "x", "text": "a", "stop_reason": "done"},
        {"match": "x", "tool_input": ["not", "an", "object"]},
        {"match": "x", "text": "a", "usage": {"inputTokens": -1, "outputTokens": 1}},
        {"match": "x", "text": "a", "usage": {"inputTokens": 1}},
        {"match": "x", "text": "a", "times": 0},
        {"match": "x", "text": "a", "unknown": True},
        ["not", "an", "object"],
        "not json",
    ],
)
def test_put_replies_rejects_bad_input(bedrock: LocalBedrock, body: object) -> None:
    data = body if isinstance(body, str) else json.dumps(body)

    response = requests.put(
        f"{bedrock.url}/_local/replies", data=data, headers={"content-type": "application/json"}, timeout=5
    )

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"
    assert response.json()["message"]
    assert bedrock.replies() == []


# --------------------------------------------------------------------------------------------------
# Privacy and lifecycle
# --------------------------------------------------------------------------------------------------
def test_report_text_never_reaches_the_logs(
    client: BaseClient, bedrock: LocalBedrock, caplog: pytest.LogCaptureFixture
) -> None:
    sentinel = "Zanzibarian nodule of the left apex"
    report = f"FINDINGS: {sentinel}.\nIMPRESSION: {sentinel}."
    caplog.set_level(logging.DEBUG)

    converse(client, report=report)
    converse(client, report=report, toolConfig=FORCED)
    # Scripted replies: neither the match nor the answer is logged
    put_reply(bedrock, match=sentinel, text=f"The {sentinel} again.")
    converse(client, report=report)
    assert requests.delete(f"{bedrock.url}/_local/replies", params={"match": sentinel}, timeout=5).ok
    put_reply(bedrock, match=sentinel, tool_input={"summary": sentinel})
    converse(client, report=report, toolConfig=FORCED)
    with pytest.raises(client.exceptions.ValidationException):
        converse(client, report=report * 2000)
    bedrock.set_faults({"error_rate": 1.0, "error_code": "InternalServerException"})
    with pytest.raises(client.exceptions.InternalServerException):
        converse(client, report=report)

    logged = [record for record in caplog.records if record.name.startswith("medsum_local")]
    assert logged, "expected the server to log something"
    for record in logged:
        assert "zanzibarian" not in json.dumps(record.__dict__, default=str).lower()


def test_start_stop_releases_the_port() -> None:
    server = LocalBedrock().start()
    url = server.url
    assert requests.get(f"{url}/ping", timeout=5).ok

    server.stop()
    server.stop()  # idempotent

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/ping", timeout=2)
