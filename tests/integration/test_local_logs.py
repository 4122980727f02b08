"""The offline stack's terminal: readable lines by default for ``medsum-local``, every record with JSON.

The tiny application in ``local_stack_app/`` runs in the real ``LocalStack`` (text format, its console
printing into a buffer), and one of its functions in a bare ``FunctionRuntime``, once with its output
captured and once writing to the inherited stdout/stderr (the JSON format, what tests and
``--verbose`` see).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from medsum_local.logs import Console
from medsum_local.runtime import FunctionRuntime, FunctionSpec, LineSink
from medsum_local.stack import LocalStack, StackInfo
from medsum_local.testing import ApiClient, isolated_config, wait_for

APP = Path(__file__).parent / "local_stack_app"
SECRET = "secret internal detail"  # what the echo function's /boom raises with


@pytest.fixture(scope="module")
def printed() -> io.StringIO:
    return io.StringIO()


@pytest.fixture(scope="module")
def info(printed: io.StringIO) -> Iterator[StackInfo]:
    config = isolated_config(APP, environ={}, default_concurrency=1, log_format="text")
    with LocalStack(config, console=Console(config.log_format, stream=printed)) as info:
        yield info


def _lines(printed: io.StringIO, pattern: str) -> list[str]:
    return [line for line in printed.getvalue().splitlines() if re.search(pattern, line)]


def test_text_format_prints_one_readable_line_per_request(info: StackInfo, printed: io.StringIO) -> None:
    # Given a signed request, an unsigned one and one whose function raises
    api = ApiClient(info, identity="clinic-a")
    assert api.get("/items/42").status_code == 200
    assert api.get("/items/43", identity=None).status_code == 403
    assert api.get("/boom").status_code == 502

    # Then each request is one line: caller, method, path, status, latency
    wait_for(lambda: _lines(printed, r"GET /boom  502"), timeout=10, message="the /boom line")
    assert len(_lines(printed, r"^\d\d:\d\d:\d\d  api     clinic-a    GET /items/42  200  \d+ ms$")) == 1
    assert len(_lines(printed, r"  api     -           GET /items/43  403 \w+  \d+ ms$")) == 1
    # And the function's error is one line with its type, printed from its sandbox's captured output
    wait_for(
        lambda: _lines(printed, r"ERROR   EchoFunction: invocation failed .*errorType=RuntimeError"),
        timeout=10,
        message="the function error line",
    )
    # And nothing else: no JSON record, no cold-start report, no exception text
    output = printed.getvalue()
    assert "{" not in output and "initReport" not in output and SECRET not in output


def _echo_runtime(
    log: Callable[[Mapping[str, Any]], None], output: Callable[[str], LineSink] | None = None
) -> FunctionRuntime:
    spec = FunctionSpec(
        logical_id="EchoFunction",
        function_name="echo",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:echo",
        handler="app.lambda_handler",
        code_dir=str(APP / "echo"),
        layer_dirs=(),
        timeout_seconds=10,
        memory_mb=128,
        environment={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    return FunctionRuntime([spec], log=log, output=output)


def test_json_format_leaves_the_sandboxes_output_to_the_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    # Given a runtime that does not capture its sandboxes' output (json format, the default)
    records: list[Mapping[str, Any]] = []
    runtime = _echo_runtime(log=records.append)
    try:
        # When the handler raises
        result = runtime.invoke("EchoFunction", {"resource": "/boom"})
    finally:
        runtime.stop()

    # Then the full JSON record, stack trace included, is on the inherited stderr, as on Lambda
    assert result["FunctionError"] == "Unhandled"
    [line] = [line for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    record = json.loads(line)
    assert record["message"] == "invocation failed" and record["errorType"] == "RuntimeError"
    assert record["stackTrace"]
    assert [r["type"] for r in records] == ["platform.initReport", "platform.report"]


def test_text_format_captures_the_sandboxes_output(capfd: pytest.CaptureFixture[str]) -> None:
    # Given a runtime whose sandboxes' output goes to a text console
    stream = io.StringIO()
    console = Console("text", stream=stream)
    runtime = _echo_runtime(log=console.record, output=console.function_output)
    try:
        # When the handler raises
        result = runtime.invoke("EchoFunction", {"resource": "/boom"})
    finally:
        runtime.stop()  # the sandbox exits: its last lines are read before stop returns

    # Then one readable line, nothing on the terminal's own streams
    assert result["FunctionError"] == "Unhandled"
    lines = stream.getvalue().splitlines()
    assert [line[10:] for line in lines] == [
        f"ERROR   EchoFunction: invocation failed  requestId={result['RequestId']} errorType=RuntimeError"
    ]
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
