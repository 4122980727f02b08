"""The OpenAPI document against the API's real answers: a tour of every documented operation, through
the api and admin handlers against the template deployed in moto (the worker completes, fails and
dead-letters reports on the way), and each answer checked against the document.

For each answer: its status is one the document lists for that operation, and its body validates
(``jsonschema``, draft 2020-12, which OpenAPI 3.1 schemas are) against the schema the document declares
for that status and content type (every line of a JSON Lines body). The tour gets every operation's
success answer but one (replaying a delivery needs a delivery: its 404 is checked), and the usual errors
(400, 403, 404, 405 for an unknown method, 409, 415, 422). Each dead-letter listing long-polls the
queues once (a second each in moto): the tour calls each operator route once.

``tests/unit/test_openapi_doc.py`` checks the document is current, valid and complete in itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from medsum.errors import NonRetryableSummarizerError, ThrottledSummarizerError
from medsum_local.inprocess import Stack

from scripts.export_openapi import render
from tests.support.events import (
    CLINIC_A,
    CLINIC_B,
    OPERATOR,
    FakeLambdaContext,
    Handler,
    admin_handler,
    api_event,
    sqs_event,
    sqs_record,
)
from tests.support.worker import REPLY, TEXT, use_model, work

DOCUMENT: dict[str, Any] = json.loads(render())
#: Answers to methods a route does not have, and to routes that do not exist (docs/api.md).
UNDOCUMENTED_ROUTE_STATUSES = {404, 405}
#: The one operation whose success the tour cannot reach in-process (it needs a webhook delivery).
SUCCESS_NOT_TOURED = {("POST", "/webhooks/deliveries/{delivery_id}/replay")}
PUBLIC_URL = "https://93.184.216.34/hooks/medsum"
REASON = "contract tour of the API"


@dataclass
class Answer:
    """One real answer, checked against the document."""

    method: str
    template: str
    status: int
    content_type: str
    body: str


@dataclass
class Tour:
    """Calls the handlers and records every answer under its documented operation."""

    api: Handler
    admin: Handler
    answers: list[Answer] = field(default_factory=list)

    def call(
        self,
        method: str,
        template: str,
        *,
        caller: str | None = CLINIC_A,
        body: Any = None,
        raw_body: str | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        **parameters: str,
    ) -> tuple[int, Any]:
        """``method template`` with its path parameters filled in; (status, body as JSON or None)."""
        path = template.format(**parameters)
        handler = self.admin if template.startswith("/admin") else self.api
        headers = {**(headers or {}), **({"Content-Type": content_type} if content_type else {})}
        event = api_event(
            method, path, body=body, raw_body=raw_body, headers=headers, query=query, caller=caller
        )
        response = handler.lambda_handler(event, FakeLambdaContext())
        answered_type = (response.get("headers") or {}).get("Content-Type") or (
            (response.get("multiValueHeaders") or {}).get("Content-Type") or [""]
        )[0]
        text = response.get("body") or ""
        self.answers.append(Answer(method, template, response["statusCode"], answered_type, text))
        parsed = json.loads(text) if text and answered_type == "application/json" else None
        return response["statusCode"], parsed


def _problems(answer: Answer) -> list[str]:
    """How ``answer`` disagrees with the document (nothing: it agrees)."""
    where = f"{answer.method} {answer.template} -> {answer.status}"
    operation = DOCUMENT["paths"].get(answer.template, {}).get(answer.method.lower())
    if operation is None:
        if answer.status in UNDOCUMENTED_ROUTE_STATUSES:
            return []
        return [f"{where}: not a documented operation"]
    documented = operation["responses"].get(str(answer.status))
    if documented is None:
        return [f"{where}: status not documented ({sorted(operation['responses'])})"]
    content = documented.get("content") or {}
    if not content:
        return [] if not answer.body else [f"{where}: a body where the document declares none"]
    media_type = answer.content_type.split(";")[0].strip()
    if media_type not in content:
        return [f"{where}: {media_type!r} is not a documented content type ({sorted(content)})"]
    validator = Draft202012Validator({**content[media_type]["schema"], "components": DOCUMENT["components"]})
    if media_type == "application/x-ndjson":
        values = [json.loads(line) for line in answer.body.splitlines() if line.strip()]
    else:
        values = [json.loads(answer.body)]
    return [
        f"{where}: {error.json_path}: {error.message}" for v in values for error in validator.iter_errors(v)
    ]


@pytest.fixture
def tour(modules: tuple[Handler, Handler], stack: Stack) -> Tour:
    """Every documented operation called, with the answers recorded (see the module's docstring)."""
    api, worker = modules
    tour = Tour(api, admin_handler())
    call = tour.call
    submit = {"patient_id": "pt-9", "report_text": TEXT, "report_type": "radiology"}

    # Health, and what is not a route
    call("GET", "/", caller=None)
    call("GET", "/no-such-route")
    call("PATCH", "/summarize", body=submit)

    # Reports: submitted, completed by the worker, read, listed, deleted; and refusals
    _, created = call("POST", "/summarize", body=submit)
    done = created["report_id"]
    worker, _ = use_model(worker, [REPLY])
    assert worker.lambda_handler(sqs_event(work(done)), FakeLambdaContext()) == {"batchItemFailures": []}
    call("GET", "/reports/{report_id}", report_id=done)
    call("GET", "/reports/{report_id}", report_id=done, caller=CLINIC_B)
    call("GET", "/reports/{report_id}/deliveries", report_id=done)
    call("GET", "/patients/{patient_id}/reports", patient_id="pt-9")
    call("GET", "/patients/{patient_id}/reports", patient_id="pt-9", query={"limit": "1"})
    call("GET", "/patients/{patient_id}/reports", patient_id="pt-9", query={"next_token": "garbage"})
    call("POST", "/summarize", body={"patient_id": "pt-9"})
    call("POST", "/summarize", raw_body="patient_id=pt-9", content_type="application/x-www-form-urlencoded")
    call("POST", "/summarize", body=submit, caller=None)
    key = {"Idempotency-Key": "contract-1"}
    for body in (submit, {**submit, "patient_id": "pt-8"}):  # the same key for another request: 422
        call("POST", "/summarize", body=body, headers=key)
    call("DELETE", "/reports/{report_id}", report_id=done)
    call("DELETE", "/reports/{report_id}", report_id=done)

    # A report that failed for good (retried by an operator below) and one in the dead-letter queue
    _, failing = call("POST", "/summarize", body=submit)
    worker, _ = use_model(worker, [NonRetryableSummarizerError("model_access_denied", "denied")])
    worker.lambda_handler(sqs_event(work(failing["report_id"])), FakeLambdaContext())
    _, dead = call("POST", "/summarize", body=submit)
    worker, _ = use_model(worker, [ThrottledSummarizerError("ThrottlingException")])
    message = json.dumps({"report_id": dead["report_id"], "version": 1})
    worker.lambda_handler(sqs_event(sqs_record(message, receive_count=5)), FakeLambdaContext())
    stack.client("sqs").send_message(QueueUrl=stack.resources["WorkDeadLetterQueue"], MessageBody=message)

    # Batches: JSON and JSON Lines, uploads, listing, results before the end, cancel; and refusals
    item = {"custom_id": "c-1", "patient_id": "pt-b", "report_text": TEXT, "report_type": "radiology"}
    _, batch = call("POST", "/batches", body={"reports": [item, {**item, "custom_id": "c-2"}]})
    call("POST", "/batches", raw_body=json.dumps(item) + "\n", content_type="application/x-ndjson")
    call("POST", "/batches", body={"reports": [item, item]})
    call("POST", "/batches/uploads")
    call("GET", "/batches")
    call("GET", "/batches/{batch_id}", batch_id=batch["batch_id"])
    call("GET", "/batches/{batch_id}", batch_id=batch["batch_id"], caller=CLINIC_B)
    call("GET", "/batches/{batch_id}/results", batch_id=batch["batch_id"])
    call("GET", "/batches/{batch_id}/deliveries", batch_id=batch["batch_id"])
    call("POST", "/batches/{batch_id}/cancel", batch_id=batch["batch_id"])
    call("GET", "/batches/{batch_id}/results", batch_id=batch["batch_id"])
    call("POST", "/batches/{batch_id}/cancel", batch_id="no-such-batch")

    # Webhooks
    _, hook = call("POST", "/webhooks", body={"url": PUBLIC_URL, "event_types": ["report.completed"]})
    call("POST", "/webhooks", body={"url": "http://127.0.0.1/hooks"})
    call("GET", "/webhooks")
    call("POST", "/webhooks/default-secret")
    call("POST", "/webhooks/{webhook_id}/rotate-secret", webhook_id=hook["webhook_id"])
    call("POST", "/webhooks/deliveries/{delivery_id}/replay", delivery_id="no-such-delivery")
    call("DELETE", "/webhooks/{webhook_id}", webhook_id=hook["webhook_id"])
    call("DELETE", "/webhooks/{webhook_id}", webhook_id=hook["webhook_id"])

    # Operators, and a client on an operator route
    call("GET", "/admin/dlq", caller=OPERATOR)
    call("GET", "/admin/dlq/summary", caller=OPERATOR)
    call("GET", "/admin/dlq/reports/{report_id}", report_id=dead["report_id"], caller=OPERATOR)
    _, job = call(
        "POST", "/admin/dlq/redrive", body={"all": True, "reason": REASON, "dry_run": True}, caller=OPERATOR
    )
    call("GET", "/admin/dlq/redrive/{job_id}", job_id=job["job_id"], caller=OPERATOR)
    call("GET", "/admin/dlq/redrive/{job_id}", job_id="0" * 32, caller=OPERATOR)
    call(
        "POST",
        "/admin/dlq/purge",
        body={"report_ids": [dead["report_id"]], "reason": REASON},
        caller=OPERATOR,
    )
    for _ in range(2):  # retried, then no longer FAILED: 409
        call(
            "POST",
            "/admin/reports/{report_id}/retry",
            report_id=failing["report_id"],
            body={"reason": REASON},
            caller=OPERATOR,
        )
    call("GET", "/admin/audit", caller=OPERATOR)
    call("GET", "/admin/dlq")
    return tour


def test_every_real_answer_is_documented_with_the_schema_its_body_has(tour: Tour) -> None:
    # Then no answer the handlers gave disagrees with the document
    assert [problem for answer in tour.answers for problem in _problems(answer)] == []
    # And the tour met every documented operation's success answer (so each success schema was checked)
    succeeded = {(a.method, a.template) for a in tour.answers if a.status < 400}
    documented = {(m.upper(), p) for p, item in DOCUMENT["paths"].items() for m in item}
    assert documented - succeeded == SUCCESS_NOT_TOURED
    # ... and the usual errors
    statuses = {a.status for a in tour.answers}
    assert {400, 403, 404, 405, 409, 415, 422} <= statuses, sorted(statuses)


def test_the_check_fails_an_answer_the_document_does_not_describe() -> None:
    # A body missing a required field, an undocumented status and an undocumented content type
    view = Answer("GET", "/reports/{report_id}", 200, "application/json", json.dumps({"status": "PENDING"}))
    teapot = Answer("GET", "/reports/{report_id}", 418, "application/json", "{}")
    text = Answer("GET", "/", 200, "text/plain", "ok")
    assert all(_problems(answer) for answer in (view, teapot, text))
