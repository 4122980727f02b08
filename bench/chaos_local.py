"""Chaos on the offline stack: a faulty model and killed workers; is every report finished, once?

Starts a local stack of its own (temporary state file, free ports, the template as it is), makes the
local Bedrock misbehave (``/_local/faults``: a share of calls failing with throttling and 5xx errors,
optionally a ``throttle_rps`` quota, a share of slow replies and a share of over-long ones), submits N
reports with distinct texts through the signed API (``POST /summarize``, the interactive lane), and
while they run kills worker sandboxes with SIGKILL in the middle of their work, every ``--kill-every``
seconds. It then waits until every report is COMPLETED or FAILED (or the deadline) and prints:

- reports submitted, COMPLETED, FAILED, **not terminal at the deadline (lost)**;
- **sandbox timeouts**: worker invocations the runtime ended at the function's Timeout
  (``platform.report`` records with ``status: timeout``, errorType ``Sandbox.Timedout``);
- kills, and the **time to recovery** after them (worst and median). For each report the killed sandbox
  was working on (claimed in the killed invocation, per the worker's ``report claimed`` log record
  carrying that invocation's ``function_request_id``, and still PROCESSING right after the kill), the
  time from the kill until the next ``report claimed`` record of that report from another invocation:
  the moment the work really resumes. Observed in the worker's own log lines, read from the sandboxes'
  output pipes as they are written (the report's ``attempts``/``updated_at`` in DynamoDB change at the
  same moment but would have to be polled). A report never claimed again counts as not recovered;
  records of the killed batch that had not been claimed yet are not counted (they are not held by a
  lease, only by the message's visibility);
- the settings in effect, read from the deployed stack: the worker's Timeout, every ``*Seconds``
  parameter the worker reads (``LeaseSeconds`` and friends), the work queues' VisibilityTimeout and
  maxReceiveCount;
- **model calls per COMPLETED report**: the local Bedrock's completed calls for the COMPLETED reports'
  digests ÷ COMPLETED, and how many of those replies were delivered vs abandoned by the client (its
  read timeout, or a killed sandbox; ``abandoned_by_digest``); **duplicates**: COMPLETED reports with
  more than one completed call (and with more than one delivered reply);
- wall time.

Targets (exit status 1 when one fails, so the run can gate): every report terminal (0 lost), 0 sandbox
timeouts, every killed report recovered within ``LeaseSeconds + 30 s`` (scaled), at most 1.05 completed
model calls per COMPLETED report.

``--scale F`` (quick runs) multiplies every time: the fault latencies, the kill interval, the deadline,
the recovery target's 30 s, and, through the local stack's template overrides, the worker's Timeout,
the VisibilityTimeout of its queues and every ``*Seconds`` Number parameter it reads (defaults and
Min/MaxValue), so their ratios stay as in the template (``BedrockReadTimeoutSeconds`` included: an
over-long reply, longer than the read timeout, stays over-long when both are scaled). Not scaled: the
worker's own fixed margins (``SAFETY_MARGIN_SECONDS`` 15 s for the final write, the Bedrock client's 5 s
connect timeout), so below ``--scale 0.2`` (the 300 s Timeout becomes 60 s, the 120 s read timeout 24 s:
one call needs 44 s) a scaled worker could not start a second call; the script refuses smaller scales.

Full size: ``.venv/bin/python bench/chaos_local.py`` (200 reports, 8 kills; 10-20 minutes, as recovery
waits for leases and visibility timeouts). Quick: ``bench/chaos_local.py --scale 0.2 --reports 40``.
Results go in BENCHMARKS.md. These are local-stack numbers (moto, local sandboxes, the extractive
model, a shared 2-core machine); they show the worker's failure handling, not AWS latencies.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKER = "WorkerFunction"
ERROR_CODES = ("ThrottlingException", "ServiceUnavailableException", "InternalServerException")
TERMINAL = ("COMPLETED", "FAILED")
RECOVERY_MARGIN_SECONDS = 30.0
MAX_CALLS_PER_COMPLETED = 1.05
#: Below this the worker's fixed margins eat its scaled Timeout (see the module docstring).
MIN_SCALE = 0.2


# --------------------------------------------------------------------------------------------------
# What the stack says: the worker's log records and the platform records
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerRecord:
    """One of the worker's log records about a report (ids only)."""

    at: float  # time.monotonic() when the line was read
    message: str
    report_id: str
    request_id: str


@dataclass
class Observations:
    """Everything the bench reads from the stack's output, thread-safe."""

    worker: list[WorkerRecord] = field(default_factory=list)
    platform: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_worker(self, record: WorkerRecord) -> None:
        with self.lock:
            self.worker.append(record)

    def add_platform(self, record: Mapping[str, Any]) -> None:
        with self.lock:
            self.platform.append({**record, "at": time.monotonic()})

    def worker_records(self) -> list[WorkerRecord]:
        with self.lock:
            return list(self.worker)

    def platform_records(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.platform)


def _quiet_console(observations: Observations) -> Any:
    """A console that prints nothing and keeps the worker's report records and the platform records."""
    from medsum_local.logs import Console

    class ChaosConsole(Console):
        def __init__(self) -> None:
            super().__init__("text")  # text: the sandboxes' output is captured (and handed to us)

        def write(self, line: str) -> None:
            pass

        def record(self, record: Mapping[str, Any]) -> None:
            observations.add_platform(record)

        def function_output(self, function: str) -> Callable[[str], None]:
            def receive(raw: str) -> None:
                if function != WORKER or not raw.startswith("{"):
                    return
                try:
                    record = json.loads(raw)
                except json.JSONDecodeError:
                    return
                report_id = record.get("report_id") if isinstance(record, dict) else None
                if isinstance(report_id, str):
                    observations.add_worker(
                        WorkerRecord(
                            at=time.monotonic(),
                            message=str(record.get("message", "")),
                            report_id=report_id,
                            request_id=str(record.get("function_request_id", "")),
                        )
                    )

            return receive

    return ChaosConsole()


# --------------------------------------------------------------------------------------------------
# Scaling the template's times (quick runs)
# --------------------------------------------------------------------------------------------------
def _scaled(value: float, scale: float) -> int:
    return max(1, round(value * scale))


def _referenced_parameters(node: Any) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"Ref"} and isinstance(node["Ref"], str):
            return {node["Ref"]}
        return {name for value in node.values() for name in _referenced_parameters(value)}
    if isinstance(node, list):
        return {name for value in node for name in _referenced_parameters(value)}
    return set()


def scaled_overrides(template: Mapping[str, Any], scale: float) -> tuple[dict[str, str], dict[str, str]]:
    """Parameter and template overrides that multiply the worker's times by ``scale``.

    Scaled: the worker's ``Timeout`` and its SQS queues' ``VisibilityTimeout`` (literals, or the
    parameters they reference), and every Number parameter whose name ends in ``Seconds`` that the
    worker's environment references (with its ``MinValue``/``MaxValue``).
    """
    parameters: dict[str, str] = {}
    settings: dict[str, str] = {}
    if scale == 1.0:
        return parameters, settings
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    resources: Mapping[str, Any] = template["Resources"]
    worker = resources[WORKER]["Properties"]
    to_scale: set[str] = set()

    def literal_or_parameter(path: str, value: Any) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            settings[path] = str(_scaled(value, scale))
        else:
            to_scale.update(_referenced_parameters(value))

    if "Timeout" in worker:
        literal_or_parameter(f"Resources.{WORKER}.Properties.Timeout", worker["Timeout"])
    for event in (worker.get("Events") or {}).values():
        if event.get("Type") != "SQS":
            continue
        queue = event["Properties"]["Queue"]
        queue_id = str(queue.get("Fn::GetAtt", [""])[0]) if isinstance(queue, dict) else ""
        properties = (resources.get(queue_id) or {}).get("Properties") or {}
        if "VisibilityTimeout" in properties:
            literal_or_parameter(
                f"Resources.{queue_id}.Properties.VisibilityTimeout", properties["VisibilityTimeout"]
            )
    environment = (worker.get("Environment") or {}).get("Variables") or {}
    to_scale.update(name for name in _referenced_parameters(environment) if name.endswith("Seconds"))
    for name in sorted(to_scale):
        spec = declared.get(name)
        if not isinstance(spec, dict) or spec.get("Type") != "Number" or "Default" not in spec:
            continue
        parameters[name] = str(_scaled(float(spec["Default"]), scale))
        if "MinValue" in spec:
            settings[f"Parameters.{name}.MinValue"] = str(max(0, math.floor(float(spec["MinValue"]) * scale)))
        if "MaxValue" in spec:
            settings[f"Parameters.{name}.MaxValue"] = str(math.ceil(float(spec["MaxValue"]) * scale))
    return parameters, settings


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kill:
    """One SIGKILL of a worker sandbox."""

    at: float
    pid: int
    request_id: str
    in_flight: tuple[str, ...]  # report ids the invocation held (claimed, still PROCESSING)


def _texts(count: int) -> list[str]:
    """Distinct synthetic reports (distinct digests): the examples, each with a numbered study line."""
    examples = [
        path.read_text(encoding="utf-8").strip() for path in sorted((ROOT / "examples").glob("*.txt"))
    ]
    return [f"{examples[n % len(examples)]}\nStudy reference: chaos-{n:05d}." for n in range(count)]


class ChaosRun:
    def __init__(self, stack: Any, args: argparse.Namespace, observations: Observations) -> None:
        from medsum_local.testing import ApiClient

        self.stack = stack
        self.info = stack.info
        self.args = args
        self.observations = observations
        self.api = ApiClient(self.info, identity="clinic-a", timeout=60)
        self.rng = random.Random(args.seed)
        self.ids: dict[str, str] = {}  # report id -> text
        self.status: dict[str, str] = {}
        self.error_codes: dict[str, str] = {}  # FAILED report id -> its error code
        self.kills: list[Kill] = []
        self.done = threading.Event()

    # -- model and settings ------------------------------------------------------------------------
    def admin(self, method: str, path: str, body: Any = None) -> Any:
        import requests

        response = requests.request(method, f"{self.info.bedrock_admin_url}/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def faults(self) -> dict[str, Any]:
        args, scale = self.args, self.args.scale
        faults: dict[str, Any] = {
            "error_rate": args.error_rate,
            "error_codes": args.error_codes,
            "slow_rate": args.slow_rate,
            "slow_latency_ms": _scaled(args.slow_ms, scale) if args.slow_rate else 0,
            "overlong_rate": args.overlong_rate,
            "overlong_latency_ms": _scaled(args.overlong_ms, scale) if args.overlong_rate else 0,
            "seed": args.seed,
        }
        if args.throttle_rps:
            faults["throttle_rps"] = args.throttle_rps
        return dict(self.admin("PUT", "faults", faults))

    def settings(self) -> dict[str, Any]:
        """The worker's time settings as deployed (not as written in the template)."""
        deployed = self.stack.deployed
        function = deployed.functions[WORKER]
        template = deployed.translated["Resources"][WORKER]["Properties"]
        variables = template.get("Environment", {}).get("Variables", {})
        seconds = {
            name: value
            for name, value in sorted(deployed.parameters.items())
            if name.endswith("Seconds") and name in _referenced_parameters(variables)
        }
        sqs = self.stack.emulator.client("sqs")
        queues = {}
        for source in deployed.event_sources:
            if source.function_logical_id != WORKER:
                continue
            poller = next(p for p in self.stack.pollers if p.source is source)
            attributes = sqs.get_queue_attributes(QueueUrl=poller.queue_url, AttributeNames=["All"])[
                "Attributes"
            ]
            redrive = json.loads(attributes.get("RedrivePolicy", "{}"))
            queues[source.logical_id] = {
                "visibility_timeout_s": int(attributes["VisibilityTimeout"]),
                "max_receive_count": int(redrive.get("maxReceiveCount", 0)) or None,
                "batch_size": source.batch_size,
                "max_concurrency": poller.concurrency,
                "dead_letter_queue_arn": redrive.get("deadLetterTargetArn"),
            }
        return {"worker_timeout_s": function.timeout_seconds, "parameters": seconds, "queues": queues}

    def dead_lettered(self, settings: Mapping[str, Any]) -> int:
        """Messages in the dead-letter queues of the worker's queues (a report there with no FAILED
        record is lost)."""
        sqs = self.stack.emulator.client("sqs")
        total = 0
        for queue in settings["queues"].values():
            arn = queue.get("dead_letter_queue_arn")
            if not arn:
                continue
            _, _, _, _, account, name = str(arn).split(":", 5)
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            total += sum(int(value) for value in attributes.values())
        return total

    # -- submitting and watching -------------------------------------------------------------------
    def submit(self) -> None:
        for n, text in enumerate(_texts(self.args.reports)):
            response = self.api.post(
                "/summarize", json={"patient_id": f"pt-chaos-{n % 17}", "report_text": text}
            )
            if response.status_code != 202:
                raise SystemExit(f"POST /summarize answered {response.status_code}: {response.text[:200]}")
            report_id = str(response.json()["report_id"])
            self.ids[report_id] = text
            self.status[report_id] = "PENDING"

    def refresh(self) -> int:
        """Poll the reports not terminal yet; return how many are still not terminal."""
        for report_id, status in list(self.status.items()):
            if status in TERMINAL:
                continue
            response = self.api.get(f"/reports/{report_id}")
            if response.status_code == 200:
                body = response.json()
                self.status[report_id] = str(body["status"])
                if body["status"] == "FAILED":
                    self.error_codes[report_id] = str((body.get("error") or {}).get("code"))
        return sum(1 for status in self.status.values() if status not in TERMINAL)

    # -- killing -----------------------------------------------------------------------------------
    def _working(self) -> dict[str, set[str]]:
        """Invocation request id -> report ids it claimed and has not finished with (per the logs)."""
        claimed: dict[str, set[str]] = {}
        for record in self.observations.worker_records():
            if record.message == "report claimed":
                claimed.setdefault(record.request_id, set()).add(record.report_id)
        return claimed

    def kill_one(self) -> Kill | None:
        """SIGKILL a busy worker sandbox that holds a claimed, unfinished report; None when none does."""
        claimed = self._working()
        busy = [
            s
            for s in self.stack.runtime.sandboxes(WORKER)
            if s["busy"]
            and s["pid"]
            and any(self.status.get(r) not in TERMINAL for r in claimed.get(s["request_id"], ()))
        ]
        if not busy:
            return None
        target = self.rng.choice(busy)
        now = next((s for s in self.stack.runtime.sandboxes(WORKER) if s["index"] == target["index"]), None)
        if now is None or now["pid"] != target["pid"] or now["request_id"] != target["request_id"]:
            return None  # it moved on in the meantime: try again
        os.kill(target["pid"], signal.SIGKILL)
        at = time.monotonic()
        # The runtime reports the failed invocation once the process is gone and its output is read.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
            r.get("requestId") == target["request_id"] for r in self.observations.platform_records()
        ):
            time.sleep(0.05)
        held = []
        last_claim: dict[str, str] = {}  # report id -> request id of its latest claim before the kill
        for record in self.observations.worker_records():
            if record.message == "report claimed" and record.at <= at:
                last_claim[record.report_id] = record.request_id
        for report_id in sorted(self._working().get(target["request_id"], ())):
            if last_claim.get(report_id) != target["request_id"]:
                continue  # released by the killed invocation and claimed by another one since
            response = self.api.get(f"/reports/{report_id}")
            if response.status_code == 200 and response.json()["status"] == "PROCESSING":
                held.append(report_id)
        return Kill(
            at=at, pid=int(target["pid"]), request_id=str(target["request_id"]), in_flight=tuple(held)
        )

    def killer(self, started: float) -> None:
        interval = self.args.kill_every * self.args.scale
        next_at = started + interval
        while len(self.kills) < self.args.kills and not self.done.is_set():
            if self.done.wait(max(0.0, next_at - time.monotonic())):
                return
            kill = self.kill_one()
            if kill is None:
                self.done.wait(0.2)  # nobody busy with a report right now
                continue
            self.kills.append(kill)
            next_at = kill.at + interval

    # -- results -----------------------------------------------------------------------------------
    def recoveries(self) -> list[float | None]:
        """Seconds from each kill to the next claim of each report it held (None: never claimed again)."""
        records = self.observations.worker_records()
        result: list[float | None] = []
        for kill in self.kills:
            for report_id in kill.in_flight:
                again = [
                    r.at
                    for r in records
                    if r.report_id == report_id
                    and r.message == "report claimed"
                    and r.request_id != kill.request_id
                    and r.at > kill.at
                ]
                result.append(min(again) - kill.at if again else None)
        return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    from medsum_local.bedrock import report_digest
    from medsum_local.stack import LocalStack
    from medsum_local.template import load_template
    from medsum_local.testing import isolated_config

    parameters, settings = scaled_overrides(load_template(ROOT / "template.yaml"), args.scale)
    state_dir = Path(tempfile.mkdtemp(prefix="medsum-bench-chaos-"))
    observations = Observations()
    config = isolated_config(ROOT, state_dir, parameter_overrides=parameters, template_overrides=settings)
    stack = LocalStack(
        config,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        console=_quiet_console(observations),
    )
    stack.start()
    try:
        chaos = ChaosRun(stack, args, observations)
        in_effect = chaos.settings()
        faults = chaos.faults()
        chaos.admin("POST", "reset")
        started = time.monotonic()
        killer = threading.Thread(target=chaos.killer, args=(started,), daemon=True)
        killer.start()
        chaos.submit()
        deadline = started + args.deadline * args.scale
        remaining = chaos.refresh()
        shown: tuple[int, int] | None = None
        while remaining and time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.5, 10 * args.scale)))
            remaining = chaos.refresh()
            if shown != (remaining, len(chaos.kills)):  # progress on stderr, when it changes
                shown = (remaining, len(chaos.kills))
                print(
                    f"  {time.monotonic() - started:6.0f} s: {remaining} not terminal, "
                    f"{len(chaos.kills)} kills",
                    file=sys.stderr,
                    flush=True,
                )
        wall = time.monotonic() - started
        chaos.done.set()
        killer.join(timeout=30)
        # Abandoned calls finish on the model's side later: wait for them, so they are counted.
        quiet_by = time.monotonic() + (args.overlong_ms * args.scale) / 1000 + 10
        while chaos.admin("GET", "stats")["in_flight"] and time.monotonic() < quiet_by:
            time.sleep(0.5)
        stats = chaos.admin("GET", "stats")
        dead_lettered = chaos.dead_lettered(in_effect)
    finally:
        stack.stop()

    completed = [r for r, s in chaos.status.items() if s == "COMPLETED"]
    failed = [r for r, s in chaos.status.items() if s == "FAILED"]
    lost = [r for r, s in chaos.status.items() if s not in TERMINAL]
    completed_calls = {
        r: int(stats["completed_by_digest"].get(report_digest(chaos.ids[r]), 0)) for r in completed
    }
    abandoned_calls = {
        r: int(stats["abandoned_by_digest"].get(report_digest(chaos.ids[r]), 0)) for r in completed
    }
    timeouts = [
        r
        for r in observations.platform_records()
        if r.get("function") == WORKER and r.get("status") == "timeout"
    ]
    exit_errors = [
        r
        for r in observations.platform_records()
        if r.get("function") == WORKER and r.get("errorType") == "Runtime.ExitError"
    ]
    recoveries = chaos.recoveries()
    measured = [r for r in recoveries if r is not None]
    lease = in_effect["parameters"].get("LeaseSeconds")
    recovery_target = (float(lease) if lease else 0.0) + RECOVERY_MARGIN_SECONDS * args.scale
    total_completed_calls = sum(completed_calls.values())
    total_abandoned = sum(abandoned_calls.values())
    per_completed = total_completed_calls / len(completed) if completed else math.inf
    worst = (
        max(measured) if len(measured) == len(recoveries) and measured else (math.inf if recoveries else None)
    )
    result: dict[str, Any] = {
        "command": " ".join(["bench/chaos_local.py", *sys.argv[1:]]),
        "scale": args.scale,
        "faults": faults,
        "settings": in_effect,
        "template_overrides": settings,
        "parameter_overrides": parameters,
        "reports": args.reports,
        "completed": len(completed),
        "failed": len(failed),
        "failed_codes": dict(Counter(chaos.error_codes.get(r, "?") for r in failed)),
        "lost": len(lost),
        "dead_lettered": dead_lettered,
        "sandbox_timeouts": len(timeouts),
        "kills": len(chaos.kills),
        "killed_invocations_failed": len(exit_errors),
        "reports_held_by_killed_sandboxes": len(recoveries),
        "not_recovered": sum(1 for r in recoveries if r is None),
        "recovery_worst_s": worst,
        "recovery_median_s": statistics.median(measured) if measured else None,
        "recovery_target_s": recovery_target,
        "model_calls_completed": total_completed_calls,
        "model_calls_delivered": total_completed_calls - total_abandoned,
        "model_calls_abandoned": total_abandoned,
        "calls_per_completed": per_completed,
        "delivered_per_completed": (total_completed_calls - total_abandoned) / len(completed)
        if completed
        else None,
        "duplicates": sum(1 for n in completed_calls.values() if n > 1),
        "duplicates_delivered": sum(1 for r, n in completed_calls.items() if n - abandoned_calls[r] > 1),
        "model_stats": {
            k: stats[k]
            for k in ("converse_calls", "errors", "errors_by_code", "slow_calls", "overlong_calls")
        },
        "wall_s": wall,
    }
    targets = {
        "all terminal (0 lost)": not lost,
        "0 sandbox timeouts": not timeouts,
        f"worst recovery <= lease + {RECOVERY_MARGIN_SECONDS * args.scale:g} s": worst is None
        or worst <= recovery_target,
        f"calls per COMPLETED <= {MAX_CALLS_PER_COMPLETED}": per_completed <= MAX_CALLS_PER_COMPLETED,
    }
    result["targets"] = targets
    return result


def markdown(result: Mapping[str, Any]) -> str:
    def seconds(value: float | None) -> str:
        if value is None:
            return "n/a"
        return "never" if math.isinf(value) else f"{value:.1f} s"

    settings = result["settings"]
    queues = "; ".join(
        f"{name}: visibility {q['visibility_timeout_s']} s, maxReceiveCount {q['max_receive_count']}, "
        f"batch {q['batch_size']}, concurrency {q['max_concurrency']}"
        for name, q in settings["queues"].items()
    )
    parameters = ", ".join(f"{k} {v}" for k, v in settings["parameters"].items())
    faults = result["faults"]
    fault_line = (
        f"error_rate {faults['error_rate']} ({', '.join(faults['error_codes']) or faults['error_code']}), "
        f"throttle_rps {faults['throttle_rps']}, "
        f"slow {faults['slow_rate']} at {faults['slow_latency_ms'] / 1000:g} s, "
        f"over-long {faults['overlong_rate']} at {faults['overlong_latency_ms'] / 1000:g} s, "
        f"seed {faults['seed']}"
    )
    stats = result["model_stats"]
    rows = [
        ("command", f"`{result['command']}`"),
        ("faults", fault_line),
        ("worker settings in effect", f"Timeout {settings['worker_timeout_s']} s; {parameters}; {queues}"),
        ("reports submitted", result["reports"]),
        (
            "COMPLETED / FAILED (codes)",
            f"{result['completed']} / {result['failed']} {result['failed_codes']}",
        ),
        ("not terminal at the deadline (lost)", result["lost"]),
        ("messages in the worker's dead-letter queues", result["dead_lettered"]),
        ("sandbox timeouts (Sandbox.Timedout)", result["sandbox_timeouts"]),
        (
            "kills (SIGKILL mid-work) / killed invocations failed",
            f"{result['kills']} / {result['killed_invocations_failed']}",
        ),
        (
            "reports held by killed sandboxes / never claimed again",
            f"{result['reports_held_by_killed_sandboxes']} / {result['not_recovered']}",
        ),
        (
            "time to recovery after a kill: worst / median (target)",
            f"{seconds(result['recovery_worst_s'])} / {seconds(result['recovery_median_s'])} "
            f"(≤ {result['recovery_target_s']:.0f} s)",
        ),
        (
            "model calls per COMPLETED report: completed (delivered + abandoned)",
            f"{result['calls_per_completed']:.3f} ({result['model_calls_delivered']} + "
            f"{result['model_calls_abandoned']} over {result['completed']})",
        ),
        (
            "duplicates: COMPLETED reports with > 1 completed call / > 1 delivered reply",
            f"{result['duplicates']} / {result['duplicates_delivered']}",
        ),
        (
            "model: calls / errors injected / slow / over-long",
            f"{stats['converse_calls']} / {stats['errors']} {stats['errors_by_code']} / "
            f"{stats['slow_calls']} / {stats['overlong_calls']}",
        ),
        ("wall time", f"{result['wall_s']:.0f} s"),
    ]
    lines = ["| measure | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    lines.append("")
    lines.extend(f"- {'PASS' if ok else 'FAIL'}: {name}" for name, ok in result["targets"].items())
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/chaos_local.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reports", type=int, default=200, help="reports to submit (default %(default)s)")
    parser.add_argument("--kills", type=int, default=8, help="worker sandboxes to kill (default %(default)s)")
    parser.add_argument(
        "--kill-every", type=float, default=30.0, help="seconds between kills, scaled (default %(default)s)"
    )
    parser.add_argument(
        "--error-rate", type=float, default=0.1, help="share of failing calls (default %(default)s)"
    )
    parser.add_argument(
        "--error-codes",
        type=lambda raw: [code.strip() for code in raw.split(",") if code.strip()],
        default=list(ERROR_CODES),
        help="what failing calls raise, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--throttle-rps", type=float, default=None, help="model quota in calls/s (default: none)"
    )
    parser.add_argument(
        "--slow-rate", type=float, default=0.1, help="share of slow replies (default %(default)s)"
    )
    parser.add_argument(
        "--slow-ms", type=int, default=45_000, help="latency of a slow reply, scaled (default %(default)s)"
    )
    parser.add_argument(
        "--overlong-rate", type=float, default=0.03, help="share of over-long replies (default %(default)s)"
    )
    parser.add_argument(
        "--overlong-ms",
        type=int,
        default=65_000,
        help=(
            "latency of an over-long reply, scaled (default %(default)s: the testers' 65 s, longer than "
            "the worker's old 60 s read timeout; 130000 outlasts BedrockReadTimeoutSeconds' 120 s)"
        ),
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every time by this (quick runs: 0.2)"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=3600.0,
        help="seconds to wait for every report, scaled (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the model's dice and of the kills")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of markdown")
    return parser


def _finite(value: Any) -> Any:
    """JSON has no infinity: an unrecovered worst case is written as "never"."""
    if isinstance(value, float) and math.isinf(value):
        return "never"
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not MIN_SCALE <= args.scale <= 1:
        raise SystemExit(f"--scale must be in [{MIN_SCALE}, 1] (the worker's fixed margins need the time)")
    result = run(args)
    if args.json:
        print(json.dumps(_finite(result), indent=2))
    else:
        print(markdown(result))
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
