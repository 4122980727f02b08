"""Specs for the local Bedrock Runtime endpoint, driven through an unchanged boto3 client.

The server listens on 127.0.0.1 only; nothing here talks to AWS (explicit endpoint and dummy keys).
Reports are synthetic.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
import requests
from botocore.client import BaseClient
from botocore.config import Config
from medsum.models import ModelSummary
from medsum_local.bedrock import ERROR_STATUS, FAULTS_ENV, FaultSettings, LocalBedrock, report_digest
from medsum_local.clinical_model import summarize_report

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

    # When a report is summarized end to end
    result, missing = summarize_text(REPORT, ReportType.RADIOLOGY, summarizer, RetryPolicy(3, 10.0))

    # Then one model call sufficed and every quote became a span into the report
    assert missing == 0
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

    bedrock.set_faults({"error_rate": 1.0, "error_code": code})
    summarizer = BedrockSummarizer(MODEL_ID, max_tokens=256, bedrock_client=client)
    # When it is called, Then the error's type says whether it is a throttle (retried on time only)
    with pytest.raises(SummarizerError) as caught:
        summarizer.complete("s", [{"role": "user", "text": "FINDINGS: Clear lungs."}])
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
        "throttle_rps": None,
        "latency_ms": 0,
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
        "scripted_calls": 0,
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
        "scripted_calls": 0,
    }


def test_unknown_route_is_404(bedrock: LocalBedrock) -> None:
    response = requests.post(f"{bedrock.url}/model/x/invoke-with-response-stream", timeout=5)

    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"


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
