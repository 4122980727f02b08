"""Operator commands: ``medsum dlq summary|list|show|redrive|purge|retry`` and ``medsum audit``.

They call the ``/admin`` routes, which answer ``403`` unless the signing principal is an operator (on the
local stack: ``--identity operator``). Nothing they print contains report text: the API never sends it.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from medsum_cli.client import JSONObject
from medsum_cli.commands.common import EXIT_OK, EXIT_REPORT_FAILED, EXIT_USAGE, Context, Subcommands
from medsum_cli.render import print_json, print_table

EXIT_ABORTED = 1  # the operator did not confirm
EXIT_INCOMPLETE = EXIT_REPORT_FAILED  # some of the work failed


def register(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Register ``dlq …`` and ``audit`` on the top-level sub-parsers."""
    dlq = commands.add_parser(
        "dlq",
        parents=[common],
        help="operators: inspect, redrive and purge the dead-letter queue",
        description="Operators only (sign as an operator principal; locally --identity operator).",
    )
    sub = dlq.add_subparsers(dest="dlq_command", metavar="DLQ_COMMAND", required=True)

    summary = sub.add_parser(
        "summary",
        parents=[common],
        help="counts by error code and by age",
        description="Count the dead-lettered work by error code and by age.",
    )
    summary.set_defaults(handler=cmd_summary)

    listing = sub.add_parser(
        "list",
        parents=[common],
        help="dead-lettered work, oldest failure first",
        description="List the dead-lettered work, oldest failure first: report, error code, owner, batch.",
    )
    listing.add_argument("--error-code", help="only this error code (e.g. dead_lettered)")
    listing.add_argument("--older-than", metavar="AGE", help="only older than AGE (90s, 15m, 2h, 3d)")
    listing.add_argument("--limit", type=int, default=None, help="page size (default: every page)")
    listing.set_defaults(handler=cmd_list)

    show = sub.add_parser(
        "show",
        parents=[common],
        help="the dead-lettered work of one report",
        description="Show the dead-lettered work of one report and its record's history (never its text).",
    )
    show.add_argument("report_id", metavar="REPORT_ID")
    show.set_defaults(handler=cmd_show)

    redrive = sub.add_parser(
        "redrive",
        parents=[common],
        help="put dead-lettered work back on the work queue",
        description="Each selected report goes back to PENDING and its work to the work queue, at most "
        "--rate messages a second. Asks for confirmation unless --yes.",
    )
    selection = redrive.add_mutually_exclusive_group(required=True)
    selection.add_argument("--all", action="store_true", help="every dead-lettered message")
    selection.add_argument(
        "--id", dest="ids", action="extend", nargs="+", metavar="REPORT_ID", help="these reports"
    )
    selection.add_argument("--error-code", help="every message whose report failed with this code")
    redrive.add_argument("--rate", type=float, default=10.0, help="messages per second (default 10, max 100)")
    redrive.add_argument("--dry-run", action="store_true", help="show what would be redriven; change nothing")
    redrive.add_argument("--reason", required=True, help="why (stored in the audit trail)")
    redrive.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    redrive.set_defaults(handler=cmd_redrive)

    purge = sub.add_parser(
        "purge",
        parents=[common],
        help="delete dead-lettered work (reports stay FAILED, code purged)",
        description="Delete dead-lettered messages. Their reports stay FAILED with code purged. Asks for "
        "confirmation unless --yes.",
    )
    purge_selection = purge.add_mutually_exclusive_group(required=True)
    purge_selection.add_argument("--id", dest="ids", action="extend", nargs="+", metavar="REPORT_ID")
    purge_selection.add_argument("--older-than", metavar="AGE", help="older than AGE (90s, 15m, 2h, 3d)")
    purge.add_argument("--reason", required=True, help="why (stored in the audit trail)")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(handler=cmd_purge)

    retry = sub.add_parser(
        "retry",
        parents=[common],
        help="retry a report that failed non-retryably (not in the DLQ)",
        description="Put a report that failed non-retryably back to PENDING and on the work queue (audited).",
    )
    retry.add_argument("report_id", metavar="REPORT_ID")
    retry.add_argument("--reason", required=True, help="why (stored in the audit trail)")
    retry.set_defaults(handler=cmd_retry)

    audit = commands.add_parser(
        "audit",
        parents=[common],
        help="operators: the audit trail, newest first",
        description="Operators only: the audit trail of redrives, purges and retries, newest first.",
    )
    audit.add_argument("--limit", type=int, default=50, help="entries (default 50)")
    audit.set_defaults(handler=cmd_audit)


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------
def cmd_summary(ctx: Context) -> int:
    summary = ctx.client.dlq_summary()
    if ctx.args.json:
        print_json(summary, sys.stdout)
        return EXIT_OK
    lanes = summary.get("by_lane") or {}
    ctx.out.print(
        f"dead-lettered: {summary['total']}"
        + (" (" + ", ".join(f"{lane} {count}" for lane, count in lanes.items()) + ")" if lanes else "")
        + (" (scan truncated)" if summary.get("truncated") else "")
    )
    print_table(
        ctx.out,
        ("error code", "count"),
        [(code, str(count)) for code, count in sorted(summary["by_error_code"].items())],
        ids=(),
    )
    print_table(
        ctx.out, tuple(summary["by_age"].keys()), [tuple(str(v) for v in summary["by_age"].values())], ids=()
    )
    return EXIT_OK


def cmd_list(ctx: Context) -> int:
    args = ctx.args
    items: list[JSONObject] = []
    token: str | None = None
    while True:
        page = ctx.client.dlq_list(
            error_code=args.error_code, older_than=args.older_than, limit=args.limit, next_token=token
        )
        items.extend(page["items"])
        token = page.get("next_token")
        if not token or args.limit:
            break
    if args.json:
        print_json({"items": items, "next_token": token}, sys.stdout)
        return EXIT_OK
    print_table(
        ctx.out,
        ("report id", "lane", "error code", "owner", "batch", "attempts", "last failure", "age"),
        [
            (
                str(item.get("report_id")),
                str(item.get("lane", "interactive")),
                item["error_code"],
                str(item.get("owner") or "-"),
                str(item.get("batch_id") or "-"),
                str(item.get("attempts", 0)),
                str(item.get("last_failed_at")),
                _age(int(item.get("age_seconds", 0))),
            )
            for item in items
        ],
        ids=(0, 4),
    )
    if token:
        ctx.out.print("more entries: run without --limit to list every page")
    return EXIT_OK


def cmd_show(ctx: Context) -> int:
    entry = ctx.client.dlq_show(ctx.args.report_id)
    if ctx.args.json:
        print_json(entry, sys.stdout)
        return EXIT_OK
    for key, value in entry.items():
        ctx.out.print(f"[bold]{key}[/bold]: {value}", highlight=False)
    return EXIT_OK


def _selection(args: argparse.Namespace) -> JSONObject:
    if args.ids:
        return {"report_ids": list(args.ids)}
    if getattr(args, "error_code", None):
        return {"error_code": args.error_code}
    if getattr(args, "older_than", None):
        return {"older_than": args.older_than}
    return {"all": True}


def cmd_redrive(ctx: Context) -> int:
    args = ctx.args
    if not 0 < args.rate <= 100:
        ctx.err.print("error: --rate must be more than 0 and at most 100")
        return EXIT_USAGE
    body: JSONObject = {**_selection(args), "max_per_second": args.rate, "reason": args.reason}
    plan = ctx.client.dlq_redrive({**body, "dry_run": True})
    movable = len(plan.get("report_ids") or [])
    if args.dry_run:
        if args.json:
            print_json(plan, sys.stdout)
        else:
            ctx.out.print(f"dry run: {movable} would be redriven, {plan['skipped']} skipped; nothing changed")
            for report_id in plan.get("report_ids") or []:
                ctx.out.print(f"  {report_id}")
        return EXIT_OK
    if movable == 0:
        ctx.err.print("nothing to redrive")
        if args.json:
            print_json(plan, sys.stdout)
        return EXIT_OK
    if not args.yes and not _confirm(ctx, f"redrive {movable} dead-lettered report(s) at {args.rate:g}/s?"):
        return EXIT_ABORTED
    job = ctx.client.dlq_redrive(body)
    with _progress(ctx.err) as progress:
        task = progress.add_task("redrive", total=movable, completed=job["moved"])
        while job["status"] == "running":
            job = ctx.client.dlq_redrive({"job_id": job["job_id"]})
            progress.update(task, completed=job["moved"], total=max(movable, job["moved"] + job["remaining"]))
        progress.update(task, completed=job["moved"])
    if args.json:
        print_json(job, sys.stdout)
    else:
        ctx.out.print(
            f"job {job['job_id']}: moved {job['moved']}, skipped {job['skipped']}, failed {job['failed']}"
        )
    return EXIT_OK if job["failed"] == 0 else EXIT_INCOMPLETE


def cmd_purge(ctx: Context) -> int:
    args = ctx.args
    what = f"{len(args.ids)} report(s)" if args.ids else f"every dead letter older than {args.older_than}"
    if not args.yes and not _confirm(ctx, f"purge {what}? Their work is deleted for good"):
        return EXIT_ABORTED
    entry = ctx.client.dlq_purge({**_selection(args), "reason": args.reason})
    if args.json:
        print_json(entry, sys.stdout)
    else:
        counts = entry["counts"]
        ctx.out.print(f"purged {counts['purged']}, skipped {counts['skipped']}, failed {counts['failed']}")
    return EXIT_OK if entry["counts"]["failed"] == 0 else EXIT_INCOMPLETE


def cmd_retry(ctx: Context) -> int:
    entry = ctx.client.retry_report(ctx.args.report_id, ctx.args.reason)
    if ctx.args.json:
        print_json(entry, sys.stdout)
    else:
        ctx.out.print(f"{ctx.args.report_id} is PENDING again (audit {entry['audit_id']})")
    return EXIT_OK


def cmd_audit(ctx: Context) -> int:
    page = ctx.client.audit(limit=ctx.args.limit)
    if ctx.args.json:
        print_json(page, sys.stdout)
        return EXIT_OK
    rows = []
    for entry in page["items"]:
        counts = ", ".join(f"{k} {v}" for k, v in entry["counts"].items() if v)
        action = entry["action"] + (" (dry run)" if entry.get("dry_run") else "")
        selection = ", ".join(f"{k}={v}" for k, v in entry["selection"].items())
        rows.append((entry["at"], entry["principal"], action, selection, counts, entry["reason"]))
    print_table(ctx.out, ("at", "principal", "action", "selection", "counts", "reason"), rows, ids=())
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
def _confirm(ctx: Context, question: str) -> bool:
    if not sys.stdin.isatty():
        ctx.err.print(f"{question} — refusing without a terminal; pass --yes")
        return False
    answer = ctx.err.input(f"{question} [y/N] ")
    return answer.strip().lower() in {"y", "yes"}


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
