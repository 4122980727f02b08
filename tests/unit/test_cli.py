"""The ``medsum`` CLI: signing, commands, output, errors and configuration, over a fake HTTP transport.

No sockets: every request goes through a ``requests`` transport adapter that records it and answers
from a script, so the tests see exactly the bytes and headers a server would receive.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.credentials import Credentials
from medsum_cli import client as client_module
from medsum_cli.client import ApiError, MedsumClient, WaitTimeoutError, parse_retry_after
from medsum_cli.config import ConfigError, find_local_stack, load_local_stack, resolve_settings
from medsum_cli.main import UsageError, derive_patient_id
from medsum_cli.render import make_console, quote_evidence, render_report

from tests.support.cli import (
    API_URL,
    IDENTITIES,
    REPORT_ID,
    Reply,
    Run,
    client_with,
    error,
    fake_session,
    ok,
    parse_authorization,
    signature_is_valid,
)
from tests.support.clock import FakeClock

pytestmark = [pytest.mark.disable_socket, pytest.mark.usefixtures("isolated_env")]

SOURCE_TEXT = "Chest X-ray: no acute cardiopulmonary disease. Mild cardiomegaly."


# --------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------
def submit_response(report_id: str = REPORT_ID) -> dict[str, Any]:
    return {"report_id": report_id, "status": "PENDING", "links": {"self": f"{API_URL}/reports/{report_id}"}}


def report_view(status: str = "COMPLETED", **overrides: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "report_id": REPORT_ID,
        "patient_id": "patient-1",
        "report_type": "radiology",
        "status": status,
        "created_at": "2026-11-26T06:00:00Z",
        "updated_at": "2026-11-26T06:00:05Z",
        "attempts": 1,
        "metadata": {},
        "summary": None,
        "error": None,
        "usage": None,
        "links": {"self": f"{API_URL}/reports/{REPORT_ID}"},
    }
    if status == "COMPLETED":
        view["summary"] = {
            "summary": "No acute disease; mild cardiomegaly.",
            "key_findings": [
                {"text": "No acute cardiopulmonary disease", "evidence": [{"start": 13, "end": 45}]},
                {"text": "Mild cardiomegaly", "evidence": [{"start": 47, "end": 64}]},
            ],
            "diagnoses": [{"text": "Cardiomegaly", "evidence": [{"start": 52, "end": 64}]}],
            "medications": [],
            "follow_up": [{"text": "Clinical correlation", "evidence": []}],
            "model_id": "amazon.titan-text-express-v1",
            "prompt_version": "2026-11-26.1",
        }
        view["usage"] = {"model_id": "amazon.titan-text-express-v1", "input_tokens": 321, "output_tokens": 45}
    if status == "FAILED":
        view["error"] = {"code": "model_rejected", "message": "the model refused the request"}
    view.update(overrides)
    return view


def list_item(report_id: str, status: str = "COMPLETED") -> dict[str, Any]:
    return {
        "report_id": report_id,
        "patient_id": "patient-1",
        "report_type": "radiology",
        "status": status,
        "created_at": "2026-11-26T06:00:00Z",
        "updated_at": "2026-11-26T06:00:05Z",
        "links": {"self": f"{API_URL}/reports/{report_id}"},
    }


# --------------------------------------------------------------------------------------------------
# submit
# --------------------------------------------------------------------------------------------------
def test_submit_reads_file_signs_with_clinic_a_and_prints_the_id(project: Path, run: Run) -> None:
    # Given a report file whose name is not a valid patient id, and the local stack
    report = project / "CXR 001 (left).txt"
    report.write_text(SOURCE_TEXT, encoding="utf-8")
    session, adapter = fake_session(
        ok(submit_response(), 202, Location=f"/reports/{REPORT_ID}", **{"Retry-After": "2"})
    )

    # When
    code, out, err = run(["submit", str(report), "--type", "radiology"], session)

    # Then the id alone is printed (for `id=$(medsum submit ...)`)
    assert (code, out, err) == (0, f"{REPORT_ID}\n", "")
    [request] = adapter.requests
    assert request.method == "POST"
    assert request.url == f"{API_URL}/summarize"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body or b"") == {
        "patient_id": "CXR-001-left",
        "report_text": SOURCE_TEXT,
        "report_type": "radiology",
        "metadata": {},
    }
    # ... signed as clinic-a for execute-api in the local stack's region, verifiably
    auth = parse_authorization(request)
    assert auth["key"] == IDENTITIES["clinic-a"][0]
    assert auth["region"] == "us-east-1"
    assert {"content-type", "host", "x-amz-date"} <= set(auth["signed"].split(";"))
    assert signature_is_valid(request, IDENTITIES["clinic-a"][1])
    assert adapter.timeouts[0] is not None


def test_signature_does_not_verify_for_a_tampered_body_or_another_secret(project: Path, run: Run) -> None:
    # Given a signed submit
    report = project / "p1.txt"
    report.write_text(SOURCE_TEXT, encoding="utf-8")
    session, adapter = fake_session(ok(submit_response(), 202))
    assert run(["submit", str(report)], session)[0] == 0
    [request] = adapter.requests

    # Then only the exact body and the right secret verify
    assert signature_is_valid(request, IDENTITIES["clinic-a"][1])
    body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
    assert not signature_is_valid(request, IDENTITIES["clinic-a"][1], body=body + b" ")
    assert not signature_is_valid(request, IDENTITIES["clinic-b"][1])


def test_temporary_credentials_send_and_sign_the_security_token() -> None:
    # Given session credentials
    session, adapter = fake_session(ok(report_view()))
    credentials = Credentials("ASIATEMP", "temp-secret", "session-token-123")
    client = MedsumClient("https://api.example.com/prod", credentials, "eu-west-1", session=session)

    # When
    client.get("r-1")

    # Then
    [request] = adapter.requests
    assert request.url == "https://api.example.com/prod/reports/r-1"
    assert request.headers["X-Amz-Security-Token"] == "session-token-123"
    auth = parse_authorization(request)
    assert "x-amz-security-token" in auth["signed"].split(";")
    assert auth["region"] == "eu-west-1"
    assert signature_is_valid(request, "temp-secret", token="session-token-123")


def test_submit_reads_stdin_with_metadata_and_idempotency_key(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a report on standard input
    monkeypatch.setattr("sys.stdin", io.StringIO("Discharge summary: stable.\n"))
    session, adapter = fake_session(ok(submit_response(), 202))

    # When
    code, out, _ = run(
        [
            "submit",
            "-",
            "--patient-id",
            "patient-7",
            "--type",
            "discharge",
            "--metadata",
            "ward=4B",
            "source=ehr",
            "--metadata",
            "note=a=b",
            "--idempotency-key",
            "key-123",
        ],
        session,
    )

    # Then
    assert (code, out) == (0, f"{REPORT_ID}\n")
    [request] = adapter.requests
    assert json.loads(request.body or b"") == {
        "patient_id": "patient-7",
        "report_text": "Discharge summary: stable.\n",
        "report_type": "discharge",
        "metadata": {"ward": "4B", "source": "ehr", "note": "a=b"},
    }
    assert request.headers["Idempotency-Key"] == "key-123"
    assert "idempotency-key" in parse_authorization(request)["signed"].split(";")
    assert signature_is_valid(request, IDENTITIES["clinic-a"][1])


def test_submit_json_prints_the_accepted_object(project: Path, run: Run) -> None:
    report = project / "p1.txt"
    report.write_text(SOURCE_TEXT, encoding="utf-8")
    session, _ = fake_session(ok(submit_response(), 202))

    code, out, _ = run(["--json", "submit", str(report)], session)

    assert code == 0
    assert json.loads(out) == submit_response()


def test_submit_from_stdin_requires_a_patient_id(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("text"))
    session, adapter = fake_session(ok(submit_response(), 202))

    code, out, err = run(["submit", "-"], session)

    assert (code, out) == (2, "")
    assert err == "error: --patient-id is required when the report is read from standard input\n"
    assert adapter.requests == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", "missing.txt"], "error: cannot read missing.txt: no such file\n"),
        (["submit", "empty.txt"], "error: the report in empty.txt is empty\n"),
    ],
)
def test_submit_unreadable_or_empty_file_is_a_usage_error(
    project: Path, run: Run, argv: list[str], message: str
) -> None:
    (project / "empty.txt").write_text("  \n", encoding="utf-8")
    session, adapter = fake_session(ok(submit_response(), 202))

    code, _, err = run(argv, session)

    assert (code, err) == (2, message)
    assert adapter.requests == []


def test_usage_errors_from_argparse_exit_2(run: Run) -> None:
    code, _, err = run(["submit", "x.txt", "--type", "xray"])
    assert code == 2
    assert "invalid choice: 'xray'" in err

    code, _, err = run(["submit", "x.txt", "--metadata", "novalue"])
    assert code == 2
    assert "expected KEY=VALUE" in err

    assert run(["list"])[0] == 2  # --patient-id is required
    assert run([])[0] == 2


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("/data/reports/report-001.txt", "report-001"),
        ("a b@c (1).txt", "a-b-c-1"),
        ("patient_9.v2.txt", "patient_9.v2"),
        ("x" * 100 + ".txt", "x" * 64),
    ],
)
def test_patient_id_is_derived_from_the_file_name(file: str, expected: str) -> None:
    assert derive_patient_id(file) == expected


def test_patient_id_cannot_be_derived_from_punctuation() -> None:
    with pytest.raises(UsageError, match="pass --patient-id"):
        derive_patient_id("@@@.txt")


def test_submit_wait_polls_until_completed_and_quotes_the_evidence(project: Path, run: Run) -> None:
    # Given
    report = project / "patient-1.txt"
    report.write_text(SOURCE_TEXT, encoding="utf-8")
    session, adapter = fake_session(
        ok(submit_response(), 202),
        ok(report_view("PENDING")),
        ok(report_view("PROCESSING")),
        ok(report_view("COMPLETED")),
    )

    # When
    code, out, err = run(["--no-color", "submit", str(report), "--wait"], session)

    # Then every poll is a signed GET of the report
    assert code == 0
    assert [r.method for r in adapter.requests] == ["POST", "GET", "GET", "GET"]
    assert all(r.url == f"{API_URL}/reports/{REPORT_ID}" for r in adapter.requests[1:])
    assert all(signature_is_valid(r, IDENTITIES["clinic-a"][1]) for r in adapter.requests)
    assert f"submitted report {REPORT_ID}" in err
    # ... and the summary is rendered with quoted evidence, section by section
    assert f"Report {REPORT_ID}  COMPLETED" in out
    assert "No acute disease; mild cardiomegaly." in out
    assert '[13:45] "no acute cardiopulmonary disease"' in out
    assert '[47:64] "Mild cardiomegaly"' in out
    assert '[52:64] "cardiomegaly"' in out
    sections = ["Summary", "Key findings", "Diagnoses", "Medications", "Follow-up"]
    positions = [out.index(section) for section in sections]
    assert positions == sorted(positions)
    assert "Clinical correlation" in out
    assert "321 in / 45 out" in out


def test_submit_wait_json_prints_the_terminal_report_only(project: Path, run: Run) -> None:
    report = project / "patient-1.txt"
    report.write_text(SOURCE_TEXT, encoding="utf-8")
    session, _ = fake_session(ok(submit_response(), 202), ok(report_view("COMPLETED")))

    code, out, err = run(["submit", str(report), "--wait", "--json"], session)

    assert code == 0
    assert json.loads(out) == report_view("COMPLETED")
    assert err == ""


def test_submit_wait_on_a_failed_report_exits_4_with_the_reason(project: Path, run: Run) -> None:
    report = project / "patient-1.txt"
    report.write_text(SOURCE_TEXT, encoding="utf-8")
    session, _ = fake_session(ok(submit_response(), 202), ok(report_view("FAILED")))

    code, out, _ = run(["submit", str(report), "--wait"], session)

    assert code == 4
    assert "FAILED" in out
    assert "model_rejected: the model refused the request" in out


# --------------------------------------------------------------------------------------------------
# get / wait / list / delete
# --------------------------------------------------------------------------------------------------
def test_get_json_prints_the_api_json_unchanged(project: Path, run: Run) -> None:
    body = report_view("COMPLETED", metadata={"ward": "4B"})
    session, adapter = fake_session(ok(body))

    code, out, _ = run(["get", REPORT_ID, "--json"], session)

    assert code == 0
    assert json.loads(out) == body
    assert adapter.requests[0].method == "GET"


def test_get_without_the_source_shows_offsets_only(project: Path, run: Run) -> None:
    session, _ = fake_session(ok(report_view("COMPLETED")))

    code, out, _ = run(["get", REPORT_ID], session)

    assert code == 0
    assert "[13:45]" in out
    assert '"' not in out


def test_get_with_source_quotes_the_evidence(project: Path, run: Run) -> None:
    (project / "source.txt").write_text(SOURCE_TEXT, encoding="utf-8")
    session, _ = fake_session(ok(report_view("COMPLETED")))

    code, out, _ = run(["get", REPORT_ID, "--source", "source.txt"], session)

    assert code == 0
    assert '[47:64] "Mild cardiomegaly"' in out


def test_get_a_pending_report_says_so(project: Path, run: Run) -> None:
    session, _ = fake_session(ok(report_view("PROCESSING")))

    code, out, _ = run(["get", REPORT_ID], session)

    assert code == 0
    assert "PROCESSING" in out
    assert f"medsum wait {REPORT_ID}" in out


def test_wait_ends_on_failed_with_exit_4(project: Path, run: Run) -> None:
    session, adapter = fake_session(ok(report_view("PENDING")), ok(report_view("FAILED")))

    code, out, _ = run(["wait", REPORT_ID, "--json"], session)

    assert code == 4
    assert json.loads(out)["error"]["code"] == "model_rejected"
    assert len(adapter.requests) == 2


def test_wait_times_out_with_a_clear_message(project: Path, run: Run) -> None:
    session, _ = fake_session(ok(report_view("PROCESSING")))  # forever

    code, out, err = run(["wait", REPORT_ID, "--timeout", "0.05"], session)

    assert (code, out) == (3, "")
    assert err == (
        f"error: timed out after 0.05s waiting for report {REPORT_ID} (last status: PROCESSING); "
        f"run `medsum wait {REPORT_ID}` to keep waiting\n"
    )


def test_list_all_follows_next_token(project: Path, run: Run) -> None:
    # Given two pages, the first with a token that needs URL encoding
    token = "eyJrIjoiYSJ9/+="
    session, adapter = fake_session(
        ok({"items": [list_item("r-1"), list_item("r-2")], "next_token": token}),
        ok({"items": [list_item("r-3", "FAILED")], "next_token": None}),
    )

    # When
    code, out, _ = run(["list", "--patient-id", "patient-1", "--limit", "2", "--all", "--json"], session)

    # Then
    assert code == 0
    assert json.loads(out) == {
        "items": [list_item("r-1"), list_item("r-2"), list_item("r-3", "FAILED")],
        "next_token": None,
    }
    first, second = adapter.requests
    assert urlsplit(first.url or "").path == "/patients/patient-1/reports"
    assert parse_qs(urlsplit(first.url or "").query) == {"limit": ["2"]}
    assert parse_qs(urlsplit(second.url or "").query) == {"limit": ["2"], "next_token": [token]}
    assert all(signature_is_valid(r, IDENTITIES["clinic-a"][1]) for r in adapter.requests)


def test_list_one_page_renders_a_table_and_hints_at_more(project: Path, run: Run) -> None:
    session, adapter = fake_session(ok({"items": [list_item("r-1")], "next_token": "tok"}))

    code, out, _ = run(["list", "--patient-id", "patient-1"], session)

    assert code == 0
    assert len(adapter.requests) == 1
    assert "r-1" in out
    assert "COMPLETED" in out
    assert "--next-token tok" in out


def test_delete(project: Path, run: Run) -> None:
    session, adapter = fake_session(ok(None, 204))

    assert run(["delete", REPORT_ID], session) == (0, f"deleted report {REPORT_ID}\n", "")
    assert adapter.requests[0].method == "DELETE"
    assert adapter.requests[0].url == f"{API_URL}/reports/{REPORT_ID}"
    assert signature_is_valid(adapter.requests[0], IDENTITIES["clinic-a"][1])

    session, _ = fake_session(ok(None, 204))
    code, out, _ = run(["delete", REPORT_ID, "--json"], session)
    assert (code, json.loads(out)) == (0, {"report_id": REPORT_ID, "deleted": True})


# --------------------------------------------------------------------------------------------------
# Errors and exit codes
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "exit_code", "message"),
    [
        (error(404, "not_found", "report not found"), 1, "error: not_found: report not found"),
        (
            error(400, "validation_error", "patient_id: invalid"),
            1,
            "error: validation_error: patient_id: invalid",
        ),
        (
            (
                403,
                {"message": "The request signature we calculated does not match"},
                {"x-amzn-ErrorType": "InvalidSignatureException"},
            ),
            1,
            "error: InvalidSignatureException: The request signature we calculated does not match",
        ),
        ((403, {"message": "Forbidden"}, {}), 1, "error: http_403: Forbidden"),
        (error(500, "internal_error", "internal error"), 3, "error: internal_error: internal error"),
        (
            (502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"}),
            3,
            "error: http_502: Bad Gateway",
        ),
        ((200, b"not json", {}), 3, "error: invalid_response: the API did not answer with JSON"),
    ],
)
def test_api_errors_map_to_a_message_and_an_exit_code(
    project: Path, run: Run, reply: Reply, exit_code: int, message: str
) -> None:
    session, _ = fake_session(reply)

    code, out, err = run(["get", REPORT_ID], session)

    assert (code, out, err) == (exit_code, "", message + "\n")


def test_connection_refused_exits_3_and_hints_at_the_local_stack(project: Path, run: Run) -> None:
    session, _ = fake_session(requests.ConnectionError("refused"))

    code, _, err = run(["get", REPORT_ID], session)

    assert code == 3
    assert err == (
        f"error: cannot connect to {API_URL} (is the local stack running? start it with `make run`)\n"
    )


def test_read_timeout_exits_3(project: Path, run: Run) -> None:
    session, _ = fake_session(requests.ReadTimeout("slow"))

    code, _, err = run(["get", REPORT_ID], session)

    assert code == 3
    assert err == f"error: GET {API_URL}/reports/{REPORT_ID} timed out\n"
    assert "Traceback" not in err


def test_429_and_503_are_retried_honoring_retry_after() -> None:
    # Given a throttled, then unavailable, then healthy API
    session, adapter = fake_session(
        (429, {"error": {"code": "throttled", "message": "slow down"}}, {"Retry-After": "2"}),
        (503, {"error": {"code": "unavailable", "message": "try later"}}, {}),
        ok(report_view()),
    )
    sleeps: list[float] = []
    client = MedsumClient(API_URL, Credentials("AK", "SK"), "us-east-1", session=session, sleep=sleeps.append)

    # When
    report = client.get(REPORT_ID)

    # Then
    assert report == report_view()
    assert len(adapter.requests) == 3
    assert sleeps[0] == 2.0
    assert 0.0 < sleeps[1] <= 8.5
    assert all(signature_is_valid(r, "SK") for r in adapter.requests)


def test_retries_are_bounded_and_the_last_error_is_raised() -> None:
    session, adapter = fake_session(
        (503, {"error": {"code": "unavailable", "message": "down"}}, {"Retry-After": "600"})
    )
    sleeps: list[float] = []
    client = MedsumClient(API_URL, Credentials("AK", "SK"), "us-east-1", session=session, sleep=sleeps.append)

    with pytest.raises(ApiError) as caught:
        client.get(REPORT_ID)

    assert (caught.value.status, caught.value.code, caught.value.message) == (503, "unavailable", "down")
    assert len(adapter.requests) == client_module.DEFAULT_MAX_ATTEMPTS
    assert sleeps == [client_module.MAX_RETRY_AFTER] * (client_module.DEFAULT_MAX_ATTEMPTS - 1)


def test_other_errors_are_not_retried() -> None:
    session, adapter = fake_session(error(500, "internal_error", "boom"))
    client = MedsumClient(
        API_URL, Credentials("AK", "SK"), "us-east-1", session=session, sleep=lambda _: None
    )

    with pytest.raises(ApiError):
        client.get(REPORT_ID)

    assert len(adapter.requests) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("-1", 0.0),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


# --------------------------------------------------------------------------------------------------
# wait loop (client level, with a fake clock)
# --------------------------------------------------------------------------------------------------
def test_wait_reports_each_status_and_returns_the_terminal_view() -> None:
    session, _ = fake_session(
        ok(report_view("PENDING")), ok(report_view("PROCESSING")), ok(report_view("COMPLETED"))
    )
    clock = FakeClock()
    client = client_with(session, clock)
    seen: list[str] = []

    report = client.wait(
        REPORT_ID, timeout=60, on_status=lambda r: seen.append(r["status"]), poll_interval=1.0
    )

    assert report["status"] == "COMPLETED"
    assert seen == ["PENDING", "PROCESSING", "COMPLETED"]
    assert clock.sleeps == [1.0, 1.5]


def test_wait_times_out() -> None:
    session, adapter = fake_session(ok(report_view("PROCESSING")))
    clock = FakeClock()
    client = client_with(session, clock)

    with pytest.raises(WaitTimeoutError) as caught:
        client.wait(REPORT_ID, timeout=5, poll_interval=1.0)

    assert str(caught.value) == f"timed out after 5s waiting for report {REPORT_ID} (last status: PROCESSING)"
    assert sum(clock.sleeps) == pytest.approx(5.0)
    assert max(clock.sleeps) <= client_module.MAX_POLL_INTERVAL
    assert len(adapter.requests) == len(clock.sleeps) + 1


# --------------------------------------------------------------------------------------------------
# Configuration: local stack discovery, identities, credentials, region
# --------------------------------------------------------------------------------------------------
def test_local_stack_is_found_in_a_parent_directory(project: Path) -> None:
    path = find_local_stack()
    assert path is not None
    assert path == (project.parent.parent / ".medsum" / "local-stack.json").resolve()
    stack = load_local_stack(path)
    assert stack.api_url == API_URL
    assert [i.name for i in stack.identities] == ["clinic-a", "clinic-b", "operator"]
    assert "secret" not in repr(stack)


def test_no_local_stack_is_found_outside_a_project() -> None:
    assert find_local_stack() is None


def test_identity_option_selects_that_identity(project: Path, run: Run) -> None:
    session, adapter = fake_session(ok(report_view()))

    code, _, _ = run(["--identity", "clinic-b", "get", REPORT_ID], session)

    assert code == 0
    assert parse_authorization(adapter.requests[0])["key"] == IDENTITIES["clinic-b"][0]
    assert signature_is_valid(adapter.requests[0], IDENTITIES["clinic-b"][1])


def test_identity_option_after_the_command(project: Path, run: Run) -> None:
    session, adapter = fake_session(ok(report_view()))

    assert run(["get", REPORT_ID, "--identity", "operator", "--json"], session)[0] == 0
    assert parse_authorization(adapter.requests[0])["key"] == IDENTITIES["operator"][0]


def test_unknown_identity_is_a_clear_usage_error(project: Path, run: Run) -> None:
    code, _, err = run(["--identity", "clinic-z", "get", REPORT_ID])

    assert code == 2
    assert "identity 'clinic-z' not found" in err
    assert "known: clinic-a, clinic-b, operator" in err


def test_identity_needs_a_local_stack() -> None:
    with pytest.raises(ConfigError, match="--identity needs"):
        resolve_settings(api_url="https://api.example.com", identity="clinic-a")


def test_no_api_url_is_a_clear_usage_error(run: Run) -> None:
    code, _, err = run(["get", REPORT_ID])

    assert code == 2
    assert err.startswith("error: no API URL: pass --api-url, set MEDSUM_API_URL")


def test_env_api_url_uses_the_default_credential_chain(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no local stack, an API URL and credentials in the environment
    monkeypatch.setenv("MEDSUM_API_URL", "https://abc.execute-api.eu-west-1.amazonaws.com/prod/")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    session, adapter = fake_session(ok(report_view()))

    # When
    code, _, _ = run(["get", REPORT_ID], session)

    # Then
    assert code == 0
    request = adapter.requests[0]
    assert request.url == f"https://abc.execute-api.eu-west-1.amazonaws.com/prod/reports/{REPORT_ID}"
    auth = parse_authorization(request)
    assert (auth["key"], auth["region"]) == ("AKIAENV", "eu-west-1")
    assert signature_is_valid(request, "env-secret")


def test_no_credentials_is_a_clear_usage_error(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDSUM_API_URL", "https://api.example.com")

    code, _, err = run(["get", REPORT_ID])

    assert code == 2
    assert err.startswith("error: no AWS credentials found")


def test_the_local_stack_file_wins_over_the_environment_url(project: Path) -> None:
    settings = resolve_settings(env={"MEDSUM_API_URL": "https://elsewhere.example.com"})

    assert settings.api_url == API_URL
    assert settings.targets_local_stack
    assert settings.credentials.access_key == IDENTITIES["clinic-a"][0]
    assert settings.region == "us-east-1"


def test_another_api_url_does_not_use_local_identities(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")

    settings = resolve_settings(api_url="https://api.example.com")

    assert not settings.targets_local_stack
    assert settings.credentials.access_key == "AKIAENV"
    assert settings.region == "us-east-1"  # neither --region nor a botocore region: the default


def test_profile_credentials_and_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given shared config files with a "dev" profile
    credentials_file = tmp_path / "credentials"
    credentials_file.write_text("[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = dev-secret\n")
    config_file = tmp_path / "config"
    config_file.write_text("[profile dev]\nregion = ap-southeast-2\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials_file))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))

    settings = resolve_settings(api_url="https://api.example.com", profile="dev")

    assert settings.credentials.access_key == "AKIADEV"
    assert settings.region == "ap-southeast-2"
    assert settings.credential_source == "profile dev"
    assert resolve_settings(api_url="https://api.example.com", profile="dev", region="us-west-2").region == (
        "us-west-2"
    )
    with pytest.raises(ConfigError, match="nope"):
        resolve_settings(api_url="https://api.example.com", profile="nope")


def test_identity_wins_over_profile(project: Path) -> None:
    settings = resolve_settings(identity="clinic-b", profile="dev")

    assert settings.credentials.access_key == IDENTITIES["clinic-b"][0]


def test_a_broken_local_stack_file_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Run
) -> None:
    broken = tmp_path / "broken"
    (broken / ".medsum").mkdir(parents=True)
    (broken / ".medsum" / "local-stack.json").write_text("{not json")
    monkeypatch.chdir(broken)

    code, _, err = run(["get", REPORT_ID])

    assert code == 2
    assert "local-stack.json is not valid JSON" in err


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------
def test_quote_evidence() -> None:
    assert quote_evidence("abc  \n def", 0, 10) == "abc def"
    assert quote_evidence("abc", 2, 5) is None
    assert quote_evidence("abc", 2, 2) is None
    quote = quote_evidence("x" * 50 + "y" * 300 + "z" * 50, 0, 400, max_chars=21)
    assert quote == "x" * 10 + "…" + "z" * 10


def test_report_text_is_never_interpreted_as_console_markup() -> None:
    # Given a summary that looks like rich markup
    report = report_view("COMPLETED")
    report["summary"] = {**report["summary"], "summary": "[bold]not bold[/bold] [/] [link=x]"}
    stream = io.StringIO()

    # When
    render_report(make_console(file=stream, no_color=True), report, source_text="[red]" * 5)

    # Then it prints verbatim, and out-of-range evidence is flagged instead of crashing
    output = stream.getvalue()
    assert "[bold]not bold[/bold] [/] [link=x]" in output
    assert "(outside the source text)" in output


def test_a_report_that_needs_review_says_why_and_marks_uncertain_items() -> None:
    # Given a verified summary with a hedged item and two items the verifier dropped
    report = report_view("COMPLETED")
    summary = report["summary"]
    summary["key_findings"][1]["certainty"] = "uncertain"
    summary["verification"] = {
        "items_checked": 5,
        "items_kept": 3,
        "dropped": {"ungrounded": 1, "unsupported": 0, "negated": 1},
        "marked_uncertain": 1,
        "quotes_not_found": 1,
        "summary_contradicts_report": False,
        "needs_review": True,
        "sections": 1,
        "verifier_version": "2026-11-30.1",
    }
    stream = io.StringIO()
    render_report(make_console(file=stream, no_color=True), report)
    output = stream.getvalue()
    # Then the reader sees that a human should look, why, and which finding is uncertain
    assert "needs review: dropped 1 negated, 1 ungrounded; 1 marked uncertain (of 5 items)" in output
    assert "Mild cardiomegaly  (uncertain)" in output
