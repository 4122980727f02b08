"""Driving the worker in integration tests: a report to summarize, the model's reply to it, the work
message that names it, and the model swapped for a scripted one."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from medsum_local.inprocess import CLINIC_A, FakeLambdaContext, Handler, api_event, sqs_record

from tests.support.fakes import ScriptedSummarizer

TEXT = "FINDINGS: Mild cardiomegaly. No pleural effusion.\nIMPRESSION: Mild cardiomegaly."
#: A model reply to ``TEXT`` whose one finding is quoted from it.
REPLY = json.dumps(
    {
        "summary": "Mild cardiomegaly.",
        "key_findings": [{"text": "Mild cardiomegaly", "evidence": ["Mild cardiomegaly."]}],
        "diagnoses": [],
        "medications": [],
        "follow_up": [],
    }
)


def use_model(worker: Handler, script: list[str | Exception]) -> tuple[Handler, ScriptedSummarizer]:
    """The worker with a model answering from ``script`` in place of Bedrock, in both lanes (see
    :class:`ScriptedSummarizer`), and that model (its ``calls``)."""
    summarizer = ScriptedSummarizer(script)
    return replace(worker, deps=worker.deps.with_summarizer(summarizer)), summarizer


def submit(api: Handler, caller: str = CLINIC_A, text: str = TEXT) -> str:
    """``POST /summarize`` a radiology report of patient ``pt-9``; its id."""
    body = {"patient_id": "pt-9", "report_text": text, "report_type": "radiology"}
    response = api.lambda_handler(
        api_event("POST", "/summarize", body=body, caller=caller), FakeLambdaContext()
    )
    return str(json.loads(response["body"])["report_id"])


def read(api: Handler, report_id: str) -> dict[str, Any]:
    """``GET /reports/{report_id}`` as clinic-a."""
    response = api.lambda_handler(api_event("GET", f"/reports/{report_id}"), FakeLambdaContext())
    return dict(json.loads(response["body"]))


def work(report_id: str, receive_count: int = 1) -> dict[str, Any]:
    """The work message for ``report_id`` as the worker receives it (its ``receive_count``-th delivery)."""
    return sqs_record(json.dumps({"report_id": report_id, "version": 1}), receive_count=receive_count)
