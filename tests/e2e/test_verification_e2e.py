"""Model replies a clinician must not be shown as they are, driven through the real worker on the local
stack by scripted replies (``PUT {bedrock}/_local/replies``): each ends with the verification outcome a
user relies on, read back through ``GET /reports/{id}`` and batch results.

Every report carries a unique accession line, which is also its reply's ``match``: the tests share one
stack and never see each other's replies.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from medsum_local.testing import ApiClient, wait_for

Script = Callable[..., str]

CXR = "FINDINGS: No pneumothorax. Possible left lower lobe pneumonia. Mild cardiomegaly."


@pytest.fixture
def script(bedrock_admin: str) -> Iterator[Script]:
    """``script(text, **reply)``: a report text with a unique accession line, whose model calls get
    ``reply`` (``text=`` or ``tool_input=``, optional ``stop_reason=``). Removed after the test."""
    matches: list[str] = []

    def add(report_text: str, **reply: Any) -> str:
        accession = f"ACCESSION: e2e-{uuid.uuid4().hex[:12]}"
        response = requests.put(f"{bedrock_admin}/replies", json={"match": accession, **reply}, timeout=10)
        assert response.status_code in (200, 201), response.text
        matches.append(accession)
        return f"{accession}\n{report_text}"

    yield add
    for match in matches:
        requests.delete(f"{bedrock_admin}/replies", params={"match": match}, timeout=10)


def submit(api: ApiClient, text: str) -> str:
    response = api.post(
        "/summarize", json={"patient_id": "pt-verify", "report_text": text, "report_type": "radiology"}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["report_id"])


def wait_all(api: ApiClient, report_ids: list[str], timeout: float = 120.0) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}

    def probe() -> dict[str, dict[str, Any]] | None:
        for report_id in report_ids:
            if report_id not in done:
                body = api.get(f"/reports/{report_id}").json()
                if body["status"] in ("COMPLETED", "FAILED"):
                    done[report_id] = body
        return done if len(done) == len(report_ids) else None

    return wait_for(probe, timeout=timeout, interval=0.5, message="reports to finish")


def items(summary: dict[str, Any], key: str = "key_findings") -> list[tuple[str, str]]:
    return [(item["text"], item["certainty"]) for item in summary[key]]


def item(text: str, *quotes: str, certainty: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"text": text, "evidence": list(quotes)}
    if certainty is not None:
        value["certainty"] = certainty
    return value


ISSUE_REPLY = {
    "summary": "Mild cardiomegaly and possible left lower lobe pneumonia.",
    "key_findings": [
        item("Pneumothorax", "No pneumothorax."),
        item("Pneumonia", "Possible left lower lobe pneumonia.", certainty="definite"),
        item("Cardiomegaly", "Mild cardiomegaly."),
        item("Rib fracture", "Acute displaced fracture of the left sixth rib."),
    ],
    "diagnoses": [],
    "medications": [],
    "follow_up": [],
}


def assert_issue_outcome(summary: dict[str, Any]) -> None:
    assert items(summary) == [("Pneumonia", "uncertain"), ("Cardiomegaly", "definite")]
    verification = summary["verification"]
    assert verification["dropped"] == {"ungrounded": 1, "unsupported": 0, "negated": 1}
    assert verification["needs_review"] is True and verification["marked_uncertain"] == 1


def test_negated_hedged_and_invented_items_never_reach_the_clinician(api: ApiClient, script: Script) -> None:
    # Given the report of the issue and a model that lists the negated pneumothorax, states the
    # hedged pneumonia as definite and invents a rib fracture
    text = script(CXR, tool_input=ISSUE_REPLY)
    report = wait_all(api, [submit(api, text)])
    body = next(iter(report.values()))
    # Then only cardiomegaly (definite) and pneumonia (uncertain) are shown, and a human should look
    assert body["status"] == "COMPLETED", body
    assert_issue_outcome(body["summary"])
    for finding in body["summary"]["key_findings"]:
        for span in finding["evidence"]:
            assert finding["text"].lower() in text[span["start"] : span["end"]].lower()


def test_batch_results_carry_the_same_verification(api: ApiClient, script: Script) -> None:
    text = script(CXR, tool_input=ISSUE_REPLY)
    created = api.post(
        "/batches",
        json={"reports": [{"custom_id": "verify-1", "patient_id": "pt-verify", "report_text": text}]},
    )
    assert created.status_code == 202, created.text
    batch_id = created.json()["batch_id"]

    def finished() -> bool | None:
        return api.get(f"/batches/{batch_id}").json()["status"] == "completed" or None

    wait_for(finished, timeout=120, interval=0.5, message="the batch")
    lines = api.get(f"/batches/{batch_id}/results").text.splitlines()
    result = json.loads(lines[0])
    assert result["status"] == "COMPLETED"
    assert_issue_outcome(result["summary"])


@dataclass(frozen=True)
class Case:
    """A report, the model's reply to it, and what the user must get."""

    name: str
    report: str
    reply: dict[str, Any]
    findings: list[tuple[str, str]] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=lambda: {"ungrounded": 0, "unsupported": 0, "negated": 0})
    needs_review: bool = False
    error: str | None = None


def tool(
    *findings: dict[str, Any], summary: str = "Summary.", **lists: list[dict[str, Any]]
) -> dict[str, Any]:
    return {"tool_input": {"summary": summary, "key_findings": list(findings), **lists}}


DROPS_NONE = {"ungrounded": 0, "unsupported": 0, "negated": 0}

CASES = [
    Case(
        "paraphrased and re-spaced quotes are grounded",
        "FINDINGS: Heart is   mildly enlarged.\nBibasilar opacities.",
        tool(
            item("Enlarged heart", "heart is mildly enlarged"),
            item("Bibasilar opacity", "Bibasilar  opacities."),
        ),
        findings=[("Enlarged heart", "definite"), ("Bibasilar opacity", "definite")],
    ),
    Case(
        "an invented quote is dropped",
        "FINDINGS: Mild cardiomegaly.",
        tool(
            item("Cardiomegaly", "Mild cardiomegaly."), item("Pulmonary edema", "Moderate pulmonary edema.")
        ),
        findings=[("Cardiomegaly", "definite")],
        dropped={**DROPS_NONE, "ungrounded": 1},
        needs_review=True,
    ),
    Case(
        "pre-negation flip",
        "FINDINGS: Negative for pulmonary embolism. Small right effusion.",
        tool(
            item("Pulmonary embolism", "Negative for pulmonary embolism."),
            item("Right effusion", "Small right effusion."),
        ),
        findings=[("Right effusion", "definite")],
        dropped={**DROPS_NONE, "negated": 1},
        needs_review=True,
    ),
    Case(
        "post-negation flip across coordination",
        "IMPRESSION: The infiltrates and vascular engorgement have resolved. Stable mild cardiomegaly.",
        tool(
            item("Vascular engorgement", "The infiltrates and vascular engorgement have resolved."),
            item("Infiltrates", "The infiltrates and vascular engorgement have resolved."),
            item("Mild cardiomegaly", "Stable mild cardiomegaly."),
        ),
        findings=[("Mild cardiomegaly", "definite")],
        dropped={**DROPS_NONE, "negated": 2},
        needs_review=True,
    ),
    Case(
        "removed devices are not findings",
        "FINDINGS: The chest tubes were removed. No pneumothorax.",
        tool(item("Chest tubes", "The chest tubes were removed.")),
        dropped={**DROPS_NONE, "negated": 1},
        needs_review=True,
    ),
    Case(
        "a hedge stated as a fact becomes uncertain",
        "IMPRESSION: Left basilar opacity; pneumonia cannot be excluded.",
        tool(
            item("Left basilar opacity", "Left basilar opacity"),
            item("Pneumonia", "pneumonia cannot be excluded", certainty="definite"),
        ),
        findings=[("Left basilar opacity", "definite"), ("Pneumonia", "uncertain")],
    ),
    Case(
        "an item about a different finding than its quote",
        "FINDINGS: Left lower lobe atelectasis. Mild cardiomegaly.",
        tool(
            item("Left lower lobe pneumonia", "Left lower lobe atelectasis."),
            item("Mild cardiomegaly", "Mild cardiomegaly."),
        ),
        findings=[("Mild cardiomegaly", "definite")],
        dropped={**DROPS_NONE, "unsupported": 1},
        needs_review=True,
    ),
    Case(
        "fenced JSON from a model that ignored the tool",
        "FINDINGS: Mild cardiomegaly.",
        {
            "text": '```json\n{"summary": "Mild cardiomegaly.", "key_findings": '
            '[{"text": "Cardiomegaly", "evidence": ["Mild cardiomegaly."]}]}\n```'
        },
        findings=[("Cardiomegaly", "definite")],
    ),
    Case(
        "prose around the JSON",
        "FINDINGS: Small hiatal hernia.",
        {
            "text": 'Here is the summary you asked for:\n{"summary": "Small hiatal hernia.", "key_findings": '
            '[{"text": "Hiatal hernia", "evidence": ["Small hiatal hernia."]}]}\nAnything else?'
        },
        findings=[("Hiatal hernia", "definite")],
    ),
    Case(
        "a truncated reply is never a half-summary",
        "FINDINGS: Mild cardiomegaly.",
        {"tool_input": {"summary": "Mild cardio"}, "stop_reason": "max_tokens"},
        error="model_output_truncated",
    ),
    Case(
        "empty lists are a valid normal study",
        "FINDINGS: Lungs are clear. No acute cardiopulmonary abnormality.",
        tool(summary="No acute cardiopulmonary abnormality."),
    ),
    Case(
        "a summary sentence that contradicts the report needs review",
        "FINDINGS: No pneumothorax. Mild cardiomegaly.",
        tool(
            item("Mild cardiomegaly", "Mild cardiomegaly."),
            summary="Small pneumothorax and mild cardiomegaly.",
        ),
        findings=[("Mild cardiomegaly", "definite")],
        needs_review=True,
    ),
]


def test_adversarial_replies_end_with_the_expected_verification(api: ApiClient, script: Script) -> None:
    # Given every case submitted at once, each with its scripted reply
    submitted = {submit(api, script(case.report, **case.reply)): case for case in CASES}
    # When the worker has processed them all
    reports = wait_all(api, list(submitted))
    # Then each ends as the case says
    for report_id, case in submitted.items():
        body = reports[report_id]
        if case.error is not None:
            assert body["status"] == "FAILED" and body["error"]["code"] == case.error, case.name
            assert body["summary"] is None, case.name
            continue
        assert body["status"] == "COMPLETED", (case.name, body.get("error"))
        summary = body["summary"]
        assert items(summary) == case.findings, case.name
        assert summary["verification"]["dropped"] == case.dropped, case.name
        assert summary["verification"]["needs_review"] is case.needs_review, case.name


def test_a_100000_character_report_is_summarized_by_sections(api: ApiClient) -> None:
    # Given a report far longer than the local model's 8,192-token context window
    paragraph = (
        "FINDINGS: Mild cardiomegaly. No pneumothorax. Lungs are otherwise clear. "
        "The mediastinal contours are within normal limits for this projection. " * 20
    )
    impression = "IMPRESSION: Small left pleural effusion."
    text = "HISTORY: Long-term follow-up.\n\n"
    while len(text) + len(paragraph) + 2 + len(impression) <= 100_000:
        text += paragraph + "\n\n"
    text += impression
    text += " " * (100_000 - len(text) - 1) + "."
    assert len(text) == 100_000
    report_id = submit(api, text)
    body = wait_all(api, [report_id], timeout=240)[report_id]
    # Then it completes, from several sections, with every offset into the whole report
    assert body["status"] == "COMPLETED", body.get("error")
    summary = body["summary"]
    assert summary["verification"]["sections"] > 1
    assert body["usage"]["model_calls"] == summary["verification"]["sections"] + 1
    spans = [span for key in ("key_findings", "diagnoses") for it in summary[key] for span in it["evidence"]]
    assert spans and all(0 <= span["start"] < span["end"] <= len(text) for span in spans)
    texts = [it["text"].lower() for it in summary["key_findings"] + summary["diagnoses"]]
    assert any("effusion" in t for t in texts), texts
    assert not any("pneumothorax" in t for t in texts)
