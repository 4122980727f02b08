"""End-to-end numbers on the offline stack: start-up time, POST /summarize latency (signed HTTP through
the gateway, api sandbox, emulator) and submit-to-COMPLETED time for a burst of reports.

These measure the local stack on this machine (moto, local sandboxes, the extractive model), not AWS;
they are for spotting regressions in our own code paths.

Run: ``.venv/bin/python bench/e2e_local.py [--reports 100]``; results go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    from medsum_local.stack import LocalStack
    from medsum_local.testing import ApiClient, isolated_config, wait_for

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=100)
    args = parser.parse_args()
    text = (ROOT / "examples" / "discharge-summary-chf.txt").read_text(encoding="utf-8")
    state_dir = Path(tempfile.mkdtemp(prefix="medsum-bench-"))
    config = isolated_config(ROOT, state_dir)
    started = time.monotonic()
    with LocalStack(config) as info:
        ready = time.monotonic() - started
        api = ApiClient(info, identity="clinic-a")
        latencies: list[float] = []
        ids: list[str] = []
        burst_start = time.monotonic()
        for i in range(args.reports):
            t0 = time.perf_counter()
            response = api.post("/summarize", json={"patient_id": f"bench-{i % 10}", "report_text": text})
            latencies.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 202, response.text
            ids.append(response.json()["report_id"])
        submitted = time.monotonic() - burst_start
        done: dict[str, float] = {}

        def all_done() -> bool:
            for report_id in ids:
                if report_id in done:
                    continue
                status = api.get(f"/reports/{report_id}").json()["status"]
                if status in ("COMPLETED", "FAILED"):
                    done[report_id] = time.monotonic() - burst_start
            return len(done) == len(ids)

        wait_for(all_done, timeout=600, interval=0.5, message="all reports to finish")
        total = max(done.values())
    print(f"| local stack ready (LocalStack.start) | {ready:.1f} s |")
    print(
        f"| POST /summarize p50 / p95 ({args.reports} sequential) | "
        f"{statistics.median(latencies):.0f} / {percentile(latencies, 0.95):.0f} ms |"
    )
    print(f"| submit burst of {args.reports} | {submitted:.1f} s |")
    print(
        f"| all {args.reports} COMPLETED after burst start | {total:.1f} s "
        f"({args.reports / total:.1f} reports/s) |"
    )


if __name__ == "__main__":
    main()
