"""Report commands: ``medsum submit``, ``get``, ``wait``, ``list`` and ``delete``.

One report at a time (many at once: :mod:`medsum_cli.commands.batches`). ``submit`` prints the new id
alone, so that ``id=$(medsum submit report.txt)`` works; ``--wait`` and ``wait`` poll until the report is
done and show it (exit code 4 if it ``FAILED``).
"""

from __future__ import annotations

import argparse
import sys
import time

from rich.text import Text

from medsum_cli.client import JSONObject
from medsum_cli.commands.common import (
    EXIT_OK,
    EXIT_REPORT_FAILED,
    REPORT_TYPES,
    Context,
    Subcommands,
    UsageError,
    add_page_options,
    add_timeout,
    derive_patient_id,
    print_pages,
    read_text,
)
from medsum_cli.render import print_json, render_page, render_report, status_text

DEFAULT_WAIT_TIMEOUT = 300.0


def register(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add ``submit``, ``get``, ``wait``, ``list`` and ``delete`` to the top-level commands."""
    submit = commands.add_parser(
        "submit", parents=[common], help="submit a report for summarization", description="Submit a report."
    )
    submit.add_argument("file", metavar="FILE", help="report text file (UTF-8), or - to read standard input")
    submit.add_argument(
        "--patient-id", help="patient id (default: derived from the file name; required for stdin)"
    )
    submit.add_argument(
        "--type",
        dest="report_type",
        choices=REPORT_TYPES,
        default="other",
        metavar="TYPE",
        help=f"report type: {', '.join(REPORT_TYPES)} (default: other)",
    )
    submit.add_argument(
        "--metadata",
        metavar="KEY=VALUE",
        type=_key_value,
        action="extend",
        nargs="+",
        default=[],
        help="metadata pairs stored with the report (repeatable)",
    )
    submit.add_argument("--idempotency-key", help="make a retried submit safe (sent as Idempotency-Key)")
    submit.add_argument("--wait", action="store_true", help="wait for the summary and print it")
    add_timeout(submit, DEFAULT_WAIT_TIMEOUT)
    submit.set_defaults(handler=_cmd_submit)

    get = commands.add_parser("get", parents=[common], help="show a report", description="Show a report.")
    get.add_argument("report_id", metavar="ID")
    _add_source(get)
    get.set_defaults(handler=_cmd_get)

    wait = commands.add_parser(
        "wait",
        parents=[common],
        help="wait until a report is COMPLETED or FAILED",
        description="Wait until a report is COMPLETED or FAILED, then show it.",
    )
    wait.add_argument("report_id", metavar="ID")
    add_timeout(wait, DEFAULT_WAIT_TIMEOUT)
    _add_source(wait)
    wait.set_defaults(handler=_cmd_wait)

    listing = commands.add_parser(
        "list", parents=[common], help="list a patient's reports", description="List a patient's reports."
    )
    listing.add_argument("--patient-id", required=True)
    add_page_options(listing)
    listing.set_defaults(handler=_cmd_list)

    delete = commands.add_parser(
        "delete", parents=[common], help="delete a report", description="Delete a report."
    )
    delete.add_argument("report_id", metavar="ID")
    delete.set_defaults(handler=_cmd_delete)


def _cmd_submit(ctx: Context) -> int:
    args = ctx.args
    text, patient_id = _read_report(args.file, args.patient_id)
    accepted = ctx.client.submit(
        patient_id=patient_id,
        report_text=text,
        report_type=args.report_type,
        metadata=dict(args.metadata),
        idempotency_key=args.idempotency_key,
    )
    report_id = str(accepted.get("report_id", ""))
    if not args.wait:
        if args.json:
            print_json(accepted, sys.stdout)
        else:
            print(report_id)  # plain: `id=$(medsum submit report.txt)` must just work
        return EXIT_OK
    if not args.json:
        ctx.err.print(Text.assemble(("submitted report ", "dim"), report_id))
    report = _wait(ctx, report_id, args.timeout)
    return _show_terminal(ctx, report, source_text=text)


def _cmd_get(ctx: Context) -> int:
    source = _read_source(ctx.args.source)
    report = ctx.client.get(ctx.args.report_id)
    _show(ctx, report, source)
    return EXIT_OK


def _cmd_wait(ctx: Context) -> int:
    source = _read_source(ctx.args.source)
    report = _wait(ctx, ctx.args.report_id, ctx.args.timeout)
    return _show_terminal(ctx, report, source_text=source)


def _cmd_list(ctx: Context) -> int:
    args = ctx.args
    pages = ctx.client.iter_pages(args.patient_id, limit=args.limit, next_token=args.next_token)
    return print_pages(ctx, pages, render_page)


def _cmd_delete(ctx: Context) -> int:
    report_id = ctx.args.report_id
    ctx.client.delete(report_id)
    if ctx.args.json:
        # DELETE answers 204 without a body: print a small object so that scripts still get JSON.
        print_json({"report_id": report_id, "deleted": True}, sys.stdout)
    else:
        ctx.out.print(Text.assemble("deleted report ", report_id))
    return EXIT_OK


def _wait(ctx: Context, report_id: str, timeout: float) -> JSONObject:
    client = ctx.client
    if not ctx.err.is_terminal:
        return client.wait(report_id, timeout)
    started = time.monotonic()
    with ctx.err.status(Text(f"waiting for report {report_id}"), spinner="dots") as spinner:

        def on_status(report: JSONObject) -> None:
            spinner.update(
                Text.assemble(
                    f"report {report_id}: ",
                    status_text(str(report.get("status", "?"))),
                    f"  ({time.monotonic() - started:.0f}s)",
                )
            )

        return client.wait(report_id, timeout, on_status=on_status)


def _show(ctx: Context, report: JSONObject, source_text: str | None) -> None:
    if ctx.args.json:
        print_json(report, sys.stdout)
    else:
        render_report(ctx.out, report, source_text)


def _show_terminal(ctx: Context, report: JSONObject, source_text: str | None) -> int:
    _show(ctx, report, source_text)
    return EXIT_REPORT_FAILED if report.get("status") == "FAILED" else EXIT_OK


def _read_report(file: str, patient_id: str | None) -> tuple[str, str]:
    if file == "-":
        if patient_id is None:
            raise UsageError("--patient-id is required when the report is read from standard input")
        if sys.stdin.isatty():
            print("reading the report from standard input (end with Ctrl-D)", file=sys.stderr)
        text = sys.stdin.read()
    else:
        text = read_text(file)
        if patient_id is None:
            patient_id = derive_patient_id(file)
    if not text.strip():
        raise UsageError(f"the report in {'standard input' if file == '-' else file} is empty")
    return text, patient_id


def _read_source(file: str | None) -> str | None:
    return None if file is None else read_text(file)


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source", metavar="FILE", help="the submitted report text, to quote the evidence of each item"
    )


def _key_value(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key, val
