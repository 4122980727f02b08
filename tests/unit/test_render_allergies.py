"""The CLI prints a summary's allergies when it lists some, and never "none" for them."""

from __future__ import annotations

import io
from typing import Any

from medsum_cli.render import make_console, render_report

TEXT = "ALLERGIES: Penicillin - hives.\nFINDINGS: Mild cardiomegaly."


def _report(**lists: list[dict[str, Any]]) -> dict[str, Any]:
    summary = {"summary": "Mild cardiomegaly.", "model_id": "m", "prompt_version": "p", **lists}
    return {"report_id": "r-1", "status": "COMPLETED", "summary": summary}


def _render(report: dict[str, Any]) -> str:
    stream = io.StringIO()
    render_report(make_console(no_color=True, file=stream), report, TEXT)
    return stream.getvalue()


def test_listed_allergies_are_printed_with_their_evidence() -> None:
    item = {"text": "Penicillin (hives)", "evidence": [{"start": 11, "end": 29}], "certainty": "definite"}

    out = _render(_report(medications=[], allergies=[item]))

    assert "Allergies" in out and "Penicillin (hives)" in out
    assert '"Penicillin - hives"' in out
    assert out.index("Medications") < out.index("Allergies") < out.index("Follow-up")


def test_no_allergy_section_when_none_are_listed_or_the_summary_predates_the_list() -> None:
    # An empty list means the report names no allergy: "Allergies: none" would claim there are none
    assert "Allergies" not in _render(_report(allergies=[]))
    assert "Allergies" not in _render(_report())
