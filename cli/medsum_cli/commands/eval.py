"""``medsum eval``: score summaries against reference reports, next to what copying would give.

Two modes:

- **results** (``--results FILE``): score an existing ``medsum batch results`` file, offline (results from
  any model, any stack). Tokens and cost need each report's usage: lines written by ``--save-results``
  carry it, and ``--fetch-usage`` reads it from the API (``GET /reports/{id}``).
- **stack** (no ``--results``): submit the references' reports as a batch to the configured stack (the
  local one, or a deployed one: the same options as ``medsum batch submit``), follow it with the batch
  progress bar, read the results and each report's usage, and score them.

The scoring itself is pure and lives in :mod:`medsum_cli.eval` (docs/eval.md defines every metric).
Exit codes: those of every command, and ``5`` when a ``--fail-under`` / ``--fail-over`` gate is not met.
"""

from __future__ import annotations

import argparse

from medsum_cli.commands.common import (
    REPORT_TYPES,
    Context,
    Subcommands,
    positive_float,
    positive_int,
)

#: Exit code when a ``--fail-under`` / ``--fail-over`` gate is not met.
EXIT_BELOW_GATE = 5
DEFAULT_EVAL_TIMEOUT = 7200.0
DEFAULT_PATIENT_ID = "medsum-eval"


def register(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add ``eval`` to the top-level commands."""
    parser = commands.add_parser(
        "eval",
        parents=[common],
        help="score summaries against reference reports, next to copying baselines",
        description="Score a model's summaries against reference reports: clinical finding agreement "
        "(a CheXpert-style labeler on the reference impression and on the summary), the same for three "
        "copying baselines on the same reports, ROUGE-L (shown, but gameable), contract validity, "
        "evidence, verification, tokens, latency and cost per 1,000 reports. With --results, score an "
        "existing `medsum batch results` file offline; without it, submit the references to the stack "
        "as a batch, wait (progress on standard error) and score the results. docs/eval.md defines "
        "every metric.",
        epilog="References: JSON Lines, one report a line: {custom_id, report_text, impression and/or "
        "labels, report_type?, patient_id?}; the IU chest X-ray layout (id, full_text, findings, "
        "impression) is recognised by itself. Exit codes: 0 ok, 1 API refused (4xx), 2 usage/"
        "configuration, 3 unreachable/5xx/timeout, 5 a --fail-under/--fail-over gate is not met.",
    )
    parser.add_argument(
        "--references", required=True, metavar="FILE", help="JSON Lines file of reports and their references"
    )
    parser.add_argument(
        "--results",
        metavar="FILE",
        help="score this `medsum batch results` file instead of running the reports through the stack",
    )
    fields = parser.add_argument_group("references layout")
    fields.add_argument(
        "--layout",
        choices=("auto", "default", "iu"),
        default="auto",
        help="auto (default): IU if the first line has id, full_text and impression but no custom_id; "
        "default: custom_id, report_text, impression, labels; iu: id, full_text, findings, impression",
    )
    fields.add_argument("--id-field", help="field holding the report id (joined with custom_id)")
    fields.add_argument("--text-field", help="field holding the report text")
    fields.add_argument("--impression-field", help="field holding the reference impression")
    fields.add_argument("--labels-field", help="field holding reference labels (observation -> 1/0/-1/null)")
    fields.add_argument(
        "--findings-field", help="field holding the FINDINGS section (else cut from the text)"
    )
    fields.add_argument(
        "--without-impression",
        action="store_true",
        help="remove the IMPRESSION section from each report before it is summarized (the realistic case: "
        "summarize the findings); the reference stays the impression. Use it in both modes alike: "
        "evidence offsets are checked against the text as submitted",
    )
    fields.add_argument("--limit", type=positive_int, metavar="N", help="use only the first N reports")

    output = parser.add_argument_group("output and gates")
    output.add_argument("--markdown", action="store_true", help="print Markdown tables (for a pull request)")
    output.add_argument(
        "--prices",
        metavar="FILE",
        help="price table (USD per 1k input/output tokens per model id; default: the example table "
        "medsum_cli/eval/prices.json, whose prices you must check)",
    )
    output.add_argument(
        "--fail-under",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="exit 5 if METRIC is below VALUE (e.g. micro_f1=0.5, coverage=1); repeatable",
    )
    output.add_argument(
        "--fail-over",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="exit 5 if METRIC is above VALUE (e.g. false_reassurance=0.05, cost_per_1k=2); repeatable",
    )
    output.add_argument("--title", help="title of the tables (default: the references file name)")

    stack = parser.add_argument_group("stack mode (without --results)")
    stack.add_argument(
        "--save-results",
        metavar="FILE",
        help="write the results, with each report's usage and timestamps, to FILE (score it again later "
        "with --results FILE)",
    )
    stack.add_argument(
        "--type",
        dest="report_type",
        choices=REPORT_TYPES,
        default=None,
        metavar="TYPE",
        help="report type sent with each report that has none (default: radiology for the IU layout, "
        "else other)",
    )
    stack.add_argument(
        "--patient-id",
        default=DEFAULT_PATIENT_ID,
        help="patient id of reports that have none (default: %(default)s)",
    )
    stack.add_argument(
        "--mode",
        choices=("auto", "inline", "upload"),
        default="auto",
        help="how the batch is sent, as for `medsum batch submit` (default: auto)",
    )
    stack.add_argument(
        "--fetch-usage",
        action="store_true",
        help="with --results: read each report's usage and timestamps from the API (needs access to the "
        "stack that produced the results)",
    )
    stack.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_EVAL_TIMEOUT,
        metavar="SECONDS",
        help=f"give up waiting for the batch after this many seconds (default: {DEFAULT_EVAL_TIMEOUT:g})",
    )
    parser.set_defaults(handler=_cmd_eval)


def _cmd_eval(ctx: Context) -> int:
    # The scoring modules (labeler, metrics, report) load only when eval runs, not with every command.
    from medsum_cli.eval.command import run

    return run(ctx)
