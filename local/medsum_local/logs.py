"""What the local stack prints: one readable line per event by default, every JSON record with ``--verbose``.

Two formats (``MEDSUM_LOG_FORMAT``, ``medsum-local --verbose``):

``json``
    Everything as it is produced: the API stage's access log lines (its ``AccessLogSetting.Format``),
    the runtime's and pollers' platform records, and the sandboxes' own output (Powertools JSON logs,
    EMF metric blobs, Python warnings) straight from their inherited stdout/stderr, as CloudWatch gets it.
``text``
    The sandboxes' output is captured (a pipe per sandbox, read by the stack) and each line goes through
    :class:`FunctionOutput`. What is printed: one line per API request (caller, method, path, status,
    latency), one line per worker outcome (lane, report id, outcome, error code, model retries), and
    one line per warning or error of any component (the worker's per-report warnings are counted or
    shown on the report's outcome line instead). Info records, EMF metric blobs and Powertools' "No
    application metrics to publish" warnings are dropped; lines that are not JSON records are passed
    through as they are (a traceback stays readable).

PHI: a text line carries the record's static ``message`` and the values of :data:`PRINTED_KEYS` only
(ids, codes, statuses, counts, latencies), never a whole record, so the terminal shows no more than ids
even if a record one day carried more. Patient ids are masked in paths (the template's own access log
leaves concrete paths out for the same reason).

This module imports the standard library only.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TextIO

__all__ = [
    "ENV_LOG_FORMAT",
    "LOG_FORMATS",
    "PRINTED_KEYS",
    "ApiRequest",
    "Console",
    "FunctionOutput",
    "LogFormat",
    "format_api_request",
    "format_platform_record",
    "mask_path",
    "parse_log_format",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
ENV_LOG_FORMAT = "MEDSUM_LOG_FORMAT"

#: The record keys a text line may show, in this order: ids, codes, statuses, counts, latencies.
PRINTED_KEYS: tuple[str, ...] = (
    "function",
    "eventSource",
    "report_id",
    "batch_id",
    "webhook_id",
    "delivery_id",
    "audit_id",
    "job_id",
    "messageId",
    "requestId",
    "lane",
    "status",
    "outcome",
    "error_code",
    "code",
    "error_type",
    "errorType",
    "exception_name",
    "attempt",
    "receive_count",
    "delay_seconds",
    "items",
    "messages",
    "failed",
    "durationMs",
)

#: Worker records that end the handling of one work message: message → outcome (None: the record's
#: ``outcome`` key, e.g. ``completed``, ``failed``, ``skipped``).
WORKER_OUTCOMES: Mapping[str, str | None] = {
    "work message done": None,
    "work message returned to queue": "returned to queue",
}
#: Worker warnings that announce the outcome line of the same message; their ``error_code`` is shown
#: there instead of on a line of their own.
FOLDED_INTO_OUTCOME = frozenset({"report failed", "model unavailable; returning message to queue"})
#: The worker's warning per retried model call: counted on the outcome line (a throttled minute would
#: otherwise print dozens of lines); its ``error_code`` is the outcome's unless the report completed.
RETRY_MESSAGE = "bedrock call failed; retrying"
#: The worker's record of a stored summary: its verification counts go on the outcome line.
COMPLETED_MESSAGE = "report completed"

_WARNING_LEVELS = frozenset({"WARNING", "WARN", "ERROR", "CRITICAL", "FATAL"})
_NO_METRICS_WARNING = "No application metrics to publish"
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
_PATIENT_SEGMENT = re.compile(r"(?<=/patients/)[^/]+")
_MAX_VALUE_CHARS = 80
_MAX_MESSAGE_CHARS = 100
_MAX_PENDING_REPORTS = 256
_SOURCE_KEYS = frozenset({"function", "eventSource"})
#: Error types of the runtime itself (timeouts, crashes), not raised by a handler.
_PLATFORM_ERRORS = ("Sandbox.", "Runtime.")


def parse_log_format(raw: str | None, default: LogFormat = "text") -> LogFormat:
    """Read a log format (``text`` / ``json``, case-insensitive); empty or None gives ``default``.

    Raises
    ------
    ValueError
        For any other value.
    """
    value = (raw or "").strip().lower()
    if not value:
        return default
    if value not in LOG_FORMATS:
        raise ValueError(f"{ENV_LOG_FORMAT}={raw!r} is not one of: {', '.join(LOG_FORMATS)}")
    return value


@dataclass(frozen=True)
class ApiRequest:
    """One request the local API gateway answered, as the readable log shows it.

    Attributes
    ----------
    caller
        The identity's name when the signature was verified, else the access key id the request
        claimed, else ``-`` (unsigned).
    method
        HTTP method.
    path
        The request path with its ids (patient ids masked, see :func:`mask_path`); ``-`` when no route
        matched (the path is then not printed at all: it reached no function).
    status
        HTTP status answered.
    latency_ms
        Time from request to response.
    error_type
        The gateway response type when the gateway answered itself (``ACCESS_DENIED``, ``THROTTLED``).
    """

    caller: str
    method: str
    path: str
    status: int
    latency_ms: int
    error_type: str = ""


def mask_path(path: str) -> str:
    """``/patients/pt-001/reports`` → ``/patients/{patient_id}/reports``: a patient id names a person."""
    return _PATIENT_SEGMENT.sub("{patient_id}", path)


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def _clean(value: object, limit: int = _MAX_VALUE_CHARS) -> str:
    """One printable, bounded token (no newlines or terminal escapes from a client-chosen value)."""
    text = _UNPRINTABLE.sub("?", str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fields(record: Mapping[str, Any], *, skip: frozenset[str] = frozenset()) -> str:
    parts = []
    for key in PRINTED_KEYS:
        value = record.get(key)
        if key in skip or value is None or value == "" or isinstance(value, (dict, list, tuple)):
            continue
        parts.append(f"{key}={_clean(value)}")
    return " ".join(parts)


def _problem_line(at: float, level: str, source: str, message: str, fields: str) -> str:
    line = f"{_clock(at)}  {level:<7} {source}: {message}"
    return f"{line}  {fields}" if fields else line


def format_api_request(request: ApiRequest, at: float) -> str:
    """``10:15:04  api     clinic-a    POST /reports/01J…  200  12 ms``."""
    status = f"{request.status} {_clean(request.error_type)}" if request.error_type else str(request.status)
    return (
        f"{_clock(at)}  api     {_clean(request.caller):<10}  {_clean(request.method)} "
        f"{_clean(request.path, 200)}  {status}  {request.latency_ms} ms"
    )


def format_platform_record(record: Mapping[str, Any], at: float) -> str | None:
    """A runtime or poller record (``{"type": "platform.initError", ...}``) as one line, or None.

    Init reports are dropped (every cold start would print one), and so are reports of an error the
    handler raised (its sandbox printed that error already); every other record the runtime and the
    pollers emit is a problem of their own (a failed init, a timeout, a crash, a poller error).
    """
    kind = str(record.get("type") or "")
    if not kind or kind == "platform.initReport":
        return None
    if kind == "platform.report" and not str(record.get("errorType") or "").startswith(_PLATFORM_ERRORS):
        return None
    level = "WARNING" if kind.startswith("poller.") or record.get("status") == "timeout" else "ERROR"
    source = _clean(record.get("function") or record.get("eventSource") or kind.split(".", 1)[0])
    fields = dict(record)
    error = record.get("error")
    if isinstance(error, str):  # a repr(): show the exception's type, not its text
        fields.setdefault("errorType", error.split("(", 1)[0])
    return _problem_line(at, level, source, _clean(kind), _fields(fields, skip=_SOURCE_KEYS))


class FunctionOutput:
    """Turns the lines one sandbox prints into readable lines (one instance per sandbox process).

    Parameters
    ----------
    function
        The function's logical id (``WorkerFunction``), shown on warnings and errors.

    Examples
    --------
    >>> out = FunctionOutput("WorkerFunction")
    >>> out.line('{"level": "INFO", "message": "work message done", "outcome": "completed", '
    ...          '"report_id": "r1", "lane": "bulk"}', at=0)[10:]
    'worker  bulk         r1  completed'
    """

    def __init__(self, function: str) -> None:
        self.function = function
        # What the outcome line of a report will show, gathered from the records before it (they come
        # from the same invocation, so from this sandbox).
        self._pending: dict[str, _Pending] = {}
        self._in_dropped_warning = False

    def line(self, raw: str, at: float) -> str | None:
        """The readable line for one printed line, or None to print nothing."""
        if self._in_dropped_warning and raw[:1].isspace():
            return None  # the source line Python prints under a warning
        self._in_dropped_warning = False
        stripped = raw.strip()
        if not stripped:
            return None
        if _NO_METRICS_WARNING in stripped:
            self._in_dropped_warning = True
            return None
        record = _json_object(stripped)
        if record is None:
            return raw
        if isinstance(record.get("_aws"), dict):
            return None  # an EMF metric blob
        message = record.get("message")
        message = message if isinstance(message, str) else ""
        if message in WORKER_OUTCOMES:
            return self._outcome(record, message, at)
        if message == COMPLETED_MESSAGE and isinstance(record.get("report_id"), str):
            self._remember_verification(record)
            return None
        level = str(record.get("level") or "").upper()
        if level not in _WARNING_LEVELS:
            return None
        report_id = record.get("report_id")
        if (message in FOLDED_INTO_OUTCOME or message == RETRY_MESSAGE) and isinstance(report_id, str):
            self._remember(report_id, record.get("error_code"), retry=message == RETRY_MESSAGE)
            return None
        return _problem_line(
            at, level, self.function, _clean(message or "-", _MAX_MESSAGE_CHARS), _fields(record)
        )

    def _outcome(self, record: Mapping[str, Any], message: str, at: float) -> str:
        report_id = str(record.get("report_id") or "-")
        outcome = WORKER_OUTCOMES[message] or str(record.get("outcome") or "-")
        pending = self._pending.pop(report_id, _Pending())
        error_code = record.get("error_code") or pending.error_code
        if not error_code and outcome != "completed":
            error_code = pending.retry_error_code
        lane = _clean(record.get("lane") or "-")
        line = f"{_clock(at)}  worker  {lane:<11}  {_clean(report_id)}  {_clean(outcome)}"
        if error_code:
            line += f"  {_clean(error_code)}"
        notes = []
        if pending.needs_review:
            dropped = pending.items_dropped
            notes.append(f"needs review: {dropped} item{'' if dropped == 1 else 's'} dropped")
        if pending.retries:
            notes.append(f"{pending.retries} model {'retry' if pending.retries == 1 else 'retries'}")
        delay = record.get("delay_seconds")
        if isinstance(delay, (int, float)) and not isinstance(delay, bool):
            notes.append(f"visible again in {delay:g} s")
        return f"{line}  ({'; '.join(notes)})" if notes else line

    def _remember_verification(self, record: Mapping[str, Any]) -> None:
        pending = self._pending_for(str(record["report_id"]))
        pending.needs_review = record.get("needs_review") is True
        dropped = record.get("items_dropped")
        pending.items_dropped = dropped if isinstance(dropped, int) and not isinstance(dropped, bool) else 0

    def _pending_for(self, report_id: str) -> _Pending:
        pending = self._pending.get(report_id)
        if pending is None:
            if len(self._pending) >= _MAX_PENDING_REPORTS:  # outcomes that never came (a crash)
                self._pending.pop(next(iter(self._pending)))
            pending = self._pending[report_id] = _Pending()
        return pending

    def _remember(self, report_id: str, error_code: object, *, retry: bool) -> None:
        pending = self._pending_for(report_id)
        code = error_code if isinstance(error_code, str) and error_code else None
        if retry:
            pending.retries += 1
            pending.retry_error_code = code or pending.retry_error_code
        else:
            pending.error_code = code or pending.error_code


@dataclass
class _Pending:
    error_code: str | None = None
    retries: int = 0
    retry_error_code: str | None = None
    #: From the "report completed" record: the verifier dropped items or flagged the summary.
    needs_review: bool = False
    items_dropped: int = 0


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class Console:
    """The local stack's terminal: every component logs through one object, in one format.

    Parameters
    ----------
    log_format
        ``text`` (readable lines) or ``json`` (every record, as produced).
    stream
        Where to print; default: ``sys.stdout`` at the time of each line.
    clock
        Wall-clock time of a line (tests fix it).
    """

    def __init__(
        self,
        log_format: LogFormat = "text",
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log_format = log_format
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def captures_function_output(self) -> bool:
        """Whether the sandboxes' stdout/stderr must be captured and passed to :meth:`function_output`."""
        return self.log_format == "text"

    def write(self, line: str) -> None:
        """Print one line (lines from concurrent components never interleave)."""
        with self._lock:
            stream = self._stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()

    def access_log(self, line: str) -> None:
        """An access log line of the API stage (json format only; text prints :meth:`api_request`)."""
        if self.log_format == "json":
            self.write(line)

    def api_request(self, request: ApiRequest) -> None:
        """One answered API request (text format only; json prints the stage's access log)."""
        if self.log_format == "text":
            self.write(format_api_request(request, self._clock()))

    def record(self, record: Mapping[str, Any]) -> None:
        """A platform record of the runtime or a poller."""
        if self.log_format == "json":
            self.write(json.dumps(record))
            return
        line = format_platform_record(record, self._clock())
        if line is not None:
            self.write(line)

    def function_output(self, function: str) -> Callable[[str], None]:
        """The receiver of the lines one sandbox of ``function`` prints (text format)."""
        output = FunctionOutput(function)

        def receive(raw: str) -> None:
            line = output.line(raw, self._clock())
            if line is not None:
                self.write(line)

        return receive
