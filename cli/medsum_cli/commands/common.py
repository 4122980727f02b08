"""What every command module shares: the context of a run, exit codes, usage errors, option helpers.

A command module (:mod:`medsum_cli.commands.reports`, ...) registers its sub-parsers with
``register(commands, common)`` and sets each one's ``handler``: a function of :class:`Context` returning
the exit code. Errors a handler does not catch (:class:`UsageError`, the client's errors) become exit
codes and messages in :func:`medsum_cli.main.main`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import requests
from medsum.models import ReportType
from rich.console import Console

from medsum_cli.client import JSONObject, MedsumClient, collect_items
from medsum_cli.config import Settings, resolve_settings
from medsum_cli.render import make_console, print_json

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_REPORT_FAILED = 4
EXIT_INTERRUPTED = 130

REPORT_TYPES = tuple(report_type.value for report_type in ReportType)
MAX_PATIENT_ID_CHARS = 64

#: The ``add_subparsers()`` action that command modules add their commands to.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UsageError(Exception):
    """The command line is valid for argparse but cannot be carried out (e.g. an unreadable file)."""


class Context:
    """What every command handler needs: parsed options, consoles and a lazily built client.

    The client is built on first use, from the resolved settings (:func:`medsum_cli.config.resolve_settings`),
    so that commands failing before any API call need no credentials.
    """

    def __init__(self, args: argparse.Namespace, session: requests.Session | None) -> None:
        self.args = args
        self.out = make_console(no_color=args.no_color)
        self.err = make_console(no_color=args.no_color, stderr=True)
        self._session = session
        self.settings: Settings | None = None
        self._client: MedsumClient | None = None

    @property
    def client(self) -> MedsumClient:
        """The API client (built, and :attr:`settings` resolved, on first use)."""
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


#: A command's handler: runs it and returns the exit code.
Handler = Callable[[Context], int]
#: Prints the items of a list as a table: ``render(console, items, next_token)``.
PageRenderer = Callable[[Console, Iterable[Mapping[str, Any]], str | None], None]


def read_bytes(file: str) -> bytes:
    """The bytes of ``file``; :class:`UsageError` (a one-line reason) if it cannot be read."""
    try:
        return Path(file).read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"cannot read {file}: no such file") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc


def read_text(file: str) -> str:
    """The UTF-8 text of ``file``; :class:`UsageError` (a one-line reason) if it cannot be read."""
    try:
        return read_bytes(file).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {file}: not UTF-8 text") from exc


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


def fail(message: str, code: int) -> int:
    """Print ``message`` on standard error and return ``code``."""
    print(message, file=sys.stderr)
    return code


def print_pages(ctx: Context, pages: Iterator[JSONObject], render: PageRenderer) -> int:
    """Print a list command's answer: the first of ``pages``, or all of them with ``--all``.

    With ``--json`` the page is printed as the API's JSON (``--all``: every item, ``next_token`` null),
    else as ``render`` draws it.
    """
    if ctx.args.all:
        page: JSONObject = {"items": collect_items(pages), "next_token": None}
    else:
        page = next(pages)
    if ctx.args.json:
        print_json(page, sys.stdout)
    else:
        render(ctx.out, page.get("items") or [], page.get("next_token"))
    return EXIT_OK


def add_timeout(parser: argparse.ArgumentParser, default: float) -> None:
    """``--timeout SECONDS``: how long a waiting command waits (``default`` seconds unless given)."""
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=default,
        metavar="SECONDS",
        help=f"give up waiting after this many seconds (default: {default:g})",
    )


def add_page_options(parser: argparse.ArgumentParser) -> None:
    """``--limit``, ``--all`` and ``--next-token``: the paging options of a list command."""
    parser.add_argument("--limit", type=positive_int, help="page size")
    parser.add_argument("--all", action="store_true", help="follow next_token and list every page")
    parser.add_argument("--next-token", help="start from this page token")


def positive_int(value: str) -> int:
    """argparse type: an integer above 0."""
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from exc
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def positive_float(value: str) -> float:
    """argparse type: a finite number of seconds above 0."""
    try:
        number = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}") from exc
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return number
