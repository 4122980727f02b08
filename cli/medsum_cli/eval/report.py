"""How an evaluation is shown: tables on the terminal (tab-separated when piped), Markdown for a PR.

The JSON form is the report of :func:`medsum_cli.eval.metrics.evaluate` itself (``--json``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from medsum_cli.eval.baselines import BASELINES
from medsum_cli.eval.labeler import OBSERVATIONS
from medsum_cli.eval.metrics import MODEL
from medsum_cli.render import print_table

__all__ = ["agreement_rows", "markdown", "print_report", "run_rows"]

SYSTEMS: tuple[str, ...] = (MODEL, *BASELINES)
HEADERS: tuple[str, ...] = ("metric", "medsum", *BASELINES)
Row = tuple[str, ...]


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _share(value: Any, count: Any, total: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} % ({count}/{total})"


# (label, how to show one system's agreement dict)
_AGREEMENT: tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("micro F1, 14 observations (↑)", lambda m: _number(m["micro_f1"])),
    ("macro F1, 14 observations (↑)", lambda m: _number(m["macro_f1"])),
    ("micro F1, 13 findings: No Finding left out (↑)", lambda m: _number(m["micro_f1_findings"])),
    ("micro F1, CheXpert 5 (↑)", lambda m: _number(m["micro_f1_5"])),
    ("No-Finding accuracy (↑)", lambda m: _percent(m["no_finding_accuracy"])),
    (
        "false reassurance (↓)",
        lambda m: _share(
            m["false_reassurance"], m["false_reassurance_reports"], m["reference_abnormal_reports"]
        ),
    ),
    (
        "uncertain stated as definite (↓)",
        lambda m: _share(
            m["uncertain_as_definite"], m["uncertain_as_definite_count"], m["reference_uncertain"]
        ),
    ),
    (
        "contradicts the reference (↓)",
        lambda m: _share(m["contradiction_rate"], m["contradiction_reports"], m["reports"]),
    ),
    ("ROUGE-L F1 (gameable, see docs/eval.md)", lambda m: _number(m["rouge_l"])),
)


def agreement_rows(systems: Mapping[str, Mapping[str, Any]]) -> list[Row]:
    """One row per agreement metric, one column per system (medsum, then the baselines)."""
    return [(label, *(show(systems[name]) for name in SYSTEMS)) for label, show in _AGREEMENT]


def observation_rows(systems: Mapping[str, Mapping[str, Any]]) -> list[Row]:
    """F1 per observation (and its reference positives), one column per system."""
    rows: list[Row] = []
    for name in OBSERVATIONS:
        support = systems[MODEL]["per_observation"][name]["reference_positive"]
        cells = [_number(systems[system]["per_observation"][name]["f1"], 2) for system in SYSTEMS]
        rows.append((f"{name} (n={support})", *cells))
    return rows


def run_rows(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The model run's own numbers: coverage, contract, evidence, verification, tokens, latency, cost."""
    statuses = ", ".join(f"{count} {status}" for status, count in run["status_counts"].items()) or "none"
    verification = run["verification"]
    tokens, latency, cost = run["tokens"], run["latency"], run["cost"]
    rows = [
        (
            "reports",
            f"{run['references']} references; results: {statuses}; {run['results_missing']} missing, "
            f"{run['results_unmatched']} not in the references",
        ),
        ("scored (COMPLETED)", _share(run["coverage"], run["completed"], run["references"])),
        ("contract valid (Summary model)", _percent(run["contract_valid"])),
        (
            "evidence grounded (items)",
            _share(run["evidence_grounded"], run["items_grounded"], run["items"])
            + f"; {run['spans_outside_text']} of {run['spans']} spans outside the text",
        ),
        (
            "verification",
            f"{verification['summaries_with_record']} records: {verification['items_kept']} of "
            f"{verification['items_checked']} items kept; dropped "
            f"{verification['dropped_ungrounded']} ungrounded, {verification['dropped_unsupported']} "
            f"unsupported, {verification['dropped_negated']} negated; "
            f"{verification['marked_uncertain']} marked uncertain; "
            f"{verification['quotes_not_found']} quotes not found",
        ),
        (
            "needs review",
            _share(
                verification["needs_review_rate"],
                verification["needs_review"],
                verification["summaries_with_record"],
            )
            + f"; summary contradicts report: {verification['summary_contradicts_report']}",
        ),
    ]
    despite = run.get("reassurance_despite_findings")
    if despite is not None:
        rows.append(
            (
                "summary says normal despite its own findings",
                _share(despite["rate"], despite["reassuring"], despite["reports_with_findings"]),
            )
        )
    if tokens["reports_with_usage"]:
        rows.append(
            (
                "tokens / report (mean)",
                f"{_number(tokens['input_tokens_mean'], 0)} in, "
                f"{_number(tokens['output_tokens_mean'], 0)} out, "
                f"{_number(tokens['cache_read_input_tokens_mean'], 0)} cache read, "
                f"{_number(tokens['cache_write_input_tokens_mean'], 0)} cache write "
                f"({tokens['reports_with_usage']} reports with usage)",
            )
        )
        by_model = "; ".join(
            f"{model_id}: {_money(entry['per_1k_reports'], cost['currency'])}"
            for model_id, entry in cost["by_model"].items()
        )
        rows.append(
            (
                "cost / 1,000 reports",
                f"{_money(cost['per_1k_reports'], cost['currency'])} "
                f"({by_model}; prices: {cost['price_table']})",
            )
        )
    else:
        rows.append(("tokens, cost", "n/a: the results carry no usage (use --fetch-usage, or stack mode)"))
    if latency["reports"]:
        rows.append(
            (
                "latency (report created → done)",
                f"p50 {_number(latency['p50_seconds'], 1)} s, p90 {_number(latency['p90_seconds'], 1)} s, "
                f"p99 {_number(latency['p99_seconds'], 1)} s, max {_number(latency['max_seconds'], 1)} s",
            )
        )
    batch = run.get("batch")
    if isinstance(batch, Mapping):
        rows.append(
            (
                "batch",
                f"{batch['batches']} batch(es), submit → done {batch['wall_seconds']:.1f} s "
                f"({batch['reports_per_minute']:.0f} reports/min)",
            )
        )
    return rows


def _money(value: Any, currency: str) -> str:
    return "n/a (model not in the price table)" if value is None else f"{value:.4f} {currency}"


def print_report(console: Console, report: Mapping[str, Any], title: str) -> None:
    """Print the evaluation: agreement (all reports, then the abnormal subset), then the model run."""
    subset = report["subsets"]["reference_abnormal"]
    systems = report["systems"]
    console.print(Text(f"{title}: {systems[MODEL]['reports']} reports scored", style="bold"))
    print_table(console, HEADERS, agreement_rows(systems), ids=(0,))
    console.print()
    console.print(Text(f"Reports whose reference has a finding: {subset['reports']}", style="bold"))
    print_table(console, HEADERS, agreement_rows(subset["systems"]), ids=(0,))
    console.print()
    console.print(Text("The model run", style="bold"))
    print_table(console, ("what", "value"), run_rows(report["run"]), ids=(0,))


def _markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, numeric: bool = True
) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    rule = "|" + "---|" + ("---:|" if numeric else "---|") * (len(headers) - 1)
    return [line(headers), rule, *(line(row) for row in rows)]


def markdown(report: Mapping[str, Any], title: str) -> str:
    """The evaluation as Markdown (for a pull request or BENCHMARKS.md)."""
    subset = report["subsets"]["reference_abnormal"]
    systems = report["systems"]
    lines = [f"**{title}**: {systems[MODEL]['reports']} reports scored", ""]
    lines += _markdown_table(HEADERS, agreement_rows(systems))
    lines += ["", f"Reports whose reference has a finding ({subset['reports']}):", ""]
    lines += _markdown_table(HEADERS, agreement_rows(subset["systems"]))
    lines += ["", "F1 per observation (all reports):", ""]
    lines += _markdown_table(("observation", "medsum", *BASELINES), observation_rows(systems))
    lines += ["", "The model run:", ""]
    lines += _markdown_table(("what", "value"), run_rows(report["run"]), numeric=False)
    return "\n".join(lines) + "\n"
