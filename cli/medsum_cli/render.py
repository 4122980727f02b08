"""Human-readable output with rich, and machine-readable JSON output.

Everything that comes from the API or from the report is rendered as :class:`rich.text.Text`, never as
console markup: a report that contains ``[bold]`` or ``[/]`` must print verbatim, not be interpreted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import IO, Any

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

SECTIONS: tuple[tuple[str, str], ...] = (
    ("key_findings", "Key findings"),
    ("diagnoses", "Diagnoses"),
    ("medications", "Medications"),
    ("follow_up", "Follow-up"),
)
STATUS_STYLES: dict[str, str] = {
    "PENDING": "yellow",
    "PROCESSING": "cyan",
    "COMPLETED": "bold green",
    "FAILED": "bold red",
}
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
        ``PENDING``, ``PROCESSING``, ``COMPLETED`` or ``FAILED``.

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
    for key, title in SECTIONS:
        items = summary.get(key) or []
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
        table = Table(show_edge=False, pad_edge=False, header_style="bold")
        for column in ("report id", "type", "status", "created", "updated"):
            table.add_column(column, no_wrap=True)
        for item in rows:
            table.add_row(
                Text(str(item.get("report_id", ""))),
                Text(str(item.get("report_type", ""))),
                status_text(str(item.get("status", ""))),
                Text(str(item.get("created_at", ""))),
                Text(str(item.get("updated_at", ""))),
            )
        console.print(table)
    if next_token:
        console.print(
            Text.assemble(
                ("more reports: use --all, or --next-token ", "dim"),
                (next_token, "dim"),
            )
        )


def _render_item(index: int, item: Any, source_text: str | None) -> list[Text]:
    if not isinstance(item, Mapping):
        return [Text(f"{index}. {item}")]
    lines: list[Text] = [Text.assemble((f"{index}. ", "bold"), str(item.get("text", "")))]
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
