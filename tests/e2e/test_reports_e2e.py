"""The whole service offline, over HTTP with SigV4: template deployed in the emulator, real handlers,
the gateway, the SQS poller and the local Bedrock."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from medsum_local.bedrock import report_digest
from medsum_local.stack import StackInfo
from medsum_local.testing import ApiClient, run_cli, wait_for

ROOT = Path(__file__).resolve().parents[2]
PNEUMONIA = (ROOT / "examples" / "chest-xray-pneumonia.txt").read_text(encoding="utf-8")


def submit(api: ApiClient, text: str = PNEUMONIA, patient: str = "pt-e2e", **extra: Any) -> str:
    response = api.post(
        "/summarize", json={"patient_id": patient, "report_text": text, "report_type": "radiology", **extra}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["report_id"])


def wait_terminal(api: ApiClient, report_id: str, timeout: float = 60.0) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        body = api.get(f"/reports/{report_id}").json()
        return body if body["status"] in ("COMPLETED", "FAILED") else None

    return wait_for(probe, timeout=timeout, message=f"report {report_id} to finish")


def queue_url(aws: Callable[[str], Any], stack_info: StackInfo, output: str) -> str:
    return str(stack_info.outputs[output])


def queue_depth(aws: Callable[[str], Any], url: str) -> int:
    attributes = aws("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def set_faults(admin: str, **faults: Any) -> None:
    requests.put(f"{admin}/faults", json=faults, timeout=10).raise_for_status()


def model_calls(admin: str, text: str) -> int:
    stats = requests.get(f"{admin}/stats", timeout=10).json()
    return int(stats["calls_by_digest"].get(report_digest(text), 0))


def test_submit_to_completed_with_grounded_summary(api: ApiClient) -> None:
    # Given a radiology report submitted by clinic-a
    response = api.post(
        "/summarize", json={"patient_id": "pt-e2e", "report_text": PNEUMONIA, "report_type": "radiology"}
    )
    assert response.status_code == 202
    assert response.headers["Location"] == response.json()["links"]["self"]
    assert int(response.headers["Retry-After"]) > 0
    # When the worker has processed it
    report = wait_terminal(api, response.json()["report_id"])
    # Then it is COMPLETED with findings whose evidence spans point into the submitted text
    assert report["status"] == "COMPLETED", report.get("error")
    summary = report["summary"]
    assert summary["summary"] and summary["key_findings"]
    quoted = [PNEUMONIA[s["start"] : s["end"]] for f in summary["key_findings"] for s in f["evidence"]]
    assert quoted and all(q.strip() for q in quoted)
    assert any("consolidation" in q.lower() for q in quoted)
    # negated findings are not findings
    assert not any("pneumothorax" in f["text"].lower() for f in summary["key_findings"])
    assert report["usage"]["input_tokens"] > 0 and report["usage"]["model_id"] == summary["model_id"]
    assert report["attempts"] == 1


def test_unsigned_and_tampered_requests_are_refused(
    api: ApiClient, stack_info: StackInfo, signed_headers: Callable[..., dict[str, str]]
) -> None:
    body = json.dumps({"patient_id": "pt-x", "report_text": "FINDINGS: Normal."}).encode()
    url = f"{stack_info.api_url}/summarize"
    unsigned = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert unsigned.status_code == 403 and "error" in unsigned.json()
    headers = signed_headers("clinic-a", "POST", url, body=body, headers={"Content-Type": "application/json"})
    tampered = requests.post(url, data=body.replace(b"Normal", b"Abnormal"), headers=headers, timeout=10)
    assert tampered.status_code == 403 and "error" in tampered.json()
    # The health check needs no signature
    assert requests.get(f"{stack_info.api_url}/", timeout=10).json()["status"] == "ok"


def test_another_client_cannot_read_list_or_delete(api: ApiClient) -> None:
    report_id = submit(api, patient="pt-private")
    as_b = api.get(f"/reports/{report_id}", identity="clinic-b")
    missing = api.get("/reports/ffffffffffffffffffffffffffffffff", identity="clinic-b")
    assert as_b.status_code == missing.status_code == 404
    assert as_b.json() == missing.json()
    assert api.get("/patients/pt-private/reports", identity="clinic-b").json()["items"] == []
    assert api.delete(f"/reports/{report_id}", identity="clinic-b").status_code == 404
    assert api.get(f"/reports/{report_id}").status_code == 200


def test_non_retryable_model_error_fails_without_dlq(
    api: ApiClient, bedrock_admin: str, aws: Callable[[str], Any], stack_info: StackInfo
) -> None:
    set_faults(bedrock_admin, error_rate=1.0, error_code="ValidationException")
    text = "FINDINGS: Non-retryable probe. Small nodule."
    report = wait_terminal(api, submit(api, text=text))
    assert report["status"] == "FAILED"
    assert report["error"]["code"] == "model_validation_error"
    assert model_calls(bedrock_admin, text) == 1  # not retried
    # (other tests' dead letters may be there: only this report's message counts)
    dlq = queue_url(aws, stack_info, "WorkDeadLetterQueueUrl")
    messages = aws("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert [m for m in messages.get("Messages", []) if report["report_id"] in m["Body"]] == []


def test_persistent_retryable_errors_end_failed_and_in_the_dlq(
    api: ApiClient, bedrock_admin: str, aws: Callable[[str], Any], stack_info: StackInfo
) -> None:
    set_faults(bedrock_admin, error_rate=1.0, error_code="ThrottlingException")
    text = "FINDINGS: Retryable probe. Mild atelectasis."
    report_id = submit(api, text=text)
    report = wait_terminal(api, report_id, timeout=120)
    assert report["status"] == "FAILED" and report["error"]["code"] == "dead_lettered"
    assert report["attempts"] == int(stack_info.parameters.get("MaxReceiveCount", 5))
    dlq = queue_url(aws, stack_info, "WorkDeadLetterQueueUrl")

    def dead_lettered() -> list[dict[str, Any]] | None:
        messages = aws("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)
        found = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
        return [m for m in found if m["report_id"] == report_id] or None

    assert wait_for(dead_lettered, timeout=30, message="the message in the DLQ") == [
        {"report_id": report_id, "version": 1}
    ]
    aws("sqs").purge_queue(QueueUrl=dlq)


def test_duplicated_queue_message_calls_the_model_once(
    api: ApiClient, bedrock_admin: str, aws: Callable[[str], Any], stack_info: StackInfo
) -> None:
    text = "FINDINGS: Duplicate delivery probe. Right basilar opacity."
    report_id = submit(api, text=text)
    work_queue = queue_url(aws, stack_info, "WorkQueueUrl")
    duplicate = json.dumps({"report_id": report_id, "version": 1})
    for _ in range(2):
        aws("sqs").send_message(QueueUrl=work_queue, MessageBody=duplicate)
    assert wait_terminal(api, report_id)["status"] == "COMPLETED"
    wait_for(lambda: queue_depth(aws, work_queue) == 0, timeout=60, message="the work queue to drain")
    assert model_calls(bedrock_admin, text) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'{"patient_id": "p", "report_text": "x", "extra": 1}', "application/json", 400, "invalid_request"),
        (b'{"patient_id": "has space", "report_text": "x"}', "application/json", 400, "invalid_request"),
        (b'{"patient_id": "p", "report_text": ""}', "application/json", 400, "invalid_request"),
        (
            json.dumps({"patient_id": "p", "report_text": "x" * 100_001}).encode(),
            "application/json",
            400,
            "invalid_request",
        ),
        (
            b'{"patient_id": "p", "report_text": "x", "report_type": "poem"}',
            "application/json",
            400,
            "invalid_request",
        ),
        (b'{"patient_id": "p", "report_text": "x"}', "text/plain", 415, "unsupported_media_type"),
        (b"x" * 1_100_000, "application/json", 413, "payload_too_large"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    api: ApiClient, body: bytes, content_type: str, status: int, code: str
) -> None:
    response = api.post("/summarize", data=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_unknown_route_wrong_method_and_bad_query_are_4xx(api: ApiClient) -> None:
    unknown = api.get("/no/such/route")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "route_not_found"
    wrong_method = api.request("PUT", "/summarize", json={"patient_id": "p", "report_text": "x"})
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert wrong_method.headers["Allow"] == "POST"
    bad_limit = api.get("/patients/pt-e2e/reports", params={"limit": "1000"})
    assert bad_limit.status_code == 400


def test_list_and_delete(api: ApiClient) -> None:
    first, second = submit(api, patient="pt-list"), submit(api, patient="pt-list")

    def listed() -> list[str] | None:
        items = api.get("/patients/pt-list/reports", params={"limit": "1"}).json()
        return [i["report_id"] for i in items["items"]] if items["items"] else None

    assert wait_for(listed, timeout=10, message="the list") == [second]
    page = api.get("/patients/pt-list/reports", params={"limit": "1"}).json()
    rest = api.get(
        "/patients/pt-list/reports", params={"limit": "1", "next_token": page["next_token"]}
    ).json()
    assert [i["report_id"] for i in rest["items"]] == [first]
    assert api.delete(f"/reports/{first}").status_code == 204
    assert api.get(f"/reports/{first}").status_code == 404


def test_cli_submit_wait_prints_summary_with_evidence(stack_dir: Path, api: ApiClient) -> None:
    started = time.monotonic()
    example = ROOT / "examples" / "chest-xray-pneumonia.txt"
    result = run_cli(
        stack_dir, "submit", str(example), "--type", "radiology", "--wait", "--json", timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "COMPLETED" and report["patient_id"] == "chest-xray-pneumonia"
    assert time.monotonic() - started < 120
