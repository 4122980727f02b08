"""From report text to a validated, evidence-linked ``Summary``.

The model is asked for the summary contract as JSON with evidence as verbatim quotes; we compute the
character offsets against the submitted text ourselves (models cannot count characters). A reply that
does not validate gets one repair attempt, then ``InvalidModelOutputError``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_any,
    stop_before_delay,
    wait_random,
)
from tenacity.stop import stop_base

from medsum.errors import InvalidModelOutputError, RetryableSummarizerError, ThrottledSummarizerError
from medsum.models import (
    PROMPT_VERSION,
    EvidenceSpan,
    ModelItem,
    ModelSummary,
    ReportType,
    Summary,
    SummaryItem,
    Usage,
)
from medsum.ports import ModelReply, Summarizer

SYSTEM_PROMPT = """You are a clinical documentation assistant. You summarize one medical report for a \
clinician. Use only what the report states; never infer or invent findings. Negated findings \
("no pneumothorax") are not findings. Reply with one JSON object and nothing else, with exactly these keys:
{"summary": "1-3 sentence overview",
 "key_findings": [{"text": "finding", "evidence": ["verbatim quote from the report"]}],
 "diagnoses": [{"text": "...", "evidence": ["..."]}],
 "medications": [{"text": "...", "evidence": ["..."]}],
 "follow_up": [{"text": "...", "evidence": ["..."]}]}
Every evidence string must be copied character for character from the report. Use empty lists when \
the report has nothing for a key."""

_USER_TEMPLATE = """Summarize this {report_type} report.
<report>
{text}
</report>"""

_REPAIR_TEMPLATE = """Your previous reply did not match the required JSON format ({problem}).
<previous_reply>
{previous}
</previous_reply>
Summarize this {report_type} report again and reply with only the JSON object.
<report>
{text}
</report>"""

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


@dataclass(frozen=True)
class RetryPolicy:
    """Tenacity budget for one model call: only retryable errors, stopped by the time the Lambda has
    left (``budget_seconds``) and, for errors other than throttling, by ``max_attempts``.

    Errors (5xx, timeouts) back off exponentially with full jitter. A throttled call costs nothing
    but time, so it is retried after a short jittered wait (``throttle_wait``) for as long as the
    budget lasts: exponential waits would leave model quota unused. The bulk lane waits longer on
    throttling than the interactive lane (and paces its calls with botocore's adaptive rate limiter),
    so when the quota is short the interactive lane gets the freed capacity first.
    """

    max_attempts: int
    budget_seconds: float
    multiplier: float = 0.5
    max_wait: float = 20.0
    throttle_wait: tuple[float, float] = (0.05, 0.3)


def _throttled(state: RetryCallState) -> bool:
    exc = state.outcome.exception() if state.outcome is not None else None
    return isinstance(exc, ThrottledSummarizerError)


class _ErrorCount(stop_base):
    """Stops after ``max_attempts`` failures other than throttling, and picks each wait: a short
    jittered one after a throttle, full-jitter exponential backoff (its exponent counting errors only)
    after anything else. Tenacity asks for the wait before the stop condition, so ``wait`` sees the
    number of *earlier* errors."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._throttle_wait = wait_random(*policy.throttle_wait)
        self.errors = 0

    def wait(self, state: RetryCallState) -> float:
        if _throttled(state):
            return float(self._throttle_wait(state))
        return random.uniform(0, min(self._policy.max_wait, self._policy.multiplier * 2**self.errors))

    def __call__(self, state: RetryCallState) -> bool:
        if not _throttled(state):
            self.errors += 1
        return self.errors >= self._policy.max_attempts


@dataclass(frozen=True)
class SummaryResult:
    summary: Summary
    usage: Usage
    model_calls: int


def build_user_prompt(text: str, report_type: ReportType) -> str:
    return _USER_TEMPLATE.format(report_type=report_type.value.replace("_", " "), text=text)


def parse_model_reply(raw: str) -> ModelSummary:
    """Parse and validate a model reply. Raises ``ValueError`` (incl. ``ValidationError``)."""
    candidate = _FENCE.sub("", raw.strip())
    start, end = candidate.find("{"), candidate.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in reply")
    return ModelSummary.model_validate(json.loads(candidate[start : end + 1]))


def locate(text: str, quote: str) -> EvidenceSpan | None:
    """Offsets of ``quote`` in ``text``: exact first, then ignoring case and runs of whitespace."""
    exact = text.find(quote)
    if exact >= 0:
        return EvidenceSpan(start=exact, end=exact + len(quote))
    words = quote.split()
    if not words:
        return None
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)
    match = pattern.search(text)
    return EvidenceSpan(start=match.start(), end=match.end()) if match else None


def ground(items: list[ModelItem], text: str) -> tuple[list[SummaryItem], int]:
    """Turn quoted evidence into spans; returns the items and the number of quotes not found."""
    grounded: list[SummaryItem] = []
    missing = 0
    for item in items:
        spans: list[EvidenceSpan] = []
        for quote in item.evidence:
            span = locate(text, quote)
            if span is None:
                missing += 1
            elif span not in spans:
                spans.append(span)
        grounded.append(SummaryItem(text=item.text, evidence=spans))
    return grounded, missing


def _describe(exc: Exception) -> str:
    """A short description of a parse failure that never echoes model output (it may hold PHI)."""
    if isinstance(exc, ValidationError):
        locations = sorted({".".join(str(p) for p in err["loc"]) or "root" for err in exc.errors()})
        return "schema errors at: " + ", ".join(locations[:10])
    if isinstance(exc, json.JSONDecodeError):
        return "invalid JSON"
    return "no JSON object"


def call_with_retries(
    summarizer: Summarizer,
    system: str,
    messages: list[dict[str, str]],
    policy: RetryPolicy,
    on_retry: Callable[[int, str], None] | None = None,
) -> ModelReply:
    """One model call under the tenacity policy; re-raises the last retryable error when the
    budget is spent."""

    def _before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            exc = state.outcome.exception()
            on_retry(state.attempt_number, str(exc) if exc else "")

    errors = _ErrorCount(policy)
    retrying = Retrying(
        retry=retry_if_exception_type(RetryableSummarizerError),
        wait=errors.wait,
        stop=stop_any(errors, stop_before_delay(policy.budget_seconds)),
        before_sleep=_before_sleep,
        reraise=True,
    )
    return retrying(summarizer.complete, system, messages)


def summarize_text(
    text: str,
    report_type: ReportType,
    summarizer: Summarizer,
    policy: RetryPolicy,
    on_retry: Callable[[int, str], None] | None = None,
    on_reply: Callable[[ModelReply], None] | None = None,
) -> tuple[SummaryResult, int]:
    """Summarize ``text``: call the model, validate, repair once, ground the evidence.

    Returns
    -------
    (SummaryResult, ungrounded_quotes)

    Raises
    ------
    RetryableSummarizerError
        The retry budget was spent on retryable errors.
    NonRetryableSummarizerError
        The model rejected the request.
    InvalidModelOutputError
        Neither the reply nor the repaired reply matched the contract.
    """
    messages = [{"role": "user", "text": build_user_prompt(text, report_type)}]
    reply = call_with_retries(summarizer, SYSTEM_PROMPT, messages, policy, on_retry)
    if on_reply is not None:
        on_reply(reply)
    input_tokens, output_tokens, calls = reply.input_tokens, reply.output_tokens, 1
    try:
        parsed = parse_model_reply(reply.text)
    except ValueError as first_error:
        repair = _REPAIR_TEMPLATE.format(
            problem=_describe(first_error),
            previous=reply.text[:8_000],
            report_type=report_type.value.replace("_", " "),
            text=text,
        )
        reply = call_with_retries(
            summarizer, SYSTEM_PROMPT, [{"role": "user", "text": repair}], policy, on_retry
        )
        if on_reply is not None:
            on_reply(reply)
        input_tokens += reply.input_tokens
        output_tokens += reply.output_tokens
        calls += 1
        try:
            parsed = parse_model_reply(reply.text)
        except ValueError as second_error:
            raise InvalidModelOutputError(_describe(second_error)) from None

    missing = 0
    sections: dict[str, list[SummaryItem]] = {}
    for key in ("key_findings", "diagnoses", "medications", "follow_up"):
        sections[key], lost = ground(getattr(parsed, key), text)
        missing += lost
    summary = Summary(
        summary=parsed.summary,
        key_findings=sections["key_findings"],
        diagnoses=sections["diagnoses"],
        medications=sections["medications"],
        follow_up=sections["follow_up"],
        model_id=reply.model_id,
        prompt_version=PROMPT_VERSION,
    )
    usage = Usage(model_id=reply.model_id, input_tokens=input_tokens, output_tokens=output_tokens)
    return SummaryResult(summary=summary, usage=usage, model_calls=calls), missing
