"""Cold import time of each Lambda function: a fresh interpreter imports ``functions/<name>/app.py``
(what a Lambda cold start pays before the first event), repeated, median and p90 reported.

Run: ``.venv/bin/python bench/cold_start.py [--runs 15]``; results go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import importlib.util, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print((time.perf_counter() - started) * 1000)
"""


def measure(function: str, runs: int) -> list[float]:
    env = {
        **os.environ,
        "POWERTOOLS_SERVICE_NAME": f"medsum-{function}",
        "POWERTOOLS_METRICS_NAMESPACE": "Medsum",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "0",
    }
    path = ROOT / "functions" / function / "app.py"
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(path)], check=True, capture_output=True, text=True, env=env
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print("| function | median import (ms) | p90 (ms) | runs |")
    print("|---|---|---|---|")
    for function in ("api", "worker", "ingest", "admin", "notifier"):
        samples = sorted(measure(function, args.runs + 1)[1:])  # first run warms the bytecode cache
        p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
        print(f"| {function} | {statistics.median(samples):.0f} | {p90:.0f} | {len(samples)} |")


if __name__ == "__main__":
    main()
