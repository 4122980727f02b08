"""Why a request was refused: the API's ``details`` on every 4xx, the whole error as JSON under ``--json``,
and reports that break the API's limits refused before any byte is sent.

The fake HTTP transport of ``tests/support/cli.py`` (no sockets).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import REPORT_ID, Reply, Run, fake_session

pytestmark = [pytest.mark.disable_socket, pytest.mark.usefixtures("isolated_env")]


DETAILS = [
    {"location": "body.patient_id", "problem": "String should match pattern '^[A-Za-z0-9._-]{1,64}$'"},
    {"location": "body.metadata", "problem": "Dictionary should have at most 16 items"},
]


def invalid_request() -> Reply:
    body = {"error": {"code": "invalid_request", "message": "the request is not valid", "details": DETAILS}}
    return (400, body, {})


def test_a_4xx_shows_every_detail_of_the_api_on_stderr(project: Path, run: Run) -> None:
    # Given an API that refuses the request with details
    session, _ = fake_session(invalid_request())
    (project / "pt-1.txt").write_text("Chest X-ray: normal.")
    # When the report is submitted
    code, out, err = run(["submit", "pt-1.txt"], session)
    # Then the user reads what is wrong and where, and the exit code is 1
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "error: invalid_request: the request is not valid",
        f"  body.patient_id: {DETAILS[0]['problem']}",
        f"  body.metadata: {DETAILS[1]['problem']}",
    ]


def test_json_prints_the_whole_error_on_stdout(project: Path, run: Run) -> None:
    # Given an API that refuses the request with details
    session, _ = fake_session(invalid_request())
    # When a script asks for JSON
    code, out, err = run(["get", REPORT_ID, "--json"], session)
    # Then stdout holds the API's error, details included, and stderr still says it in words
    assert code == 1
    assert json.loads(out) == {
        "error": {"code": "invalid_request", "message": "the request is not valid", "details": DETAILS},
        "status": 400,
    }
    assert err.startswith("error: invalid_request: the request is not valid\n")


def test_details_that_are_not_field_problems_are_shown_too(project: Path, run: Run) -> None:
    body = {
        "error": {
            "code": "duplicate_custom_id",
            "message": "custom_id must be unique within a batch",
            "details": [{"custom_id": "r-1"}, {"custom_id": "r-2"}],
        }
    }
    session, _ = fake_session((400, body, {}))
    (project / "b.jsonl").write_text(
        '{"custom_id": "r-1", "patient_id": "p", "report_text": "x"}\n'
        '{"custom_id": "r-2", "patient_id": "p", "report_text": "y"}\n'
    )
    code, _, err = run(["batch", "submit", "b.jsonl"], session)
    assert code == 1
    assert err.splitlines()[-3:] == [
        "error: duplicate_custom_id: custom_id must be unique within a batch",
        "  custom_id: r-1",
        "  custom_id: r-2",
    ]


def test_a_report_over_the_text_limit_is_refused_before_any_request(project: Path, run: Run) -> None:
    # Given a 200 KB report (the API accepts at most 100,000 characters)
    (project / "pt-1.txt").write_text("A" * 200_000)
    session, adapter = fake_session((202, {"report_id": REPORT_ID}, {}))
    # When it is submitted with --json
    code, out, err = run(["submit", "pt-1.txt", "--json"], session)
    # Then nothing is sent, and the answer is the API's own code and details, marked as not sent
    assert adapter.requests == []
    assert code == 1
    assert json.loads(out) == {
        "error": {
            "code": "invalid_request",
            "message": "the request is not valid",
            "details": [
                {"location": "body.report_text", "problem": "String should have at most 100000 characters"}
            ],
        },
        "status": 400,
        "sent": False,
    }
    assert err.splitlines() == [
        "error: invalid_request: the request is not valid (refused before sending)",
        "  body.report_text: String should have at most 100000 characters",
    ]
    # And the report text never appears in what is printed
    assert "AAAA" not in out + err


def test_a_10_mb_report_is_not_uploaded(project: Path, run: Run) -> None:
    (project / "pt-1.txt").write_text("word " * 2_000_000)
    session, adapter = fake_session((202, {"report_id": REPORT_ID}, {}))
    code, _, err = run(["submit", "pt-1.txt"], session)
    assert adapter.requests == [] and code == 1
    assert err.startswith("error: invalid_request: the request is not valid (refused before sending)\n")


def test_a_report_at_the_limit_is_sent(project: Path, run: Run) -> None:
    (project / "pt-1.txt").write_text("A" * 100_000)
    session, adapter = fake_session((202, {"report_id": REPORT_ID, "status": "PENDING"}, {}))
    code, out, _ = run(["submit", "pt-1.txt"], session)
    assert code == 0 and out == f"{REPORT_ID}\n" and len(adapter.requests) == 1


def test_a_batch_line_over_the_text_limit_is_warned_about(project: Path, run: Run) -> None:
    # Given a batch with one report over the limit
    long_line = {"custom_id": "r-2", "patient_id": "p", "report_text": "B" * 100_001}
    (project / "b.jsonl").write_text(
        '{"custom_id": "r-1", "patient_id": "p", "report_text": "x"}\n' + json.dumps(long_line) + "\n"
    )
    session, _ = fake_session(
        (202, {"batch_id": "b-1", "status": "in_progress", "request_counts": {"total": 1}}, {})
    )
    # When it is submitted
    code, out, err = run(["batch", "submit", "b.jsonl"], session)
    # Then the line is named on stderr (it is still sent: the API reports it per line too)
    assert code == 0 and out == "b-1\n"
    assert "warning: b.jsonl:2: report_text has 100,001 characters (at most 100,000)" in err
