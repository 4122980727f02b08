"""Webhooks on the local stack: worker → SNS → NotifierQueue → notifier (in its sandbox, fed by the
SQS poller) → real HTTP to receivers on 127.0.0.1 (the stack runs with AllowLocalhostWebhooks=true)."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from medsum_local.testing import ApiClient
from standardwebhooks import Webhook as Verifier

from tests.support.receiver import receiver

CLI = [sys.executable, "-m", "medsum_cli.main"]
REPORT = {"patient_id": "pt-hooks", "report_text": "FINDINGS: Small left pleural effusion. No pneumothorax."}


def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


@pytest.fixture(autouse=True)
def no_webhooks_left(api: ApiClient) -> Iterator[None]:
    yield
    for identity in ("clinic-a", "clinic-b"):
        for hook in api.get("/webhooks", identity=identity).json()["items"]:
            api.delete(f"/webhooks/{hook['webhook_id']}", identity=identity)


def submit(api: ApiClient, identity: str = "clinic-a") -> str:
    response = api.post("/summarize", json=REPORT, identity=identity)
    assert response.status_code == 202, response.text
    return str(response.json()["report_id"])


def test_cli_listen_registers_and_prints_a_verified_report_completed(stack_dir: Path, api: ApiClient) -> None:
    # Given `medsum webhooks listen --register` running (as clinic-a, the CLI's default identity). The
    # endpoint receives every clinic-a event from the moment it exists, including late deliveries of
    # earlier tests' events: the test waits for *its* report's event among whatever arrives.
    listen = subprocess.Popen(
        [*CLI, "webhooks", "listen", "--port", "0", "--register", "--timeout", "150", "--json"],
        cwd=stack_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read_lines() -> None:
        for printed in listen.stdout or ():
            lines.put(printed)

    reader = threading.Thread(target=read_lines, daemon=True)
    reader.start()
    mine: dict[str, Any] | None = None
    try:
        eventually(lambda: api.get("/webhooks").json()["items"], timeout=60)
        # When a report is submitted
        report_id = submit(api)
        deadline = time.monotonic() + 120
        while mine is None and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                printed = json.loads(lines.get(timeout=1))
                if printed["event"].get("data", {}).get("report_id") == report_id:
                    mine = printed
        # And the listener is stopped with Ctrl-C
        listen.send_signal(signal.SIGINT)
        _, stderr = listen.communicate(timeout=60)
    finally:
        if listen.poll() is None:
            listen.kill()
    # Then it printed a verified report.completed for the report, and removed its registration on exit
    assert mine is not None, stderr
    assert mine["verified"] is True
    assert mine["event"]["type"] == "report.completed"
    assert set(mine["headers"]) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert api.get("/webhooks").json()["items"] == []


def test_flaky_receiver_gets_one_accepted_delivery_and_only_its_owners_events(api: ApiClient) -> None:
    with receiver([500, 500, 200]) as hook:
        created = api.post("/webhooks", json={"url": hook.url, "event_types": ["report.completed"]}).json()
        # When clinic-a's report completes (and clinic-b's too)
        theirs = submit(api, "clinic-b")
        report_id = submit(api)
        eventually(lambda: [r for r in hook.about(report_id) if r.status == 200], timeout=90)
        time.sleep(2)  # nothing else should arrive for it
    # Then three attempts, one accepted, verified by the standardwebhooks package, none for clinic-b
    # (the endpoint may also get late events of clinic-a's earlier reports: only this report's count)
    mine = hook.about(report_id)
    assert [r.status for r in mine] == [500, 500, 200]
    accepted = mine[-1]
    event = Verifier(created["secret"]).verify(accepted.body, accepted.headers)
    assert event["data"]["report_id"] == report_id and hook.about(theirs) == []
    # And the delivery log shows the attempts
    log = api.get(f"/reports/{report_id}/deliveries").json()["items"]
    assert [(a["status_code"], a["outcome"]) for a in log] == [
        (500, "retrying"),
        (500, "retrying"),
        (200, "delivered"),
    ]
    assert api.get(f"/reports/{report_id}/deliveries", identity="clinic-b").status_code == 404


def test_always_failing_receiver_ends_in_the_notifier_dlq(
    api: ApiClient, aws: Callable[[str], Any], stack_info: Any
) -> None:
    sqs = aws("sqs")
    dlq = stack_info.outputs["NotifierDeadLetterQueueUrl"]
    with receiver([503]) as hook:
        api.post("/webhooks", json={"url": hook.url})
        report_id = submit(api)

        def dead_lettered() -> list[dict[str, Any]]:
            messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)
            return [m for m in messages.get("Messages", []) if report_id in m["Body"]]

        (message,) = eventually(dead_lettered, timeout=90)
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    assert len(hook.about(report_id)) == 3  # NotifierMaxReceiveCount in the e2e stack
    outcomes = [a["outcome"] for a in api.get(f"/reports/{report_id}/deliveries").json()["items"]]
    assert outcomes == ["retrying", "retrying", "exhausted"]
