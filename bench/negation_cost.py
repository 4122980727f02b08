"""Cost of the negation/uncertainty detector (``medsum.logic.negation``) per call.

Times, on synthetic radiology sentences and reports written here (no data set needed):

- ``analyze()`` of one sentence (about 200 characters, and short ones);
- the assertion of one concept in a report seen for the first time (``ReportContext``: split + analyse
  its sentence) and of another concept through the same ``ReportContext`` (what every further item of
  one summary costs);
- the import of the module in a fresh interpreter (what a cold start pays; the phrase regex is compiled
  on first use, not at import).

Run: ``.venv/bin/python bench/negation_cost.py [--repeat 7] [--number 2000]``. Prints microseconds per
call (median over the repeats).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from medsum.logic import negation

FINDINGS = [
    "pneumothorax",
    "pleural effusion",
    "focal consolidation",
    "pulmonary edema",
    "cardiomegaly",
    "left lower lobe pneumonia",
    "right upper lobe nodule",
    "atelectasis",
    "hilar adenopathy",
    "rib fracture",
]
TEMPLATES = [
    "No {a}, {b} or {c} is identified, but there is mild {d} and a possible small {e} which may "
    "represent {f} versus early {g}.",
    "There is no evidence of {a} or {b}; the previously noted {c} has resolved and the {d} is stable, "
    "although {e} cannot be excluded on this single frontal view.",
    "Interval removal of the {a} without new {b}, {c}, or {d}, and the {e} seen on the prior CT is not "
    "seen on this radiograph.",
    "Stable mild {a} with no change in the {b}, likely chronic {c}; differential diagnosis includes {d} "
    "and {e}, which are less likely given the clinical history.",
]
SHORT = ["No {a}.", "Possible {a}.", "{a} has resolved.", "Mild {a}.", "{a} cannot be excluded."]


def fill(template: str, rng: random.Random) -> str:
    picks = rng.sample(FINDINGS, 7)
    text = template.format(**dict(zip("abcdefg", picks, strict=True)))
    return text[0].upper() + text[1:]


def per_call_us(call: Callable[[], object], number: int, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            call()
        runs.append((time.perf_counter() - started) / number * 1e6)
    return statistics.median(runs)


def report(rng: random.Random) -> str:
    lines = ["EXAMINATION: Chest, two views.", "", "INDICATION: Cough, rule out pneumonia.", "", "FINDINGS:"]
    lines += [fill(rng.choice(TEMPLATES + SHORT), rng) for _ in range(8)]
    lines += ["", "IMPRESSION:", "1. " + fill(rng.choice(SHORT), rng), "2. " + fill(rng.choice(SHORT), rng)]
    return "\n".join(lines)


def import_ms(repeat: int) -> float:
    probe = (
        "import time; t = time.perf_counter(); import medsum.logic.negation; print(time.perf_counter() - t)"
    )
    samples = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
        samples.append(float(out.stdout) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(7)

    long_sentences = [fill(t, rng) for t in TEMPLATES for _ in range(5)]
    short_sentences = [fill(t, rng) for t in SHORT for _ in range(5)]
    for label, sentences in (("long", long_sentences), ("short", short_sentences)):
        mean_len = statistics.mean(len(s) for s in sentences)
        pending = itertools.cycle(sentences)

        def one(it: Iterator[str] = pending) -> object:
            return negation.analyze(next(it))

        us = per_call_us(one, args.number, args.repeat)
        print(f"analyze  {label:5} sentences (mean {mean_len:5.0f} chars): {us:7.1f} us/call")

    reports = [report(rng) for _ in range(50)]
    mean_len = statistics.mean(len(r) for r in reports)
    concepts = [(r, r.index("pneumonia")) for r in reports]

    def cold() -> None:
        for text, start in concepts:
            negation.ReportContext(text).assertion(start, start + 9)

    us_cold = per_call_us(cold, max(1, args.number // 100), args.repeat) / len(concepts)
    print(f"assess   first concept of a report (mean {mean_len:5.0f} chars): {us_cold:7.1f} us/call")
    text, start = concepts[0]
    context = negation.ReportContext(text)
    context.assertion(start, start + 9)
    us_warm = per_call_us(lambda: context.assertion(start, start + 9), args.number, args.repeat)
    print(f"assess   another concept of the same report (one context):  {us_warm:7.1f} us/call")
    print(f"import   medsum.logic.negation in a fresh interpreter:        {import_ms(args.repeat):7.1f} ms")


if __name__ == "__main__":
    main()
