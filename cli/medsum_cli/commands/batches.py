"""Batch commands: ``medsum batch submit|status|wait|results|cancel|list``.

``batch submit`` reads a JSON Lines file or a directory of ``.txt`` reports (:mod:`medsum_cli.batch_input`
checks and splits it), sends it inline or uploads it (:class:`~medsum_cli.client.MedsumClient`) and prints
one batch id a line; ``--wait`` and ``batch wait`` draw progress on standard error. Exit code 4 when a
waited-for batch has failed items or rejected input lines, or ended failed or cancelled.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from rich.text import Text

from medsum_cli import batch_input
from medsum_cli.client import (
    BATCH_TERMINAL_STATUSES,
    ApiError,
    JSONObject,
    MedsumClient,
    MedsumClientError,
    StatusCallback,
    WaitTimeoutError,
)
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
    read_bytes,
    read_text,
)
from medsum_cli.render import (
    BatchProgress,
    batch_counts,
    print_json,
    render_batch,
    render_batch_page,
    status_text,
)

DEFAULT_BATCH_WAIT_TIMEOUT = 3600.0
MAX_REJECTED_LINES_SHOWN = 20


def register(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add ``batch`` and its sub-commands to the top-level commands."""
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
    add_timeout(submit, DEFAULT_BATCH_WAIT_TIMEOUT)
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
    add_timeout(wait, DEFAULT_BATCH_WAIT_TIMEOUT)
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
    add_page_options(listing)
    listing.set_defaults(handler=_cmd_batch_list)


def _cmd_batch_submit(ctx: Context) -> int:
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
            accepted, retry_after = upload_chunk(client, chunk), None
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
    finals = wait_batches(ctx, created, args.timeout, known_totals)
    for final in finals:
        if args.json:
            print_json(final, sys.stdout)
        else:
            _print_batch_outcome(final)
    return _batches_exit_code(finals)


def _cmd_batch_status(ctx: Context) -> int:
    batch = ctx.client.get_batch(ctx.args.batch_id)
    if ctx.args.json:
        print_json(batch, sys.stdout)
    else:
        render_batch(ctx.out, batch)
    return EXIT_OK


def _cmd_batch_wait(ctx: Context) -> int:
    [final] = wait_batches(ctx, [(ctx.args.batch_id, None)], ctx.args.timeout)
    if ctx.args.json:
        print_json(final, sys.stdout)
    else:
        render_batch(ctx.out, final)
    return _batches_exit_code([final])


def _cmd_batch_results(ctx: Context) -> int:
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


def _cmd_batch_cancel(ctx: Context) -> int:
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


def _cmd_batch_list(ctx: Context) -> int:
    pages = ctx.client.iter_batch_pages(limit=ctx.args.limit, next_token=ctx.args.next_token)
    return print_pages(ctx, pages, render_batch_page)


def _read_batch_input(name: str, report_type: str | None) -> batch_input.BatchInput:
    path = Path(name)
    try:
        if name != "-" and path.is_dir():
            return batch_input.from_directory(
                path,
                report_type or "other",
                patient_id_of=_batch_patient_id,
                read_text=lambda file: read_text(str(file)),
            )
        if report_type is not None:
            raise UsageError(
                "--type applies to a directory of .txt reports; in a JSON Lines file, "
                "set report_type on each line"
            )
        if name == "-":
            return batch_input.from_jsonl(_read_stdin_bytes(), "<stdin>")
        return batch_input.from_jsonl(read_bytes(name), name)
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


def upload_chunk(client: MedsumClient, chunk: batch_input.Chunk) -> JSONObject:
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


def _write_stdout_bytes(data: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(data.decode("utf-8", errors="replace"))
        sys.stdout.flush()
    else:
        buffer.write(data)
        buffer.flush()


def wait_batches(
    ctx: Context,
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
def _batch_progress(ctx: Context, known_totals: Mapping[str, int]) -> Iterator[StatusCallback | None]:
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
