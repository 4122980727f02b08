"""Scoring: every metric of ``medsum eval`` (defined, with worked examples, in docs/eval.md).

:func:`evaluate` joins the references with the results by ``custom_id`` and returns one JSON-ready
report (a ``dict``): the clinical agreement and ROUGE-L of the model and of each baseline on the same
reports, the same for the reports whose reference has a finding, and the run's own numbers (coverage,
contract, evidence, verification, tokens, latency, cost). :func:`gate_metrics` flattens it into the names
that ``--fail-under`` / ``--fail-over`` take.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medsum.models import Summary
from pydantic import ValidationError

from medsum_cli.eval.baselines import BASELINES, baseline_texts
from medsum_cli.eval.inputs import Case, Result
from medsum_cli.eval.labeler import (
    CHEXPERT_5,
    OBSERVATIONS,
    PATHOLOGIES,
    Label,
    Labels,
    label_items,
    reassures,
)
from medsum_cli.eval.prices import PriceTable
from medsum_cli.eval.rouge import rouge_l

__all__ = [
    "COMPLETED",
    "EVAL_VERSION",
    "MODEL",
    "Pair",
    "Scored",
    "agreement",
    "evaluate",
    "gate_metrics",
    "percentile",
    "summary_labels",
]

EVAL_VERSION = 1
MODEL = "model"
COMPLETED = "COMPLETED"
#: The summary's item lists that state findings (labelled with the summary sentence).
FINDING_LISTS = ("key_findings", "diagnoses")


@dataclass(frozen=True)
class Scored:
    """One system's output on one report: its labels and the text ROUGE-L compares."""

    labels: Labels
    text: str


@dataclass(frozen=True)
class Pair:
    """One report as a system is scored on it: the reference and the system's output."""

    reference: Labels
    impression: str | None
    output: Scored


def summary_labels(summary: Mapping[str, Any]) -> Scored:
    """Label a summary: its ``summary`` sentence and its key findings and diagnoses.

    An item with ``certainty: "uncertain"`` states nothing as definite (see
    :func:`medsum_cli.eval.labeler.label_items`). ROUGE-L uses the ``summary`` sentence alone.
    """
    sentence = str(summary.get("summary") or "")
    texts: list[tuple[str, bool]] = [(sentence, False)]
    for name in FINDING_LISTS:
        for item in summary.get(name) or []:
            if isinstance(item, Mapping) and isinstance(item.get("text"), str):
                texts.append((item["text"], item.get("certainty") == "uncertain"))
    return Scored(labels=label_items(texts), text=sentence)


def _f1(tp: int, fp: int, fn: int) -> float | None:
    if tp + fp + fn == 0:
        return None
    return 2 * tp / (2 * tp + fp + fn)


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


def agreement(pairs: Sequence[Pair]) -> dict[str, Any]:
    """Clinical agreement and ROUGE-L of one system over reports (ROUGE-L: those with an impression).

    Returns
    -------
    dict
        ``micro_f1``, ``macro_f1`` (14 observations, positive = label 1), ``micro_f1_findings`` (the 13
        without No Finding), ``micro_f1_5`` (CheXpert's five),
        ``micro_precision``, ``micro_recall``, ``no_finding_accuracy``, ``false_reassurance`` (share of
        reports whose reference has a positive pathology where the output states no finding),
        ``uncertain_as_definite`` (share of reference-uncertain observations the output states positive),
        ``contradiction_rate`` (share of reports where the output states positive an observation the
        reference negates), with their counts, and ``per_observation``.
    """
    counts = {name: [0, 0, 0] for name in OBSERVATIONS}
    no_finding_right = reassured = abnormal = uncertain = uncertain_definite = contradicted = 0
    for pair in pairs:
        reference, output = pair.reference, pair.output
        for name in OBSERVATIONS:
            truth, said = reference.positive(name), output.labels.positive(name)
            counts[name][0] += truth and said
            counts[name][1] += said and not truth
            counts[name][2] += truth and not said
        no_finding_right += reference.no_finding == output.labels.no_finding
        if any(reference.positive(name) for name in PATHOLOGIES):
            abnormal += 1
            reassured += output.labels.no_finding
        for name in (*PATHOLOGIES, "Support Devices"):
            if reference[name] == Label.UNCERTAIN:
                uncertain += 1
                uncertain_definite += output.labels.positive(name)
        contradicted += any(
            reference[name] == Label.NEGATIVE and output.labels.positive(name)
            for name in (*PATHOLOGIES, "Support Devices")
        )
    per_observation = {
        name: {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "reference_positive": tp + fn,
            "f1": _f1(tp, fp, fn),
        }
        for name, (tp, fp, fn) in counts.items()
    }

    def micro(names: Iterable[str]) -> tuple[float | None, float | None, float | None]:
        tp = sum(counts[name][0] for name in names)
        fp = sum(counts[name][1] for name in names)
        fn = sum(counts[name][2] for name in names)
        return _f1(tp, fp, fn), (tp / (tp + fp) if tp + fp else None), (tp / (tp + fn) if tp + fn else None)

    micro_f1, precision, recall = micro(OBSERVATIONS)
    scored = [entry["f1"] for entry in per_observation.values() if entry["f1"] is not None]
    reports = len(pairs)
    rouges = [rouge_l(pair.output.text, pair.impression).f1 for pair in pairs if pair.impression]
    return {
        "reports": reports,
        "micro_f1": micro_f1,
        "macro_f1": statistics.fmean(scored) if scored else None,
        "micro_f1_findings": micro((*PATHOLOGIES, "Support Devices"))[0],
        "micro_f1_5": micro(CHEXPERT_5)[0],
        "micro_precision": precision,
        "micro_recall": recall,
        "no_finding_accuracy": _rate(no_finding_right, reports),
        "false_reassurance": _rate(reassured, abnormal),
        "false_reassurance_reports": reassured,
        "reference_abnormal_reports": abnormal,
        "uncertain_as_definite": _rate(uncertain_definite, uncertain),
        "uncertain_as_definite_count": uncertain_definite,
        "reference_uncertain": uncertain,
        "contradiction_rate": _rate(contradicted, reports),
        "contradiction_reports": contradicted,
        "rouge_l": statistics.fmean(rouges) if rouges else None,
        "rouge_l_reports": len(rouges),
        "per_observation": per_observation,
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values``, linear between closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _valid_summary(summary: Mapping[str, Any]) -> bool:
    try:
        Summary.model_validate(summary)
    except ValidationError:
        return False
    return True


def _items(summary: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """Every item of every list of the summary (key findings, diagnoses, medications, follow-up ...)."""
    for value in summary.values():
        if isinstance(value, list):
            yield from (item for item in value if isinstance(item, Mapping) and "evidence" in item)


def _evidence(completed: Sequence[tuple[Case, Mapping[str, Any]]]) -> dict[str, Any]:
    items = grounded = spans = outside = 0
    for case, summary in completed:
        size = len(case.report_text)
        for item in _items(summary):
            items += 1
            evidence = [span for span in item.get("evidence") or [] if isinstance(span, Mapping)]
            inside = [
                isinstance(span.get("start"), int)
                and isinstance(span.get("end"), int)
                and 0 <= span["start"] < span["end"] <= size
                for span in evidence
            ]
            spans += len(inside)
            outside += inside.count(False)
            grounded += bool(inside) and all(inside)
    return {
        "evidence_grounded": _rate(grounded, items),
        "items": items,
        "items_grounded": grounded,
        "spans": spans,
        "spans_outside_text": outside,
    }


_VERIFICATION_COUNTS = ("items_checked", "items_kept", "marked_uncertain", "quotes_not_found")
_DROPPED = ("ungrounded", "unsupported", "negated")


def _verification(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = dict.fromkeys(_VERIFICATION_COUNTS, 0)
    totals.update({f"dropped_{reason}": 0 for reason in _DROPPED})
    with_record = needs_review = contradicts = 0
    for summary in summaries:
        record = summary.get("verification")
        if not isinstance(record, Mapping):
            continue
        with_record += 1
        for name in _VERIFICATION_COUNTS:
            value = record.get(name)
            totals[name] += value if isinstance(value, int) else 0
        raw_dropped = record.get("dropped")
        dropped: Mapping[str, Any] = raw_dropped if isinstance(raw_dropped, Mapping) else {}
        for reason in _DROPPED:
            value = dropped.get(reason)
            totals[f"dropped_{reason}"] += value if isinstance(value, int) else 0
        needs_review += bool(record.get("needs_review"))
        contradicts += bool(record.get("summary_contradicts_report"))
    return {
        "summaries_with_record": with_record,
        **totals,
        "summary_contradicts_report": contradicts,
        "needs_review": needs_review,
        "needs_review_rate": _rate(needs_review, with_record),
    }


def _reassurance_despite_findings(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Summaries whose ``summary`` sentence reassures (:func:`medsum_cli.eval.labeler.reassures`) although
    their own key findings or diagnoses state a pathology: the sentence a clinician reads first
    contradicts the items below it. Reference-free (the summary against itself)."""
    with_findings = reassuring = 0
    for summary in summaries:
        items = [
            (item["text"], item.get("certainty") == "uncertain")
            for name in FINDING_LISTS
            for item in summary.get(name) or []
            if isinstance(item, Mapping) and isinstance(item.get("text"), str)
        ]
        if not items or not any(label_items(items).positive(name) for name in PATHOLOGIES):
            continue
        with_findings += 1
        reassuring += reassures(str(summary.get("summary") or ""))
    return {
        "reports_with_findings": with_findings,
        "reassuring": reassuring,
        "rate": _rate(reassuring, with_findings),
    }


def _usage(completed: Sequence[Result], prices: PriceTable) -> tuple[dict[str, Any], dict[str, Any]]:
    with_usage = [result.usage for result in completed if result.usage is not None]
    names = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens")

    def column(name: str) -> list[float]:
        return [
            float(usage.get(name) or 0) if isinstance(usage.get(name) or 0, int | float) else 0.0
            for usage in with_usage
        ]

    tokens: dict[str, Any] = {"reports_with_usage": len(with_usage)}
    for name in names:
        values = column(name)
        tokens[f"{name}_mean"] = statistics.fmean(values) if values else None
        tokens[f"{name}_total"] = int(sum(values))
    by_model: dict[str, dict[str, Any]] = {}
    unpriced: set[str] = set()
    for usage in with_usage:
        model_id = str(usage.get("model_id") or "unknown")
        entry = by_model.setdefault(model_id, {"reports": 0, "cost": 0.0, "priced": True})
        entry["reports"] += 1
        price = prices.price(model_id)
        if price is None:
            entry["priced"] = False
            unpriced.add(model_id)
        else:
            entry["cost"] += price.cost(usage)
    priced_total = sum(entry["cost"] for entry in by_model.values())
    cost: dict[str, Any] = {
        "currency": prices.currency,
        "price_table": prices.source,
        "per_1k_reports": 1000 * priced_total / len(with_usage) if with_usage and not unpriced else None,
        "by_model": {
            model_id: {
                "reports": entry["reports"],
                "per_1k_reports": 1000 * entry["cost"] / entry["reports"] if entry["priced"] else None,
            }
            for model_id, entry in sorted(by_model.items())
        },
        "unpriced_models": sorted(unpriced),
    }
    return tokens, cost


def _latency(completed: Sequence[Result]) -> dict[str, Any]:
    values = [result.latency_seconds for result in completed if result.latency_seconds is not None]
    return {
        "reports": len(values),
        "p50_seconds": percentile(values, 50),
        "p90_seconds": percentile(values, 90),
        "p99_seconds": percentile(values, 99),
        "max_seconds": max(values) if values else None,
    }


def evaluate(
    cases: Sequence[Case],
    results: Mapping[str, Result],
    prices: PriceTable,
    *,
    unmatched_without_id: int = 0,
) -> dict[str, Any]:
    """Score ``results`` against ``cases``: the whole report of ``medsum eval``.

    Only reports with a COMPLETED result are scored (``coverage`` says how many); the baselines are
    scored on exactly those reports.

    Parameters
    ----------
    cases
        The references.
    results
        Results by ``custom_id``.
    prices
        The price table.
    unmatched_without_id
        Result lines without a ``custom_id`` (counted as unmatched).

    Returns
    -------
    dict
        ``run`` (counts, coverage, contract, evidence, verification, tokens, latency, cost), ``systems``
        (``model`` and each baseline: :func:`agreement`), and ``subsets.reference_abnormal`` (the same on
        the reports whose reference has a finding, i.e. No Finding is not 1).
    """
    by_id = {case.custom_id: case for case in cases}
    completed: list[tuple[Case, Result, Mapping[str, Any]]] = []
    status_counts: dict[str, int] = {}
    missing = 0
    for case in cases:
        result = results.get(case.custom_id)
        if result is None:
            missing += 1
            continue
        status_counts[result.status] = status_counts.get(result.status, 0) + 1
        if result.status == COMPLETED and result.summary is not None:
            completed.append((case, result, result.summary))
    unmatched = sum(1 for custom_id in results if custom_id not in by_id) + unmatched_without_id
    valid = [(case, result, summary) for case, result, summary in completed if _valid_summary(summary)]

    systems: dict[str, list[Pair]] = {MODEL: [], **{name: [] for name in BASELINES}}
    abnormal: dict[str, list[Pair]] = {name: [] for name in systems}
    for case, _result, summary in completed:
        outputs = {MODEL: summary_labels(summary)}
        for name, text in baseline_texts(case.findings).items():
            outputs[name] = Scored(labels=label_items([(text, False)]), text=text)
        for name, output in outputs.items():
            pair = Pair(reference=case.labels, impression=case.impression, output=output)
            systems[name].append(pair)
            if not case.labels.no_finding:
                abnormal[name].append(pair)

    tokens, cost = _usage([result for _, result, _ in completed], prices)
    run = {
        "references": len(cases),
        "results_matched": len(cases) - missing,
        "results_missing": missing,
        "results_unmatched": unmatched,
        "status_counts": dict(sorted(status_counts.items())),
        "completed": len(completed),
        "coverage": _rate(len(completed), len(cases)),
        "contract_valid": _rate(len(valid), len(completed)),
        **_evidence([(case, summary) for case, _result, summary in valid]),
        "verification": _verification([summary for _, _, summary in completed]),
        "reassurance_despite_findings": _reassurance_despite_findings(
            [summary for _, _, summary in completed]
        ),
        "tokens": tokens,
        "latency": _latency([result for _, result, _ in completed]),
        "cost": cost,
    }
    return {
        "eval_version": EVAL_VERSION,
        "run": run,
        "systems": {name: agreement(pairs) for name, pairs in systems.items()},
        "subsets": {
            "reference_abnormal": {
                "reports": len(abnormal[MODEL]),
                "systems": {name: agreement(pairs) for name, pairs in abnormal.items()},
            }
        },
    }


#: Gate names taken from ``run`` (and its sections) -> path in the report.
_RUN_GATES: dict[str, tuple[str, ...]] = {
    "coverage": ("coverage",),
    "contract_valid": ("contract_valid",),
    "evidence_grounded": ("evidence_grounded",),
    "needs_review_rate": ("verification", "needs_review_rate"),
    "reassurance_despite_findings": ("reassurance_despite_findings", "rate"),
    "cost_per_1k": ("cost", "per_1k_reports"),
    "latency_p50_seconds": ("latency", "p50_seconds"),
    "latency_p90_seconds": ("latency", "p90_seconds"),
    "latency_p99_seconds": ("latency", "p99_seconds"),
    "input_tokens_mean": ("tokens", "input_tokens_mean"),
    "output_tokens_mean": ("tokens", "output_tokens_mean"),
}
#: The model's agreement metrics a gate can name (``abnormal.`` + name: on the abnormal subset).
AGREEMENT_GATES = (
    "micro_f1",
    "macro_f1",
    "micro_f1_findings",
    "micro_f1_5",
    "micro_precision",
    "micro_recall",
    "no_finding_accuracy",
    "false_reassurance",
    "uncertain_as_definite",
    "contradiction_rate",
    "rouge_l",
)


def gate_metrics(report: Mapping[str, Any]) -> dict[str, float | None]:
    """The metrics ``--fail-under`` / ``--fail-over`` can name, with their values (None: not measured).

    Run metrics by name (``coverage``, ``cost_per_1k`` ...), the model's agreement metrics by name
    (``micro_f1`` ...) and on the abnormal subset as ``abnormal.<name>``.
    """
    values: dict[str, float | None] = {}
    for name, path in _RUN_GATES.items():
        node: Any = report["run"]
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        values[name] = node
    for name in AGREEMENT_GATES:
        values[name] = report["systems"][MODEL][name]
        values[f"abnormal.{name}"] = report["subsets"]["reference_abnormal"]["systems"][MODEL][name]
    return values
