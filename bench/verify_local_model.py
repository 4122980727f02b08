"""What the verifier costs per report, and what it drops from the local stand-in model's summaries.

For every report of the IU chest X-ray dev set (``../shared/data/iu-cxr/dev.jsonl`` beside the repo;
never copied in — when it is absent the script says so and exits 0), the stand-in model
(``medsum_local.clinical_model``) summarizes the full text, and the production verifier
(``medsum.logic.verify``, the same code the worker runs) checks its items. Reported:

- verifier time per report (mean, p50, p95, max), timed around the verification only;
- items checked / kept, dropped by reason, marked uncertain, summaries that contradict the report,
  reports that need review;
- with ``--show``, every dropped item with its reason and evidence sentence (on the terminal only: the
  data set's text never goes into the repository or BENCHMARKS.md).

Usage::

    .venv/bin/python bench/verify_local_model.py [--data PATH] [--show] [--findings-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from medsum.logic.negation import ReportContext
from medsum.logic.verify import ITEM_LISTS, Tally, check_item, summary_contradicts
from medsum.models import ModelSummary
from medsum_local.clinical_model import summarize_report

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "iu-cxr" / "dev.jsonl"


def _long_report_ms() -> float:
    """Stand-in summary + verification of one long, repetitive report (what the 5 MB upload test sends)."""
    text = ("FINDINGS: Lungs are clear. No effusion. Mild cardiomegaly. " * 1_700)[
        :99_980
    ] + "\nIMPRESSION: Normal."
    parsed = ModelSummary.model_validate(summarize_report(text))
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        report = ReportContext(text)
        tally = Tally()
        for name in ITEM_LISTS:
            for item in getattr(parsed, name):
                tally.add(name, check_item(item, report))
        summary_contradicts(parsed.summary, report)
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--show", action="store_true", help="print each dropped item (terminal only)")
    parser.add_argument("--findings-only", action="store_true", help="summarize the FINDINGS text only")
    args = parser.parse_args(argv)
    print(f"verifier on a synthetic 100,000-character report: {_long_report_ms():.1f} ms (median of 5)")
    if not args.data.exists():
        print(f"no data set at {args.data}: nothing more to measure")
        return 0

    timings: list[float] = []
    totals: Counter[str] = Counter()
    reasons: Counter[tuple[str, str]] = Counter()
    reports = 0
    for line in args.data.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        text = record.get("findings") if args.findings_only else record.get("full_text")
        if not text:
            continue
        reports += 1
        parsed = ModelSummary.model_validate(summarize_report(text))
        started = time.perf_counter()
        report = ReportContext(text)
        tally = Tally()
        verdicts = []
        for name in ITEM_LISTS:
            for item in getattr(parsed, name):
                verdict = check_item(item, report)
                tally.add(name, verdict)
                verdicts.append((name, item, verdict))
        verification = tally.verification(summary_contradicts(parsed.summary, report))
        timings.append((time.perf_counter() - started) * 1000)

        totals["items checked"] += verification.items_checked
        totals["items kept"] += verification.items_kept
        totals["dropped: ungrounded"] += verification.dropped.ungrounded
        totals["dropped: unsupported"] += verification.dropped.unsupported
        totals["dropped: negated"] += verification.dropped.negated
        totals["marked uncertain"] += verification.marked_uncertain
        totals["summary contradicts report"] += int(verification.summary_contradicts_report)
        totals["reports needing review"] += int(verification.needs_review)
        for name, item, verdict in verdicts:
            if verdict.outcome == "kept":
                continue
            reasons[(verdict.outcome, name)] += 1
            if args.show:
                quotes = " | ".join(item.evidence)
                print(f"[{verdict.outcome}] {name}: {item.text!r} <- {quotes!r}", file=sys.stderr)
        if args.show and verification.summary_contradicts_report:
            print(f"[summary contradicts] {parsed.summary!r}", file=sys.stderr)

    timings.sort()
    source = "FINDINGS only" if args.findings_only else "full text"
    print(f"reports: {reports} ({source}), data: {args.data.name}")
    p50, p95 = timings[len(timings) // 2], timings[int(len(timings) * 0.95)]
    print(
        f"verifier ms/report: mean {statistics.fmean(timings):.3f}  p50 {p50:.3f}  "
        f"p95 {p95:.3f}  max {timings[-1]:.3f}"
    )
    for key, value in totals.items():
        print(f"{key:>28}: {value}")
    for (outcome, name), count in sorted(reasons.items()):
        print(f"{'dropped ' + outcome + ' in ' + name:>28}: {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
