"""A sandbox killed under an invocation behaves like a crashed Lambda environment; the local stack shows
which process to kill; template settings that are not parameters can be overridden for local runs.

Runs the tiny application in ``local_stack_app/`` (its ``SlowFunction`` sleeps a second per message and
records the delivery in S3 when it finishes).
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from medsum_local.deploy import DeploymentError, deploy_template
from medsum_local.emulator import Emulator
from medsum_local.logs import Console
from medsum_local.stack import LocalStack, StackInfo
from medsum_local.template import load_template, with_overrides
from medsum_local.testing import isolated_config, wait_for

pytestmark = pytest.mark.enable_socket

APP = Path(__file__).parent / "local_stack_app"
VISIBILITY_SECONDS = 3  # instead of the template's 30: the killed message comes back quickly


class RecordingConsole(Console):
    """Keeps the runtime's and pollers' platform records for the assertions."""

    def __init__(self) -> None:
        super().__init__("json")
        self.records: list[dict[str, Any]] = []

    def record(self, record: Mapping[str, Any]) -> None:
        self.records.append(dict(record))


@pytest.fixture(scope="module")
def console() -> RecordingConsole:
    return RecordingConsole()


@pytest.fixture(scope="module")
def local_stack(console: RecordingConsole) -> Iterator[LocalStack]:
    slow_queue = {"Resources.SlowQueue.Properties.VisibilityTimeout": str(VISIBILITY_SECONDS)}
    local = LocalStack(isolated_config(APP, environ={}, template_overrides=slow_queue), console=console)
    with local:
        yield local


def _sandboxes(info: StackInfo, function: str) -> list[dict[str, Any]]:
    listed = requests.get(f"{info.bedrock_admin_url}/sandboxes", timeout=5).json()["sandboxes"]
    return [sandbox for sandbox in listed if sandbox["function"] == function]


def _busy(info: StackInfo, function: str) -> dict[str, Any] | None:
    return next((s for s in _sandboxes(info, function) if s["busy"] and s["pid"]), None)


def test_template_override_reaches_the_deployed_queue(local_stack: LocalStack, info: StackInfo) -> None:
    assert local_stack.emulator is not None
    sqs = local_stack.emulator.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=info.outputs["SlowQueueUrl"], AttributeNames=["All"])

    assert attributes["Attributes"]["VisibilityTimeout"] == str(VISIBILITY_SECONDS)


def test_sandboxes_are_listed_with_their_pids(
    local_stack: LocalStack, info: StackInfo, console: RecordingConsole
) -> None:
    # Given the function has run once (its sandbox is warm)
    assert local_stack.runtime is not None
    local_stack.runtime.invoke("EchoFunction", {"resource": "/public"})

    listed = _sandboxes(info, "EchoFunction")

    # Then its sandboxes are listed, the warm one with the pid of a live process of ours
    assert [s["index"] for s in listed] == list(range(len(listed)))
    warm = [s for s in listed if s["pid"] is not None]
    assert warm and all(not s["busy"] and s["request_id"] is None for s in listed)
    os.kill(warm[0]["pid"], 0)  # exists (raises otherwise)
    inits = [r for r in console.records if r.get("type") == "platform.initReport"]
    assert {s["pid"] for s in warm} <= {r["pid"] for r in inits}


def test_killed_sandbox_fails_its_invocation_and_the_message_comes_back(
    local_stack: LocalStack, info: StackInfo, console: RecordingConsole
) -> None:
    assert local_stack.emulator is not None
    s3, sqs = local_stack.emulator.client("s3"), local_stack.emulator.client("sqs")
    poller = next(p for p in local_stack.pollers if p.source.function_logical_id == "SlowFunction")
    errors_before = poller.stats["function_errors"]
    # Given a message the slow function is working on (it sleeps a second before recording it)
    test = f"kill-{uuid.uuid4().hex[:8]}"
    sqs.send_message(QueueUrl=info.outputs["SlowQueueUrl"], MessageBody=json.dumps({"test": test}))
    busy = wait_for(lambda: _busy(info, "SlowFunction"), timeout=15, interval=0.02, message="a busy sandbox")

    # When its process is killed in the middle of the invocation
    os.kill(busy["pid"], signal.SIGKILL)

    # Then the invocation fails like a crashed Lambda environment, and the poller deletes nothing
    report = wait_for(
        lambda: next(
            (
                r
                for r in console.records
                if r.get("type") == "platform.report" and r.get("requestId") == busy["request_id"]
            ),
            None,
        ),
        timeout=10,
        message="the platform report of the killed invocation",
    )
    assert report["status"] == "error" and report["errorType"] == "Runtime.ExitError"
    assert poller.stats["function_errors"] == errors_before + 1

    # And the message comes back after its visibility timeout, to a fresh sandbox that finishes it
    bucket = info.outputs["ObservationsBucket"]

    def finished() -> list[dict[str, Any]]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"slow/{test}/").get("Contents", [])
        return [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed]

    runs = wait_for(finished, timeout=VISIBILITY_SECONDS + 20, message="the redelivered message's run")
    assert len(runs) == 1 and runs[0]["pid"] != busy["pid"]
    assert busy["pid"] not in {s["pid"] for s in _sandboxes(info, "SlowFunction")}
    attributes = sqs.get_queue_attributes(
        QueueUrl=info.outputs["SlowQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    wait_for(
        lambda: (
            sqs.get_queue_attributes(
                QueueUrl=info.outputs["SlowQueueUrl"],
                AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
            == "0"
        ),
        timeout=10,
        message="the redelivered message deleted",
    )
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_template_overrides_replace_literals_only() -> None:
    template = load_template(APP / "template.yaml")

    changed = with_overrides(
        template,
        {"Resources.SlowQueue.Properties.VisibilityTimeout": "7", "Parameters.StageName.Default": "dev"},
    )

    assert changed["Resources"]["SlowQueue"]["Properties"]["VisibilityTimeout"] == 7
    assert changed["Parameters"]["StageName"]["Default"] == "dev"
    assert template["Resources"]["SlowQueue"]["Properties"]["VisibilityTimeout"] == 30  # a copy
    for path, value, problem in (
        ("Resources.SlowQueue.Properties.DelaySeconds", "1", "no such setting"),
        ("Resources.Missing.Properties.Timeout", "1", "no such setting"),
        ("Resources.SlowQueue.Properties.VisibilityTimeout", "soon", "not a number"),
        ("Resources.WorkerFunction.Properties.Events", "none", "not a literal"),
        ("Resources.PartialQueue.Properties.RedrivePolicy.maxReceiveCount", "3", "not a literal"),
    ):
        with pytest.raises(ValueError, match=problem):
            with_overrides(template, {path: value})


def test_a_bad_template_override_stops_the_deploy_before_it_starts() -> None:
    # An emulator that was never started: the override is checked before anything is deployed
    with pytest.raises(DeploymentError, match="no such setting"):
        deploy_template(
            Emulator(port=0),
            APP / "template.yaml",
            template_overrides={"Resources.SlowQueue.Properties.Nope": "1"},
        )
