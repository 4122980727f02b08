"""Webhook commands: ``medsum webhooks listen|create|list|delete|rotate-secret|deliveries|replay``.

``listen`` runs a local receiver (:mod:`medsum_cli.webhook_listener`) that verifies each signature and
prints the event; the others manage endpoints and read or replay the delivery log through the API. A
new secret is printed once, alone on standard output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from rich.text import Text

from medsum_cli.client import ApiError, TransportError
from medsum_cli.commands.common import (
    EXIT_OK,
    EXIT_UNAVAILABLE,
    Context,
    Subcommands,
    UsageError,
    fail,
    positive_int,
)
from medsum_cli.render import print_json, print_table, status_text
from medsum_cli.webhook_listener import Delivery, Listener

DELIVERY_STYLES = {
    "delivered": "green",
    "retrying": "yellow",
    "failed": "red",
    "disabled": "red",
    "exhausted": "red",
}


def register(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add ``webhooks`` and its sub-commands to the top-level commands."""
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
    listen.add_argument("--count", type=positive_int, help="exit after this many verified events")
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


def _cmd_webhooks_listen(ctx: Context) -> int:
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
    restore = _stop_on_signals()
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
            return fail("error: timed out waiting for events", EXIT_UNAVAILABLE)
        return EXIT_OK
    finally:
        restore()
        listener.stop()
        if webhook_id is not None:
            with contextlib.suppress(ApiError, TransportError):
                ctx.client.delete_webhook(webhook_id)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> Callable[[], None]:
    """Make SIGINT and SIGTERM stop the listener (and remove its registration) even when the shell that
    started it in the background left SIGINT ignored; returns what puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # only the main thread may set handlers (the CLI's tests may call from others)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _cmd_webhooks_create(ctx: Context) -> int:
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


def _cmd_webhooks_list(ctx: Context) -> int:
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


def _cmd_webhooks_delete(ctx: Context) -> int:
    ctx.client.delete_webhook(ctx.args.webhook_id)
    if ctx.args.json:
        print_json({"webhook_id": ctx.args.webhook_id, "deleted": True}, sys.stdout)
    else:
        ctx.out.print(Text.assemble("deleted webhook ", ctx.args.webhook_id))
    return EXIT_OK


def _cmd_webhooks_rotate(ctx: Context) -> int:
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


def _cmd_webhooks_deliveries(ctx: Context) -> int:
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


def _cmd_webhooks_replay(ctx: Context) -> int:
    accepted = ctx.client.replay_delivery(ctx.args.delivery_id)
    if ctx.args.json:
        print_json(accepted, sys.stdout)
    else:
        ctx.out.print(
            Text(f"delivery {accepted.get('delivery_id', ctx.args.delivery_id)} {accepted.get('status', '')}")
        )
    return EXIT_OK


def _print_secret(ctx: Context, secret: str) -> None:
    """The secret alone on standard output (``secret=$(medsum webhooks create URL)``); advice on stderr."""
    print(secret, flush=True)
    ctx.err.print(Text("this secret is shown once: store it now (it verifies the signatures)", "dim"))
