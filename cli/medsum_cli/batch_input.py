"""Batch input for ``medsum batch submit``: reading, local checks, and splitting into requests.

A batch request body is JSON Lines (``application/x-ndjson``), one report a line::

    {"custom_id": "...", "patient_id": "...", "report_text": "...", "report_type": "...", "metadata": {...}}

Input comes either from a ``.jsonl`` file, sent as it is (each line is checked locally and problems are
reported, but the lines are still sent: the API reports them too), or from a directory of ``*.txt``
reports, one item per file.

An input that fits one inline request (:data:`MAX_BATCH_ITEMS` items and :data:`MAX_BATCH_REQUEST_BYTES`
bytes) is sent inline (``POST /batches``); a larger one is uploaded as one batch (``POST /batches/uploads``
and a presigned PUT), and only inputs over :data:`MAX_UPLOAD_ITEMS` items or :data:`MAX_UPLOAD_BYTES`
bytes are split into several batches, on line boundaries (:func:`plan_submission`).

Everything here is pure (no HTTP): the command handlers in :mod:`medsum_cli.commands.batches` send the
chunks.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from medsum.models import CUSTOM_ID_PATTERN, MAX_BATCH_ITEMS, MAX_REPORT_CHARS, MAX_UPLOAD_ITEMS

MAX_BATCH_REQUEST_BYTES = 5_000_000  # "5 MB" per request: below both 5 * 10**6 and 5 * 2**20
#: Most bytes in one upload: S3's limit for a single PUT is 5 GiB (a presigned URL cannot be a multipart
#: upload), so "5 GB", below both 5 * 10**9 and 5 * 2**30. 100,000 items of the 5 KB an inline item
#: averages at most is 0.5 GB, so in practice the item limit splits first.
MAX_UPLOAD_BYTES = 5_000_000_000
MAX_IDEMPOTENCY_KEY_CHARS = 255
#: The ``status`` of a results line for an input line the API did not accept (see :func:`rejected_results`).
REJECTED_STATUS = "ERRORED"

SubmissionMode = Literal["inline", "upload"]
ModeOption = Literal["auto", "inline", "upload"]
SUBMISSION_LIMITS: dict[SubmissionMode, tuple[int, int]] = {
    "inline": (MAX_BATCH_ITEMS, MAX_BATCH_REQUEST_BYTES),
    "upload": (MAX_UPLOAD_ITEMS, MAX_UPLOAD_BYTES),
}

_CUSTOM_ID = re.compile(CUSTOM_ID_PATTERN)
# Characters JSON allows unescaped in strings but that str.splitlines() (and some JSON Lines readers)
# treat as line breaks. The characters below U+0020 that splitlines() also breaks on are always escaped.
_LINE_BREAKS_IN_JSON = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_LINE_BREAK_CHARS = re.compile("[\u0085\u2028\u2029]")

__all__ = [
    "MAX_BATCH_ITEMS",
    "MAX_BATCH_REQUEST_BYTES",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_ITEMS",
    "SUBMISSION_LIMITS",
    "BatchInput",
    "BatchInputError",
    "BatchLine",
    "Chunk",
    "choose_submission_mode",
    "chunk_idempotency_key",
    "count_result_statuses",
    "format_counts",
    "from_directory",
    "from_jsonl",
    "plan_submission",
    "rejected_lines",
    "rejected_results",
    "split",
]


class BatchInputError(Exception):
    """The batch input cannot be sent at all (unreadable, empty, duplicate ``custom_id`` ...)."""


@dataclass(frozen=True)
class BatchLine:
    """One line of the NDJSON input, exactly as it will be sent.

    Attributes
    ----------
    number
        1-based line number in the input.
    data
        The raw bytes of the line, its ``\\n`` included (the last line may lack one).
    is_item
        Whether the line counts as an item (every line that is not blank).
    """

    number: int
    data: bytes
    is_item: bool


@dataclass(frozen=True)
class BatchInput:
    """A batch input, ready to split: its lines, and the problems the local checks found.

    Attributes
    ----------
    source
        What the input was read from (for messages).
    lines
        Every line, blank ones included, in input order.
    problems
        ``(line number, message)`` for lines the API will reject; they are sent anyway.
    """

    source: str
    lines: tuple[BatchLine, ...]
    problems: tuple[tuple[int, str], ...] = ()

    @property
    def item_count(self) -> int:
        """Number of items (non-blank lines)."""
        return sum(1 for line in self.lines if line.is_item)

    @property
    def size(self) -> int:
        """Total size in bytes."""
        return sum(len(line.data) for line in self.lines)


@dataclass(frozen=True)
class Chunk:
    """The body of one ``POST /batches`` request, or the file of one upload.

    Attributes
    ----------
    body
        The exact NDJSON bytes to send.
    items
        Number of items in ``body``.
    first_line, last_line
        Range of input line numbers it holds (line numbers in the API's errors count from 1 in
        each chunk).
    """

    body: bytes
    items: int
    first_line: int
    last_line: int


def from_jsonl(data: bytes, source: str) -> BatchInput:
    """Read a JSON Lines batch input, to be sent as it is, and check each line locally.

    Parameters
    ----------
    data
        The file's bytes.
    source
        Its name, for messages.

    Returns
    -------
    BatchInput
        The lines and the problems found: a line that is not UTF-8, not JSON, not an object, or
        lacks a valid ``custom_id``.

    Raises
    ------
    BatchInputError
        If there is no item at all, or a ``custom_id`` appears twice (the API would refuse the whole
        request, and across split requests it could not tell the items apart).
    """
    lines = tuple(_split_lines(data))
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for line in lines:
        if not line.is_item:
            continue
        problem, custom_id = _check_line(line.data)
        if problem is not None:
            problems.append((line.number, problem))
        if custom_id is not None:
            if custom_id in seen:
                first = seen[custom_id]
                raise BatchInputError(
                    f"{source}: duplicate custom_id {custom_id!r} on lines {first} and {line.number}"
                )
            seen[custom_id] = line.number
    batch = BatchInput(source=source, lines=lines, problems=tuple(problems))
    if batch.item_count == 0:
        raise BatchInputError(f"{source} has no items (one JSON object a line)")
    return batch


def from_directory(
    directory: Path,
    report_type: str,
    patient_id_of: Callable[[Path], str],
    read_text: Callable[[Path], str],
) -> BatchInput:
    """Build a batch from every ``*.txt`` report of a directory, in file name order.

    Each file is one item: ``custom_id`` is the file name without ``.txt``, ``patient_id`` is derived
    from it by ``patient_id_of``, ``report_type`` is ``report_type`` and ``report_text`` the file's text.

    Parameters
    ----------
    directory
        The directory (not searched recursively).
    report_type
        Report type of every item.
    patient_id_of
        ``patient_id_of(path)`` returns the patient id of a report file.
    read_text
        ``read_text(path)`` returns a report's text (and raises if it cannot be read).

    Returns
    -------
    BatchInput
        One compact JSON line per file; ``problems`` lists the file names that are not valid
        ``custom_id`` values (the API will reject those items).

    Raises
    ------
    BatchInputError
        If the directory has no ``*.txt`` file, or one of them is empty.
    """
    files = sorted(path for path in directory.glob("*.txt") if path.is_file())
    if not files:
        raise BatchInputError(f"no *.txt reports in {directory}")
    lines: list[BatchLine] = []
    problems: list[tuple[int, str]] = []
    for number, path in enumerate(files, start=1):
        text = read_text(path)
        if not text.strip():
            raise BatchInputError(f"the report in {path} is empty")
        item = {
            "custom_id": path.stem,
            "patient_id": patient_id_of(path),
            "report_text": text,
            "report_type": report_type,
        }
        if not _CUSTOM_ID.fullmatch(path.stem):
            problems.append((number, f"{path.name}: {_custom_id_problem(path.stem)}"))
        data = (_dump_line(item) + "\n").encode("utf-8")
        lines.append(BatchLine(number=number, data=data, is_item=True))
    return BatchInput(source=str(directory), lines=tuple(lines), problems=tuple(problems))


def split(
    batch: BatchInput, max_items: int = MAX_BATCH_ITEMS, max_bytes: int = MAX_BATCH_REQUEST_BYTES
) -> list[Chunk]:
    """Split a batch input into request bodies of at most ``max_items`` items and ``max_bytes`` bytes.

    Lines are never cut or changed, so an input within both limits is one chunk whose body is the
    input, byte for byte. A single line longer than ``max_bytes`` gets a chunk of its own (the API
    answers ``413`` for it).

    Parameters
    ----------
    batch
        The input.
    max_items
        Most items in one request.
    max_bytes
        Most bytes in one request.

    Returns
    -------
    list of Chunk
        The request bodies, in input order; chunks with no item (trailing blank lines) are dropped.
    """
    chunks: list[Chunk] = []
    current: list[BatchLine] = []
    items = size = 0

    def flush() -> None:
        if items:
            chunks.append(
                Chunk(
                    body=b"".join(line.data for line in current),
                    items=items,
                    first_line=current[0].number,
                    last_line=current[-1].number,
                )
            )

    for line in batch.lines:
        weight = 1 if line.is_item else 0
        if current and (items + weight > max_items or size + len(line.data) > max_bytes):
            flush()
            current, items, size = [], 0, 0
        current.append(line)
        items += weight
        size += len(line.data)
    flush()
    return chunks


def choose_submission_mode(item_count: int, size: int) -> SubmissionMode:
    """Choose how to send a batch input: inline request bodies, or uploads to presigned URLs.

    Inline is one round trip and the batch is ``in_progress`` at once, so it is used whenever the whole
    input fits ONE inline request; anything larger is uploaded, as one batch (one id) when it fits one
    upload, rather than split into many inline batches.

    Parameters
    ----------
    item_count
        Number of items in the whole input.
    size
        Size of the whole input, in bytes.

    Returns
    -------
    str
        ``"inline"`` when ``item_count <= MAX_BATCH_ITEMS`` and ``size <= MAX_BATCH_REQUEST_BYTES``,
        else ``"upload"`` (split by :func:`plan_submission` above the upload limits).
    """
    max_items, max_bytes = SUBMISSION_LIMITS["inline"]
    return "inline" if item_count <= max_items and size <= max_bytes else "upload"


def plan_submission(batch: BatchInput, mode: ModeOption = "auto") -> tuple[SubmissionMode, list[Chunk]]:
    """Decide how to send a batch input, and cut it into the bodies to send.

    Parameters
    ----------
    batch
        The input.
    mode
        ``"auto"`` (:func:`choose_submission_mode`), or ``"inline"`` / ``"upload"`` to force a path
        (``--mode``).

    Returns
    -------
    tuple
        ``(mode, chunks)``: the path chosen, and the bodies split at that path's limits
        (:data:`SUBMISSION_LIMITS`): one chunk, unless the input is over them.
    """
    chosen: SubmissionMode = choose_submission_mode(batch.item_count, batch.size) if mode == "auto" else mode
    max_items, max_bytes = SUBMISSION_LIMITS[chosen]
    return chosen, split(batch, max_items=max_items, max_bytes=max_bytes)


def chunk_idempotency_key(key: str | None, index: int, count: int) -> str | None:
    """Return the ``Idempotency-Key`` of the ``index``-th (1-based) of ``count`` requests.

    One request uses ``key`` itself; split requests use ``key-1``, ``key-2``, ..., so that each
    request is idempotent on its own and a rerun of the same command with the same key and input
    (which splits the same way) creates no new batch.

    Parameters
    ----------
    key
        The ``--idempotency-key`` value, or ``None``.
    index
        Position of the request, from 1.
    count
        Number of requests.

    Returns
    -------
    str or None
        The key to send, or ``None`` when no key was given.
    """
    if not key:
        return None
    return key if count == 1 else f"{key}-{index}"


def count_result_statuses(ndjson: bytes) -> Counter[str]:
    """Count the ``status`` values of a batch's NDJSON results.

    Parameters
    ----------
    ndjson
        The body of ``GET /batches/{id}/results``.

    Returns
    -------
    collections.Counter
        ``status -> count``; lines that are not JSON objects count as ``"unreadable"``.
    """
    counts: Counter[str] = Counter()
    for raw in ndjson.split(b"\n"):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            counts["unreadable"] += 1
            continue
        counts[str(value.get("status", "unknown")) if isinstance(value, dict) else "unreadable"] += 1
    return counts


def rejected_lines(batch: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return the batch's input lines the API did not accept (its ``errors``, without line ``0``).

    Parameters
    ----------
    batch
        The API's batch object (``GET /batches/{id}``).

    Returns
    -------
    list of dict
        ``{"line", "custom_id", "code", "message"}`` per rejected line, in the API's order. Errors of
        line ``0`` are about the whole batch (e.g. an uploaded file with too many lines), not a line.
    """
    return [
        error for error in batch.get("errors") or [] if isinstance(error, Mapping) and error.get("line") != 0
    ]


def rejected_results(batch: Mapping[str, Any]) -> bytes:
    """Return one results line per rejected input line, to follow the API's results.

    With them, a results file has a line for every submitted ``custom_id``: the API's lines for the
    accepted items, then ``{"custom_id", "report_id": null, "status": "ERRORED", "summary": null,
    "error": {"code", "message"}, "line"}`` for each rejected line (``custom_id`` is ``null`` when the line
    had none that could be read).

    Parameters
    ----------
    batch
        The API's batch object.

    Returns
    -------
    bytes
        NDJSON, empty when every line was accepted.
    """
    lines = []
    for error in rejected_lines(batch):
        result = {
            "custom_id": error.get("custom_id"),
            "report_id": None,
            "status": REJECTED_STATUS,
            "summary": None,
            "error": {"code": error.get("code"), "message": error.get("message")},
            "line": error.get("line"),
        }
        lines.append(json.dumps(result, ensure_ascii=False, separators=(",", ":")) + "\n")
    return "".join(lines).encode("utf-8")


def format_counts(counts: Iterable[tuple[str, int]]) -> str:
    """Format ``(name, count)`` pairs as ``"3 completed, 1 failed"``, skipping zero counts.

    Parameters
    ----------
    counts
        The pairs, in display order.

    Returns
    -------
    str
        The text (``"none"`` when every count is zero).
    """
    text = ", ".join(f"{count} {name}" for name, count in counts if count)
    return text or "none"


def _dump_line(item: dict[str, str]) -> str:
    line = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    return _LINE_BREAK_CHARS.sub(lambda match: _LINE_BREAKS_IN_JSON[match.group()], line)


def _split_lines(data: bytes) -> Iterator[BatchLine]:
    # Split on "\n" only, keeping it, so that the chunks concatenate back to the input.
    start = 0
    number = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        number += 1
        raw = data[start:end]
        yield BatchLine(number=number, data=raw, is_item=bool(raw.strip()))
        start = end


def _check_line(raw: bytes) -> tuple[str | None, str | None]:
    """Return ``(problem, custom_id)`` for one non-blank input line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text", None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})", None
    if not isinstance(value, dict):
        return "not a JSON object", None
    if _LINE_BREAK_CHARS.search(text):
        return (
            "contains an unescaped U+0085, U+2028 or U+2029, which some JSON Lines readers take for a "
            "line break (write it as \\u2028 ...)",
            value.get("custom_id") if isinstance(value.get("custom_id"), str) else None,
        )
    custom_id = value.get("custom_id")
    if custom_id is None:
        return 'no "custom_id"', None
    if not isinstance(custom_id, str):
        return '"custom_id" is not a string', None
    if not _CUSTOM_ID.fullmatch(custom_id):
        return _custom_id_problem(custom_id), custom_id
    report_text = value.get("report_text")
    if isinstance(report_text, str) and len(report_text) > MAX_REPORT_CHARS:
        return f"report_text has {len(report_text):,} characters (at most {MAX_REPORT_CHARS:,})", custom_id
    return None, custom_id


def _custom_id_problem(custom_id: str) -> str:
    return f"custom_id {custom_id!r} is not 1-64 characters of A-Z a-z 0-9 . _ : -"
