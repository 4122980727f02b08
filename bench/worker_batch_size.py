"""One record per invocation, or five in a row? The interactive lane's ``BatchSize`` on the offline stack.

The worker handles a batch's records one after another. This bench starts a local stack of its own for
each batch size (a copy of template.yaml whose ``Work`` event has that ``BatchSize``, and a 1 s batching
window for sizes above 1, as the template had), makes every model call take ``--latency`` seconds (the
local Bedrock's ``latency_ms`` fault), and submits ``--burst`` single reports at once through the signed
API (back to back, within about a second), ``--rounds`` times. Reported per batch size: each report's
submit → COMPLETED time (median, p90, max). ``WorkerMaxConcurrency`` (the model calls in flight)
is the template's default in both runs, so the comparison is the same model capacity used two ways.

These are local-stack numbers (moto, local Lambda sandboxes, the extractive model, 2 cores): they show
queueing inside a sandbox, not AWS latency.

Run: ``.venv/bin/python bench/worker_batch_size.py [--burst 10] [--latency 5] [--rounds 2]``
(about 3 minutes); results go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import requests
from medsum_local.logs import Console
from medsum_local.stack import LocalStack
from medsum_local.testing import ApiClient, isolated_config

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "examples" / "chest-xray-normal.txt").read_text(encoding="utf-8")
POLL = 0.1


def template_with_batch_size(size: int) -> Path:
    """A copy of template.yaml whose interactive event source takes ``size`` records per invocation,
    beside the original (code paths are relative to it; the local deploy keeps them inside its folder)."""
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    work = re.search(r"\n        Work:\n(?:.*\n)*?            BatchSize: 1\n", text)
    if work is None:
        raise SystemExit("template.yaml: the Work event's BatchSize was not found")
    window = "            MaximumBatchingWindowInSeconds: 1\n" if size > 1 else ""
    replaced = work.group(0).replace("BatchSize: 1\n", f"BatchSize: {size}\n{window}")
    path = ROOT / f".bench-template-batch{size}.yaml"
    path.write_text(text.replace(work.group(0), replaced), encoding="utf-8")
    return path


def burst_latencies(api: ApiClient, count: int) -> list[float]:
    """Submit ``count`` reports back to back, then poll them all: each one's submit → COMPLETED seconds."""
    submitted: dict[str, float] = {}
    for _ in range(count):
        response = api.post("/summarize", json={"patient_id": "pt-bench", "report_text": TEXT})
        response.raise_for_status()
        submitted[response.json()["report_id"]] = time.monotonic()
    done: dict[str, float] = {}
    while len(done) < count:
        for report_id in submitted.keys() - done.keys():
            status = api.get(f"/reports/{report_id}").json()["status"]
            if status == "FAILED":
                raise SystemExit(f"report {report_id} FAILED")
            if status == "COMPLETED":
                done[report_id] = time.monotonic() - submitted[report_id]
        time.sleep(POLL)
    return list(done.values())


def measure(size: int, burst: int, latency: float, rounds: int) -> list[float]:
    project = Path(tempfile.mkdtemp(prefix=f"medsum-bench-batch{size}-"))
    template = template_with_batch_size(size)
    config = isolated_config(ROOT, project, template=template)
    quiet = (project / "stack.log").open("w", encoding="utf-8")  # the stack's logs, not the table
    # "text" makes the stack capture the sandboxes' output too (with "json" they write to stdout)
    stack = LocalStack(config, log=lambda line: None, console=Console("text", stream=quiet))
    try:
        stack.start()
    finally:
        template.unlink()
    latencies: list[float] = []
    try:
        info = stack.info
        assert info is not None
        api = ApiClient(info, identity="clinic-a", timeout=60)
        burst_latencies(api, 1)  # warm the api and a worker sandbox; not counted
        faults = {"latency_ms": int(latency * 1000)}
        requests.put(f"{info.bedrock_admin_url}/faults", json=faults, timeout=10).raise_for_status()
        for _ in range(rounds):
            latencies.extend(burst_latencies(api, burst))
    finally:
        stack.stop()
        quiet.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", type=int, default=10, help="reports submitted at once")
    parser.add_argument("--latency", type=float, default=5.0, help="seconds each model call takes")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"{args.burst} reports at once, {args.rounds} rounds, every model call {args.latency:g} s")
    print("| BatchSize | median (s) | p90 (s) | max (s) |")
    print("|---|---|---|---|")
    for size in (5, 1):
        samples = sorted(measure(size, args.burst, args.latency, args.rounds))
        p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
        print(
            f"| {size} | {statistics.median(samples):.1f} | {p90:.1f} | {samples[-1]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
