"""``medsum`` command line: argument parsing and dispatch.

Exit codes: ``0`` success, ``1`` the API refused the request (4xx), ``2`` usage or configuration error,
``3`` the API is unreachable, failing (5xx) or too slow (timeouts), ``4`` a waited-for report ended
``FAILED``, ``130`` interrupted.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests
from medsum.models import ReportType
from rich.text import Text

from medsum_cli._version import __version__
from medsum_cli.client import (
    ApiError,
    ConnectionFailedError,
    JSONObject,
    MedsumClient,
    TransportError,
    WaitTimeoutError,
    collect_items,
)
from medsum_cli.config import ConfigError, Settings, resolve_settings
from medsum_cli.render import make_console, print_json, render_page, render_report, status_text

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_REPORT_FAILED = 4
EXIT_INTERRUPTED = 130

REPORT_TYPES = tuple(report_type.value for report_type in ReportType)
DEFAULT_WAIT_TIMEOUT = 300.0
MAX_PATIENT_ID_CHARS = 64


class UsageError(Exception):
    """The command line is valid for argparse but cannot be carried out (e.g. an unreadable file)."""


class _Context:
    """What every command handler needs: parsed options, consoles and a lazily built client."""

    def __init__(self, args: argparse.Namespace, session: requests.Session | None) -> None:
        self.args = args
        self.out = make_console(no_color=args.no_color)
        self.err = make_console(no_color=args.no_color, stderr=True)
        self._session = session
        self.settings: Settings | None = None
        self._client: MedsumClient | None = None

    @property
    def client(self) -> MedsumClient:
        if self._client is None:
            self.settings = resolve_settings(
                api_url=self.args.api_url,
                identity=self.args.identity,
                profile=self.args.profile,
                region=self.args.region,
            )
            self._client = MedsumClient(
                self.settings.api_url,
                self.settings.credentials,
                self.settings.region,
                session=self._session,
            )
        return self._client


Handler = Callable[[_Context], int]


def main(argv: Sequence[str] | None = None, *, session: requests.Session | None = None) -> int:
    """Run the ``medsum`` command line.

    Parameters
    ----------
    argv
        Arguments without the program name (default: ``sys.argv[1:]``).
    session
        ``requests.Session`` used for every API call (tests inject one with a fake transport).

    Returns
    -------
    int
        The process exit code (see the module docstring).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    context = _Context(args, session)
    handler: Handler = args.handler
    try:
        return handler(context)
    except UsageError as exc:
        return _fail(f"error: {exc}", EXIT_USAGE)
    except ConfigError as exc:
        return _fail(f"error: {exc}", EXIT_USAGE)
    except ApiError as exc:
        return _fail(
            f"error: {exc.code}: {exc.message}", EXIT_API_ERROR if exc.is_client_error else EXIT_UNAVAILABLE
        )
    except WaitTimeoutError as exc:
        return _fail(f"error: {exc}; run `medsum wait {exc.report_id}` to keep waiting", EXIT_UNAVAILABLE)
    except TransportError as exc:
        hint = ""
        local = context.settings is not None and context.settings.targets_local_stack
        if isinstance(exc, ConnectionFailedError) and local:
            hint = " (is the local stack running? start it with `make run`)"
        return _fail(f"error: {exc}{hint}", EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``medsum`` argument parser.

    Global options are accepted both before and after the command (``medsum --json get ID`` and
    ``medsum get ID --json``).

    Returns
    -------
    argparse.ArgumentParser
        The parser; the chosen command's handler is in the ``handler`` attribute of the result.
    """
    parser = argparse.ArgumentParser(
        prog="medsum",
        description="Submit clinical reports to the medsum API and read their structured summaries.",
        epilog="Exit codes: 0 ok, 1 API refused (4xx), 2 usage/configuration, 3 unreachable/5xx/timeout, "
        "4 report FAILED.",
    )
    parser.add_argument("--version", action="version", version=f"medsum {__version__}")
    _add_global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, suppress=True)

    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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
    _add_timeout(submit)
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
    _add_timeout(wait)
    _add_source(wait)
    wait.set_defaults(handler=_cmd_wait)

    listing = commands.add_parser(
        "list", parents=[common], help="list a patient's reports", description="List a patient's reports."
    )
    listing.add_argument("--patient-id", required=True)
    listing.add_argument("--limit", type=_positive_int, help="page size")
    listing.add_argument("--all", action="store_true", help="follow next_token and list every page")
    listing.add_argument("--next-token", help="start from this page token")
    listing.set_defaults(handler=_cmd_list)

    delete = commands.add_parser(
        "delete", parents=[common], help="delete a report", description="Delete a report."
    )
    delete.add_argument("report_id", metavar="ID")
    delete.set_defaults(handler=_cmd_delete)
    return parser


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------
def _cmd_submit(ctx: _Context) -> int:
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


def _cmd_get(ctx: _Context) -> int:
    source = _read_source(ctx.args.source)
    report = ctx.client.get(ctx.args.report_id)
    _show(ctx, report, source)
    return EXIT_OK


def _cmd_wait(ctx: _Context) -> int:
    source = _read_source(ctx.args.source)
    report = _wait(ctx, ctx.args.report_id, ctx.args.timeout)
    return _show_terminal(ctx, report, source_text=source)


def _cmd_list(ctx: _Context) -> int:
    args = ctx.args
    client = ctx.client
    if args.all:
        items = collect_items(
            client.iter_pages(args.patient_id, limit=args.limit, next_token=args.next_token)
        )
        page: JSONObject = {"items": items, "next_token": None}
    else:
        page = client.list(args.patient_id, limit=args.limit, next_token=args.next_token)
    if args.json:
        print_json(page, sys.stdout)
    else:
        render_page(ctx.out, page.get("items") or [], page.get("next_token"))
    return EXIT_OK


def _cmd_delete(ctx: _Context) -> int:
    report_id = ctx.args.report_id
    ctx.client.delete(report_id)
    if ctx.args.json:
        # DELETE answers 204 without a body: print a small object so that scripts still get JSON.
        print_json({"report_id": report_id, "deleted": True}, sys.stdout)
    else:
        ctx.out.print(Text.assemble("deleted report ", report_id))
    return EXIT_OK


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def _wait(ctx: _Context, report_id: str, timeout: float) -> JSONObject:
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


def _show(ctx: _Context, report: JSONObject, source_text: str | None) -> None:
    if ctx.args.json:
        print_json(report, sys.stdout)
    else:
        render_report(ctx.out, report, source_text)


def _show_terminal(ctx: _Context, report: JSONObject, source_text: str | None) -> int:
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
        text = _read_text(file)
        if patient_id is None:
            patient_id = derive_patient_id(file)
    if not text.strip():
        raise UsageError(f"the report in {'standard input' if file == '-' else file} is empty")
    return text, patient_id


def _read_source(file: str | None) -> str | None:
    return None if file is None else _read_text(file)


def _read_text(file: str) -> str:
    try:
        return Path(file).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UsageError(f"cannot read {file}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {file}: not UTF-8 text") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc


def derive_patient_id(file: str) -> str:
    """Derive a patient id from a report file name.

    Parameters
    ----------
    file
        Path of the report file.

    Returns
    -------
    str
        The file name without its extension, with every run of characters outside ``[A-Za-z0-9._-]``
        replaced by ``-``, cut to 64 characters.

    Raises
    ------
    UsageError
        If nothing usable is left (then ``--patient-id`` is needed).
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(file).stem).strip("-")[:MAX_PATIENT_ID_CHARS]
    if not cleaned.strip("."):
        raise UsageError(f"cannot derive a patient id from {file!r}; pass --patient-id")
    return cleaned


def _fail(message: str, code: int) -> int:
    print(message, file=sys.stderr)
    return code


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # The same options are added to every command with SUPPRESS defaults, so that a value given before
    # the command is not overwritten by the command's default.
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--api-url",
        default=default(None),
        help="API base URL (default: api_url of .medsum/local-stack.json in this directory or a parent, "
        "else $MEDSUM_API_URL)",
    )
    group.add_argument(
        "--identity",
        default=default(None),
        help="sign as this local stack identity (e.g. clinic-a, clinic-b, operator)",
    )
    group.add_argument("--profile", default=default(None), help="AWS profile to sign with")
    group.add_argument("--region", default=default(None), help="signing region")
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the API's JSON (for scripts and jq)",
    )
    group.add_argument("--no-color", action="store_true", default=default(False), help="no colours")


def _add_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_WAIT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up waiting after this many seconds (default: {DEFAULT_WAIT_TIMEOUT:g})",
    )


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source", metavar="FILE", help="the submitted report text, to quote the evidence of each item"
    )


def _key_value(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key, val


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from exc
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}") from exc
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return number


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
