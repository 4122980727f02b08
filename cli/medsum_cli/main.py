"""``medsum`` command line: argument parsing and dispatch.

Exit codes: ``0`` success, ``1`` the API refused the request (4xx), ``2`` usage or configuration error,
``3`` the API is unreachable, failing (5xx) or too slow (timeouts), ``4`` a waited-for report ended
``FAILED``, or a waited-for batch has failed items or rejected input lines, or ended ``failed`` or
``cancelled``, ``130`` interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from medsum.models import ReportType
from rich.text import Text

from medsum_cli import batch as batch_input
from medsum_cli import operators
from medsum_cli._version import __version__
from medsum_cli.client import (
    BATCH_TERMINAL_STATUSES,
    ApiError,
    ConnectionFailedError,
    JSONObject,
    MedsumClient,
    MedsumClientError,
    StatusCallback,
    TransportError,
    WaitTimeoutError,
    collect_items,
)
from medsum_cli.config import ConfigError, Settings, resolve_settings
from medsum_cli.render import (
    BatchProgress,
    batch_counts,
    make_console,
    print_json,
    print_table,
    render_batch,
    render_batch_page,
    render_page,
    render_report,
    status_text,
)
from medsum_cli.webhooks import Delivery, Listener

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_REPORT_FAILED = 4
EXIT_INTERRUPTED = 130

REPORT_TYPES = tuple(report_type.value for report_type in ReportType)
DEFAULT_WAIT_TIMEOUT = 300.0
DEFAULT_BATCH_WAIT_TIMEOUT = 3600.0
MAX_PATIENT_ID_CHARS = 64
MAX_REJECTED_LINES_SHOWN = 20
DELIVERY_STYLES = {
    "delivered": "green",
    "retrying": "yellow",
    "failed": "red",
    "disabled": "red",
    "exhausted": "red",
}


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
        if getattr(args, "json", False):
            print_json(exc.document(), sys.stdout)
        return _fail(_api_error_text(exc), EXIT_API_ERROR if exc.is_client_error else EXIT_UNAVAILABLE)
    except WaitTimeoutError as exc:
        again = (
            f"medsum batch wait {exc.report_id}" if exc.kind == "batch" else f"medsum wait {exc.report_id}"
        )
        return _fail(f"error: {exc}; run `{again}` to keep waiting", EXIT_UNAVAILABLE)
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
        "4 report FAILED (or batch with failed items or rejected lines, failed or cancelled).",
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

    _add_batch_commands(commands, common)
    operators.add_commands(commands, common)
    _add_webhook_commands(commands, common)
    return parser


def _add_webhook_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    webhooks = commands.add_parser(
        "webhooks",
        parents=[common],
        help="register webhook endpoints, receive events locally, read the delivery log",
        description="Webhooks: signed (Standard Webhooks) report and batch events over HTTPS.",
    )
    sub = webhooks.add_subparsers(dest="webhooks_command", metavar="WEBHOOKS_COMMAND", required=True)

    listen = sub.add_parser(
        "listen",
        parents=[common],
        help="run a local receiver that verifies signatures and prints events",
        description="Receive webhooks on http://127.0.0.1:PORT/, verify each signature and print the event. "
        "With --register the receiver registers itself (the local stack allows plain http://127.0.0.1) and "
        "removes its registration on exit; otherwise pass the endpoint's secret.",
    )
    listen.add_argument("--port", type=int, default=8787, help="port to listen on (default 8787; 0: any)")
    listen.add_argument("--secret", help="the endpoint's whsec_ secret (default $MEDSUM_WEBHOOK_SECRET)")
    listen.add_argument("--register", action="store_true", help="register this receiver with the API")
    listen.add_argument(
        "--event-type", action="append", dest="event_types", help="with --register: event types (repeatable)"
    )
    listen.add_argument("--count", type=_positive_int, help="exit after this many verified events")
    listen.add_argument("--timeout", type=float, help="exit (status 3) after this many seconds")
    listen.set_defaults(handler=_cmd_webhooks_listen)

    create = sub.add_parser(
        "create",
        parents=[common],
        help="register an endpoint (prints its secret once)",
        description="Register an HTTPS endpoint for your report and batch events. Its signing secret is "
        "printed once, alone on standard output.",
    )
    create.add_argument("url", metavar="URL")
    create.add_argument("--event-type", action="append", dest="event_types", help="event type (repeatable)")
    create.set_defaults(handler=_cmd_webhooks_create)

    listing = sub.add_parser(
        "list", parents=[common], help="list your endpoints", description="List your webhook endpoints."
    )
    listing.set_defaults(handler=_cmd_webhooks_list)

    delete = sub.add_parser(
        "delete", parents=[common], help="remove an endpoint", description="Remove a webhook endpoint."
    )
    delete.add_argument("webhook_id", metavar="ID")
    delete.set_defaults(handler=_cmd_webhooks_delete)

    rotate = sub.add_parser(
        "rotate-secret",
        parents=[common],
        help="new secret (old one signs for 24 h)",
        description="Give an endpoint a new signing secret (printed once); the previous one keeps signing "
        "for 24 hours.",
    )
    rotate.add_argument("webhook_id", metavar="ID")
    rotate.set_defaults(handler=_cmd_webhooks_rotate)

    deliveries = sub.add_parser(
        "deliveries",
        parents=[common],
        help="a report's delivery attempts",
        description="Show every delivery attempt of a report's events: outcome, HTTP status, time.",
    )
    deliveries.add_argument("report_id", metavar="REPORT_ID")
    deliveries.set_defaults(handler=_cmd_webhooks_deliveries)

    replay = sub.add_parser(
        "replay",
        parents=[common],
        help="send one delivery again",
        description="Send one delivery (an event to an endpoint) again.",
    )
    replay.add_argument("delivery_id", metavar="DELIVERY_ID")
    replay.set_defaults(handler=_cmd_webhooks_replay)


def _cmd_webhooks_listen(ctx: _Context) -> int:
    args = ctx.args
    secret = args.secret or os.environ.get("MEDSUM_WEBHOOK_SECRET")
    if not args.register and not secret:
        raise UsageError("pass --secret (or set MEDSUM_WEBHOOK_SECRET), or --register")
    done = threading.Event()

    def on_delivery(delivery: Delivery) -> None:
        event = delivery.event or {}
        if args.json:
            print(
                json.dumps({"verified": delivery.verified, "headers": delivery.headers, "event": event}),
                flush=True,
            )
        elif delivery.verified:
            data = event.get("data") or {}
            subject = data.get("report_id") or data.get("batch_id") or ""
            ctx.out.print(
                f"[green]verified[/green] {event.get('type')} {event.get('id')} {subject} "
                f"status={data.get('status')} {(data.get('links') or {}).get('self', '')}",
                highlight=False,
            )
        else:
            ctx.out.print("[red]rejected[/red] a request whose signature did not verify (answered 401)")
        if args.count and listener.verified >= args.count:
            done.set()

    listener = Listener(secret=secret, on_delivery=on_delivery, port=args.port).start()
    webhook_id: str | None = None
    try:
        if args.register:
            created = ctx.client.create_webhook(listener.url, args.event_types)
            webhook_id = str(created["webhook_id"])
            listener.secret = str(created["secret"])
        ctx.err.print(
            f"listening on {listener.url}"
            + (f" (registered as {webhook_id}; removed on exit)" if webhook_id else "")
            + "; Ctrl-C to stop",
            highlight=False,
        )
        if not done.wait(args.timeout):
            return _fail("error: timed out waiting for events", EXIT_UNAVAILABLE)
        return EXIT_OK
    finally:
        listener.stop()
        if webhook_id is not None:
            with contextlib.suppress(ApiError, TransportError):
                ctx.client.delete_webhook(webhook_id)


def _cmd_webhooks_create(ctx: _Context) -> int:
    created = ctx.client.create_webhook(ctx.args.url, ctx.args.event_types)
    if ctx.args.json:
        print_json(created, sys.stdout)
        return EXIT_OK
    ctx.err.print(
        Text.assemble(
            "webhook ",
            (str(created.get("webhook_id", "")), "bold"),
            f" created for {created.get('url', '')} ({', '.join(created.get('event_types') or [])})",
        )
    )
    _print_secret(ctx, str(created.get("secret", "")))
    return EXIT_OK


def _cmd_webhooks_list(ctx: _Context) -> int:
    page = ctx.client.list_webhooks()
    if ctx.args.json:
        print_json(page, sys.stdout)
        return EXIT_OK
    items = [item for item in page.get("items") or [] if isinstance(item, dict)]
    if not items:
        ctx.out.print(Text("no webhooks", style="dim"))
        return EXIT_OK
    print_table(
        ctx.out,
        ("webhook id", "status", "url", "event types", "created"),
        [
            (
                str(item.get("webhook_id", "")),
                status_text(str(item.get("status", ""))),
                str(item.get("url", "")),
                ", ".join(item.get("event_types") or []),
                str(item.get("created_at", "")),
            )
            for item in items
        ],
        ids=(0, 1),
    )
    return EXIT_OK


def _cmd_webhooks_delete(ctx: _Context) -> int:
    ctx.client.delete_webhook(ctx.args.webhook_id)
    if ctx.args.json:
        print_json({"webhook_id": ctx.args.webhook_id, "deleted": True}, sys.stdout)
    else:
        ctx.out.print(Text.assemble("deleted webhook ", ctx.args.webhook_id))
    return EXIT_OK


def _cmd_webhooks_rotate(ctx: _Context) -> int:
    rotated = ctx.client.rotate_webhook_secret(ctx.args.webhook_id)
    if ctx.args.json:
        print_json(rotated, sys.stdout)
        return EXIT_OK
    ctx.err.print(
        Text(
            f"webhook {rotated.get('webhook_id', ctx.args.webhook_id)}: new secret; the previous one keeps "
            f"signing until {rotated.get('previous_secret_expires_at', '?')}"
        )
    )
    _print_secret(ctx, str(rotated.get("secret", "")))
    return EXIT_OK


def _cmd_webhooks_deliveries(ctx: _Context) -> int:
    page = ctx.client.deliveries(ctx.args.report_id)
    if ctx.args.json:
        print_json(page, sys.stdout)
        return EXIT_OK
    items = [item for item in page.get("items") or [] if isinstance(item, dict)]
    if not items:
        ctx.out.print(Text("no deliveries", style="dim"))
        return EXIT_OK
    print_table(
        ctx.out,
        ("delivery id", "event", "attempt", "outcome", "http", "at", "webhook id"),
        [
            (
                str(item.get("delivery_id", "")),
                str(item.get("event_type", "")),
                str(item.get("attempt", "")),
                Text(str(item.get("outcome", "")), style=DELIVERY_STYLES.get(str(item.get("outcome")), "")),
                str(item.get("status_code") or "-"),
                str(item.get("attempted_at", "")),
                str(item.get("webhook_id", "")),
            )
            for item in items
        ],
        ids=(0, 6),
    )
    return EXIT_OK


def _cmd_webhooks_replay(ctx: _Context) -> int:
    accepted = ctx.client.replay_delivery(ctx.args.delivery_id)
    if ctx.args.json:
        print_json(accepted, sys.stdout)
    else:
        ctx.out.print(
            Text(f"delivery {accepted.get('delivery_id', ctx.args.delivery_id)} {accepted.get('status', '')}")
        )
    return EXIT_OK


def _print_secret(ctx: _Context, secret: str) -> None:
    """The secret alone on standard output (``secret=$(medsum webhooks create URL)``); advice on stderr."""
    print(secret, flush=True)
    ctx.err.print(Text("this secret is shown once: store it now (it verifies the signatures)", "dim"))


def _add_batch_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    batch = commands.add_parser(
        "batch",
        parents=[common],
        help="submit many reports at once and follow the batch",
        description="Submit many reports as a batch, follow its progress, and read its results.",
        epilog="Exit codes: 0 ok, 1 API refused (4xx), 2 usage/configuration, 3 unreachable/5xx/timeout, "
        "4 a waited-for batch has failed items or rejected input lines, or ended failed or cancelled.",
    )
    batch_commands = batch.add_subparsers(dest="batch_command", metavar="BATCH_COMMAND", required=True)

    submit = batch_commands.add_parser(
        "submit",
        parents=[common],
        help="submit a JSON Lines file or a directory of .txt reports",
        description="Submit a batch and print its id. A JSON Lines file (one "
        '{"custom_id", "patient_id", "report_text", "report_type"?, "metadata"?} object a line) is sent '
        "as it is; lines that fail the local checks are reported on standard error and sent anyway "
        "(the API reports them too). A directory sends every *.txt file in it (not recursively, in name "
        "order) as one item: custom_id is the file name without .txt, patient_id is derived from it. "
        f"Input that fits one request ({batch_input.MAX_BATCH_ITEMS:,} items and "
        f"{batch_input.MAX_BATCH_REQUEST_BYTES:,} bytes) is sent inline; larger input is uploaded to a "
        f"presigned URL as one batch (up to {batch_input.MAX_UPLOAD_ITEMS:,} items and "
        f"{batch_input.MAX_UPLOAD_BYTES:,} bytes), and only input over that is split into several "
        "batches, one id printed per line (see --mode).",
        epilog="With --json, the API's answer for each batch is printed instead of its id (one JSON "
        "document per batch; for an upload, the batch as read once its file is uploaded; with --wait, each "
        "batch as it ended). With --wait, progress is drawn on "
        "standard error and the exit code is 0 only if every line was accepted and every item completed "
        "(4 if a line was rejected, an item failed, or a batch failed or was cancelled).",
    )
    submit.add_argument(
        "input",
        metavar="FILE.jsonl|DIR",
        help="JSON Lines file (- for standard input), or a directory of .txt reports",
    )
    submit.add_argument(
        "--type",
        dest="report_type",
        choices=REPORT_TYPES,
        default=None,
        metavar="TYPE",
        help=f"report type of a directory's reports: {', '.join(REPORT_TYPES)} (default: other); "
        "in a .jsonl file, set report_type on each line instead",
    )
    submit.add_argument(
        "--mode",
        choices=("auto", "inline", "upload"),
        default="auto",
        help="auto (default): inline if the input fits one request, else upload; inline: POST /batches "
        "only, split into as many batches as needed; upload: POST /batches/uploads and a presigned PUT, "
        "even for a small input",
    )
    submit.add_argument(
        "--idempotency-key",
        help="make a retried inline submit safe (sent as Idempotency-Key; split input sends KEY-1, KEY-2, "
        "...). Uploads take no key: an uploaded input is submitted again, as new batches, on every run "
        "(the key is then ignored with a warning, and refused with --mode upload)",
    )
    submit.add_argument("--wait", action="store_true", help="show progress until every batch is done")
    _add_timeout(submit, DEFAULT_BATCH_WAIT_TIMEOUT)
    submit.set_defaults(handler=_cmd_batch_submit)

    status = batch_commands.add_parser(
        "status",
        parents=[common],
        help="show a batch's status and counts",
        description="Show a batch: status, item counts, and the input lines it did not accept.",
    )
    status.add_argument("batch_id", metavar="ID")
    status.set_defaults(handler=_cmd_batch_status)

    wait = batch_commands.add_parser(
        "wait",
        parents=[common],
        help="wait until a batch is completed, cancelled or failed",
        description="Show progress until a batch is completed, cancelled or failed, then show it. "
        "Exit code 0 if every line was accepted and every item completed, 4 if a line was rejected, an "
        "item failed, or the batch failed or was cancelled.",
    )
    wait.add_argument("batch_id", metavar="ID")
    _add_timeout(wait, DEFAULT_BATCH_WAIT_TIMEOUT)
    wait.set_defaults(handler=_cmd_batch_wait)

    results = batch_commands.add_parser(
        "results",
        parents=[common],
        help="download a batch's results (JSON Lines)",
        description="Write a batch's results, JSON Lines with one "
        '{"custom_id", "report_id", "status", "summary", "error"} object per item as the API returns them, '
        'then one {"custom_id", "report_id": null, "status": "ERRORED", "summary": null, "error", "line"} '
        "object per input line the API rejected, so that every submitted custom_id has a line; and print "
        "a count of the lines by status on standard error.",
    )
    results.add_argument("batch_id", metavar="ID")
    results.add_argument(
        "-o", "--output", metavar="FILE", help="write the results to FILE (default: standard output)"
    )
    results.set_defaults(handler=_cmd_batch_results)

    cancel = batch_commands.add_parser(
        "cancel",
        parents=[common],
        help="cancel a batch",
        description="Cancel a batch: items not started yet are not summarized. A batch that is already "
        "done is left as it is.",
    )
    cancel.add_argument("batch_id", metavar="ID")
    cancel.set_defaults(handler=_cmd_batch_cancel)

    listing = batch_commands.add_parser(
        "list", parents=[common], help="list your batches", description="List your batches, newest first."
    )
    listing.add_argument("--limit", type=_positive_int, help="page size")
    listing.add_argument("--all", action="store_true", help="follow next_token and list every page")
    listing.add_argument("--next-token", help="start from this page token")
    listing.set_defaults(handler=_cmd_batch_list)


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


def _cmd_batch_submit(ctx: _Context) -> int:
    args = ctx.args
    source = _read_batch_input(args.input, args.report_type)
    for number, problem in source.problems:
        print(f"warning: {source.source}:{number}: {problem}", file=sys.stderr)
    mode, chunks = batch_input.plan_submission(source, args.mode)
    key = _submission_idempotency_key(args.idempotency_key, args.mode, mode, len(chunks))
    if len(chunks) > 1:
        max_items, max_bytes = batch_input.SUBMISSION_LIMITS[mode]
        print(
            f"{source.source}: {source.item_count} items, sent as {len(chunks)} "
            f"{'uploaded ' if mode == 'upload' else ''}batches (at most {max_items:,} items and "
            f"{max_bytes:,} bytes each; error line numbers count from 1 in each batch)",
            file=sys.stderr,
        )
    client = ctx.client
    created: list[tuple[str, float | None]] = []
    known_totals: dict[str, int] = {}
    for index, chunk in enumerate(chunks, start=1):
        if mode == "upload":
            accepted, retry_after = _upload_chunk(client, chunk), None
        else:
            accepted, retry_after = client.create_batch_response(
                chunk.body, batch_input.chunk_idempotency_key(key, index, len(chunks))
            )
        batch_id = str(accepted.get("batch_id", ""))
        created.append((batch_id, retry_after))
        known_totals[batch_id] = chunk.items
        if not args.json:
            print(batch_id, flush=True)  # plain: `id=$(medsum batch submit reports.jsonl)` must just work
        elif not args.wait:
            # An upload's answer holds its presigned URL (write access until it expires): print the
            # batch instead, as for an inline batch.
            print_json(client.get_batch(batch_id) if mode == "upload" else accepted, sys.stdout)
        if len(chunks) > 1 or (args.json and args.wait) or mode == "upload":
            lines = "" if len(chunks) == 1 else f", input lines {chunk.first_line}-{chunk.last_line}"
            items = f"{chunk.items} item{'' if chunk.items == 1 else 's'}"
            verb = "uploaded" if mode == "upload" else "submitted"
            print(f"{verb} batch {batch_id} ({items}{lines})", file=sys.stderr)
    if not args.wait:
        return EXIT_OK
    finals = _wait_batches(ctx, created, args.timeout, known_totals)
    for final in finals:
        if args.json:
            print_json(final, sys.stdout)
        else:
            _print_batch_outcome(final)
    return _batches_exit_code(finals)


def _cmd_batch_status(ctx: _Context) -> int:
    batch = ctx.client.get_batch(ctx.args.batch_id)
    if ctx.args.json:
        print_json(batch, sys.stdout)
    else:
        render_batch(ctx.out, batch)
    return EXIT_OK


def _cmd_batch_wait(ctx: _Context) -> int:
    [final] = _wait_batches(ctx, [(ctx.args.batch_id, None)], ctx.args.timeout)
    if ctx.args.json:
        print_json(final, sys.stdout)
    else:
        render_batch(ctx.out, final)
    return _batches_exit_code([final])


def _cmd_batch_results(ctx: _Context) -> int:
    args = ctx.args
    # The API's lines are the accepted items; the lines it rejected are in the batch's errors.
    data = ctx.client.batch_results(args.batch_id)
    data += batch_input.rejected_results(ctx.client.get_batch(args.batch_id))
    counts = batch_input.count_result_statuses(data)
    summary = batch_input.format_counts(sorted(counts.items()))
    total = sum(counts.values())
    if args.output:
        try:
            Path(args.output).write_bytes(data)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
        print(f"wrote {total} results to {args.output} ({summary})", file=sys.stderr)
    else:
        _write_stdout_bytes(data)
        print(f"{total} results ({summary})", file=sys.stderr)
    return EXIT_OK


def _cmd_batch_cancel(ctx: _Context) -> int:
    batch_id = ctx.args.batch_id
    batch = ctx.client.cancel_batch(batch_id)
    if ctx.args.json:
        print_json(batch, sys.stdout)
        return EXIT_OK
    status = str(batch.get("status", "unknown"))
    if status in BATCH_TERMINAL_STATUSES:
        ctx.out.print(Text.assemble(f"batch {batch_id} is already ", status_text(status)))
    else:
        ctx.out.print(
            Text.assemble(
                f"batch {batch_id}: ",
                status_text(status),
                " (items already started will finish; the others are cancelled)",
            )
        )
    return EXIT_OK


def _cmd_batch_list(ctx: _Context) -> int:
    args = ctx.args
    client = ctx.client
    if args.all:
        items = collect_items(client.iter_batch_pages(limit=args.limit, next_token=args.next_token))
        page: JSONObject = {"items": items, "next_token": None}
    else:
        page = client.list_batches(limit=args.limit, next_token=args.next_token)
    if args.json:
        print_json(page, sys.stdout)
    else:
        render_batch_page(ctx.out, page.get("items") or [], page.get("next_token"))
    return EXIT_OK


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def _read_batch_input(name: str, report_type: str | None) -> batch_input.BatchInput:
    path = Path(name)
    try:
        if name != "-" and path.is_dir():
            return batch_input.from_directory(
                path,
                report_type or "other",
                patient_id_of=_batch_patient_id,
                read_text=lambda file: _read_text(str(file)),
            )
        if report_type is not None:
            raise UsageError(
                "--type applies to a directory of .txt reports; in a JSON Lines file, "
                "set report_type on each line"
            )
        if name == "-":
            return batch_input.from_jsonl(_read_stdin_bytes(), "<stdin>")
        return batch_input.from_jsonl(_read_bytes(name), name)
    except batch_input.BatchInputError as exc:
        raise UsageError(str(exc)) from exc


def _submission_idempotency_key(
    key: str | None, requested: str, mode: batch_input.SubmissionMode, count: int
) -> str | None:
    """The ``--idempotency-key`` to use for ``count`` requests sent by ``mode`` (checked)."""
    if not key:
        return None
    if mode == "upload":
        # POST /batches/uploads takes no Idempotency-Key: each call starts a new batch.
        if requested == "upload":
            raise UsageError("--idempotency-key cannot be used with --mode upload (uploads take no key)")
        print(
            "warning: --idempotency-key is not used: this input is uploaded, and uploads take no key "
            "(running the command again creates new batches)",
            file=sys.stderr,
        )
        return None
    suffix = 1 + len(str(count))  # split input sends KEY-1, KEY-2, ... (one request: KEY, checked by the API)
    if count > 1 and len(key) + suffix > batch_input.MAX_IDEMPOTENCY_KEY_CHARS:
        raise UsageError(
            f"--idempotency-key is too long for {count} batches "
            f"(at most {batch_input.MAX_IDEMPOTENCY_KEY_CHARS - suffix} characters)"
        )
    return key


def _upload_chunk(client: MedsumClient, chunk: batch_input.Chunk) -> JSONObject:
    """Start an upload batch and PUT ``chunk`` to its presigned URL; return the API's answer."""
    created = client.create_upload()
    batch_id = str(created.get("batch_id", ""))
    upload = created.get("upload")
    if not isinstance(upload, dict):
        raise ApiError(201, "invalid_response", "the API did not answer with an upload target")
    try:
        client.upload_batch_file(upload, chunk.body)
    except MedsumClientError:
        # The batch exists but will never get its file: say which one, so it is not taken for lost work.
        print(f"batch {batch_id} was created but not uploaded: it stays validating", file=sys.stderr)
        raise
    return created


def _batch_patient_id(path: Path) -> str:
    try:
        return derive_patient_id(str(path))
    except UsageError:
        raise UsageError(
            f"cannot derive a patient id from {path.name!r}; rename the file, or submit a JSON Lines file"
        ) from None


def _read_stdin_bytes() -> bytes:
    if sys.stdin.isatty():
        print("reading JSON Lines from standard input (end with Ctrl-D)", file=sys.stderr)
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        data: bytes = buffer.read()
        return data
    return sys.stdin.read().encode("utf-8")


def _read_bytes(file: str) -> bytes:
    try:
        return Path(file).read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"cannot read {file}: no such file") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc


def _write_stdout_bytes(data: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(data.decode("utf-8", errors="replace"))
        sys.stdout.flush()
    else:
        buffer.write(data)
        buffer.flush()


def _wait_batches(
    ctx: _Context,
    created: list[tuple[str, float | None]],
    timeout: float,
    known_totals: Mapping[str, int] | None = None,
) -> list[JSONObject]:
    """Wait for each batch in turn (they run in parallel on the server) within one overall timeout.

    ``known_totals`` (batch id -> items sent) draws each bar at once, with its total, before the first
    poll and while an upload is still validating.
    """
    client = ctx.client
    deadline = time.monotonic() + timeout
    finals: list[JSONObject] = []
    with _batch_progress(ctx, known_totals or {}) as on_update:
        for index, (batch_id, retry_after) in enumerate(created):
            remaining = max(deadline - time.monotonic(), 0.001)
            # Retry-After of a submit only matters right after it: later batches have waited already.
            first_delay = retry_after if index == 0 else None
            try:
                finals.append(client.wait_batch(batch_id, remaining, on_update, first_delay=first_delay))
            except WaitTimeoutError as exc:
                raise WaitTimeoutError(batch_id, timeout, exc.last_status, kind="batch") from None
    return finals


@contextlib.contextmanager
def _batch_progress(ctx: _Context, known_totals: Mapping[str, int]) -> Iterator[StatusCallback | None]:
    if not ctx.err.is_terminal:
        yield None
        return
    with BatchProgress(ctx.err, known_totals) as progress:
        yield progress.update


def _batch_is_clean(batch: JSONObject) -> bool:
    counts = batch_counts(batch)
    return (
        batch.get("status") == "completed"
        and counts["failed"] == 0
        and counts["cancelled"] == 0
        and not batch_input.rejected_lines(batch)
    )


def _batches_exit_code(batches: list[JSONObject]) -> int:
    return EXIT_OK if all(_batch_is_clean(batch) for batch in batches) else EXIT_REPORT_FAILED


def _print_batch_outcome(batch: JSONObject) -> None:
    batch_id = str(batch.get("batch_id", "?"))
    counts = batch_counts(batch)
    rejected = len(batch_input.rejected_lines(batch))
    summary = batch_input.format_counts(
        [(name, counts[name]) for name in ("completed", "failed", "cancelled", "pending", "processing")]
        + [("rejected input lines (ERRORED in the results)", rejected)]
    )
    # Errors about the whole batch (line 0: e.g. an uploaded file with too many lines) say why it failed.
    reasons = "".join(
        f" ({error.get('code')}: {error.get('message')})"
        for error in batch.get("errors") or []
        if isinstance(error, dict) and error.get("line") == 0
    )
    print(
        f"batch {batch_id} {batch.get('status', 'unknown')}{reasons}: {summary}; "
        f"results: medsum batch results {batch_id} -o {batch_id}.jsonl",
        file=sys.stderr,
    )
    lines = batch_input.rejected_lines(batch)
    for error in lines[:MAX_REJECTED_LINES_SHOWN]:
        custom_id = "" if error.get("custom_id") is None else f" ({error.get('custom_id')})"
        print(
            f"  rejected line {error.get('line')}{custom_id}: {error.get('code')}: {error.get('message')}",
            file=sys.stderr,
        )
    if len(lines) > MAX_REJECTED_LINES_SHOWN:
        print(f"  ... and {len(lines) - MAX_REJECTED_LINES_SHOWN} more (see the results)", file=sys.stderr)


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


def _api_error_text(exc: ApiError) -> str:
    """``error: code: message``, then one line per entry of the API's ``details``."""
    lines = [f"error: {exc.code}: {exc.message}" + (" (refused before sending)" if exc.local else "")]
    for detail in exc.details:
        if "location" in detail and "problem" in detail:
            lines.append(f"  {detail['location']}: {detail['problem']}")
        else:
            lines.append("  " + ", ".join(f"{key}: {value}" for key, value in detail.items()))
    return "\n".join(lines)


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


def _add_timeout(parser: argparse.ArgumentParser, default: float = DEFAULT_WAIT_TIMEOUT) -> None:
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=default,
        metavar="SECONDS",
        help=f"give up waiting after this many seconds (default: {default:g})",
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
