"""Prompting, parsing, repair and evidence grounding."""

from __future__ import annotations

import json

import pytest
from medsum.errors import RetryableSummarizerError, ThrottledSummarizerError
from medsum.logic.summarize import (
    RetryPolicy,
    build_user_prompt,
    call_with_retries,
    ground,
    locate,
    parse_model_reply,
    summarize_text,
)
from medsum.models import ModelItem, ReportType

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


def test_ground_drops_quotes_not_in_text_and_counts_them() -> None:
    items, missing = ground([ModelItem(text="x", evidence=["Mild cardiomegaly", "invented quote"])], TEXT)
    assert missing == 1
    assert len(items[0].evidence) == 1


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
            "s",
            [{"role": "user", "text": "t"}],
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
            "s",
            [{"role": "user", "text": "t"}],
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
            "s",
            [{"role": "user", "text": "t"}],
            RetryPolicy(max_attempts=2, budget_seconds=0.3, throttle_wait=(0.01, 0.02)),
            on_retry=lambda attempt, _: waits.append(attempt),
        )
    # Then it kept retrying after short waits until the time budget ran out, well past 2 attempts
    assert len(summarizer.calls) > 5


def test_repair_prompt_never_contains_validation_input_values() -> None:
    bad = json.dumps({"summary": "SECRET-VALUE", "key_findings": "not-a-list"})
    good = json.dumps({"summary": "fine"})
    summarizer = ScriptedSummarizer([bad, good])
    result, _ = summarize_text(TEXT, ReportType.RADIOLOGY, summarizer, RetryPolicy(1, 1))
    repair = summarizer.calls[1][0]["text"]
    problem_line = repair.splitlines()[0]
    assert "key_findings" in problem_line and "SECRET-VALUE" not in problem_line
    assert result.summary.summary == "fine" and result.model_calls == 2
