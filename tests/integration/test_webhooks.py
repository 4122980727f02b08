"""Webhooks against the template's resources in moto: registration routes, KMS-encrypted secrets, and
the notifier delivering real HTTP requests to a receiver on 127.0.0.1 (the local-only flag on).

The event travels the real path: worker → SNS topic → (moto's SNS→SQS delivery) NotifierQueue → the
notifier handler with the Lambda-shaped record the local poller builds.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from medsum_local.inprocess import REGION, Stack
from medsum_local.poller import sqs_record
from standardwebhooks import Webhook as Verifier

from tests.support.events import (
    CLINIC_A,
    CLINIC_B,
    FakeLambdaContext,
    Handler,
    api_event,
    api_handler,
    notifier_handler,
    sqs_event,
    worker_handler,
)
from tests.support.events import sqs_record as work_record
from tests.support.receiver import receiver
from tests.support.worker import REPLY, TEXT, use_model, work

PUBLIC_URL = "https://93.184.216.34/hooks/medsum"


@pytest.fixture
def modules(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> tuple[Handler, Handler, Handler]:
    # The local stack's explicit flag: plain http://127.0.0.1 receivers are allowed (tests only).
    monkeypatch.setenv("ALLOW_LOCAL_HTTP_WEBHOOKS", "true")
    # Built from the environment above: their URL policy allows 127.0.0.1
    return api_handler(), worker_handler(), notifier_handler()


def call(api: Handler, method: str, path: str, body: Any = None, caller: str = CLINIC_A) -> tuple[int, Any]:
    response = api.lambda_handler(api_event(method, path, body=body, caller=caller), FakeLambdaContext())
    text = response["body"]
    return int(response["statusCode"]), json.loads(text) if text else None


def complete_report(api: Handler, worker: Handler) -> str:
    """Submit a report as clinic-a and let the worker complete it (publishing report.completed)."""
    worker, _ = use_model(worker, [REPLY])
    _, submitted = call(api, "POST", "/summarize", {"patient_id": "pt-9", "report_text": TEXT})
    report_id = str(submitted["report_id"])
    assert worker.lambda_handler(sqs_event(work(report_id)), FakeLambdaContext()) == {"batchItemFailures": []}
    return report_id


def notifier_records(stack: Stack, wait_seconds: float = 0) -> list[dict[str, Any]]:
    """Receive the NotifierQueue's messages as the local poller hands them to the function (waiting up
    to ``wait_seconds`` for a retry delay to pass)."""
    sqs = stack.client("sqs")
    url = stack.outputs["NotifierQueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    deadline = time.monotonic() + wait_seconds
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], VisibilityTimeout=0
        ).get("Messages", [])
        if messages or time.monotonic() >= deadline:
            return [sqs_record(m, event_source_arn=arn, region=REGION) for m in messages]
        time.sleep(0.2)


def handle(stack: Stack, notifier: Handler, record: dict[str, Any]) -> dict[str, Any]:
    """Invoke the notifier with one record and, like the poller, delete it unless it failed."""
    result: dict[str, Any] = notifier.lambda_handler(sqs_event(record), FakeLambdaContext())
    if not result["batchItemFailures"]:
        queue = stack.outputs["NotifierQueueUrl"]
        stack.client("sqs").delete_message(QueueUrl=queue, ReceiptHandle=record["receiptHandle"])
    return result


def with_receive_count(record: dict[str, Any], count: int) -> dict[str, Any]:
    return {**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": str(count)}}


def test_register_list_rotate_delete_and_owner_isolation(
    modules: tuple[Handler, Handler, Handler], stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    api, _, _ = modules
    # When clinic-a registers an endpoint
    status, created = call(api, "POST", "/webhooks", {"url": PUBLIC_URL, "event_types": ["report.completed"]})
    # Then it gets the secret once
    assert status == 201 and created["secret"].startswith("whsec_")
    webhook_id = created["webhook_id"]
    # And the table holds only KMS ciphertext
    table = stack.client("dynamodb").scan(TableName=stack.outputs["WebhooksTableName"])["Items"]
    assert created["secret"] not in json.dumps(table)
    # And listing never shows a secret; clinic-b sees nothing and cannot delete or rotate it
    status, listed = call(api, "GET", "/webhooks")
    assert status == 200 and [w["webhook_id"] for w in listed["items"]] == [webhook_id]
    assert created["secret"] not in json.dumps(listed) and "secret" not in listed["items"][0]
    assert call(api, "GET", "/webhooks", caller=CLINIC_B)[1] == {"items": []}
    assert call(api, "DELETE", f"/webhooks/{webhook_id}", caller=CLINIC_B)[0] == 404
    assert call(api, "POST", f"/webhooks/{webhook_id}/rotate-secret", caller=CLINIC_B)[0] == 404
    # When clinic-a rotates
    status, rotated = call(api, "POST", f"/webhooks/{webhook_id}/rotate-secret")
    assert status == 200 and rotated["secret"] != created["secret"]
    assert call(api, "GET", "/webhooks")[1]["items"][0]["previous_secret_expires_at"]
    # And no secret ever reached the logs
    logs = capsys.readouterr().out
    assert "whsec_" not in logs and created["secret"][6:] not in logs and rotated["secret"][6:] not in logs
    # And deletes
    assert call(api, "DELETE", f"/webhooks/{webhook_id}")[0] == 204
    assert call(api, "DELETE", f"/webhooks/{webhook_id}")[0] == 404


HOSTILE_URLS = [
    ("http://93.184.216.34/x", "url_scheme"),
    ("https://10.0.0.8/x", "url_address"),
    ("https://192.168.0.1/x", "url_address"),
    ("https://169.254.169.254/latest/meta-data/", "url_address"),
    ("https://[::1]/x", "url_address"),
    ("https://[::ffff:169.254.169.254]/x", "url_address"),
    ("https://2130706433/x", "url_host"),
    ("https://0177.0.0.1/x", "url_host"),
    ("https://admin:pw@93.184.216.34/x", "url_credentials"),
    ("https://93.184.216.34:8080/x", "url_port"),
    ("https://localhost/x", "url_host"),
    ("http://127.0.0.2:9000/x", "url_scheme"),  # the local flag allows exactly 127.0.0.1
]


def test_hostile_urls_are_refused_at_registration(modules: tuple[Handler, Handler, Handler]) -> None:
    api, _, _ = modules
    for url, code in HOSTILE_URLS:
        status, body = call(api, "POST", "/webhooks", {"url": url})
        assert (status, body["error"]["code"]) == (400, code), url
    assert call(api, "GET", "/webhooks")[1] == {"items": []}


def test_receiver_failing_twice_gets_exactly_one_verified_delivery(
    modules: tuple[Handler, Handler, Handler],
    stack: Stack,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api, worker, notifier = modules
    with receiver([500, 503, 200]) as hook:
        # Given an endpoint registered for report.completed, and a second one that always works
        _, created = call(api, "POST", "/webhooks", {"url": hook.url, "event_types": ["report.completed"]})
        with receiver([200]) as healthy:
            call(api, "POST", "/webhooks", {"url": healthy.url})
            # When a report completes and the notifier gets its event three times (two failures)
            report_id = complete_report(api, worker)
            (record,) = notifier_records(stack)
            for count in (1, 2, 3):
                result = notifier.lambda_handler(
                    sqs_event(with_receive_count(record, count)), FakeLambdaContext()
                )
                assert bool(result["batchItemFailures"]) is (count < 3)
            # Then the healthy endpoint got it once, not once per retry
            assert len(healthy.requests) == 1
        # And the flaky receiver got three attempts with one accepted, verified by standardwebhooks
        assert [r.status for r in hook.requests] == [500, 503, 200]
        (accepted,) = hook.accepted
        event = Verifier(created["secret"]).verify(accepted.body, accepted.headers)
        assert event["type"] == "report.completed" and event["data"]["report_id"] == report_id
        assert len({r.headers["webhook-id"] for r in hook.requests}) == 1
        assert "pt-9" not in accepted.body.decode() and "cardiomegaly" not in accepted.body.decode().lower()
    # And the delivery log lists the attempts (no bodies), only for the owner
    status, log = call(api, "GET", f"/reports/{report_id}/deliveries")
    mine = [a for a in log["items"] if a["webhook_id"] == created["webhook_id"]]
    assert status == 200 and [(a["status_code"], a["outcome"]) for a in mine] == [
        (500, "retrying"),
        (503, "retrying"),
        (200, "delivered"),
    ]
    assert mine[0]["next_retry_at"] and mine[2]["next_retry_at"] is None
    assert all(a["latency_ms"] >= 0 and "body" not in a for a in mine)
    assert call(api, "GET", f"/reports/{report_id}/deliveries", caller=CLINIC_B)[0] == 404
    # And the notifier never logged the secret, the body or the URL
    logs = capsys.readouterr().out
    assert created["secret"][6:] not in logs and hook.url not in logs and "cardiomegaly" not in logs.lower()


def test_always_failing_receiver_ends_in_the_notifier_dlq_and_replay_resends(
    modules: tuple[Handler, Handler, Handler], stack: Stack
) -> None:
    api, worker, notifier = modules
    sqs = stack.client("sqs")
    with receiver([500]) as hook:
        call(api, "POST", "/webhooks", {"url": hook.url})
        report_id = complete_report(api, worker)
        # When every receive (NotifierMaxReceiveCount = 3 here) fails
        for _ in range(3):
            (record,) = notifier_records(stack, wait_seconds=5)
            assert notifier.lambda_handler(sqs_event(record), FakeLambdaContext())["batchItemFailures"]
        # Then SQS moves the event to the notifier's dead-letter queue
        assert notifier_records(stack, wait_seconds=3) == []
        dead = sqs.receive_message(QueueUrl=stack.outputs["NotifierDeadLetterQueueUrl"]).get("Messages", [])
        assert len(dead) == 1 and report_id in dead[0]["Body"]
        assert len(hook.requests) == 3
        _, log = call(api, "GET", f"/reports/{report_id}/deliveries")
        assert [a["outcome"] for a in log["items"]] == ["retrying", "retrying", "exhausted"]
        # When the receiver is fixed and the owner replays the delivery
        hook.script = [200]
        delivery_id = log["items"][0]["delivery_id"]
        assert call(api, "POST", f"/webhooks/deliveries/{delivery_id}/replay", caller=CLINIC_B)[0] == 404
        status, accepted = call(api, "POST", f"/webhooks/deliveries/{delivery_id}/replay")
        assert status == 202 and accepted == {"delivery_id": delivery_id, "status": "queued"}
        (replay,) = notifier_records(stack)
        assert notifier.lambda_handler(sqs_event(replay), FakeLambdaContext()) == {"batchItemFailures": []}
        # Then the same event (same webhook-id) arrives
        assert hook.requests[-1].status == 200
        assert hook.requests[-1].headers["webhook-id"] == hook.requests[0].headers["webhook-id"]


def test_gone_disables_the_endpoint_and_redirects_are_not_followed(
    modules: tuple[Handler, Handler, Handler], stack: Stack
) -> None:
    api, worker, notifier = modules
    redirect = {302: {"Location": "http://169.254.169.254/latest/meta-data/"}}
    with receiver([410]) as gone, receiver([302], redirect) as moved:
        _, gone_hook = call(api, "POST", "/webhooks", {"url": gone.url})
        call(api, "POST", "/webhooks", {"url": moved.url})
        complete_report(api, worker)
        (record,) = notifier_records(stack)
        # When both answer: 410 and a redirect to the metadata address
        assert handle(stack, notifier, record) == {"batchItemFailures": []}
        # Then neither is retried; the 410 endpoint is disabled; the redirect was not followed
        views = {w["webhook_id"]: w for w in call(api, "GET", "/webhooks")[1]["items"]}
        assert views[gone_hook["webhook_id"]]["status"] == "disabled"
        # And the next event does not go to the disabled endpoint
        complete_report(api, worker)
        for next_record in notifier_records(stack):
            handle(stack, notifier, next_record)
        assert len(gone.requests) == 1
        assert len(moved.requests) == 2


def test_per_request_callback_url_is_signed_with_the_default_secret(
    modules: tuple[Handler, Handler, Handler], stack: Stack
) -> None:
    api, worker, notifier = modules
    body = {"patient_id": "pt-9", "report_text": TEXT, "callback_url": "https://169.254.169.254/x"}
    # A hostile callback_url is refused; a good one needs the owner's default secret first
    assert call(api, "POST", "/summarize", body)[1]["error"]["code"] == "url_address"
    with receiver([200]) as hook:
        body["callback_url"] = hook.url
        status, refused = call(api, "POST", "/summarize", body)
        assert (status, refused["error"]["code"]) == (409, "no_default_secret")
        status, default = call(api, "POST", "/webhooks/default-secret")
        assert status == 201 and default["secret"].startswith("whsec_")
        # When a report is submitted with a callback_url and completes
        worker, _ = use_model(worker, [REPLY])
        status, submitted = call(api, "POST", "/summarize", body)
        assert status == 202
        report_id = submitted["report_id"]
        worker.lambda_handler(sqs_event(work(report_id)), FakeLambdaContext())
        (record,) = notifier_records(stack)
        assert handle(stack, notifier, record) == {"batchItemFailures": []}
        # Then the callback got the event, signed with the default secret
        (request,) = hook.requests
        event = Verifier(default["secret"]).verify(request.body, request.headers)
        assert event["data"]["report_id"] == report_id
    # And callbacks and the default secret are not listed as endpoints
    assert call(api, "GET", "/webhooks")[1] == {"items": []}


def test_batch_callback_url_gets_batch_completed_and_items_refuse_one(
    modules: tuple[Handler, Handler, Handler], stack: Stack
) -> None:
    api, worker, notifier = modules
    call(api, "POST", "/webhooks/default-secret")
    with receiver([200]) as hook:
        item = {"custom_id": "a-1", "patient_id": "pt-9", "report_text": TEXT}
        bad = {**item, "custom_id": "a-2", "callback_url": hook.url}
        status, batch = call(api, "POST", "/batches", {"reports": [item, bad], "callback_url": hook.url})
        # The batch-level callback is accepted; an item-level one is a line error
        assert status == 202 and [e["custom_id"] for e in batch["errors"]] == ["a-2"]
        batch_id = batch["batch_id"]
        response = api.lambda_handler(api_event("GET", f"/batches/{batch_id}/results"), FakeLambdaContext())
        (line,) = [json.loads(x) for x in response["body"].splitlines()]
        worker, _ = use_model(worker, [REPLY])
        message = sqs_record_for(line["report_id"], batch_id)
        assert worker.lambda_handler(sqs_event(message), FakeLambdaContext()) == {"batchItemFailures": []}
        for record in notifier_records(stack):
            handle(stack, notifier, record)
        # Then the callback got batch.completed (not the item's report event)
        assert [json.loads(r.body)["type"] for r in hook.requests] == ["batch.completed"]
    status, log = call(api, "GET", f"/batches/{batch_id}/deliveries")
    assert status == 200 and [a["outcome"] for a in log["items"]] == ["delivered"]


def sqs_record_for(report_id: str, batch_id: str) -> dict[str, Any]:
    return work_record(json.dumps({"report_id": report_id, "batch_id": batch_id, "version": 1}))


def test_records_that_are_neither_an_event_nor_a_replay_fail_alone(
    modules: tuple[Handler, Handler, Handler], stack: Stack
) -> None:
    api, worker, notifier = modules
    # Given a real event as the topic delivered it, and three records built from it that are not
    complete_report(api, worker)
    (record,) = notifier_records(stack)
    envelope = json.loads(record["body"])
    no_owner = {**record, "messageId": "no-owner", "body": json.dumps({**envelope, "MessageAttributes": {}})}
    not_json = {**record, "messageId": "not-json", "body": "{not json"}
    stranger = {**record, "messageId": "stranger", "body": json.dumps({"replay": "dlv_1"})}

    # When the notifier gets them in one batch
    result = notifier.lambda_handler(sqs_event(record, no_owner, not_json, stranger), FakeLambdaContext())

    # Then only the three are batch item failures (the event itself is delivered: no endpoint, no work)
    assert {f["itemIdentifier"] for f in result["batchItemFailures"]} == {"no-owner", "not-json", "stranger"}
