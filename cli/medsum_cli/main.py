"""``medsum`` command line: the parser, built from the command modules, and dispatch.

Each command lives in a module of :mod:`medsum_cli.commands`, one per resource (``reports``: submit, get,
wait, list, delete; ``batches``: batch ...; ``operators``: dlq ..., audit; ``webhooks``: webhooks ...),
which registers its sub-parsers and handlers. This module adds the global options, runs the chosen
handler and turns what it raises into a message and an exit code.

Exit codes: ``0`` success, ``1`` the API refused the request (4xx), ``2`` usage or configuration error,
``3`` the API is unreachable, failing (5xx) or too slow (timeouts), ``4`` a waited-for report ended
``FAILED``, or a waited-for batch has failed items or rejected input lines, or ended ``failed`` or
``cancelled``, ``130`` interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import requests

from medsum_cli._version import __version__
from medsum_cli.client import ApiError, ConnectionFailedError, TransportError, WaitTimeoutError
from medsum_cli.commands import batches, operators, reports, webhooks
from medsum_cli.commands import eval as evaluation
from medsum_cli.commands.common import (
    EXIT_API_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REPORT_FAILED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    Context,
    Handler,
    UsageError,
    derive_patient_id,
    fail,
)
from medsum_cli.config import ConfigError
from medsum_cli.render import print_json

# The exit codes, UsageError and derive_patient_id (commands.common) stay importable from here.
__all__ = [
    "EXIT_API_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REPORT_FAILED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "derive_patient_id",
    "main",
]

#: The command modules, in the order ``medsum --help`` lists their commands; each one's
#: ``register(commands, common)`` adds its sub-parsers and handlers.
COMMAND_MODULES = (reports, batches, operators, webhooks, evaluation)


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
    context = Context(args, session)
    handler: Handler = args.handler
    try:
        return handler(context)
    except UsageError as exc:
        return fail(f"error: {exc}", EXIT_USAGE)
    except ConfigError as exc:
        return fail(f"error: {exc}", EXIT_USAGE)
    except ApiError as exc:
        if getattr(args, "json", False):
            print_json(exc.document(), sys.stdout)
        return fail(_api_error_text(exc), EXIT_API_ERROR if exc.is_client_error else EXIT_UNAVAILABLE)
    except WaitTimeoutError as exc:
        again = (
            f"medsum batch wait {exc.report_id}" if exc.kind == "batch" else f"medsum wait {exc.report_id}"
        )
        return fail(f"error: {exc}; run `{again}` to keep waiting", EXIT_UNAVAILABLE)
    except TransportError as exc:
        hint = ""
        local = context.settings is not None and context.settings.targets_local_stack
        if isinstance(exc, ConnectionFailedError) and local:
            hint = " (is the local stack running? start it with `make run`)"
        return fail(f"error: {exc}{hint}", EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)


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
    for module in COMMAND_MODULES:
        module.register(commands, common)
    return parser


def _api_error_text(exc: ApiError) -> str:
    """``error: code: message``, then one line per entry of the API's ``details``."""
    lines = [f"error: {exc.code}: {exc.message}" + (" (refused before sending)" if exc.local else "")]
    for detail in exc.details:
        if "location" in detail and "problem" in detail:
            lines.append(f"  {detail['location']}: {detail['problem']}")
        else:
            lines.append("  " + ", ".join(f"{key}: {value}" for key, value in detail.items()))
    return "\n".join(lines)


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
