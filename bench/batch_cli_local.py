"""``medsum batch submit FILE --wait`` on the offline stack, the way a user runs it, for big files.

Starts a local stack of its own (free ports, fast retries), writes a JSON Lines file of N synthetic
reports, runs the CLI (``batch submit --wait``: the CLI picks inline or upload by size), then
``batch results -o``, and checks that every item completed and every ``custom_id`` has one result line.
Prints one table row per run: path taken, submit-to-completed wall time, throughput, result lines.

These are local-stack numbers (moto, local Lambda sandboxes, the extractive model on this machine), for
spotting regressions in our own code paths, not AWS throughput.

Run: ``.venv/bin/python bench/batch_cli_local.py [ITEMS ...]`` (default: 1000 1500); results go in
BENCHMARKS.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST_RETRIES = {
    "RequeueBaseDelaySeconds": "1",
    "BedrockRetryBudgetSeconds": "2",
    "BedrockMaxAttempts": "2",
    "LeaseSeconds": "121",
}


def run(project: Path, items: int) -> str:
    from medsum_local.testing import run_cli

    text = (ROOT / "examples" / "chest-xray-normal.txt").read_text(encoding="utf-8")
    source = project / f"batch-{items}.jsonl"
    custom_ids = [f"bench-{items}-{n:05d}" for n in range(items)]
    source.write_text(
        "".join(
            json.dumps({"custom_id": cid, "patient_id": f"pt-{n % 97}", "report_text": text}) + "\n"
            for n, cid in enumerate(custom_ids)
        ),
        encoding="utf-8",
    )
    started = time.monotonic()
    submitted = run_cli(project, "batch", "submit", str(source), "--wait", "--timeout", "3000", timeout=3100)
    elapsed = time.monotonic() - started
    if submitted.returncode != 0:
        raise SystemExit(f"batch submit failed ({submitted.returncode}): {submitted.stderr[-2000:]}")
    [batch_id] = submitted.stdout.split()
    path = "upload" if f"uploaded batch {batch_id}" in submitted.stderr else "inline"
    out = project / f"results-{items}.jsonl"
    fetched = run_cli(project, "batch", "results", batch_id, "-o", str(out), timeout=300)
    if fetched.returncode != 0:
        raise SystemExit(f"batch results failed: {fetched.stderr[-2000:]}")
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    if sorted(r["custom_id"] for r in results) != custom_ids or {r["status"] for r in results} != {
        "COMPLETED"
    }:
        raise SystemExit("results do not join on every custom_id with every item COMPLETED")
    return (
        f"| {items:,} | {path} | {elapsed:.0f} s | {items / elapsed:.1f} | {len(results):,} (all COMPLETED) |"
    )


def main() -> None:
    from medsum_local.stack import LocalStack
    from medsum_local.testing import isolated_config

    sizes = [int(a) for a in sys.argv[1:]] or [1_000, 1_500]
    project = Path(tempfile.mkdtemp(prefix="medsum-bench-batch-"))
    stack = LocalStack(isolated_config(ROOT, project, parameter_overrides=FAST_RETRIES))
    stack.start()
    try:
        print("| items | path | submit → completed | items/s | result lines |")
        print("|---:|---|---:|---:|---|")
        for items in sizes:
            print(run(project, items), flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
