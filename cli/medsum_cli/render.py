"""Human-readable output with rich, and machine-readable JSON output.

Everything that comes from the API or from the report is rendered as :class:`rich.text.Text`, never as
console markup: a report that contains ``[bold]`` or ``[/]`` must print verbatim, not be interpreted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

from rich.console import Console
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

SECTIONS: tuple[tuple[str, str], ...] = (
    ("key_findings", "Key findings"),
    ("diagnoses", "Diagnoses"),
    ("medications", "Medications"),
    ("allergies", "Allergies"),
    ("follow_up", "Follow-up"),
)
#: Sections printed only when they hold items: an empty allergy list means the report names none,
#: and "Allergies: none" would read as "no known allergies".
SHOWN_ONLY_WHEN_LISTED: frozenset[str] = frozenset({"allergies"})
STATUS_STYLES: dict[str, str] = {
    "PENDING": "yellow",
    "PROCESSING": "cyan",
    "COMPLETED": "bold green",
    "FAILED": "bold red",
    # batches (and batch items) use lower-case statuses
    "validating": "yellow",
    "pending": "yellow",
    "in_progress": "cyan",
    "processing": "cyan",
    "completed": "bold green",
    "cancelling": "magenta",
    "cancelled": "magenta",
    "failed": "bold red",
}
BATCH_COUNTS: tuple[str, ...] = ("pending", "processing", "completed", "failed", "cancelled")
MAX_BATCH_ERRORS_SHOWN = 20
MAX_QUOTE_CHARS = 200


def make_console(*, no_color: bool = False, stderr: bool = False, file: IO[str] | None = None) -> Console:
    """Create the console the CLI prints with.

    Parameters
    ----------
    no_color
        Disable colours and styles (``--no-color``; rich also honours ``NO_COLOR``).
    stderr
        Print to standard error instead of standard output.
    file
        Explicit stream (tests).

    Returns
    -------
    rich.console.Console
        A console without automatic highlighting (ids and numbers are printed as they are).
    """
    return Console(file=file, stderr=stderr, no_color=no_color, highlight=False, soft_wrap=False)


def print_json(obj: Any, stream: IO[str]) -> None:
    """Print one JSON document (the API's JSON, unchanged) for scripts and ``jq``.

    Parameters
    ----------
    obj
        The JSON value.
    stream
        Where to write it (standard output).
    """
    stream.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
    stream.flush()


def print_table(
    console: Console,
    headers: Sequence[str],
    rows: Iterable[Sequence[Text | str]],
    *,
    ids: Iterable[int] = (0,),
) -> None:
    """Print rows as a table that fits the terminal, or as tab-separated text when not on a terminal.

    On a terminal the table has no borders; the ``ids`` columns (the values users copy into the next
    command) are never cut or wrapped: they get at least their longest value's width, and the other
    columns fold onto more lines to make room. Piped or redirected, there is one header line and one
    line per row, cells separated by tabs, no styles (``cut -f1`` gives the ids).

    Parameters
    ----------
    console
        Where to print.
    headers
        Column titles.
    rows
        Cells, as text (styles are kept on a terminal only).
    ids
        Indexes of the columns never cut or wrapped: ids, and short words such as a status.
    """
    cells = [[cell if isinstance(cell, Text) else Text(cell) for cell in row] for row in rows]
    if not console.is_terminal:
        for line in [list(headers), *([cell.plain for cell in row] for row in cells)]:
            console.file.write("\t".join(" ".join(value.split()) for value in line) + "\n")
        console.file.flush()
        return
    id_columns = set(ids)
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", padding=(0, 2, 0, 0))
    for index, header in enumerate(headers):
        if index in id_columns:
            longest = max((row[index].cell_len for row in cells), default=0)
            table.add_column(header, no_wrap=True, min_width=max(longest, len(header)))
        else:
            table.add_column(header, overflow="fold")
    for row in cells:
        table.add_row(*row)
    console.print(table)


def quote_evidence(source: str, start: int, end: int, max_chars: int = MAX_QUOTE_CHARS) -> str | None:
    """Return the evidence ``source[start:end]`` on one line, shortened if it is long.

    Parameters
    ----------
    source
        The submitted report text.
    start, end
        Character offsets of the span.
    max_chars
        Longest quote to return; longer spans keep their beginning and end around an ellipsis.

    Returns
    -------
    str or None
        The quote with whitespace runs collapsed, or ``None`` if the span is not inside ``source``.
    """
    if not 0 <= start < end <= len(source):
        return None
    quote = " ".join(source[start:end].split())
    if len(quote) > max_chars:
        head = (max_chars - 1) // 2
        tail = max_chars - 1 - head
        quote = f"{quote[:head]}…{quote[-tail:]}"
    return quote


def status_text(status: str) -> Text:
    """Return a report status styled by its meaning (green done, red failed, ...).

    Parameters
    ----------
    status
        A report status (``PENDING``, ``PROCESSING``, ``COMPLETED``, ``FAILED``) or a batch status
        (``validating``, ``in_progress``, ``completed``, ``cancelling``, ``cancelled``, ``failed``).

    Returns
    -------
    rich.text.Text
        The styled status.
    """
    return Text(status, style=STATUS_STYLES.get(status, ""))


def render_report(console: Console, report: Mapping[str, Any], source_text: str | None = None) -> None:
    """Print a report view: header, then the structured summary (or the error) when it is done.

    Parameters
    ----------
    console
        Where to print.
    report
        The API's report view (``GET /reports/{id}``).
    source_text
        The submitted text, when known locally: evidence is then quoted next to its offsets.
    """
    status = str(report.get("status", "UNKNOWN"))
    header = Text.assemble(("Report ", "bold"), (str(report.get("report_id", "?")), "bold"), "  ")
    header.append_text(status_text(status))
    console.print(header)

    details = _join(
        [
            _field("patient", report.get("patient_id")),
            _field("type", report.get("report_type")),
            _field("created", report.get("created_at")),
            _field("updated", report.get("updated_at")),
            _field("attempts", report.get("attempts")),
        ]
    )
    console.print(details)
    metadata = report.get("metadata")
    if isinstance(metadata, Mapping) and metadata:
        console.print(_join([_field(str(key), value) for key, value in sorted(metadata.items())]))

    if status == "FAILED":
        raw_error = report.get("error")
        error: Mapping[str, Any] = raw_error if isinstance(raw_error, Mapping) else {}
        console.print()
        console.print(
            Text.assemble(
                ("error ", "bold red"),
                (str(error.get("code", "unknown")), "red"),
                ": ",
                str(error.get("message", "no reason given")),
            )
        )
        return

    summary = report.get("summary")
    if status != "COMPLETED" or not isinstance(summary, Mapping):
        console.print(
            Text(f"\nNot summarized yet. Run `medsum wait {report.get('report_id', 'ID')}`.", "dim")
        )
        return

    console.print()
    console.print(Text("Summary", style="bold underline"))
    console.print(Padding(Text(str(summary.get("summary", ""))), (0, 0, 0, 2), expand=False))
    review = verification_text(summary.get("verification"))
    if review is not None:
        console.print(Padding(review, (0, 0, 0, 2), expand=False))
    for key, title in SECTIONS:
        items = summary.get(key) or []
        if not items and key in SHOWN_ONLY_WHEN_LISTED:
            continue
        console.print()
        console.print(Text(title, style="bold underline"))
        if not items:
            console.print(Padding(Text("none", style="dim"), (0, 0, 0, 2), expand=False))
            continue
        for index, item in enumerate(items, start=1):
            for line in _render_item(index, item, source_text):
                console.print(Padding(line, (0, 0, 0, 2), expand=False))

    usage = report.get("usage")
    model_id = summary.get("model_id") or (usage.get("model_id") if isinstance(usage, Mapping) else None)
    footer = [_field("model", model_id), _field("prompt", summary.get("prompt_version"))]
    if isinstance(usage, Mapping):
        footer.append(
            _field("tokens", f"{usage.get('input_tokens', '?')} in / {usage.get('output_tokens', '?')} out")
        )
    console.print()
    console.print(_join(footer, style="dim"))


def render_page(console: Console, items: Iterable[Mapping[str, Any]], next_token: str | None = None) -> None:
    """Print a patient's reports as a table.

    Parameters
    ----------
    console
        Where to print.
    items
        Report list items.
    next_token
        Token of the next page, if any (a hint to use ``--all`` or ``--next-token`` is printed).
    """
    rows = list(items)
    if not rows:
        console.print(Text("no reports", style="dim"))
    else:
        print_table(
            console,
            ("report id", "type", "status", "created", "updated"),
            [
                (
                    Text(str(item.get("report_id", ""))),
                    Text(str(item.get("report_type", ""))),
                    status_text(str(item.get("status", ""))),
                    Text(str(item.get("created_at", ""))),
                    Text(str(item.get("updated_at", ""))),
                )
                for item in rows
            ],
            ids=(0, 1, 2),
        )
    if next_token:
        console.print(
            Text.assemble(
                ("more reports: use --all, or --next-token ", "dim"),
                (next_token, "dim"),
            )
        )


def batch_counts(batch: Mapping[str, Any]) -> dict[str, int]:
    """Return a batch's ``request_counts`` as integers (missing or malformed counts are ``0``).

    Parameters
    ----------
    batch
        A batch object of the API.

    Returns
    -------
    dict
        ``total`` and every name of :data:`BATCH_COUNTS`.
    """
    raw = batch.get("request_counts")
    counts: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    result: dict[str, int] = {}
    for name in ("total", *BATCH_COUNTS):
        value = counts.get(name)
        result[name] = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return result


def counts_text(counts: Mapping[str, int], *, style: bool = True) -> Text:
    """Return ``pending 3 · processing 1 · completed 5 · failed 1`` (``cancelled`` only when non-zero).

    Parameters
    ----------
    counts
        As returned by :func:`batch_counts`.
    style
        Colour the non-zero counts by their meaning.

    Returns
    -------
    rich.text.Text
        The counts on one line.
    """
    parts: list[Text | None] = []
    for name in BATCH_COUNTS:
        value = counts.get(name, 0)
        if name == "cancelled" and not value:
            continue
        parts.append(
            Text.assemble((f"{name} ", "dim"), (str(value), STATUS_STYLES[name] if style and value else ""))
        )
    return _join(parts)


def render_batch(console: Console, batch: Mapping[str, Any]) -> None:
    """Print a batch: header, counts, the input lines it did not accept, and what to run next.

    Parameters
    ----------
    console
        Where to print.
    batch
        The API's batch object (``GET /batches/{id}``).
    """
    batch_id = str(batch.get("batch_id", "?"))
    status = str(batch.get("status", "unknown"))
    header = Text.assemble(("Batch ", "bold"), (batch_id, "bold"), "  ")
    header.append_text(status_text(status))
    console.print(header)
    counts = batch_counts(batch)
    console.print(
        _join(
            [
                _field("created", batch.get("created_at")),
                _field("updated", batch.get("updated_at")),
                _field("completed", batch.get("completed_at")),
            ]
        )
    )
    metadata = batch.get("metadata")
    if isinstance(metadata, Mapping) and metadata:
        console.print(_join([_field(str(key), value) for key, value in sorted(metadata.items())]))
    total_line = Text.assemble(("items ", "dim"), str(counts["total"]), ("  ·  ", "dim"))
    total_line.append_text(counts_text(counts))
    console.print(total_line)

    errors = [error for error in batch.get("errors") or [] if isinstance(error, Mapping)]
    if errors:
        console.print()
        console.print(Text(f"Input lines not accepted ({len(errors)})", style="bold underline"))
        for error in errors[:MAX_BATCH_ERRORS_SHOWN]:
            line = Text.assemble(("line ", "dim"), str(error.get("line", "?")))
            if error.get("custom_id") is not None:
                line.append(f" ({error.get('custom_id')})")
            line.append(": ")
            line.append(str(error.get("code", "unknown")), style="red")
            line.append(f": {error.get('message', '')}")
            console.print(Padding(line, (0, 0, 0, 2), expand=False))
        if len(errors) > MAX_BATCH_ERRORS_SHOWN:
            more = len(errors) - MAX_BATCH_ERRORS_SHOWN
            console.print(
                Padding(Text(f"... and {more} more (see --json)", "dim"), (0, 0, 0, 2), expand=False)
            )

    console.print()
    if status in ("completed", "cancelled", "failed"):
        console.print(Text(f"Results: medsum batch results {batch_id} -o results.jsonl", "dim"))
    else:
        console.print(Text(f"Not done yet. Run `medsum batch wait {batch_id}`.", "dim"))


def render_batch_page(
    console: Console, items: Iterable[Mapping[str, Any]], next_token: str | None = None
) -> None:
    """Print batches as a table.

    Parameters
    ----------
    console
        Where to print.
    items
        Batch objects (``GET /batches`` items).
    next_token
        Token of the next page, if any (a hint to use ``--all`` or ``--next-token`` is printed).
    """
    rows = list(items)
    if not rows:
        console.print(Text("no batches", style="dim"))
    else:
        table: list[tuple[Text, ...]] = []
        for item in rows:
            counts = batch_counts(item)
            done = counts["completed"] + counts["failed"] + counts["cancelled"]
            table.append(
                (
                    Text(str(item.get("batch_id", ""))),
                    status_text(str(item.get("status", ""))),
                    Text(str(counts["total"])),
                    Text(str(done)),
                    Text(str(counts["failed"]), style="red" if counts["failed"] else ""),
                    Text(str(item.get("created_at") or "")),
                    Text(str(item.get("completed_at") or "")),
                )
            )
        headers = ("batch id", "status", "items", "done", "failed", "created", "completed")
        print_table(console, headers, table, ids=(0, 1))
    if next_token:
        console.print(
            Text.assemble(("more batches: use --all, or --next-token ", "dim"), (next_token, "dim"))
        )


class BatchProgress:
    """A rich progress bar per batch: finished items (completed + failed + cancelled) of the total.

    Use as a context manager; call :meth:`update` with every batch read while waiting.

    Parameters
    ----------
    console
        Where to draw (standard error).
    known_totals
        Batch id -> number of items sent: those rows are drawn as soon as the bar starts (before the
        first poll), and keep this total while the API does not know it yet (an upload validating).
    """

    def __init__(self, console: Console, known_totals: Mapping[str, int] | None = None) -> None:
        self._known_totals = dict(known_totals or {})
        self._progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> BatchProgress:
        for batch_id, total in self._known_totals.items():
            self._tasks[batch_id] = self._progress.add_task(
                f"{batch_id} submitted", total=total or None, completed=0, counts=""
            )
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def update(self, batch: Mapping[str, Any]) -> None:
        """Show the state of a batch (its row is added on the first update).

        Parameters
        ----------
        batch
            The API's batch object.
        """
        batch_id = str(batch.get("batch_id", "?"))
        counts = batch_counts(batch)
        done = counts["completed"] + counts["failed"] + counts["cancelled"]
        description = f"{batch_id} {batch.get('status', '?')}"
        fields = counts_text(counts, style=False).plain
        # Unknown while an upload validates: the total the CLI sent, else an indeterminate bar.
        total = counts["total"] or self._known_totals.get(batch_id) or None
        task = self._tasks.get(batch_id)
        if task is None:
            self._tasks[batch_id] = self._progress.add_task(
                description, total=total, completed=done, counts=fields
            )
        else:
            self._progress.update(task, description=description, total=total, completed=done, counts=fields)
        self._progress.refresh()


def verification_text(verification: Any) -> Text | None:
    """One line on what the verifier removed, or None when there is no verification record."""
    if not isinstance(verification, Mapping):
        return None
    raw_dropped = verification.get("dropped")
    dropped: Mapping[str, Any] = raw_dropped if isinstance(raw_dropped, Mapping) else {}
    drops = [f"{count} {reason}" for reason, count in sorted(dropped.items()) if count]
    parts = [f"dropped {', '.join(drops)}"] if drops else []
    marked = verification.get("marked_uncertain") or 0
    if marked:
        parts.append(f"{marked} marked uncertain")
    if verification.get("summary_contradicts_report"):
        parts.append("the summary sentence asserts a finding the report negates")
    checked = verification.get("items_checked", "?")
    if verification.get("needs_review"):
        return Text(f"needs review: {'; '.join(parts)} (of {checked} items)", "bold yellow")
    detail = f" ({'; '.join(parts)})" if parts else ""
    return Text(f"verified: {verification.get('items_kept', '?')} of {checked} items kept{detail}", "dim")


def _render_item(index: int, item: Any, source_text: str | None) -> list[Text]:
    if not isinstance(item, Mapping):
        return [Text(f"{index}. {item}")]
    lines: list[Text] = [Text.assemble((f"{index}. ", "bold"), str(item.get("text", "")))]
    if item.get("certainty") == "uncertain":
        lines[0].append("  (uncertain)", style="yellow")
    for span in item.get("evidence") or []:
        if not isinstance(span, Mapping):
            continue
        start, end = span.get("start"), span.get("end")
        line = Text(f"   [{start}:{end}]", style="cyan")
        if source_text is not None and isinstance(start, int) and isinstance(end, int):
            quote = quote_evidence(source_text, start, end)
            if quote is None:
                line.append(" (outside the source text)", style="dim")
            else:
                line.append(" ")
                line.append(f'"{quote}"', style="italic")
        lines.append(line)
    return lines


def _field(name: str, value: Any) -> Text | None:
    if value is None or value == "":
        return None
    return Text.assemble((f"{name} ", "dim"), str(value))


def _join(parts: Iterable[Text | None], style: str = "") -> Text:
    text = Text(style=style)
    first = True
    for part in parts:
        if part is None:
            continue
        if not first:
            text.append("  ·  ", style="dim")
        text.append_text(part)
        first = False
    return text
