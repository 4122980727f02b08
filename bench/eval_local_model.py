"""Evaluate the local clinical model (``medsum_local.clinical_model``) on the IU chest X-ray dev set.

The data set lives outside the repository (``../shared/data/iu-cxr/dev.jsonl`` relative to the repo
root; licence CC BY-NC-ND, never copied in). When it is absent the script says so and exits 0.

Metrics, over all reports and over the abnormal subset (``mesh != "normal"``):

- **contract valid**: the output validates against the worker's ``ModelSummary`` model.
- **evidence exact**: evidence quotes that are exact substrings of the report (must be 100 %).
- **negated-term leak**: reports where a term that the report only ever mentions negated
  ("No pneumothorax.", "without ... effusion") shows up in ``key_findings`` (should be ~0). The
  negation check here is a deliberately simple, independent regex, not the model's own.
- **findings / report**: mean number of key findings.
- **has >= 1 finding**: share of reports with at least one key finding (a recall proxy on the
  abnormal subset).
- **impression recall**: mean share of the impression's content words found in the summary, and the
  share of reports where it is >= 0.5.
- **impression reflected**: a negative impression ("No acute cardiopulmonary disease.") is
  reflected when the summary states no acute abnormality; any other impression when its content
  recall is >= 0.5.

Usage::

    .venv/bin/python bench/eval_local_model.py [--data PATH] [--show-leaks]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from medsum.models import ModelSummary
from medsum_local.clinical_model import ModelOutput, summarize_report
from pydantic import ValidationError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "iu-cxr" / "dev.jsonl"

# Terms a chest X-ray report commonly negates; a leak is one of these in key_findings when the
# report never mentions it un-negated.
TERMS = {
    "pneumothorax": r"pneumothora\w*",
    "effusion": r"effusions?",
    "consolidation": r"consolidat\w*",
    "edema": r"edema",
    "pneumonia": r"pneumonia",
    "infiltrate": r"infiltrat\w*",
    "nodule": r"nodul\w*",
    "mass": r"mass(?:es)?",
    "fracture": r"fractur\w*",
    "cardiomegaly": r"cardiomegal\w*",
    "atelectasis": r"atelecta\w*",
    "opacity": r"opacit\w*",
}
NEGATION_CUE = re.compile(
    r"\b(?:no|not|without|negative\s+for|free\s+of|clear\s+of|absence\s+of|resolution\s+of)\b", re.I
)
CONTRAST = re.compile(r"\b(?:but|however|although|though|whereas)\b", re.I)
SENTENCE = re.compile(r"[^.!?]+")
NEGATIVE_IMPRESSION = re.compile(
    r"^\s*(?:\d[.)]\s*)?(?:(?:there\s+is\s+)?no\b|negative\b|normal\b|unremarkable\b|clear\s+lungs?\b|"
    r"stable\s+(?:appearance|chest|exam)|(?:\w+\s+)?chest\s+radiograph\b|chest\b\W*$)",
    re.I,
)
WORD = re.compile(r"[a-z][a-z'-]*")
STOPWORDS = frozenset(
    {
        *("a", "an", "the", "is", "are", "was", "were", "be", "been", "of", "in", "on", "at", "to", "for"),
        *("with", "and", "or", "there", "this", "that", "these", "those", "it", "its", "as", "by", "from"),
        *("no", "not", "without", "may", "could", "also", "seen", "noted", "again", "which", "evidence"),
    }
)


@dataclass
class Tally:
    """Running totals for one subset of reports."""

    reports: int = 0
    valid: int = 0
    quotes: int = 0
    exact_quotes: int = 0
    leaks: int = 0
    findings: list[int] = field(default_factory=list)
    recalls: list[float] = field(default_factory=list)
    reflected: int = 0
    seconds: list[float] = field(default_factory=list)


def content_words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOPWORDS and set(w) != {"x"} and len(w) > 2}


def only_negated(term: str, text: str) -> bool:
    """True when ``text`` mentions ``term`` and every mention is after a negation cue in its sentence."""
    pattern = re.compile(rf"\b{term}\b", re.I)
    mentions = 0
    for sentence in SENTENCE.findall(text):
        for match in pattern.finditer(sentence):
            mentions += 1
            before = sentence[: match.start()]
            cues = list(NEGATION_CUE.finditer(before))
            if not cues or CONTRAST.search(before, cues[-1].end()):
                return False
    return mentions > 0


def leaked_terms(row: dict[str, str], output: ModelOutput) -> list[str]:
    source = f"{row['findings']} {row['impression']}"
    finding_text = " ".join(
        [item["text"] for item in output["key_findings"]]
        + [quote for item in output["key_findings"] for quote in item["evidence"]]
    )
    return [
        name
        for name, term in TERMS.items()
        if only_negated(term, source) and re.search(rf"\b{term}\b", finding_text, re.I)
    ]


def impression_recall(impression: str, summary: str) -> float:
    words = content_words(impression)
    if not words:
        return 1.0
    return len(words & content_words(summary)) / len(words)


def is_negative_impression(impression: str) -> bool:
    sentences = [
        s for s in re.split(r"(?<=[.!?])\s+|\s(?=\d[.)]\s)", impression) if re.search(r"[a-z]", s, re.I)
    ]
    return bool(sentences) and all(NEGATIVE_IMPRESSION.search(sentence) for sentence in sentences)


def evaluate(rows: Iterable[dict[str, str]], show_leaks: bool) -> dict[str, Tally]:
    tallies = {"all": Tally(), "abnormal": Tally(), "normal": Tally()}
    for row in rows:
        text = row["full_text"]
        started = time.perf_counter()
        output = summarize_report(text)
        elapsed = time.perf_counter() - started
        try:
            ModelSummary.model_validate(output)
            valid = True
        except ValidationError:
            valid = False
        lists = (output["key_findings"], output["diagnoses"], output["medications"], output["follow_up"])
        quotes = [quote for items in lists for item in items for quote in item["evidence"]]
        leaks = leaked_terms(row, output)
        if leaks and show_leaks:
            print(f"leak {row['id']}: {leaks}", file=sys.stderr)
        recall = impression_recall(row["impression"], output["summary"])
        if is_negative_impression(row["impression"]):
            reflected = "no acute abnormality" in output["summary"].lower()
        else:
            reflected = recall >= 0.5
        subset = "normal" if row.get("mesh") == "normal" else "abnormal"
        for tally in (tallies["all"], tallies[subset]):
            tally.reports += 1
            tally.valid += valid
            tally.quotes += len(quotes)
            tally.exact_quotes += sum(quote in text for quote in quotes)
            tally.leaks += bool(leaks)
            tally.findings.append(len(output["key_findings"]))
            tally.recalls.append(recall)
            tally.reflected += reflected
            tally.seconds.append(elapsed)
    return tallies


def pct(numerator: float, denominator: float) -> str:
    return f"{100 * numerator / denominator:.1f} %" if denominator else "n/a"


def table(tallies: dict[str, Tally]) -> str:
    columns = [(f"{name} (n={tally.reports})", tally) for name, tally in tallies.items()]
    rows: list[tuple[str, list[str]]] = [
        ("contract valid (ModelSummary)", [pct(t.valid, t.reports) for _, t in columns]),
        ("evidence quotes exact substrings", [pct(t.exact_quotes, t.quotes) for _, t in columns]),
        ("evidence quotes checked", [str(t.quotes) for _, t in columns]),
        ("negated term in key_findings (reports)", [pct(t.leaks, t.reports) for _, t in columns]),
        ("mean key findings / report", [f"{statistics.fmean(t.findings):.2f}" for _, t in columns]),
        (
            "reports with >= 1 key finding",
            [pct(sum(n > 0 for n in t.findings), t.reports) for _, t in columns],
        ),
        (
            "mean impression word recall in summary",
            [f"{statistics.fmean(t.recalls):.2f}" for _, t in columns],
        ),
        (
            "impression word recall >= 0.5",
            [pct(sum(r >= 0.5 for r in t.recalls), t.reports) for _, t in columns],
        ),
        ("impression reflected in summary", [pct(t.reflected, t.reports) for _, t in columns]),
        ("mean time / report (ms)", [f"{1000 * statistics.fmean(t.seconds):.2f}" for _, t in columns]),
    ]
    lines = ["| metric | " + " | ".join(name for name, _ in columns) + " |"]
    lines.append("|---|" + "---:|" * len(columns))
    lines.extend(f"| {label} | " + " | ".join(values) + " |" for label, values in rows)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSONL file (default: %(default)s)")
    parser.add_argument("--show-leaks", action="store_true", help="list report ids with a negated-term leak")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: data absent ({args.data})")
        return 0
    with args.data.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    tallies = evaluate(rows, args.show_leaks)
    print(f"Local clinical model on {args.data.name}: {len(rows)} reports\n")
    print(table(tallies))
    exact = tallies["all"].exact_quotes == tallies["all"].quotes
    return 0 if exact and tallies["all"].valid == tallies["all"].reports else 1


if __name__ == "__main__":
    raise SystemExit(main())
