"""Prompting, parsing, repair and evidence grounding."""

from __future__ import annotations

import itertools
import json

import pytest
from medsum.errors import RetryableSummarizerError, ThrottledSummarizerError, TruncatedModelOutputError
from medsum.logic.summarize import (
    CHARS_PER_TOKEN,
    PROMPT_OVERHEAD_TOKENS,
    RetryPolicy,
    build_user_prompt,
    call_with_retries,
    parse_model_reply,
    split_sections,
    summarize_text,
)
from medsum.logic.verify import locate
from medsum.models import ReportType
from medsum.ports import ModelReply, ModelRequest

from tests.support.fakes import ScriptedSummarizer

TEXT = "IMPRESSION:  Mild   cardiomegaly.\nNo pneumothorax."


def test_prompt_wraps_report_in_tags() -> None:
    prompt = build_user_prompt(TEXT, ReportType.PROGRESS_NOTE)
    assert "progress note report" in prompt
    assert f"<report>\n{TEXT}\n</report>" in prompt


def test_locate_exact_then_whitespace_and_case_insensitive() -> None:
    exact = locate(TEXT, "No pneumothorax.")
    assert exact is not None and TEXT[exact.start : exact.end] == "No pneumothorax."
    loose = locate(TEXT, "mild cardiomegaly")
    assert loose is not None and TEXT[loose.start : loose.end] == "Mild   cardiomegaly"
    assert locate(TEXT, "pulmonary embolism") is None


@pytest.mark.parametrize(
    "raw",
    [
        '{"summary": "ok"}',
        '```json\n{"summary": "ok"}\n```',
        'Here is the JSON: {"summary": "ok", "extra": 1}',
    ],
)
def test_parse_accepts_fenced_and_prefixed_json(raw: str) -> None:
    assert parse_model_reply(raw).summary == "ok"


@pytest.mark.parametrize("raw", ["", "no json", '{"summary": ""}', '{"key_findings": []}', "{not json}"])
def test_parse_rejects_bad_replies(raw: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - ValidationError and JSONDecodeError are ValueErrors
        parse_model_reply(raw)


def test_retry_policy_stops_after_max_attempts() -> None:
    summarizer = ScriptedSummarizer([RetryableSummarizerError("ServiceUnavailableException")])
    seen: list[int] = []
    with pytest.raises(RetryableSummarizerError):
        call_with_retries(
            summarizer,
            ModelRequest(system="s", user_text="t"),
            RetryPolicy(max_attempts=4, budget_seconds=30, multiplier=0.001, max_wait=0.001),
            on_retry=lambda attempt, _: seen.append(attempt),
        )
    assert len(summarizer.calls) == 4
    assert seen == [1, 2, 3]


def test_retry_policy_stops_when_budget_is_spent() -> None:
    summarizer = ScriptedSummarizer([RetryableSummarizerError("ServiceUnavailableException")])
    with pytest.raises(RetryableSummarizerError):
        call_with_retries(
            summarizer,
            ModelRequest(system="s", user_text="t"),
            RetryPolicy(max_attempts=100, budget_seconds=0.2, multiplier=0.05, max_wait=0.1),
        )
    assert 1 < len(summarizer.calls) < 100


def test_throttling_is_bounded_by_the_budget_not_the_attempts() -> None:
    # Given a model that always throttles and a policy of 2 attempts
    summarizer = ScriptedSummarizer([ThrottledSummarizerError("ThrottlingException")])
    waits: list[int] = []
    with pytest.raises(RetryableSummarizerError):
        call_with_retries(
            summarizer,
            ModelRequest(system="s", user_text="t"),
            RetryPolicy(max_attempts=2, budget_seconds=0.3, throttle_wait=(0.01, 0.02)),
            on_retry=lambda attempt, _: waits.append(attempt),
        )
    # Then it kept retrying after short waits until the time budget ran out, well past 2 attempts
    assert len(summarizer.calls) > 5


def test_repair_prompt_never_contains_validation_input_values() -> None:
    bad = json.dumps({"summary": "SECRET-VALUE", "key_findings": "not-a-list"})
    good = json.dumps({"summary": "fine"})
    summarizer = ScriptedSummarizer([bad, good])
    result = summarize_text(TEXT, ReportType.RADIOLOGY, summarizer, RetryPolicy(1, 1))
    repair = summarizer.calls[1]
    problem_line = repair.splitlines()[0]
    assert "key_findings" in problem_line and "SECRET-VALUE" not in problem_line
    assert result.summary.summary == "fine" and result.model_calls == 2


# -- structured output, truncation, long reports ------------------------------------------------------
CXR = "FINDINGS: No pneumothorax. Possible left lower lobe pneumonia. Mild cardiomegaly."
TOOL_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
CONTRACT = {
    "summary": "Mild cardiomegaly; possible pneumonia.",
    "key_findings": [
        {"text": "Pneumothorax", "evidence": ["No pneumothorax."]},
        {"text": "Pneumonia", "evidence": ["Possible left lower lobe pneumonia."], "certainty": "definite"},
        {"text": "Cardiomegaly", "evidence": ["Mild cardiomegaly."]},
        {"text": "Rib fracture", "evidence": ["Acute fracture of the left fifth rib."]},
    ],
}


def test_a_tool_family_is_asked_through_the_forced_tool_and_its_input_is_verified() -> None:
    summarizer = ScriptedSummarizer([CONTRACT], model_id=TOOL_MODEL)
    result = summarize_text(CXR, ReportType.RADIOLOGY, summarizer, RetryPolicy(1, 1))
    request = summarizer.requests[0]
    assert request.tool is not None and request.tool.name == "record_summary"
    findings = [(item.text, item.certainty.value) for item in result.summary.key_findings]
    assert findings == [("Pneumonia", "uncertain"), ("Cardiomegaly", "definite")]
    verification = result.summary.verification
    assert verification is not None and verification.needs_review
    assert (verification.dropped.negated, verification.dropped.ungrounded) == (1, 1)


def test_a_prompt_json_family_gets_no_tool() -> None:
    summarizer = ScriptedSummarizer(['Here it is: {"summary": "ok"}'])
    summarize_text(CXR, ReportType.RADIOLOGY, summarizer, RetryPolicy(1, 1))
    assert summarizer.requests[0].tool is None
    assert "Reply with one JSON object" in summarizer.requests[0].system


def test_a_tool_family_that_answers_in_text_is_still_parsed() -> None:
    summarizer = ScriptedSummarizer(['```json\n{"summary": "ok"}\n```'], model_id=TOOL_MODEL)
    result = summarize_text(CXR, ReportType.RADIOLOGY, summarizer, RetryPolicy(1, 1))
    assert result.summary.summary == "ok" and result.model_calls == 1


def truncated(tool_input: dict[str, object]) -> ModelReply:
    return ModelReply("", 100, 2048, TOOL_MODEL, 5.0, tool_input=tool_input, stop_reason="max_tokens")


def test_a_truncated_reply_is_asked_again_with_more_room() -> None:
    summarizer = ScriptedSummarizer([truncated({"summary": "Mild"}), CONTRACT], model_id=TOOL_MODEL)
    result = summarize_text(CXR, ReportType.RADIOLOGY, summarizer, RetryPolicy(1, 1), max_tokens=2048)
    assert [request.max_tokens for request in summarizer.requests] == [2048, 4096]
    assert result.model_calls == 2 and result.usage.model_calls == 2
    assert len(result.summary.key_findings) == 2


def test_a_reply_truncated_twice_is_never_a_half_summary() -> None:
    summarizer = ScriptedSummarizer([truncated({"summary": "Mild"})], model_id=TOOL_MODEL)
    with pytest.raises(TruncatedModelOutputError):
        summarize_text(CXR, ReportType.RADIOLOGY, summarizer, RetryPolicy(1, 1))
    assert len(summarizer.requests) == 2


def test_no_more_room_than_the_family_allows_fails_at_once() -> None:
    # Given a model already asked for its family's maximum output
    summarizer = ScriptedSummarizer([truncated({"summary": "Mild"})], model_id=TOOL_MODEL)
    with pytest.raises(TruncatedModelOutputError):
        summarize_text(CXR, ReportType.RADIOLOGY, summarizer, RetryPolicy(1, 1), max_tokens=16_384)
    assert len(summarizer.requests) == 1


def test_split_sections_covers_the_text_and_cuts_at_headings_first() -> None:
    text = ("HISTORY: cough. " * 40) + "\nFINDINGS: " + ("Mild cardiomegaly. " * 60) + "\nIMPRESSION: Stable."
    sections = split_sections(text, 1_000)
    assert sections[0][0] == 0 and sections[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(sections))
    assert all(end - start <= 1_000 for start, end in sections)
    assert text[sections[1][0] :].startswith("FINDINGS:")


def test_a_long_report_is_summarized_by_sections_then_combined() -> None:
    # Given a report three times longer than the model's input budget
    section = "FINDINGS: Mild cardiomegaly. No pneumothorax. " + "Lungs are clear. " * 150 + "\n"
    text = section + section.replace("Mild cardiomegaly", "Small left pleural effusion") + section
    per_section = [
        {
            "summary": "Mild cardiomegaly.",
            "key_findings": [{"text": "Cardiomegaly", "evidence": ["Mild cardiomegaly."]}],
        },
        {
            "summary": "Small left effusion.",
            "key_findings": [{"text": "Left pleural effusion", "evidence": ["Small left pleural effusion."]}],
        },
        {
            "summary": "Mild cardiomegaly.",
            "key_findings": [{"text": "Cardiomegaly", "evidence": ["Mild cardiomegaly."]}],
        },
        {"summary": "Mild cardiomegaly and a small left pleural effusion."},
    ]
    summarizer = ScriptedSummarizer(per_section, model_id=TOOL_MODEL)  # type: ignore[arg-type]
    limit = len(section) + 10
    context = (limit // CHARS_PER_TOKEN) + 2048 + PROMPT_OVERHEAD_TOKENS
    result = summarize_text(text, ReportType.RADIOLOGY, summarizer, RetryPolicy(1, 1), context_tokens=context)
    # Then each section was one call, plus one to combine their overviews
    assert len(summarizer.requests) == 4 and "section 2 of 3" in summarizer.calls[1]
    assert "Mild cardiomegaly.\nSmall left effusion." in summarizer.calls[3]
    summary = result.summary
    assert summary.summary == "Mild cardiomegaly and a small left pleural effusion."
    assert [item.text for item in summary.key_findings] == ["Cardiomegaly", "Left pleural effusion"]
    # and the second section's quote points into the second section of the whole report
    effusion = summary.key_findings[1].evidence[0]
    assert text[effusion.start : effusion.end] == "Small left pleural effusion."
    assert summary.verification is not None and summary.verification.sections == 3
