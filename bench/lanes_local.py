"""Fair lanes on the offline stack: does a big batch hold up anyone else?

Starts a local stack of its own (free ports, the template's defaults: WorkerMaxConcurrency 5,
BulkMaxConcurrency 5, BulkWindowPerBatch 10), then measures, through the signed HTTP API:

1. **Idle**: clinic-b's single-report latency (submit → COMPLETED, polled every 0.1 s; median of 5) and
   the time a 20-item batch of clinic-b takes to complete on an otherwise idle stack.
2. **Under bulk load**: clinic-a submits a 1,000-item batch; right after, clinic-b submits the 20-item
   batch and a single report every 3 s. Reported: clinic-b's single-report latency ÷ idle (goal ≤ 3),
   the 20-item batch's completion time ÷ idle (goal ≤ 3), and both batches' item rates while both run
   (goal: within a factor of 1.5 of each other). The big batch is then cancelled.
3. **Under a model quota**: the local Bedrock admits Q calls/s (``/_local/faults`` ``throttle_rps``).
   First a 300-item batch alone; then the same batch while clinic-b submits a single report every 3 s.
   Reported: the batch's goodput ÷ Q (goal ≥ 0.9; with single reports, also the total including their
   calls), its FAILED items (goal 0) and the single reports' latency ÷ idle.

These are local-stack numbers (moto, local Lambda sandboxes, the extractive model, 2 cores): they show
the lanes' behaviour, not AWS latency.

Run: ``.venv/bin/python bench/lanes_local.py [--big 1000] [--small 20] [--quota 3] [--quota-items 300]``
(about 8 minutes); results go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "examples" / "chest-xray-normal.txt").read_text(encoding="utf-8")
POLL = 0.1


def _items(prefix: str, count: int) -> str:
    return "\n".join(
        json.dumps({"custom_id": f"{prefix}-{n:05d}", "patient_id": f"pt-{n % 97}", "report_text": TEXT})
        for n in range(count)
    )


@dataclass
class Timeline:
    """Completed-item counts of one batch over time: (seconds since start, completed)."""

    points: list[tuple[float, int]] = field(default_factory=list)

    def rate(self, start: float, end: float) -> float:
        inside = [(t, c) for t, c in self.points if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] == inside[0][0]:
            return 0.0
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


class Bench:
    def __init__(self, info: Any) -> None:
        from medsum_local.testing import ApiClient

        self._api = ApiClient
        self.info = info
        self.t0 = time.monotonic()

    def _client(self, identity: str) -> Any:
        """A client of its own per call site (``requests`` sessions are not shared across threads)."""
        return self._api(self.info, identity=identity, timeout=60)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def single(self, identity: str = "clinic-b") -> float:
        """Submit one report and wait for it: seconds from submit to COMPLETED."""
        api = self._client(identity)
        started = time.monotonic()
        response = api.post("/summarize", json={"patient_id": "pt-lane", "report_text": TEXT})
        response.raise_for_status()
        report_id = response.json()["report_id"]
        while True:
            status = api.get(f"/reports/{report_id}").json()["status"]
            if status in ("COMPLETED", "FAILED"):
                if status != "COMPLETED":
                    raise SystemExit(f"single report {report_id} ended {status}")
                return time.monotonic() - started
            time.sleep(POLL)

    def submit_batch(self, identity: str, prefix: str, count: int) -> str:
        api = self._client(identity)
        response = api.post(
            "/batches", data=_items(prefix, count), headers={"Content-Type": "application/x-ndjson"}
        )
        response.raise_for_status()
        return str(response.json()["batch_id"])

    def batch(self, identity: str, batch_id: str) -> dict[str, Any]:
        return dict(self._client(identity).get(f"/batches/{batch_id}").json())

    def watch(
        self, identity: str, batch_id: str, timeline: Timeline, stop: threading.Event, interval: float = 0.5
    ) -> dict[str, Any]:
        """Poll a batch until it is terminal (or ``stop``), recording its completed count."""
        api = self._client(identity)
        while True:
            batch = api.get(f"/batches/{batch_id}").json()
            timeline.points.append((self.now(), int(batch["request_counts"]["completed"])))
            if batch["status"] in ("completed", "failed", "cancelled") or stop.is_set():
                return dict(batch)
            time.sleep(interval)

    def faults(self, **settings: Any) -> None:
        requests.put(f"{self.info.bedrock_admin_url}/faults", json=settings, timeout=10).raise_for_status()
        requests.post(f"{self.info.bedrock_admin_url}/reset", timeout=10).raise_for_status()

    def cancel_and_settle(self, identity: str, batch_id: str) -> None:
        self._client(identity).post(f"/batches/{batch_id}/cancel").raise_for_status()
        while self.batch(identity, batch_id)["status"] not in ("completed", "cancelled", "failed"):
            time.sleep(1)


def _in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(target()), daemon=True)
    thread.start()
    return thread, result


def _singles_every(bench: Bench, seconds: float, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        out.append(bench.single())
        stop.wait(max(0.0, seconds - (time.monotonic() - started)))


def run(bench: Bench, big: int, small: int, quota: float, quota_items: int) -> list[str]:
    rows: list[str] = []
    # 1. Idle
    bench.single()  # warm the sandboxes
    idle = statistics.median(bench.single() for _ in range(5))
    started = time.monotonic()
    warm_id = bench.submit_batch("clinic-b", "idle", small)
    bench.watch("clinic-b", warm_id, Timeline(), threading.Event(), interval=0.2)
    small_idle = time.monotonic() - started
    rows.append(f"idle: single report {idle:.2f} s (median of 5); {small}-item batch {small_idle:.1f} s")

    # 2. Under bulk load
    big_line, small_line, stop = Timeline(), Timeline(), threading.Event()
    big_id = bench.submit_batch("clinic-a", "big", big)
    big_thread, _ = _in_thread(lambda: bench.watch("clinic-a", big_id, big_line, stop))
    singles: list[float] = []
    singles_thread = threading.Thread(target=_singles_every, args=(bench, 3.0, stop, singles), daemon=True)
    small_started = time.monotonic()
    small_t0 = bench.now()
    small_id = bench.submit_batch("clinic-b", "small", small)
    singles_thread.start()
    small_batch = bench.watch("clinic-b", small_id, small_line, threading.Event(), interval=0.2)
    small_loaded = time.monotonic() - small_started
    small_t1 = bench.now()
    stop.wait(9.0)  # a few more single reports while the big batch keeps running
    stop.set()
    singles_thread.join()
    big_thread.join()
    big_rate = big_line.rate(small_t0, small_t1)
    small_rate = small_line.rate(small_t0, small_t1)
    big_now = bench.batch("clinic-a", big_id)["request_counts"]
    p50 = statistics.median(singles)
    rows.append(
        f"under a {big}-item batch: single report p50 {p50:.2f} s, max {max(singles):.2f} s over "
        f"{len(singles)} reports → p50/idle {p50 / idle:.2f}, max/idle {max(singles) / idle:.2f} (goal ≤ 3)"
    )
    ratio = max(big_rate, small_rate) / max(min(big_rate, small_rate), 1e-9)
    rows.append(
        f"{small}-item batch: {small_loaded:.1f} s ({small_batch['status']}) → ÷ idle "
        f"{small_loaded / small_idle:.2f} (goal ≤ 3); item rates while both ran: big {big_rate:.2f}/s, "
        f"small {small_rate:.2f}/s → ratio {ratio:.2f} (goal ≤ 1.5); big batch had "
        f"{big_now['completed']} of {big} done when the small one finished"
    )
    bench.cancel_and_settle("clinic-a", big_id)

    # 3. Under a model quota: the batch alone, then with single reports every 3 s
    bench.faults(throttle_rps=quota)
    started = time.monotonic()
    alone_id = bench.submit_batch("clinic-a", "alone", quota_items)
    alone = bench.watch("clinic-a", alone_id, Timeline(), threading.Event(), interval=0.5)
    alone_elapsed = time.monotonic() - started
    rows.append(
        f"quota {quota:g} calls/s, batch alone: {quota_items} items in {alone_elapsed:.1f} s → goodput "
        f"{alone['request_counts']['completed'] / alone_elapsed / quota:.2f} Q (goal ≥ 0.9); "
        f"FAILED {alone['request_counts']['failed']}"
    )
    bench.faults(throttle_rps=quota)
    stop, quota_singles = threading.Event(), list[float]()
    started = time.monotonic()
    quota_id = bench.submit_batch("clinic-a", "quota", quota_items)
    singles_thread = threading.Thread(
        target=_singles_every, args=(bench, 3.0, stop, quota_singles), daemon=True
    )
    singles_thread.start()
    final = bench.watch("clinic-a", quota_id, Timeline(), threading.Event(), interval=0.5)
    elapsed = time.monotonic() - started
    stop.set()
    singles_thread.join()
    stats = requests.get(f"{bench.info.bedrock_admin_url}/stats", timeout=10).json()
    throttled = stats["errors_by_code"].get("ThrottlingException", 0)
    bench.faults()
    counts = final["request_counts"]
    goodput = counts["completed"] / elapsed
    total_goodput = (counts["completed"] + len(quota_singles)) / elapsed
    rows.append(
        f"quota {quota:g} calls/s: {quota_items}-item batch {elapsed:.1f} s → goodput {goodput:.2f}/s = "
        f"{goodput / quota:.2f} Q (with the single reports' calls {total_goodput / quota:.2f} Q); "
        f"FAILED {counts['failed']} (goal 0); "
        f"single reports p50 {statistics.median(quota_singles):.2f} s, max {max(quota_singles):.2f} s "
        f"→ p50/idle {statistics.median(quota_singles) / idle:.2f}; "
        f"throttled calls {throttled} of {stats['converse_calls']}"
    )
    return rows


def main() -> None:
    from medsum_local.stack import LocalStack
    from medsum_local.testing import isolated_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=1000)
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--quota", type=float, default=3.0)
    parser.add_argument("--quota-items", type=int, default=300)
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="medsum-bench-lanes-"))
    stack = LocalStack(isolated_config(ROOT, project))
    stack.start()
    try:
        assert stack.info is not None
        for row in run(Bench(stack.info), args.big, args.small, args.quota, args.quota_items):
            print(row, flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
