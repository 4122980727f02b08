"""Tracing: live exactly where Powertools' Tracer would be, and free (no X-Ray SDK) where it is off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from medsum import observability

SHARED = Path(__file__).resolve().parents[2] / "shared"

_PROBE = """
import json, sys
from medsum.observability import tracer

@tracer.capture_lambda_handler(capture_response=False)
def handler(event, context):
    return {"answer": event["n"] + 1}

@tracer.capture_method
def method():
    return "done"

print(json.dumps({
    "disabled": tracer.disabled,
    "xray_imported": "aws_xray_sdk.core" in sys.modules,
    "patched": sorted(__import__("aws_xray_sdk.core.patcher").core.patcher._PATCHED_MODULES)
    if "aws_xray_sdk.core" in sys.modules else [],
    "handler": handler({"n": 41}, None),
    "method": method(),
}))
"""


def _probe(env: dict[str, str]) -> dict[str, object]:
    base = {key: value for key, value in os.environ.items() if not key.startswith(("POWERTOOLS_", "LAMBDA_"))}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**base, "PYTHONPATH": str(SHARED), "AWS_DEFAULT_REGION": "us-east-1", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({}, False),  # not a Lambda function: tests, the CLI, scripts
    ],
)
def test_tracing_is_enabled_only_in_lambda_and_not_disabled(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], enabled: bool
) -> None:
    # Given
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    # Then
    assert observability.tracing_enabled() is enabled


def test_disabled_tracing_never_imports_the_xray_sdk_and_handlers_still_run() -> None:
    # When: a Lambda function whose template sets FunctionTracing=Disabled
    result = _probe({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"})

    # Then
    assert result == {
        "disabled": True,
        "xray_imported": False,
        "patched": [],
        "handler": {"answer": 42},
        "method": "done",
    }


def test_enabled_tracing_uses_the_xray_recorder() -> None:
    # When: a Lambda function with FunctionTracing=Active (segments are discarded: no trace header here)
    result = _probe({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"})

    # Then: only the AWS calls are instrumented (not whatever else is installed, e.g. requests)
    assert result == {
        "disabled": False,
        "xray_imported": True,
        "patched": ["botocore"],
        "handler": {"answer": 42},
        "method": "done",
    }
