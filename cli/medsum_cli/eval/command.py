"""What ``medsum eval`` does once its options are parsed (``medsum_cli.commands.eval`` registers them):
read the references and the results (or run the references on a stack), score, print, check the gates.

Kept apart from the command's registration so that the scoring modules load only when ``eval`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from medsum_cli import batch_input
from medsum_cli.commands.batches import upload_chunk, wait_batches
from medsum_cli.commands.common import (
    EXIT_OK,
    Context,
    UsageError,
    read_bytes,
)
from medsum_cli.commands.eval import EXIT_BELOW_GATE
from medsum_cli.eval.inputs import (
    DEFAULT_FIELDS,
    IU_FIELDS,
    Case,
    EvalInputError,
    FieldMap,
    Result,
    read_references,
    read_results,
    result_from_line,
    with_usage,
)
from medsum_cli.eval.metrics import evaluate, gate_metrics
from medsum_cli.eval.prices import PriceTable, load_prices
from medsum_cli.eval.report import markdown, print_report
from medsum_cli.render import print_json

#: Fields a saved results line keeps from the report view, besides the batch results line.
_SAVED_REPORT_FIELDS = ("usage", "created_at", "updated_at")


def run(ctx: Context) -> int:
    """Run ``medsum eval`` with the parsed options in ``ctx``; returns the exit code."""
    args = ctx.args
    if args.markdown and args.json:
        raise UsageError("--markdown and --json cannot be used together")
    if args.results is None and args.fetch_usage:
        raise UsageError("--fetch-usage applies to --results (stack mode reads the usage anyway)")
    if args.results is not None and args.save_results:
        raise UsageError("--save-results applies to stack mode (without --results)")
    gates = _parse_gates(args.fail_under, "--fail-under") + _parse_gates(args.fail_over, "--fail-over")
    prices = _load_prices(args.prices)
    fields = _field_map(args)
    try:
        cases, not_found = read_references(
            read_bytes(args.references),
            args.references,
            fields,
            without_impression=args.without_impression,
            limit=args.limit,
        )
    except EvalInputError as exc:
        raise UsageError(str(exc)) from exc
    if args.without_impression and not_found:
        print(f"warning: {not_found} reports have no IMPRESSION section to remove", file=sys.stderr)

    batch: dict[str, Any] | None = None
    without_id = 0
    if args.results is not None:
        try:
            results, without_id = read_results(read_bytes(args.results), args.results)
        except EvalInputError as exc:
            raise UsageError(str(exc)) from exc
        if args.fetch_usage:
            results = {
                custom_id: result if result.usage is not None else _with_report(ctx, result)[0]
                for custom_id, result in results.items()
            }
    else:
        results, batch = _run_on_stack(ctx, cases, _is_iu(fields, args.references))

    report = evaluate(cases, results, prices, unmatched_without_id=without_id)
    if batch is not None:
        report["run"]["batch"] = batch
    report["run"]["mode"] = "results" if args.results is not None else "stack"
    report["run"]["without_impression"] = bool(args.without_impression)
    title = args.title or Path(args.references).name + (
        " (IMPRESSION removed)" if args.without_impression else ""
    )
    values = gate_metrics(report)
    unknown = [name for name, _, _ in gates if name not in values]
    if unknown:
        raise UsageError(f"unknown metric {unknown[0]!r}; one of: {', '.join(sorted(values))}")
    if args.json:
        print_json(report, sys.stdout)
    elif args.markdown:
        sys.stdout.write(markdown(report, title))
    else:
        print_report(ctx.out, report, title)
    return _check_gates(gates, values)


def _parse_gates(raw: Sequence[str], option: str) -> list[tuple[str, str, float]]:
    gates = []
    for entry in raw:
        name, separator, value = entry.partition("=")
        try:
            threshold = float(value)
        except ValueError:
            threshold = float("nan")
        if not separator or not name.strip() or threshold != threshold:
            raise UsageError(f"{option} takes METRIC=NUMBER, not {entry!r}")
        gates.append((name.strip(), option, threshold))
    return gates


def _check_gates(gates: Sequence[tuple[str, str, float]], values: Mapping[str, float | None]) -> int:
    failed = False
    for name, option, threshold in gates:
        value = values[name]
        if value is None:
            print(f"gate failed: {name} was not measured ({option} {name}={threshold:g})", file=sys.stderr)
            failed = True
        elif (option == "--fail-under" and value < threshold) or (
            option == "--fail-over" and value > threshold
        ):
            word = "below" if option == "--fail-under" else "above"
            print(f"gate failed: {name} = {value:.4g} is {word} {threshold:g}", file=sys.stderr)
            failed = True
    return EXIT_BELOW_GATE if failed else EXIT_OK


def _load_prices(file: str | None) -> PriceTable:
    try:
        return load_prices(None if file is None else read_bytes(file), file)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _field_map(args: argparse.Namespace) -> FieldMap | None:
    overrides = {
        "id": args.id_field,
        "text": args.text_field,
        "impression": args.impression_field,
        "labels": args.labels_field,
        "findings": args.findings_field,
    }
    given = {name: value for name, value in overrides.items() if value}
    if args.layout == "auto" and not given:
        return None  # detected from the first line
    base = IU_FIELDS if args.layout == "iu" else DEFAULT_FIELDS
    if args.layout == "auto" and not given.keys() - {"findings"}:
        base = DEFAULT_FIELDS
    return FieldMap(**{**base.__dict__, **given})


def _is_iu(fields: FieldMap | None, references: str) -> bool:
    if fields is not None:
        return fields == IU_FIELDS
    first = next((line for line in read_bytes(references).splitlines() if line.strip()), b"{}")
    try:
        value = json.loads(first)
    except ValueError:
        return False
    return isinstance(value, dict) and "custom_id" not in value and {"id", "full_text"} <= value.keys()


# --- stack mode -------------------------------------------------------------------------------------------
def _batch_body(cases: Sequence[Case], report_type: str, patient_id: str) -> bytes:
    lines = []
    for case in cases:
        item = {
            "custom_id": case.custom_id,
            "patient_id": case.patient_id or patient_id,
            "report_text": case.report_text,
            "report_type": case.report_type or report_type,
        }
        lines.append(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
    return "".join(lines).encode("utf-8")


def _run_on_stack(
    ctx: Context, cases: Sequence[Case], iu_layout: bool
) -> tuple[dict[str, Result], dict[str, Any]]:
    """Submit the reports as batches, wait, and read the results with each report's usage."""
    args = ctx.args
    report_type = args.report_type or ("radiology" if iu_layout else "other")
    source = batch_input.from_jsonl(_batch_body(cases, report_type, args.patient_id), args.references)
    for number, problem in source.problems:
        print(f"warning: report {number}: {problem}", file=sys.stderr)
    mode, chunks = batch_input.plan_submission(source, args.mode)
    client = ctx.client
    started = time.monotonic()
    created: list[tuple[str, float | None]] = []
    known_totals: dict[str, int] = {}
    for chunk in chunks:
        if mode == "upload":
            accepted, retry_after = upload_chunk(client, chunk), None
        else:
            accepted, retry_after = client.create_batch_response(chunk.body)
        batch_id = str(accepted.get("batch_id", ""))
        created.append((batch_id, retry_after))
        known_totals[batch_id] = chunk.items
        print(f"submitted batch {batch_id} ({chunk.items} reports)", file=sys.stderr)
    finals = wait_batches(ctx, created, args.timeout, known_totals)
    wall = time.monotonic() - started
    lines: list[dict[str, Any]] = []
    for final in finals:
        batch_id = str(final.get("batch_id", ""))
        data = client.batch_results(batch_id) + batch_input.rejected_results(final)
        lines += [json.loads(raw) for raw in data.splitlines() if raw.strip()]
    results: dict[str, Result] = {}
    saved: list[dict[str, Any]] = []
    with _fetch_progress(ctx, len(lines)) as advance:
        for line in lines:
            result = result_from_line(line)
            report: Mapping[str, Any] = {}
            if result.report_id is not None and result.status == "COMPLETED":
                result, report = _with_report(ctx, result)
            if isinstance(line.get("custom_id"), str):
                results[result.custom_id] = result
            saved.append({**line, **{name: report[name] for name in _SAVED_REPORT_FIELDS if name in report}})
            advance()
    if args.save_results:
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in saved)
        try:
            Path(args.save_results).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.save_results}: {exc.strerror or exc}") from exc
        print(f"wrote {len(saved)} results to {args.save_results}", file=sys.stderr)
    batch = {
        "batches": len(finals),
        "batch_ids": [str(final.get("batch_id", "")) for final in finals],
        "wall_seconds": wall,
        "reports_per_minute": 60 * len(cases) / wall if wall > 0 else 0.0,
    }
    return results, batch


def _with_report(ctx: Context, result: Result) -> tuple[Result, Mapping[str, Any]]:
    """``result`` with the usage and timestamps of its report view (``GET /reports/{id}``)."""
    if result.report_id is None:
        return result, {}
    report = ctx.client.get(result.report_id)
    return with_usage(result, report), report


@contextlib.contextmanager
def _fetch_progress(ctx: Context, total: int) -> Iterator[Any]:
    if not ctx.err.is_terminal:
        yield lambda: None
        return
    progress = Progress(
        TextColumn("reading usage", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=ctx.err,
        transient=True,
    )
    task = progress.add_task("usage", total=total)
    with progress:
        yield lambda: progress.advance(task)
