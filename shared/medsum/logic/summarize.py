"""From report text to a validated, evidence-linked, verified ``Summary``.

The model is asked for the summary contract through a forced tool whose input schema is generated from
``ModelSummary`` (families that support it, ``medsum.modelfamily``) or as JSON in the prompt (the
others). Evidence comes back as verbatim quotes; we compute the character offsets against the submitted
text ourselves (models cannot count characters). A reply that does not validate gets one repair attempt;
a reply cut off at its output limit is asked for once more with more room; then
``InvalidModelOutputError`` / ``TruncatedModelOutputError``. Every item is then verified against its own
evidence (``logic/verify.py``) and the summary carries a ``verification`` record.

A report longer than the model's input budget is summarized map-reduce: each section on its own (its
quotes located in that section first, offsets still relative to the whole report), then one call writes
the overview from the section overviews; the items are merged and verified as one summary.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

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

from medsum.errors import (
    InvalidModelOutputError,
    OutOfTimeError,
    RetryableSummarizerError,
    ThrottledSummarizerError,
    TruncatedModelOutputError,
)
from medsum.logic.negation import ReportContext
from medsum.logic.verify import ITEM_LISTS, Tally, check_items, summary_contradicts
from medsum.modelfamily import ModelFamily, OutputMode
from medsum.models import PROMPT_VERSION, ModelSummary, ReportType, Summary, Usage
from medsum.ports import ModelReply, ModelRequest, Summarizer, ToolSpec
from medsum.prompting import PREVIOUS_REPLY_TAG, REPORT_TAG, tagged

#: The tool the model is made to call; its input is the summary contract. The local stand-in model
#: (local/medsum_local/bedrock.py) answers a forced tool of any name.
SUMMARY_TOOL_NAME: Final = "record_summary"

_RULES = """You are a clinical documentation assistant. You summarize one medical report for a \
clinician. Use only what the report states; never infer or invent findings. Negated findings \
("no pneumothorax") are not findings: leave them out. A hedged finding ("possible pneumonia", \
"cannot be excluded", "A versus B") is kept with certainty "uncertain". Allergies go in their own list \
(the substance, with the reaction in parentheses when stated), never among medications; "no known \
allergies" is no item. Every evidence string must be copied character for character from the report. \
Use empty lists when the report has nothing for a list."""

#: Families that answer through the forced tool.
TOOL_SYSTEM_PROMPT: Final = _RULES + f"\nRecord the summary by calling the {SUMMARY_TOOL_NAME} tool."

#: Families that answer with JSON text.
SYSTEM_PROMPT: Final = (
    _RULES
    + """
Reply with one JSON object and nothing else, with exactly these keys:
{"summary": "1-3 sentence overview",
 "key_findings": [{"text": "finding", "evidence": ["verbatim quote"], "certainty": "definite"}],
 "diagnoses": [{"text": "...", "evidence": ["..."], "certainty": "uncertain"}],
 "medications": [{"text": "...", "evidence": ["..."]}],
 "follow_up": [{"text": "...", "evidence": ["..."]}],
 "allergies": [{"text": "substance (reaction)", "evidence": ["..."]}]}"""
)

#: ``{report}`` is the tagged report (``medsum.prompting``: the local stand-in model reads the tags).
_USER_TEMPLATE = """Summarize this {report_type} report.{part}
{report}"""

_PART = " It is section {index} of {total} of one long report: summarize only this section."

_REDUCE_TEMPLATE = """Summarize this {report_type} report. Its {total} sections were summarized one by one; \
the section overviews are below, in order. Write the overview of the whole report from them (keep \
uncertain findings uncertain); the lists may stay empty.
{report}"""

_REPAIR_TEMPLATE = """Your previous reply did not match the required format ({problem}).
{previous}
{request}"""

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)

#: Characters per token when sizing sections: low on purpose (clinical text tokenizes densely).
CHARS_PER_TOKEN: Final = 3
#: Tokens of the system prompt, tool schema and user-message frame, with room to spare.
PROMPT_OVERHEAD_TOKENS: Final = 1_500
#: Smallest section, whatever the budget says.
MIN_SECTION_CHARS: Final = 2_000


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
    #: The invocation's clock; None: calls are bounded by ``budget_seconds`` alone.
    time: TimeBudget | None = None


@dataclass(frozen=True)
class TimeBudget:
    """The time one worker invocation has for model calls.

    A call starts only if its longest possible duration (``call_seconds``: the client's connect and
    read timeouts) still fits before the invocation ends, with ``reserve_seconds`` kept back for the
    final write and the publish. Retries stop early enough for that to hold, so the function never
    times out in the middle of a paid-for call.
    """

    #: Seconds left in the invocation (``LambdaContext.get_remaining_time_in_millis() / 1000``).
    remaining: Callable[[], float]
    call_seconds: float
    reserve_seconds: float

    def start_window(self) -> float:
        """Seconds during which a call may still start (negative: none can)."""
        return self.remaining() - self.reserve_seconds - self.call_seconds

    def check(self) -> None:
        """Raise ``OutOfTimeError`` when no call may start now."""
        if self.start_window() < 0:
            raise OutOfTimeError(OutOfTimeError.message)


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


@lru_cache(maxsize=1)
def summary_tool() -> ToolSpec:
    """The forced tool: its input schema is ``ModelSummary``'s JSON schema, references inlined (some
    model families do not resolve ``$ref``)."""
    schema = ModelSummary.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items() if key != "title"}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return ToolSpec(
        name=SUMMARY_TOOL_NAME,
        description="Record the structured, evidence-linked summary of the medical report.",
        input_schema=inline(schema),
    )


def build_user_prompt(text: str, report_type: ReportType, index: int = 1, total: int = 1) -> str:
    part = _PART.format(index=index, total=total) if total > 1 else ""
    return _USER_TEMPLATE.format(
        report_type=_type_words(report_type), part=part, report=tagged(REPORT_TAG, text)
    )


def _type_words(report_type: ReportType) -> str:
    return report_type.value.replace("_", " ")


def parse_model_reply(raw: str) -> ModelSummary:
    """Parse and validate a JSON text reply (fences and prose around the object are tolerated).
    Raises ``ValueError`` (incl. ``ValidationError``)."""
    candidate = _FENCE.sub("", raw.strip())
    start, end = candidate.find("{"), candidate.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in reply")
    return ModelSummary.model_validate(json.loads(candidate[start : end + 1]))


def parse_reply(reply: ModelReply) -> ModelSummary:
    """The summary in a reply: the forced tool's input when the model called it, else the text."""
    if reply.tool_input is not None:
        return ModelSummary.model_validate(reply.tool_input)
    return parse_model_reply(reply.text)


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
    request: ModelRequest,
    policy: RetryPolicy,
    on_retry: Callable[[int, str], None] | None = None,
) -> ModelReply:
    """One model call under the tenacity policy; re-raises the last retryable error when the
    budget is spent, and raises ``OutOfTimeError`` instead of starting an attempt that might not
    finish before the invocation ends (``policy.time``)."""

    def _before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            exc = state.outcome.exception()
            on_retry(state.attempt_number, str(exc) if exc else "")

    budget = policy.budget_seconds
    clock = policy.time
    if clock is not None:
        clock.check()
        budget = min(budget, clock.start_window())

    def attempt(request: ModelRequest) -> ModelReply:
        if clock is not None:
            clock.check()  # not retryable: tenacity lets it through at once
        return summarizer.complete(request)

    errors = _ErrorCount(policy)
    retrying = Retrying(
        retry=retry_if_exception_type(RetryableSummarizerError),
        wait=errors.wait,
        stop=stop_any(errors, stop_before_delay(max(budget, 0.0))),
        before_sleep=_before_sleep,
        reraise=True,
    )
    return retrying(attempt, request)


@dataclass
class _Calls:
    """Runs model calls for one report and adds up what they cost."""

    summarizer: Summarizer
    policy: RetryPolicy
    max_tokens: int
    on_retry: Callable[[int, str], None] | None
    on_reply: Callable[[ModelReply], None] | None
    family: ModelFamily = field(init=False)
    count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0
    model_id: str = ""

    def __post_init__(self) -> None:
        self.family = self.summarizer.family
        self.model_id = self.summarizer.model_id

    def request(self, user_text: str, max_tokens: int | None = None) -> ModelRequest:
        uses_tool = self.family.output is not OutputMode.PROMPT_JSON
        return ModelRequest(
            system=TOOL_SYSTEM_PROMPT if uses_tool else SYSTEM_PROMPT,
            user_text=user_text,
            tool=summary_tool() if uses_tool else None,
            max_tokens=max_tokens or self.max_tokens,
        )

    def call(self, request: ModelRequest) -> ModelReply:
        reply = call_with_retries(self.summarizer, request, self.policy, self.on_retry)
        if self.on_reply is not None:
            self.on_reply(reply)
        self.count += 1
        self.input_tokens += reply.input_tokens
        self.output_tokens += reply.output_tokens
        self.cache_read += reply.cache_read_input_tokens
        self.cache_write += reply.cache_write_input_tokens
        self.model_id = reply.model_id
        return reply

    def summary(self, user_text: str) -> ModelSummary:
        """The contract for one prompt: at most two calls (a retry with more room after a truncated
        reply, or one repair after a reply that does not validate)."""
        request = self.request(user_text)
        reply = self.call(request)
        if reply.stop_reason == "max_tokens":
            room = min(self.family.max_output_tokens, 2 * (request.max_tokens or self.max_tokens))
            if room <= (request.max_tokens or self.max_tokens):
                raise TruncatedModelOutputError(TruncatedModelOutputError.message)
            reply = self.call(self.request(user_text, max_tokens=room))
            if reply.stop_reason == "max_tokens":
                raise TruncatedModelOutputError(TruncatedModelOutputError.message)
            try:
                return parse_reply(reply)
            except ValueError as error:
                raise InvalidModelOutputError(_describe(error)) from None
        try:
            return parse_reply(reply)
        except ValueError as first_error:
            previous = json.dumps(reply.tool_input) if reply.tool_input is not None else reply.text
            repair = _REPAIR_TEMPLATE.format(
                problem=_describe(first_error),
                previous=tagged(PREVIOUS_REPLY_TAG, previous[:8_000]),
                request=user_text,
            )
            reply = self.call(self.request(repair))
            if reply.stop_reason == "max_tokens":
                raise TruncatedModelOutputError(TruncatedModelOutputError.message) from None
            try:
                return parse_reply(reply)
            except ValueError as second_error:
                raise InvalidModelOutputError(_describe(second_error)) from None

    def usage(self) -> Usage:
        return Usage(
            model_id=self.model_id,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_input_tokens=self.cache_read,
            cache_write_input_tokens=self.cache_write,
            model_calls=self.count,
        )


def section_chars(context_tokens: int, max_tokens: int) -> int:
    """The longest report section (characters) that fits one call of a model with ``context_tokens``."""
    usable = context_tokens - max_tokens - PROMPT_OVERHEAD_TOKENS
    return max(MIN_SECTION_CHARS, usable * CHARS_PER_TOKEN)


# Where a long report is best cut, best first: before a section heading ("IMPRESSION:"), at a blank
# line, after a sentence, at any whitespace.
_CUTS: Final = (
    re.compile(r"\n(?=[ \t]*[A-Z][A-Z0-9 /&(),-]{1,40}:)"),
    re.compile(r"\n[ \t]*\n"),
    re.compile(r"[.!?][\"')\]]?\s+"),
    re.compile(r"\s+"),
)


def split_sections(text: str, limit: int) -> list[tuple[int, int]]:
    """Contiguous ``(start, end)`` sections of ``text``, each at most ``limit`` characters, cut at the
    best boundary in the second half of each window (see ``_CUTS``)."""
    sections: list[tuple[int, int]] = []
    position = 0
    while len(text) - position > limit:
        window_end = position + limit
        cut = window_end
        for pattern in _CUTS:
            ends = [m.end() for m in pattern.finditer(text, position + limit // 2, window_end)]
            if ends:
                cut = ends[-1]
                break
        sections.append((position, cut))
        position = cut
    sections.append((position, len(text)))
    return sections


def summarize_text(
    text: str,
    report_type: ReportType,
    summarizer: Summarizer,
    policy: RetryPolicy,
    on_retry: Callable[[int, str], None] | None = None,
    on_reply: Callable[[ModelReply], None] | None = None,
    *,
    max_tokens: int = 2_048,
    context_tokens: int = 0,
) -> SummaryResult:
    """Summarize ``text``: call the model (by sections when it is long), validate, repair once, verify.

    ``context_tokens`` overrides the model family's context window (0: the family's).

    Raises
    ------
    RetryableSummarizerError
        The retry budget was spent on retryable errors.
    NonRetryableSummarizerError
        The model rejected the request, or its guardrail blocked the reply.
    InvalidModelOutputError
        Neither the reply nor the repaired reply matched the contract (``TruncatedModelOutputError``:
        the reply was cut off at its output limit twice).
    OutOfTimeError
        The next call could not have finished before the invocation ends (``policy.time``).
    """
    calls = _Calls(summarizer, policy, max_tokens, on_retry, on_reply)
    report = ReportContext(text)
    tally = Tally()
    limit = section_chars(context_tokens or calls.family.context_tokens, max_tokens)
    sections = split_sections(text, limit)
    overviews: list[str] = []
    for index, (start, end) in enumerate(sections, start=1):
        prompt = build_user_prompt(text[start:end], report_type, index, len(sections))
        parsed = calls.summary(prompt)
        overviews.append(parsed.summary)
        check_items({name: getattr(parsed, name) for name in ITEM_LISTS}, report, tally, (start, end))
    overview = overviews[0]
    if len(sections) > 1:
        reduce = _REDUCE_TEMPLATE.format(
            report_type=_type_words(report_type),
            total=len(sections),
            report=tagged(REPORT_TAG, "\n".join(overviews)),
        )
        overview = calls.summary(reduce).summary
    verification = tally.verification(summary_contradicts(overview, report), sections=len(sections))
    summary = Summary(
        summary=overview,
        model_id=calls.model_id,
        prompt_version=PROMPT_VERSION,
        verification=verification,
        key_findings=tally.lists["key_findings"],
        diagnoses=tally.lists["diagnoses"],
        medications=tally.lists["medications"],
        follow_up=tally.lists["follow_up"],
        allergies=tally.lists["allergies"],
    )
    return SummaryResult(summary=summary, usage=calls.usage(), model_calls=calls.count)
