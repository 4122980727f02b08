"""The prompt's framing: every prompt the summarizer sends gives its report back to a tag reader.

The local stand-in model knows nothing of the prompt's instructions; it finds the report with
``medsum.prompting.extract_report``. These tests pin the contract between that reader and the prompts
``medsum.logic.summarize`` really sends.
"""

from __future__ import annotations

import json

from medsum.logic.summarize import RetryPolicy, build_user_prompt, summarize_text
from medsum.models import ReportType
from medsum.prompting import carries_report, extract_report

from tests.support.fakes import ScriptedSummarizer

REPORT = "FINDINGS: Small left pleural effusion {not a format field}.\nIMPRESSION: Effusion."
VALID = json.dumps(
    {"summary": "Small effusion.", "key_findings": [], "diagnoses": [], "medications": [], "follow_up": []}
)


def test_the_user_prompt_gives_back_the_report() -> None:
    prompt = build_user_prompt(REPORT, ReportType.RADIOLOGY)
    assert carries_report(prompt)
    assert extract_report(prompt) == REPORT


def test_a_report_that_contains_the_tags_is_kept_whole() -> None:
    text = "FINDINGS: the string <report> and </report> appear in the text.\nIMPRESSION: none."
    assert extract_report(build_user_prompt(text, ReportType.RADIOLOGY)) == text


def test_the_repair_prompt_gives_back_the_report_not_the_quoted_reply() -> None:
    # Given a model whose first reply is invalid and quotes a tagged "report" of its own
    summarizer = ScriptedSummarizer(["<report>not the report</report> and not JSON", VALID])
    summarize_text(REPORT, ReportType.RADIOLOGY, summarizer, RetryPolicy(1, 1))
    # Then the repair request still gives back the submitted report
    repair = summarizer.calls[1]
    assert "not the report" in repair
    assert extract_report(repair) == REPORT


def test_section_and_overview_prompts_give_back_what_they_ask_about() -> None:
    # Given a report too long for one call
    report = "\n\n".join(
        f"FINDINGS: Finding number {n} is stable." + " Unremarkable." * 40 for n in range(30)
    )
    summarizer = ScriptedSummarizer([VALID])
    summarize_text(report, ReportType.RADIOLOGY, summarizer, RetryPolicy(1, 1), context_tokens=3_000)
    *sections, overview = summarizer.calls
    # Then each section prompt gives back a part of the report, in order, and together all of it
    parts = [extract_report(prompt) for prompt in sections]
    assert len(parts) > 1 and all(part in report for part in parts)
    assert "".join(parts).replace("\n", "") == report.replace("\n", "")
    # And the overview prompt gives back the section overviews
    assert extract_report(overview) == "\n".join(["Small effusion."] * len(sections))


def test_an_untagged_message_is_read_whole() -> None:
    assert not carries_report("just text ")
    assert extract_report("just text ") == "just text"
