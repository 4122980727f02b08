"""``medsum batch submit`` picks the inline or the upload path; the client's upload calls.

The fake HTTP transport of ``tests/support/cli.py`` (no sockets): the signed ``POST /batches/uploads``, the
unsigned ``PUT`` to the presigned URL and the polls are recorded with their exact bytes and headers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from medsum_cli import batch_input as batch_module
from medsum_cli import client as client_module
from medsum_cli.client import ApiError, ConnectionFailedError, TransportError

from tests.support.cli import (
    API_URL,
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
    signature_is_valid,
)
from tests.support.clock import FakeClock

pytestmark = [pytest.mark.disable_socket, pytest.mark.usefixtures("isolated_env", "fake_time")]


UPLOAD_ID = "01JDQUPLOAD000000000000001"
BUCKET_URL = "https://medsum-uploads.s3.us-east-1.amazonaws.com"
SIGNATURE = "5e1f0c0ffee"
UPLOAD_HEADERS = {
    "Content-Type": "application/x-ndjson",
    "x-amz-server-side-encryption": "aws:kms",
    "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:us-east-1:123456789012:key/k-1",
}


# --------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------
def presigned_url(batch_id: str = UPLOAD_ID) -> str:
    return (
        f"{BUCKET_URL}/uploads/0a1b/{batch_id}.jsonl?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential=ASIAEXAMPLE&X-Amz-Expires=900&X-Amz-Signature={SIGNATURE}"
    )


def upload_created(batch_id: str = UPLOAD_ID) -> Reply:
    body = {
        "batch_id": batch_id,
        "status": "validating",
        "upload": {
            "url": presigned_url(batch_id),
            "method": "PUT",
            "headers": UPLOAD_HEADERS,
            "expires_at": "2026-11-26T06:15:00Z",
            "max_items": 100_000,
        },
        "links": {
            "self": f"{API_URL}/batches/{batch_id}",
            "results": f"{API_URL}/batches/{batch_id}/results",
        },
    }
    return ok(body, 201, Location=f"/batches/{batch_id}")


def stored() -> Reply:
    return ok(b"", 200, ETag='"3858f62230ac3c915f300c664312c11f"')


def s3_error(status: int, code: str, message: str) -> Reply:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
    return (
        status,
        (body + "<RequestId>R1</RequestId></Error>").encode(),
        {"Content-Type": "application/xml"},
    )


def jsonl(count: int, prefix: str = "c") -> bytes:
    return b"".join(item_line(f"{prefix}-{index:05d}") for index in range(count))


def assert_upload_put(request: requests.PreparedRequest, data: bytes, batch_id: str = UPLOAD_ID) -> None:
    """A plain PUT of the exact bytes to the presigned URL, with the upload's headers, not signed."""
    assert (request.method, request.url) == ("PUT", presigned_url(batch_id))
    assert body_of(request) == data
    for name, value in UPLOAD_HEADERS.items():
        assert request.headers[name] == value
    assert "Authorization" not in request.headers
    assert "X-Amz-Date" not in request.headers


def assert_create_upload(request: requests.PreparedRequest) -> None:
    assert (request.method, request.url) == ("POST", f"{API_URL}/batches/uploads")
    assert not request.body
    assert "Idempotency-Key" not in request.headers
    assert signature_is_valid(request, SECRET)


# --------------------------------------------------------------------------------------------------
# Choosing the path and splitting (pure)
# --------------------------------------------------------------------------------------------------
def many_items(count: int) -> batch_module.BatchInput:
    # Built directly: 100,001 lines through from_jsonl would only test json.loads.
    lines = tuple(batch_module.BatchLine(n, b'{"custom_id":"x"}\n', True) for n in range(1, count + 1))
    return batch_module.BatchInput(source="many.jsonl", lines=lines)


def test_auto_sends_an_input_that_fits_one_request_inline_as_it_is() -> None:
    data = jsonl(1_000)
    source = batch_module.from_jsonl(data, "in.jsonl")

    assert batch_module.plan_submission(source) == ("inline", [batch_module.Chunk(data, 1_000, 1, 1_000)])


def test_auto_uploads_an_input_over_1000_items_as_one_batch() -> None:
    data = jsonl(1_001)
    source = batch_module.from_jsonl(data, "in.jsonl")

    assert batch_module.plan_submission(source) == ("upload", [batch_module.Chunk(data, 1_001, 1, 1_001)])


def test_auto_uploads_an_input_over_5_mb_as_one_batch() -> None:
    data = b"".join(item_line(f"big-{index}", "x" * 2_000_000) for index in range(3))
    source = batch_module.from_jsonl(data, "in.jsonl")

    mode, chunks = batch_module.plan_submission(source)

    assert (mode, [chunk.body for chunk in chunks]) == ("upload", [data])


def test_an_input_over_100000_items_is_split_into_uploads_of_100000() -> None:
    source = many_items(200_001)

    mode, chunks = batch_module.plan_submission(source)

    assert mode == "upload"
    assert [(chunk.items, chunk.first_line, chunk.last_line) for chunk in chunks] == [
        (100_000, 1, 100_000),
        (100_000, 100_001, 200_000),
        (1, 200_001, 200_001),
    ]


def test_an_upload_is_split_at_the_byte_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    # The 5 GB cap itself is not built in memory: the same split, at a small cap.
    monkeypatch.setitem(batch_module.SUBMISSION_LIMITS, "upload", (100_000, 40))
    source = many_items(5)  # 18 bytes a line

    _, chunks = batch_module.plan_submission(source, "upload")

    assert [chunk.items for chunk in chunks] == [2, 2, 1]


def test_the_upload_limits_are_the_apis_and_below_s3s_single_put() -> None:
    from medsum.logic.ingest import MAX_UPLOAD_ITEMS

    assert batch_module.SUBMISSION_LIMITS["upload"] == (MAX_UPLOAD_ITEMS, batch_module.MAX_UPLOAD_BYTES)
    assert batch_module.MAX_UPLOAD_BYTES <= 5 * 2**30


@pytest.mark.parametrize(("mode", "items", "expected"), [("inline", 1_001, [1_000, 1]), ("upload", 2, [2])])
def test_mode_forces_a_path(mode: batch_module.ModeOption, items: int, expected: list[int]) -> None:
    source = batch_module.from_jsonl(jsonl(items), "in.jsonl")

    chosen, chunks = batch_module.plan_submission(source, mode)

    assert (chosen, [chunk.items for chunk in chunks]) == (mode, expected)


# --------------------------------------------------------------------------------------------------
# submit: the upload path
# --------------------------------------------------------------------------------------------------
def test_over_1000_items_are_uploaded_as_one_batch_with_one_id(project: Path, run: Run) -> None:
    # Given 1,001 items (over one inline request)
    data = jsonl(1_001)
    (project / "big.jsonl").write_bytes(data)
    session, adapter = fake_session(upload_created(), stored())

    # When
    code, out, err = run(["batch", "submit", "big.jsonl"], session)

    # Then one signed POST /batches/uploads, one plain PUT of the whole file, one id printed
    assert (code, out) == (0, f"{UPLOAD_ID}\n")
    assert err == f"uploaded batch {UPLOAD_ID} (1001 items)\n"
    create, put = adapter.requests
    assert_create_upload(create)
    assert_upload_put(put, data)


def test_a_directory_of_more_than_1000_reports_is_uploaded(project: Path, run: Run) -> None:
    reports = project / "inbox"
    reports.mkdir()
    for index in range(1_001):
        (reports / f"r{index:04d}.txt").write_text(f"report {index}", encoding="utf-8")
    session, adapter = fake_session(upload_created(), stored())

    code, out, _ = run(["batch", "submit", str(reports), "--type", "radiology"], session)

    assert (code, out) == (0, f"{UPLOAD_ID}\n")
    lines = body_of(adapter.requests[1]).splitlines()
    assert len(lines) == 1_001
    assert json.loads(lines[-1]) == {
        "custom_id": "r1000",
        "patient_id": "r1000",
        "report_text": "report 1000",
        "report_type": "radiology",
    }


def test_mode_upload_uploads_a_small_input(project: Path, run: Run) -> None:
    data = item_line("a-1") + item_line("a-2")
    (project / "reports.jsonl").write_bytes(data)
    session, adapter = fake_session(upload_created(), stored())

    code, out, _ = run(["batch", "submit", "reports.jsonl", "--mode", "upload"], session)

    assert (code, out) == (0, f"{UPLOAD_ID}\n")
    assert_upload_put(adapter.requests[1], data)


def test_mode_inline_still_splits(project: Path, run: Run) -> None:
    (project / "big.jsonl").write_bytes(jsonl(1_001))
    session, adapter = fake_session(accepted("B-1"), accepted("B-2"))

    code, out, _ = run(["batch", "submit", "big.jsonl", "--mode", "inline"], session)

    assert (code, out) == (0, "B-1\nB-2\n")
    assert [urlsplit(request.url or "").path for request in adapter.requests] == ["/batches", "/batches"]


def test_mode_is_checked_by_argparse(project: Path, run: Run) -> None:
    (project / "reports.jsonl").write_bytes(item_line("a"))

    code, _, err = run(["batch", "submit", "reports.jsonl", "--mode", "presigned"])

    assert code == 2
    assert "invalid choice: 'presigned'" in err


def test_over_the_upload_limits_several_uploads_are_made(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given upload limits of 600 items (the real 100,000 is split the same way)
    monkeypatch.setitem(batch_module.SUBMISSION_LIMITS, "upload", (600, batch_module.MAX_UPLOAD_BYTES))
    lines = [item_line(f"c-{index:04d}") for index in range(1_001)]
    (project / "big.jsonl").write_bytes(b"".join(lines))
    session, adapter = fake_session(upload_created("U-1"), stored(), upload_created("U-2"), stored())

    # When
    code, out, err = run(["batch", "submit", "big.jsonl"], session)

    # Then two uploads, each id on its own line
    assert (code, out) == (0, "U-1\nU-2\n")
    bodies = [body_of(request) for request in adapter.requests if request.method == "PUT"]
    assert bodies == [b"".join(lines[:600]), b"".join(lines[600:])]
    assert "1001 items, sent as 2 uploaded batches (at most 600 items" in err
    assert "uploaded batch U-2 (401 items, input lines 601-1001)" in err


def test_idempotency_key_is_not_used_for_an_upload_and_says_so(project: Path, run: Run) -> None:
    (project / "big.jsonl").write_bytes(jsonl(1_001))
    session, adapter = fake_session(upload_created(), stored())

    code, out, err = run(["batch", "submit", "big.jsonl", "--idempotency-key", "k-1"], session)

    assert (code, out) == (0, f"{UPLOAD_ID}\n")
    assert "warning: --idempotency-key is not used: this input is uploaded" in err
    assert all("Idempotency-Key" not in request.headers for request in adapter.requests)


def test_idempotency_key_with_mode_upload_is_a_usage_error(project: Path, run: Run) -> None:
    (project / "reports.jsonl").write_bytes(item_line("a"))
    session, adapter = fake_session(upload_created())

    code, out, err = run(
        ["batch", "submit", "reports.jsonl", "--mode", "upload", "--idempotency-key", "k"], session
    )

    assert (code, out) == (2, "")
    assert "--idempotency-key cannot be used with --mode upload" in err
    assert adapter.requests == []


def test_json_prints_the_batch_not_the_presigned_url(project: Path, run: Run) -> None:
    (project / "big.jsonl").write_bytes(jsonl(1_001))
    validating = batch_view("validating", UPLOAD_ID)
    session, adapter = fake_session(upload_created(), stored(), ok(validating))

    code, out, _ = run(["batch", "submit", "big.jsonl", "--json"], session)

    assert (code, json.loads(out)) == (0, validating)
    assert SIGNATURE not in out
    assert (adapter.requests[2].method, adapter.requests[2].url) == ("GET", f"{API_URL}/batches/{UPLOAD_ID}")


# --------------------------------------------------------------------------------------------------
# submit: upload failures
# --------------------------------------------------------------------------------------------------
def test_a_refused_upload_names_the_batch_left_validating(project: Path, run: Run) -> None:
    (project / "big.jsonl").write_bytes(jsonl(1_001))
    session, adapter = fake_session(upload_created(), s3_error(403, "AccessDenied", "Request has expired"))

    code, out, err = run(["batch", "submit", "big.jsonl"], session)

    assert (code, out) == (1, "")
    assert err.endswith(
        f"batch {UPLOAD_ID} was created but not uploaded: it stays validating\n"
        "error: AccessDenied: the upload was refused: Request has expired\n"
    )
    assert SIGNATURE not in err
    assert len(adapter.requests) == 2


def test_an_unreachable_upload_store_exits_3_without_the_url(project: Path, run: Run) -> None:
    (project / "big.jsonl").write_bytes(jsonl(1_001))
    session, _ = fake_session(upload_created(), requests.ConnectionError("refused"))

    code, out, err = run(["batch", "submit", "big.jsonl"], session)

    assert (code, out) == (3, "")
    assert "error: cannot connect to medsum-uploads.s3.us-east-1.amazonaws.com" in err
    assert SIGNATURE not in err and "X-Amz" not in err


def test_a_refused_create_upload_sends_nothing(project: Path, run: Run) -> None:
    (project / "big.jsonl").write_bytes(jsonl(1_001))
    session, adapter = fake_session(error(403, "forbidden", "not allowed"))

    assert run(["batch", "submit", "big.jsonl"], session) == (1, "", "error: forbidden: not allowed\n")
    assert len(adapter.requests) == 1


# --------------------------------------------------------------------------------------------------
# submit --wait on an uploaded batch
# --------------------------------------------------------------------------------------------------
def test_wait_follows_an_upload_from_validating_to_completed(
    project: Path, run: Run, fake_time: FakeClock
) -> None:
    # Given an upload that validates (zero counts), then runs, then completes
    (project / "big.jsonl").write_bytes(jsonl(1_200))
    session, adapter = fake_session(
        upload_created(),
        stored(),
        ok(batch_view("validating", UPLOAD_ID)),
        ok(batch_view("in_progress", UPLOAD_ID, total=1_200, pending=1_000, completed=200)),
        ok(batch_view("completed", UPLOAD_ID, total=1_200, completed=1_200)),
    )

    # When
    code, out, err = run(["batch", "submit", "big.jsonl", "--wait"], session)

    # Then
    assert (code, out) == (0, f"{UPLOAD_ID}\n")
    assert err == (
        f"uploaded batch {UPLOAD_ID} (1200 items)\n"
        f"batch {UPLOAD_ID} completed: 1200 completed; "
        f"results: medsum batch results {UPLOAD_ID} -o {UPLOAD_ID}.jsonl\n"
    )
    polls = adapter.requests[2:]
    assert [(request.method, request.url) for request in polls] == [
        ("GET", f"{API_URL}/batches/{UPLOAD_ID}")
    ] * 3
    assert fake_time.sleeps == [1.0, 1.0]  # no Retry-After from an upload: the 1 s pace


def test_wait_progress_shows_a_validating_upload_on_a_terminal(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a terminal, and a batch read while validating: no total yet
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    (project / "big.jsonl").write_bytes(jsonl(1_001))
    session, _ = fake_session(
        upload_created(),
        stored(),
        ok(batch_view("validating", UPLOAD_ID)),
        ok(batch_view("validating", UPLOAD_ID)),
        ok(batch_view("completed", UPLOAD_ID, total=1_001, completed=1_001)),
    )

    code, _, err = run(["batch", "submit", "big.jsonl", "--wait", "--no-color"], session)

    # Then the status is drawn with the total the CLI sent (the API has none yet), then the final count
    assert code == 0
    assert f"{UPLOAD_ID} validating" in err
    assert "0/1001" in err and "0/?" not in err
    assert "1001/1001" in err


def test_wait_on_a_failed_upload_shows_why_and_exits_4(project: Path, run: Run) -> None:
    (project / "big.jsonl").write_bytes(jsonl(1_001))
    rejected = {
        "line": 0,
        "code": "too_many_items",
        "message": "an uploaded batch holds at most 100000 items",
    }
    session, _ = fake_session(
        upload_created(), stored(), ok(batch_view("failed", UPLOAD_ID, errors=[rejected]))
    )

    code, out, err = run(["batch", "submit", "big.jsonl", "--wait"], session)

    assert (code, out) == (4, f"{UPLOAD_ID}\n")
    assert (
        f"batch {UPLOAD_ID} failed (too_many_items: an uploaded batch holds at most 100000 items): none;"
    ) in err


# --------------------------------------------------------------------------------------------------
# MedsumClient.create_upload / upload_batch_file
# --------------------------------------------------------------------------------------------------
def test_client_create_upload_returns_the_201_body(fake_time: FakeClock) -> None:
    session, adapter = fake_session(upload_created())

    created = client_with(session, fake_time).create_upload()

    assert created["batch_id"] == UPLOAD_ID
    assert created["upload"]["headers"] == UPLOAD_HEADERS
    [request] = adapter.requests
    assert (request.method, request.url) == ("POST", f"{API_URL}/batches/uploads")
    assert signature_is_valid(request, "SK")


def test_client_upload_sends_the_bytes_unsigned_with_the_upload_timeout(fake_time: FakeClock) -> None:
    session, adapter = fake_session(stored())
    upload: dict[str, Any] = {"url": presigned_url(), "headers": UPLOAD_HEADERS}

    client_with(session, fake_time).upload_batch_file(upload, b'{"custom_id":"a"}\n')

    [request] = adapter.requests
    assert_upload_put(request, b'{"custom_id":"a"}\n')
    assert request.headers["Content-Length"] == "18"
    assert adapter.timeouts == [(client_module.DEFAULT_TIMEOUT[0], client_module.UPLOAD_READ_TIMEOUT)]


def test_client_upload_retries_slow_down_then_succeeds(fake_time: FakeClock) -> None:
    session, adapter = fake_session(s3_error(503, "SlowDown", "Please reduce your request rate."), stored())
    upload = {"url": presigned_url(), "headers": UPLOAD_HEADERS}

    client_with(session, fake_time).upload_batch_file(upload, b"x\n")

    assert [body_of(request) for request in adapter.requests] == [b"x\n", b"x\n"]
    assert len(fake_time.sleeps) == 1


@pytest.mark.parametrize(
    ("reply", "status", "code", "message"),
    [
        (s3_error(403, "SignatureDoesNotMatch", "The signature does not match"), 403,
         "SignatureDoesNotMatch", "the upload was refused: The signature does not match"),
        (s3_error(500, "InternalError", "We encountered an internal error."), 500, "InternalError",
         "the upload was refused: We encountered an internal error."),
        ((400, b"<html>bad</html>", {}), 400, "http_400", "the upload was refused: Bad Request"),
        ((307, b"", {"Location": "https://elsewhere"}), 307, "http_307",
         "the upload was refused: Temporary Redirect"),
    ],
)  # fmt: skip
def test_client_upload_errors_are_api_errors(
    fake_time: FakeClock, reply: Reply, status: int, code: str, message: str
) -> None:
    session, adapter = fake_session(reply)
    upload = {"url": presigned_url(), "headers": UPLOAD_HEADERS}

    with pytest.raises(ApiError) as caught:
        client_with(session, fake_time).upload_batch_file(upload, b"x\n")

    assert (caught.value.status, caught.value.code, caught.value.message) == (status, code, message)
    assert len(adapter.requests) == 1  # only 429 and 503 are retried


@pytest.mark.parametrize(
    ("failure", "kind", "message"),
    [
        (requests.ConnectTimeout("slow"), ConnectionFailedError, "cannot connect to {host} (timed out)"),
        (requests.ReadTimeout("slow"), TransportError, "PUT to {host} timed out"),
        (requests.ConnectionError("reset"), ConnectionFailedError, "cannot connect to {host}"),
    ],
)
def test_client_upload_transport_errors_never_name_the_url(
    fake_time: FakeClock, failure: Exception, kind: type[Exception], message: str
) -> None:
    session, _ = fake_session(failure)
    upload = {"url": presigned_url(), "headers": UPLOAD_HEADERS}

    with pytest.raises(kind) as caught:
        client_with(session, fake_time).upload_batch_file(upload, b"x\n")

    assert str(caught.value) == message.format(host=urlsplit(BUCKET_URL).netloc)


@pytest.mark.parametrize(
    "upload",
    [{}, {"url": None}, {"url": "ftp://bucket/key"}, {"url": presigned_url(), "headers": ["Content-Type"]}],
)
def test_client_upload_refuses_a_malformed_target(fake_time: FakeClock, upload: dict[str, Any]) -> None:
    session, adapter = fake_session(stored())

    with pytest.raises(ApiError) as caught:
        client_with(session, fake_time).upload_batch_file(upload, b"x\n")

    assert caught.value.code == "invalid_response"
    assert adapter.requests == []
