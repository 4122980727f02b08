"""The local stack's readable log: which lines a person sees, and that they carry ids and codes only."""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from medsum_local.logs import (
    COMPLETED_MESSAGE,
    FOLDED_INTO_OUTCOME,
    RETRY_MESSAGE,
    WORKER_OUTCOMES,
    ApiRequest,
    Console,
    FunctionOutput,
    format_api_request,
    format_platform_record,
    mask_path,
    parse_log_format,
)

ROOT = Path(__file__).resolve().parents[2]
AT = time.mktime((2026, 11, 30, 10, 15, 4, 0, 0, -1))
PHI = "Patient John Doe, 67, has a 3 cm mass in the right upper lobe"


def _powertools_lines(*calls: tuple[str, str, Mapping[str, object]]) -> list[str]:
    """Real Powertools JSON records: ``(level, message, keys)`` logged by a worker-like logger."""
    stream = io.StringIO()
    logger = _logger(stream)
    for level, message, keys in calls:
        getattr(logger, level)(message, **keys)
    return stream.getvalue().splitlines()


def _logger(stream: io.StringIO) -> Logger:
    # A service of its own: Powertools loggers of one service share their handler.
    return Logger(service=f"logs-test-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(stream))


def _worker(lines: list[str]) -> list[str]:
    output = FunctionOutput("WorkerFunction")
    return [line for raw in lines if (line := output.line(raw, AT)) is not None]


def _without_time(line: str) -> str:
    assert re.fullmatch(r"\d\d:\d\d:\d\d", line[:8]), line
    return line[10:]


# ----------------------------------------------------------------------------------------------------
# Worker outcomes
# ----------------------------------------------------------------------------------------------------


def test_a_completed_message_is_one_line_with_lane_report_and_outcome() -> None:
    # Given the records a worker logs while it completes one report
    lines = _powertools_lines(
        ("info", "report claimed", {"report_id": "r-1", "lane": "interactive", "attempt": 1}),
        ("info", "report completed", {"report_id": "r-1", "lane": "interactive", "findings": 3}),
        ("info", "work message done", {"report_id": "r-1", "lane": "interactive", "outcome": "completed"}),
    )

    # When they go through the readable formatter
    printed = _worker(lines)

    # Then one line tells the outcome
    assert [_without_time(line) for line in printed] == ["worker  interactive  r-1  completed"]


def test_a_failed_report_shows_its_error_code_on_the_outcome_line_only() -> None:
    # Given a report that fails (a warning with its error code, then the message's outcome)
    lines = _powertools_lines(
        (
            "warning",
            "report failed",
            {"report_id": "r-2", "lane": "bulk", "error_code": "invalid_model_output"},
        ),
        ("info", "work message done", {"report_id": "r-2", "lane": "bulk", "outcome": "failed"}),
    )

    # When formatted
    printed = _worker(lines)

    # Then one line: lane, report, outcome and the error code
    assert [_without_time(line) for line in printed] == [
        "worker  bulk         r-2  failed  invalid_model_output"
    ]


def test_a_message_returned_to_the_queue_says_when_it_comes_back() -> None:
    lines = _powertools_lines(
        (
            "warning",
            "model unavailable; returning message to queue",
            {"report_id": "r-3", "delay_seconds": 2},
        ),
        (
            "info",
            "work message returned to queue",
            {"report_id": "r-3", "lane": "interactive", "reason": "model unavailable", "delay_seconds": 2},
        ),
    )

    printed = _worker(lines)

    assert [_without_time(line) for line in printed] == [
        "worker  interactive  r-3  returned to queue  (visible again in 2 s)"
    ]


def test_model_retries_are_counted_on_the_outcome_line_not_printed_one_by_one() -> None:
    # Given two reports whose model calls were retried: one completes, one goes back to the queue
    retry = "bedrock call failed; retrying"
    lines = _powertools_lines(
        ("warning", retry, {"report_id": "r-7", "attempt": 1, "error_code": "ThrottlingException"}),
        ("info", "work message done", {"report_id": "r-7", "lane": "bulk", "outcome": "completed"}),
        *[
            ("warning", retry, {"report_id": "r-8", "attempt": n, "error_code": "ThrottlingException"})
            for n in (1, 2, 3)
        ],
        ("info", "work message returned to queue", {"report_id": "r-8", "lane": "bulk", "delay_seconds": 1}),
    )

    # When formatted, then each report is one line with its retry count
    assert [_without_time(line) for line in _worker(lines)] == [
        "worker  bulk         r-7  completed  (1 model retry)",
        "worker  bulk         r-8  returned to queue  ThrottlingException"
        "  (3 model retries; visible again in 1 s)",
    ]


def test_a_summary_that_needs_review_says_so_on_the_outcome_line() -> None:
    # Given a report whose summary lost two items to the verifier, and one that lost none
    completed = "report completed"
    lines = _powertools_lines(
        ("info", completed, {"report_id": "r-1", "items_dropped": 2, "needs_review": True}),
        ("info", "work message done", {"report_id": "r-1", "lane": "interactive", "outcome": "completed"}),
        ("info", completed, {"report_id": "r-2", "items_dropped": 0, "needs_review": False}),
        ("info", "work message done", {"report_id": "r-2", "lane": "interactive", "outcome": "completed"}),
    )

    # When formatted, then only the first outcome line carries the note
    assert [_without_time(line) for line in _worker(lines)] == [
        "worker  interactive  r-1  completed  (needs review: 2 items dropped)",
        "worker  interactive  r-2  completed",
    ]


def test_an_outcome_without_a_lane_key_still_prints() -> None:
    lines = _powertools_lines(("info", "work message done", {"report_id": "r-4", "outcome": "skipped"}))

    assert [_without_time(line) for line in _worker(lines)] == ["worker  -            r-4  skipped"]


def test_the_worker_still_logs_the_messages_the_console_knows() -> None:
    # The console recognises outcomes by their static messages: renaming one in the worker must fail here.
    source = (ROOT / "functions/worker/app.py").read_text() + (
        ROOT / "shared/medsum/logic/process.py"
    ).read_text()
    for message in (*WORKER_OUTCOMES, *FOLDED_INTO_OUTCOME, RETRY_MESSAGE, COMPLETED_MESSAGE):
        assert f'"{message}"' in source, message
    assert "lane=lane.value" in source


# ----------------------------------------------------------------------------------------------------
# Noise dropped, problems kept, unknown lines passed through
# ----------------------------------------------------------------------------------------------------


def test_info_records_and_emf_metric_blobs_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    # Given an info record and the EMF blob Powertools prints for a metric
    metrics = Metrics(namespace="Medsum", service="medsum")
    metrics.add_metric(name="ReportsCompleted", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    emf = capsys.readouterr().out.splitlines()
    assert emf and "_aws" in json.loads(emf[0])
    lines = [*_powertools_lines(("info", "report accepted", {"report_id": "r-5", "text_chars": 120})), *emf]

    # When formatted, then nothing is printed
    assert _worker(lines) == []


def test_the_no_application_metrics_warning_and_its_source_line_are_dropped() -> None:
    # Given the two lines Python prints for Powertools' empty-metrics warning, then another warning
    message = "No application metrics to publish. The cold-start metric may be published if enabled."
    empty = warnings.formatwarning(message, UserWarning, "/opt/python/base.py", 210, line="warnings.warn(")
    other = warnings.formatwarning("something else", DeprecationWarning, "/var/task/app.py", 3, line="f()")
    lines = [*empty.splitlines(), *other.splitlines()]
    assert len(lines) == 4

    # When formatted
    printed = _worker(lines)

    # Then the metrics warning is gone and the other one passes through unchanged
    assert printed == other.splitlines()


def test_lines_that_are_not_json_records_pass_through_unchanged() -> None:
    lines = [
        "Traceback (most recent call last):",
        '  File "/var/task/app.py", line 3, in <module>',
        "KeyError: 'x'",
        "[1, 2, 3]",
        "{not json",
    ]

    assert _worker(lines) == lines


def test_warnings_and_errors_print_their_message_and_whitelisted_keys_only() -> None:
    # Given warning/error records that also carry text-like keys (they never should; the formatter
    # must not print them even if they did)
    try:
        raise ValueError(PHI)
    except ValueError:
        stream = io.StringIO()
        logger = _logger(stream)
        logger.exception("unhandled error", report_id="r-6", report_text=PHI, summary={"summary": PHI})
    lines = [
        *_powertools_lines(
            (
                "warning",
                "webhook delivery failed",
                {"attempt": 2, "error_code": "timeout", "note": PHI},
            ),
        ),
        *stream.getvalue().splitlines(),
    ]

    printed = [_without_time(line) for line in _worker(lines)]

    assert printed == [
        "WARNING WorkerFunction: webhook delivery failed  error_code=timeout attempt=2",
        "ERROR   WorkerFunction: unhandled error  report_id=r-6 exception_name=ValueError",
    ]
    assert not any("Patient" in line or "mass" in line for line in printed)


def test_the_runtime_error_record_shows_its_type_not_its_message_or_trace() -> None:
    record = {
        "level": "ERROR",
        "message": "invocation failed",
        "errorType": "RuntimeError",
        "errorMessage": PHI,
        "requestId": "req-1",
        "stackTrace": ["Traceback ...", PHI],
    }

    [line] = _worker([json.dumps(record)])

    assert (
        _without_time(line)
        == "ERROR   WorkerFunction: invocation failed  requestId=req-1 errorType=RuntimeError"
    )


# ----------------------------------------------------------------------------------------------------
# API requests and platform records
# ----------------------------------------------------------------------------------------------------


def test_an_api_request_line_has_caller_method_path_status_and_latency() -> None:
    request = ApiRequest(caller="clinic-a", method="GET", path="/reports/01JD", status=200, latency_ms=12)
    refused = ApiRequest(
        caller="AKIAUNKNOWN",
        method="POST",
        path="/summarize",
        status=403,
        latency_ms=1,
        error_type="ACCESS_DENIED",
    )

    assert (
        _without_time(format_api_request(request, AT)) == "api     clinic-a    GET /reports/01JD  200  12 ms"
    )
    assert (
        _without_time(format_api_request(refused, AT))
        == "api     AKIAUNKNOWN  POST /summarize  403 ACCESS_DENIED  1 ms"
    )


def test_client_chosen_values_cannot_break_the_line_or_the_terminal() -> None:
    request = ApiRequest(caller="-", method="GET", path="/reports/a\nb\x1b[2J", status=404, latency_ms=3)

    line = format_api_request(request, AT)

    assert "\n" not in line and "\x1b" not in line
    assert "/reports/a?b?[2J" in line


def test_patient_ids_are_masked_in_paths() -> None:
    assert mask_path("/patients/pt-001/reports") == "/patients/{patient_id}/reports"
    assert mask_path("/reports/01JD") == "/reports/01JD"


def test_platform_records_print_problems_only() -> None:
    init = {"type": "platform.initReport", "function": "ApiFunction", "sandbox": 0, "initDurationMs": 812.5}
    timeout = {
        "type": "platform.report",
        "function": "WorkerFunction",
        "requestId": "req-2",
        "status": "timeout",
        "errorType": "Sandbox.Timedout",
        "durationMs": 120250.0,
    }
    raised = {**timeout, "status": "error", "errorType": "RuntimeError"}  # the sandbox printed it already
    poller = {"type": "poller.error", "eventSource": "WorkQueueEvent", "error": f"ValueError('{PHI}')"}

    assert format_platform_record(init, AT) is None
    assert format_platform_record(raised, AT) is None
    assert _without_time(format_platform_record(timeout, AT) or "") == (
        "WARNING WorkerFunction: platform.report  requestId=req-2 status=timeout errorType=Sandbox.Timedout "
        "durationMs=120250.0"
    )
    assert _without_time(format_platform_record(poller, AT) or "") == (
        "WARNING WorkQueueEvent: poller.error  errorType=ValueError"
    )


# ----------------------------------------------------------------------------------------------------
# The console: one object, two formats
# ----------------------------------------------------------------------------------------------------


def test_json_console_prints_every_record_as_it_is() -> None:
    stream = io.StringIO()
    console = Console("json", stream=stream, clock=lambda: AT)
    access = '{"requestId":"1","status":"200"}'

    console.access_log(access)
    console.api_request(ApiRequest(caller="clinic-a", method="GET", path="/", status=200, latency_ms=1))
    console.record({"type": "platform.initReport", "function": "ApiFunction"})

    assert not console.captures_function_output
    assert stream.getvalue().splitlines() == [
        access,
        '{"type": "platform.initReport", "function": "ApiFunction"}',
    ]


def test_text_console_prints_readable_lines_only() -> None:
    stream = io.StringIO()
    console = Console("text", stream=stream, clock=lambda: AT)
    worker = console.function_output("WorkerFunction")

    console.access_log('{"requestId":"1","status":"200"}')
    console.api_request(ApiRequest(caller="clinic-a", method="GET", path="/", status=200, latency_ms=1))
    console.record({"type": "platform.initReport", "function": "ApiFunction"})
    worker(
        json.dumps(
            {"level": "INFO", "message": "work message done", "outcome": "completed", "report_id": "r"}
        )
    )

    assert console.captures_function_output
    assert [_without_time(line) for line in stream.getvalue().splitlines()] == [
        "api     clinic-a    GET /  200  1 ms",
        "worker  -            r  completed",
    ]


def test_log_format_is_text_or_json() -> None:
    assert parse_log_format(None) == "text"
    assert parse_log_format("", default="json") == "json"
    assert parse_log_format(" JSON ") == "json"
    with pytest.raises(ValueError, match="MEDSUM_LOG_FORMAT"):
        parse_log_format("yaml")
