"""``medsum batch``: input reading and splitting, signing of NDJSON bodies, waiting, results, errors.

The fake HTTP transport of ``tests/support/cli.py`` (no sockets): every request is recorded with its exact
bytes and headers, and every answer is scripted. The client's clock and sleep are faked, so waiting
loops run instantly and their delays can be checked.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from medsum_cli import batch_input as batch_module
from medsum_cli import client as client_module
from medsum_cli.client import WaitTimeoutError
from medsum_cli.main import main

from tests.support.cli import (
    API_URL,
    BATCH_ID,
    IDENTITIES,
    SECRET,
    Reply,
    Run,
    accepted,
    batch_view,
    body_of,
    client_with,
    error,
    fake_session,
    item_line,
    ok,
    parse_authorization,
    signature_is_valid,
)
from tests.support.clock import FakeClock

pytestmark = [pytest.mark.disable_socket, pytest.mark.usefixtures("isolated_env", "fake_time")]


NDJSON = "application/x-ndjson"


def assert_signed_ndjson(request: requests.PreparedRequest) -> None:
    assert request.method == "POST"
    assert request.url == f"{API_URL}/batches"
    assert request.headers["Content-Type"] == NDJSON
    signed = parse_authorization(request)["signed"].split(";")
    assert {"content-type", "host", "x-amz-date"} <= set(signed)
    assert signature_is_valid(request, SECRET)


# --------------------------------------------------------------------------------------------------
# submit: JSON Lines file
# --------------------------------------------------------------------------------------------------
def test_submit_jsonl_sends_the_file_byte_for_byte_signed_as_ndjson(project: Path, run: Run) -> None:
    # Given a JSON Lines file (non-ASCII text, no newline at the end)
    data = item_line("a-1") + item_line("a-2", "Fracture du radius — stable.").rstrip(b"\n")
    (project / "reports.jsonl").write_bytes(data)
    session, adapter = fake_session(accepted())

    # When
    code, out, err = run(["batch", "submit", "reports.jsonl"], session)

    # Then the batch id alone is printed, and the body is the file, exactly
    assert (code, out, err) == (0, f"{BATCH_ID}\n", "")
    [request] = adapter.requests
    assert body_of(request) == data
    assert_signed_ndjson(request)
    assert "Idempotency-Key" not in request.headers
    assert adapter.timeouts[0] is not None
    # ... and the signature covers those exact bytes and that content type
    assert not signature_is_valid(request, SECRET, body=data + b"\n")
    request.headers["Content-Type"] = "application/json"
    assert not signature_is_valid(request, SECRET)


def test_submit_jsonl_with_idempotency_key_and_json_output(project: Path, run: Run) -> None:
    (project / "reports.jsonl").write_bytes(item_line("a-1"))
    session, adapter = fake_session(accepted(total=1))

    code, out, err = run(["batch", "submit", "reports.jsonl", "--idempotency-key", "k-42", "--json"], session)

    assert (code, err) == (0, "")
    assert json.loads(out)["batch_id"] == BATCH_ID
    [request] = adapter.requests
    assert request.headers["Idempotency-Key"] == "k-42"
    assert "idempotency-key" in parse_authorization(request)["signed"].split(";")
    assert signature_is_valid(request, SECRET)


def test_malformed_lines_are_reported_and_still_sent(project: Path, run: Run) -> None:
    # Given lines that are not JSON, not an object, lack a custom_id, or have an invalid one
    data = (
        item_line("ok-1")
        + b"{not json\n"
        + b"\n"
        + b"[1, 2]\n"
        + b'{"patient_id": "p", "report_text": "t"}\n'
        + item_line("bad id!")
        + b'{"custom_id": 7}\n'
    )
    (project / "reports.jsonl").write_bytes(data)
    session, adapter = fake_session(accepted())

    # When
    code, out, err = run(["batch", "submit", "reports.jsonl"], session)

    # Then every problem is named with its line number, and the file is sent unchanged
    assert (code, out) == (0, f"{BATCH_ID}\n")
    assert err.splitlines() == [
        "warning: reports.jsonl:2: not valid JSON (Expecting property name enclosed in double quotes "
        "at column 2)",
        "warning: reports.jsonl:4: not a JSON object",
        'warning: reports.jsonl:5: no "custom_id"',
        "warning: reports.jsonl:6: custom_id 'bad id!' is not 1-64 characters of A-Z a-z 0-9 . _ : -",
        'warning: reports.jsonl:7: "custom_id" is not a string',
    ]
    assert body_of(adapter.requests[0]) == data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (item_line("x") + item_line("y") + item_line("x"), "duplicate custom_id 'x' on lines 1 and 3"),
        (b"\n  \n", "reports.jsonl has no items"),
    ],
)
def test_jsonl_that_cannot_be_sent_is_a_usage_error(
    project: Path, run: Run, content: bytes, message: str
) -> None:
    (project / "reports.jsonl").write_bytes(content)
    session, adapter = fake_session(accepted())

    code, out, err = run(["batch", "submit", "reports.jsonl"], session)

    assert (code, out) == (2, "")
    assert message in err
    assert err.startswith("error: ")
    assert adapter.requests == []


def test_type_is_refused_for_a_jsonl_file(project: Path, run: Run) -> None:
    (project / "reports.jsonl").write_bytes(item_line("x"))
    session, adapter = fake_session(accepted())

    code, _, err = run(["batch", "submit", "reports.jsonl", "--type", "radiology"], session)

    assert code == 2
    assert err.startswith("error: --type applies to a directory")
    assert adapter.requests == []


def test_missing_input_file_is_a_usage_error(project: Path, run: Run) -> None:
    assert run(["batch", "submit", "missing.jsonl"], fake_session(accepted())[0]) == (
        2,
        "",
        "error: cannot read missing.jsonl: no such file\n",
    )


def test_submit_reads_json_lines_from_stdin(project: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    data = item_line("s-1") + item_line("s-2")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    session, adapter = fake_session(accepted())

    assert run(["batch", "submit", "-"], session)[:2] == (0, f"{BATCH_ID}\n")
    assert body_of(adapter.requests[0]) == data


# --------------------------------------------------------------------------------------------------
# submit: directory of .txt reports
# --------------------------------------------------------------------------------------------------
def test_submit_directory_sends_one_line_per_txt_file_in_name_order(project: Path, run: Run) -> None:
    # Given .txt reports (one whose name is not a valid custom_id), and files that are not reports
    reports = project / "inbox"
    reports.mkdir()
    (reports / "b-002.txt").write_text("Discharge: stable.\n", encoding="utf-8")
    (reports / "a-001.txt").write_text("Fièvre, toux.", encoding="utf-8")
    (reports / "CXR 3 (left).txt").write_text("Chest X-ray: normal.", encoding="utf-8")
    (reports / "notes.md").write_text("not a report", encoding="utf-8")
    (reports / "nested").mkdir()
    (reports / "nested" / "c-003.txt").write_text("not sent", encoding="utf-8")
    session, adapter = fake_session(accepted(total=3))

    # When
    code, out, err = run(["batch", "submit", str(reports), "--type", "discharge"], session)

    # Then
    assert (code, out) == (0, f"{BATCH_ID}\n")
    assert err == (
        f"warning: {reports}:1: CXR 3 (left).txt: custom_id 'CXR 3 (left)' is not 1-64 characters "
        "of A-Z a-z 0-9 . _ : -\n"
    )
    [request] = adapter.requests
    expected = [
        {
            "custom_id": "CXR 3 (left)",
            "patient_id": "CXR-3-left",
            "report_text": "Chest X-ray: normal.",
            "report_type": "discharge",
        },
        {
            "custom_id": "a-001",
            "patient_id": "a-001",
            "report_text": "Fièvre, toux.",
            "report_type": "discharge",
        },
        {
            "custom_id": "b-002",
            "patient_id": "b-002",
            "report_text": "Discharge: stable.\n",
            "report_type": "discharge",
        },
    ]
    assert body_of(request) == b"".join(
        (json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n").encode() for item in expected
    )
    assert_signed_ndjson(request)


def test_directory_reports_never_break_a_json_line(project: Path, run: Run) -> None:
    # Given a report with characters that str.splitlines() (but not JSON) takes for line breaks
    text = "Line one\u2028line two\u2029para\x85next\x1crecord\x0bv\x0cf\nend"
    (project / "r1.txt").write_bytes(text.encode("utf-8"))
    session, adapter = fake_session(accepted(total=1))

    assert run(["batch", "submit", "."], session)[:2] == (0, f"{BATCH_ID}\n")

    # Then the body is one line under every line-splitting rule, and decodes to the report
    body = body_of(adapter.requests[0]).decode("utf-8")
    assert len(body.splitlines()) == 1
    assert json.loads(body)["report_text"] == text


def test_jsonl_lines_with_unicode_line_separators_are_reported(project: Path, run: Run) -> None:
    data = ('{"custom_id": "u-1", "report_text": "a\u2028b"}\n').encode()
    (project / "reports.jsonl").write_bytes(data)
    session, adapter = fake_session(accepted(total=1))

    code, _, err = run(["batch", "submit", "reports.jsonl"], session)

    assert code == 0
    assert err.startswith("warning: reports.jsonl:1: contains an unescaped U+0085, U+2028 or U+2029")
    assert body_of(adapter.requests[0]) == data


def test_directory_report_type_defaults_to_other(project: Path, run: Run) -> None:
    (project / "r1.txt").write_text("text", encoding="utf-8")
    session, adapter = fake_session(accepted(total=1))

    assert run(["batch", "submit", "."], session)[0] == 0
    assert json.loads(body_of(adapter.requests[0]))["report_type"] == "other"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "error: no *.txt reports in "),
        ({"r1.txt": b"text", "r2.txt": b" \n"}, "error: the report in "),
        ({"r1.txt": b"\xff\xfe"}, "not UTF-8 text"),
        ({"---.txt": b"text"}, "error: cannot derive a patient id from '---.txt'; rename the file"),
    ],
)
def test_directory_problems_are_usage_errors(
    project: Path, run: Run, files: dict[str, bytes], message: str
) -> None:
    reports = project / "inbox"
    reports.mkdir()
    for name, content in files.items():
        (reports / name).write_bytes(content)
    session, adapter = fake_session(accepted())

    code, out, err = run(["batch", "submit", str(reports)], session)

    assert (code, out) == (2, "")
    assert message in err
    assert adapter.requests == []


# --------------------------------------------------------------------------------------------------
# Splitting into several inline batches (--mode inline; auto uploads such inputs: test_cli_batch_upload.py)
# --------------------------------------------------------------------------------------------------
def test_more_than_1000_items_are_split_into_several_batches(project: Path, run: Run) -> None:
    # Given 2,001 items
    lines = [item_line(f"c-{index:04d}") for index in range(2001)]
    data = b"".join(lines)
    (project / "big.jsonl").write_bytes(data)
    ids = ["B-1", "B-2", "B-3"]
    session, adapter = fake_session(*(accepted(batch_id) for batch_id in ids))

    # When
    code, out, err = run(
        ["batch", "submit", "big.jsonl", "--idempotency-key", "run-7", "--mode", "inline"], session
    )

    # Then three batches of 1000, 1000 and 1 item, each id on its own line
    assert (code, out) == (0, "B-1\nB-2\nB-3\n")
    assert len(adapter.requests) == 3
    bodies = [body_of(request) for request in adapter.requests]
    assert [body.count(b"\n") for body in bodies] == [1000, 1000, 1]
    assert b"".join(bodies) == data
    keys = [request.headers["Idempotency-Key"] for request in adapter.requests]
    assert keys == ["run-7-1", "run-7-2", "run-7-3"]
    for request in adapter.requests:
        assert_signed_ndjson(request)
    assert "2001 items, sent as 3 batches" in err
    assert "submitted batch B-2 (1000 items, input lines 1001-2000)" in err
    assert "submitted batch B-3 (1 item, input lines 2001-2001)" in err


def test_a_directory_of_more_than_1000_reports_is_split_inline(project: Path, run: Run) -> None:
    reports = project / "inbox"
    reports.mkdir()
    for index in range(1001):
        (reports / f"r{index:04d}.txt").write_text(f"report {index}", encoding="utf-8")
    session, adapter = fake_session(accepted("B-1"), accepted("B-2"))

    code, out, _ = run(["batch", "submit", str(reports), "--mode", "inline"], session)

    assert (code, out) == (0, "B-1\nB-2\n")
    first, second = (body_of(request).splitlines() for request in adapter.requests)
    assert (len(first), len(second)) == (1000, 1)
    assert json.loads(second[0])["custom_id"] == "r1000"


def test_more_than_5_mb_is_split_inline_on_line_boundaries(project: Path, run: Run) -> None:
    # Given three items of about 2 MB each (6 MB in all, 3 items)
    lines = [item_line(f"big-{index}", "x" * 2_000_000) for index in range(3)]
    (project / "big.jsonl").write_bytes(b"".join(lines))
    session, adapter = fake_session(accepted("B-1"), accepted("B-2"))

    code, out, _ = run(["batch", "submit", "big.jsonl", "--mode", "inline"], session)

    assert (code, out) == (0, "B-1\nB-2\n")
    bodies = [body_of(request) for request in adapter.requests]
    assert bodies == [lines[0] + lines[1], lines[2]]
    assert all(len(body) <= batch_module.MAX_BATCH_REQUEST_BYTES for body in bodies)
    assert all(signature_is_valid(request, SECRET) for request in adapter.requests)


def test_split_keeps_lines_whole_and_blank_lines_in_place() -> None:
    data = b"\n" + item_line("a") + b"\n" + item_line("b") + item_line("c") + b"\n"
    source = batch_module.from_jsonl(data, "in.jsonl")

    chunks = batch_module.split(source, max_items=2)

    assert [chunk.items for chunk in chunks] == [2, 1]
    assert b"".join(chunk.body for chunk in chunks) == data
    assert [(chunk.first_line, chunk.last_line) for chunk in chunks] == [(1, 4), (5, 6)]
    assert batch_module.split(source) == [batch_module.Chunk(data, 3, 1, 6)]
    # a line longer than the byte limit is sent alone (the API answers 413 for it)
    assert [chunk.items for chunk in batch_module.split(source, max_bytes=10)] == [1, 1, 1]


@pytest.mark.parametrize(
    ("items", "size", "mode"),
    [
        (1, 100, "inline"),
        (1_000, 5_000_000, "inline"),  # exactly one inline request
        (1_001, 100_000, "upload"),  # one item too many
        (1, 5_000_001, "upload"),  # one byte too many
        (100_001, 10 * 5_000_000_000, "upload"),  # over the upload limits: split by plan_submission
    ],
)
def test_inline_is_chosen_only_when_the_input_fits_one_request(items: int, size: int, mode: str) -> None:
    assert batch_module.choose_submission_mode(items, size) == mode


def test_a_failure_after_the_first_batch_keeps_the_printed_id(project: Path, run: Run) -> None:
    (project / "big.jsonl").write_bytes(b"".join(item_line(f"c-{index}") for index in range(1001)))
    session, _ = fake_session(accepted("B-1"), error(413, "payload_too_large", "request body too large"))

    code, out, err = run(["batch", "submit", "big.jsonl", "--mode", "inline"], session)

    assert (code, out) == (1, "B-1\n")
    assert err.endswith("error: payload_too_large: request body too large\n")


# --------------------------------------------------------------------------------------------------
# submit --wait and batch wait
# --------------------------------------------------------------------------------------------------
def test_wait_polls_until_completed_honoring_retry_after_and_exits_0(
    project: Path, run: Run, fake_time: FakeClock
) -> None:
    # Given a batch that validates, progresses and completes
    (project / "reports.jsonl").write_bytes(item_line("a-1") + item_line("a-2"))
    session, adapter = fake_session(
        accepted(),
        ok(batch_view("validating", total=2, pending=2), 200, **{"Retry-After": "2"}),
        ok(batch_view("in_progress", total=2, processing=1, completed=1)),
        ok(batch_view("completed", total=2, completed=2)),
    )

    # When
    code, out, err = run(["batch", "submit", "reports.jsonl", "--wait"], session)

    # Then
    assert (code, out) == (0, f"{BATCH_ID}\n")
    assert err == (
        f"batch {BATCH_ID} completed: 2 completed; "
        f"results: medsum batch results {BATCH_ID} -o {BATCH_ID}.jsonl\n"
    )
    polls = adapter.requests[1:]
    assert [(request.method, request.url) for request in polls] == [
        ("GET", f"{API_URL}/batches/{BATCH_ID}")
    ] * 3
    assert all(signature_is_valid(request, SECRET) for request in polls)
    # 3 s (the submit's Retry-After), then 2 s (the poll's Retry-After), then the 1 s pace
    assert fake_time.sleeps == [3.0, 2.0, 1.0]


def test_wait_with_failed_items_exits_4(project: Path, run: Run) -> None:
    (project / "reports.jsonl").write_bytes(item_line("a-1") + item_line("a-2"))
    session, _ = fake_session(accepted(), ok(batch_view("completed", total=2, completed=1, failed=1)))

    code, out, err = run(["batch", "submit", "reports.jsonl", "--wait"], session)

    assert (code, out) == (4, f"{BATCH_ID}\n")
    assert f"batch {BATCH_ID} completed: 1 completed, 1 failed;" in err


def test_wait_json_prints_the_final_batch(project: Path, run: Run) -> None:
    (project / "reports.jsonl").write_bytes(item_line("a-1"))
    final = batch_view("completed", total=1, completed=1)
    session, _ = fake_session(accepted(total=1), ok(final))

    code, out, err = run(["batch", "submit", "reports.jsonl", "--wait", "--json"], session)

    assert (code, json.loads(out)) == (0, final)
    assert err == f"submitted batch {BATCH_ID} (1 item)\n"


def test_wait_times_out_with_a_hint(project: Path, run: Run, fake_time: FakeClock) -> None:
    (project / "reports.jsonl").write_bytes(item_line("a-1"))
    session, adapter = fake_session(accepted(total=1), ok(batch_view("in_progress", total=1, processing=1)))

    code, out, err = run(["batch", "submit", "reports.jsonl", "--wait", "--timeout", "10"], session)

    assert (code, out) == (3, f"{BATCH_ID}\n")
    assert err == (
        f"error: timed out after 10s waiting for batch {BATCH_ID} (last status: in_progress); "
        f"run `medsum batch wait {BATCH_ID}` to keep waiting\n"
    )
    assert sum(fake_time.sleeps) == pytest.approx(10.0, abs=0.01)
    assert len(adapter.requests) > 3


def test_wait_waits_for_every_split_batch(project: Path, run: Run) -> None:
    (project / "big.jsonl").write_bytes(b"".join(item_line(f"c-{index}") for index in range(1001)))
    session, adapter = fake_session(
        accepted("B-1"),
        accepted("B-2"),
        ok(batch_view("completed", "B-1", total=1000, completed=1000)),
        ok(batch_view("cancelled", "B-2", total=1, cancelled=1)),
    )

    code, out, err = run(["batch", "submit", "big.jsonl", "--wait", "--mode", "inline"], session)

    assert (code, out) == (4, "B-1\nB-2\n")
    assert [urlsplit(request.url or "").path for request in adapter.requests[2:]] == [
        "/batches/B-1",
        "/batches/B-2",
    ]
    assert "batch B-1 completed: 1000 completed;" in err
    assert "batch B-2 cancelled: 1 cancelled;" in err


def test_wait_draws_a_progress_bar_on_a_terminal(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    (project / "reports.jsonl").write_bytes(item_line("a-1") + item_line("a-2") + item_line("a-3"))
    session, _ = fake_session(
        accepted(total=3),
        ok(batch_view("in_progress", total=3, pending=1, processing=1, completed=1)),
        ok(batch_view("completed", total=3, completed=2, failed=1)),
    )

    code, _, err = run(["batch", "submit", "reports.jsonl", "--wait", "--no-color"], session)

    assert code == 4
    assert "pending 0  ·  processing 0  ·  completed 2  ·  failed 1" in err
    assert "3/3" in err
    # And the bar is drawn with the known total before the first poll (not after Retry-After)
    assert f"{BATCH_ID} submitted" in err
    assert err.index("0/3") < err.index(f"{BATCH_ID} in_progress")


@pytest.mark.parametrize(
    ("final", "exit_code"),
    [
        (batch_view("completed", total=2, completed=2), 0),
        (batch_view("completed", total=2, completed=1, failed=1), 4),
        (batch_view("failed", total=2, failed=2), 4),
        (batch_view("cancelled", total=2, completed=1, cancelled=1), 4),
    ],
)
def test_batch_wait_renders_the_batch_and_maps_the_outcome(
    project: Path, run: Run, final: dict[str, Any], exit_code: int
) -> None:
    session, adapter = fake_session(ok(batch_view("in_progress", total=2, pending=2)), ok(final))

    code, out, _ = run(["batch", "wait", BATCH_ID], session)

    assert code == exit_code
    assert out.startswith(f"Batch {BATCH_ID}  {final['status']}\n")
    assert len(adapter.requests) == 2


def test_client_wait_batch_reports_each_update() -> None:
    session, _ = fake_session(
        ok(batch_view("validating")), ok(batch_view("cancelling")), ok(batch_view("cancelled"))
    )
    fake = FakeClock()
    client = client_with(session, fake)
    seen: list[str] = []

    final = client.wait_batch(BATCH_ID, timeout=60, on_update=lambda batch: seen.append(batch["status"]))

    assert final["status"] == "cancelled"
    assert seen == ["validating", "cancelling", "cancelled"]
    assert fake.sleeps == [1.0, 1.0]


def test_client_wait_batch_timeout_names_the_batch() -> None:
    session, _ = fake_session(ok(batch_view("in_progress"), 200, **{"Retry-After": "600"}))
    fake = FakeClock()
    client = client_with(session, fake)

    with pytest.raises(WaitTimeoutError) as caught:
        client.wait_batch(BATCH_ID, timeout=30)

    assert caught.value.kind == "batch"
    assert max(fake.sleeps) == client_module.MAX_RETRY_AFTER  # a long Retry-After is capped
    assert sum(fake.sleeps) == pytest.approx(30.0)


# --------------------------------------------------------------------------------------------------
# status, results, cancel, list
# --------------------------------------------------------------------------------------------------
def test_status_renders_counts_and_rejected_lines(project: Path, run: Run) -> None:
    view = batch_view(
        "in_progress",
        errors=[
            {"line": 2, "custom_id": None, "code": "invalid_json", "message": "not JSON"},
            {"line": 5, "custom_id": "c-5", "code": "validation_error", "message": "report_text: empty"},
        ],
        total=3,
        pending=1,
        processing=1,
        completed=1,
    )
    session, adapter = fake_session(ok(view))

    code, out, err = run(["batch", "status", BATCH_ID], session)

    assert (code, err) == (0, "")
    assert adapter.requests[0].url == f"{API_URL}/batches/{BATCH_ID}"
    assert f"Batch {BATCH_ID}  in_progress" in out
    assert "items 3  ·  pending 1  ·  processing 1  ·  completed 1  ·  failed 0" in out
    assert "Input lines not accepted (2)" in out
    assert "line 2: invalid_json: not JSON" in out
    assert "line 5 (c-5): validation_error: report_text: empty" in out
    assert f"medsum batch wait {BATCH_ID}" in out

    session, _ = fake_session(ok(view))
    code, out, _ = run(["batch", "status", BATCH_ID, "--json"], session)
    assert (code, json.loads(out)) == (0, view)


RESULTS = (
    b'{"custom_id":"a-1","report_id":"r-1","status":"completed","summary":{"summary":"ok"},"error":null}\n'
    b'{"custom_id":"a-2","report_id":"r-2","status":"failed","summary":null,'
    b'"error":{"code":"model_rejected","message":"no"}}\n'
    b'{"custom_id":"a-3","report_id":"r-3","status":"completed","summary":{"summary":"\xc3\xa9"},"error":null}\n'
)


def test_results_output_file_gets_the_lines_exactly(project: Path, run: Run) -> None:
    session, adapter = fake_session(
        ok(RESULTS, 200, **{"Content-Type": NDJSON}), ok(batch_view("completed", total=3, completed=3))
    )

    code, out, err = run(["batch", "results", BATCH_ID, "-o", "out.jsonl"], session)

    assert (code, out) == (0, "")
    assert err == "wrote 3 results to out.jsonl (2 completed, 1 failed)\n"
    assert (project / "out.jsonl").read_bytes() == RESULTS
    results, batch = adapter.requests
    assert (results.method, results.url) == ("GET", f"{API_URL}/batches/{BATCH_ID}/results")
    assert results.headers["Accept"] == NDJSON
    assert signature_is_valid(results, SECRET)
    assert (batch.method, batch.url) == ("GET", f"{API_URL}/batches/{BATCH_ID}")


REJECTED = [
    {"line": 4, "custom_id": "a-4", "code": "invalid_item", "message": "invalid fields: report_text"},
    {"line": 5, "custom_id": None, "code": "invalid_json", "message": "the line is not valid JSON"},
]


def test_results_have_one_line_per_submitted_custom_id_rejected_ones_as_errored(
    project: Path, run: Run
) -> None:
    # Given a batch whose lines 4 and 5 were rejected, and three accepted items
    session, _ = fake_session(
        ok(RESULTS, 200, **{"Content-Type": NDJSON}),
        ok(batch_view("completed", total=3, completed=2, failed=1, errors=REJECTED)),
    )
    # When its results are downloaded
    code, _, err = run(["batch", "results", BATCH_ID, "-o", "out.jsonl"], session)
    # Then the file has the API's lines, then one ERRORED line per rejected input line
    lines = [json.loads(line) for line in (project / "out.jsonl").read_bytes().splitlines()]
    assert [(line["custom_id"], line["status"]) for line in lines] == [
        ("a-1", "completed"),
        ("a-2", "failed"),
        ("a-3", "completed"),
        ("a-4", "ERRORED"),
        (None, "ERRORED"),
    ]
    assert lines[3] == {
        "custom_id": "a-4",
        "report_id": None,
        "status": "ERRORED",
        "summary": None,
        "error": {"code": "invalid_item", "message": "invalid fields: report_text"},
        "line": 4,
    }
    assert code == 0
    assert err == "wrote 5 results to out.jsonl (2 ERRORED, 2 completed, 1 failed)\n"


def test_wait_with_rejected_lines_exits_4_and_names_them(project: Path, run: Run) -> None:
    # Given a batch that completes every accepted item, but rejected one input line
    (project / "reports.jsonl").write_bytes(item_line("a-1") + item_line("a-2") + b'{"custom_id": "a-3"}\n')
    session, _ = fake_session(
        accepted(total=2),
        ok(batch_view("completed", total=2, completed=2, errors=REJECTED[:1])),
    )
    # When it is submitted and waited for
    code, out, err = run(["batch", "submit", "reports.jsonl", "--wait"], session)
    # Then it does not pass for a clean run: exit 4, and the rejected line is named with its reason
    assert code == 4 and out == f"{BATCH_ID}\n"
    assert "2 completed, 1 rejected input lines (ERRORED in the results)" in err
    assert "  rejected line 4 (a-4): invalid_item: invalid fields: report_text" in err


def test_results_go_to_stdout_without_output_file(project: Path, run: Run) -> None:
    session, _ = fake_session(
        ok(RESULTS, 200, **{"Content-Type": NDJSON}), ok(batch_view("completed", total=3, completed=3))
    )

    code, out, err = run(["batch", "results", BATCH_ID], session)

    assert (code, out.encode()) == (0, RESULTS)
    assert err == "3 results (2 completed, 1 failed)\n"


def test_results_unwritable_output_is_a_usage_error(project: Path, run: Run) -> None:
    session, _ = fake_session(ok(RESULTS), ok(batch_view("completed", total=3, completed=3)))

    code, _, err = run(["batch", "results", BATCH_ID, "-o", "no/such/dir/out.jsonl"], session)

    assert code == 2
    assert err.startswith("error: cannot write no/such/dir/out.jsonl")


def test_cancel(project: Path, run: Run) -> None:
    session, adapter = fake_session(ok(batch_view("cancelling", total=2, processing=1, pending=1), 202))

    code, out, err = run(["batch", "cancel", BATCH_ID], session)

    assert (code, err) == (0, "")
    assert out.startswith(f"batch {BATCH_ID}: cancelling")
    [request] = adapter.requests
    assert (request.method, request.url) == ("POST", f"{API_URL}/batches/{BATCH_ID}/cancel")
    assert not request.body
    assert signature_is_valid(request, SECRET)

    session, _ = fake_session(ok(batch_view("completed", total=2, completed=2), 202))
    assert run(["batch", "cancel", BATCH_ID], session) == (0, f"batch {BATCH_ID} is already completed\n", "")

    final = batch_view("cancelled", total=2, cancelled=2)
    session, _ = fake_session(ok(final, 202))
    code, out, _ = run(["batch", "cancel", BATCH_ID, "--json"], session)
    assert (code, json.loads(out)) == (0, final)


def list_item(batch_id: str, status: str = "completed") -> dict[str, Any]:
    item = batch_view(status, batch_id, total=2, completed=2)
    del item["errors"]
    return item


def test_list_all_follows_next_token(project: Path, run: Run) -> None:
    token = "eyJwayI6IngifQ=="  # base64-looking, with characters that need escaping
    session, adapter = fake_session(
        ok({"items": [list_item("B-1"), list_item("B-2")], "next_token": token}),
        ok({"items": [list_item("B-3", "in_progress")], "next_token": None}),
    )

    code, out, _ = run(["batch", "list", "--all", "--limit", "2", "--json"], session)

    assert code == 0
    assert json.loads(out) == {
        "items": [list_item("B-1"), list_item("B-2"), list_item("B-3", "in_progress")],
        "next_token": None,
    }
    first, second = adapter.requests
    assert urlsplit(first.url or "").path == "/batches"
    assert parse_qs(urlsplit(first.url or "").query) == {"limit": ["2"]}
    assert parse_qs(urlsplit(second.url or "").query) == {"limit": ["2"], "next_token": [token]}
    assert all(signature_is_valid(request, SECRET) for request in adapter.requests)


def test_list_all_stops_on_a_repeated_token(project: Path, run: Run) -> None:
    session, adapter = fake_session(ok({"items": [list_item("B-1")], "next_token": "same"}))

    assert run(["batch", "list", "--all", "--json"], session)[0] == 0
    assert len(adapter.requests) == 2


def test_list_one_page_renders_a_table_and_hints_at_more(project: Path, run: Run) -> None:
    session, adapter = fake_session(ok({"items": [list_item("B-1")], "next_token": "tok"}))

    code, out, _ = run(["batch", "list"], session)

    assert code == 0
    assert len(adapter.requests) == 1
    assert "B-1" in out
    assert "completed" in out
    assert "--next-token tok" in out

    session, _ = fake_session(ok({"items": [], "next_token": None}))
    assert run(["batch", "list"], session) == (0, "no batches\n", "")


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "exit_code", "message"),
    [
        (
            error(400, "duplicate_custom_id", "custom_id 'a' appears twice"),
            1,
            "error: duplicate_custom_id: custom_id 'a' appears twice",
        ),
        (
            error(400, "no_valid_items", "no line is a valid item"),
            1,
            "error: no_valid_items: no line is a valid item",
        ),
        (
            error(413, "payload_too_large", "request body too large"),
            1,
            "error: payload_too_large: request body too large",
        ),
        (error(500, "internal_error", "internal error"), 3, "error: internal_error: internal error"),
        ((200, b"not json", {}), 3, "error: invalid_response: the API did not answer with JSON"),
    ],
)
def test_submit_errors_map_to_a_message_and_an_exit_code(
    project: Path, run: Run, reply: Reply, exit_code: int, message: str
) -> None:
    (project / "reports.jsonl").write_bytes(item_line("a"))
    session, _ = fake_session(reply)

    assert run(["batch", "submit", "reports.jsonl"], session) == (exit_code, "", message + "\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["batch", "status", BATCH_ID],
        ["batch", "wait", BATCH_ID],
        ["batch", "results", BATCH_ID],
        ["batch", "cancel", BATCH_ID],
    ],
)
def test_unknown_batch_is_an_api_error(project: Path, run: Run, argv: list[str]) -> None:
    session, _ = fake_session(error(404, "not_found", "batch not found"))

    assert run(argv, session) == (1, "", "error: not_found: batch not found\n")


def test_unreachable_api_exits_3_without_a_traceback(project: Path, run: Run) -> None:
    (project / "reports.jsonl").write_bytes(item_line("a"))
    session, _ = fake_session(requests.ConnectionError("refused"))

    code, out, err = run(["batch", "submit", "reports.jsonl"], session)

    assert (code, out) == (3, "")
    assert err.startswith(f"error: cannot connect to {API_URL}")
    assert "Traceback" not in err


def test_create_is_retried_on_429_with_the_same_bytes(project: Path, run: Run, fake_time: FakeClock) -> None:
    data = item_line("a") + item_line("b")
    (project / "reports.jsonl").write_bytes(data)
    session, adapter = fake_session(
        (429, {"error": {"code": "throttled", "message": "slow down"}}, {"Retry-After": "1"}), accepted()
    )

    assert run(["batch", "submit", "reports.jsonl", "--idempotency-key", "k"], session)[:2] == (
        0,
        f"{BATCH_ID}\n",
    )
    assert [body_of(request) for request in adapter.requests] == [data, data]
    assert all(request.headers["Idempotency-Key"] == "k" for request in adapter.requests)
    assert fake_time.sleeps == [1.0]


def test_batch_without_a_command_is_a_usage_error(run: Run) -> None:
    code, _, err = run(["batch"])

    assert code == 2
    assert "BATCH_COMMAND" in err


def test_global_options_work_before_and_after_the_batch_command(project: Path, run: Run) -> None:
    for argv in (
        ["--identity", "clinic-b", "batch", "status", BATCH_ID],
        ["batch", "--identity", "clinic-b", "status", BATCH_ID],
        ["batch", "status", BATCH_ID, "--identity", "clinic-b"],
    ):
        session, adapter = fake_session(ok(batch_view()))
        assert main(argv, session=session) == 0
        assert parse_authorization(adapter.requests[0])["key"] == IDENTITIES["clinic-b"][0]
