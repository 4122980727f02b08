"""Cold start of each Lambda function, side by side with the cost of boto3 itself.

Every sample is a fresh interpreter started with the environment ``template.yaml`` gives the function on
AWS (its variables resolved with the parameters' defaults, or ``--parameter`` overrides, plus what the
Lambda runtime sets: region, dummy credentials, ``LAMBDA_TASK_ROOT``; ``_X_AMZN_TRACE_ID``-free as at init)
and ``sys.path`` = the function's directory, then the layer (``shared/``), as on Lambda. It measures:

- **baseline**: ``import boto3; boto3.client("dynamodb", region_name=...)``, the least any of these
  functions could cost;
- **(1) import**: ``import app`` (what Lambda's init phase runs);
- **(2) import + first event**: (1), then what the first event pays before its first network call: the
  settings validated and the dependencies (adapters, boto3 clients) built by the function's own factory,
  the HTTP resolver for the configured CORS origin, and the validation of the event's own input model.
  No network call is made (no AWS, no credentials: the clients are built, never called).

Tracing is what the template deploys: ``Tracing`` of the function (``Active`` or ``Disabled``) and
``POWERTOOLS_TRACE_DISABLED`` decide whether Powertools' Tracer (and the X-Ray SDK) is live, exactly as
on Lambda (``LAMBDA_TASK_ROOT`` is set, so the SDK takes its Lambda code path).

Samples are interleaved (each round runs every target once, in a shuffled order) so that the baseline and
the functions see the same machine load; the first round only warms the bytecode caches and is dropped.
Wall-clock medians and p90, and the ratio of medians to the baseline's median, both wall-clock and CPU
time (``time.process_time``: imports are single-threaded and CPU-bound, so this ratio barely moves with
the neighbours' load), are printed as a markdown table.

``--floor`` adds, for each function, its **floor**: a probe that imports and sets up only the libraries
the function uses (Powertools Logger, Metrics, the Tracer as ``medsum.observability`` makes it, the REST
resolver with validation or the SQS batch processor, pydantic, boto3) and, for (2), makes the same boto3
clients. No medsum code runs in it: the function's distance to its floor is medsum's own cost.

Run: ``.venv/bin/python bench/cold_start.py [--runs 15] [--floor] [--parameter FunctionTracing=Disabled]``;
results go in BENCHMARKS.md ("Cold start").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))

from medsum_local.template import load_template  # noqa: E402 - the local package, not installed here

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "medsum"
FUNCTIONS = {
    "api": "ApiFunction",
    "worker": "WorkerFunction",
    "ingest": "IngestFunction",
    "admin": "AdminFunction",
    "notifier": "NotifierFunction",
}

_REPORT_ID = "01JABCDEFGHJKMNPQRSTVWXYZ0"
# What the SQS records of the probes hold besides their body (as Lambda's event source mapping builds them).
_RECORD = {
    "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
    "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
    "attributes": {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1764504000000",
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": "1764504000001",
    },
    "messageAttributes": {},
    "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
    "eventSource": "aws:sqs",
    "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-WorkQueue-1A2B3C4D5E6F",
    "awsRegion": REGION,
}
_EVENT = {
    "type": "report.completed",
    "id": "evt_r-1_completed",
    "timestamp": "2026-11-30T12:00:00Z",
    "data": {
        "report_id": "r-1",
        "status": "COMPLETED",
        "links": {"self": "https://x.example/v1/reports/r-1"},
    },
}
_NOTIFICATION = {
    "Type": "Notification",
    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
    "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-ReportEventsTopic-1A2B3C4D5E6F",
    "Message": json.dumps(_EVENT),
    "Timestamp": "2026-11-30T12:00:00.000Z",
    "SignatureVersion": "1",
    "Signature": "EXAMPLE==",
    "SigningCertURL": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-0000.pem",
    "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe",
    "MessageAttributes": {
        "owner": {"Type": "String", "Value": f"arn:aws:iam::{ACCOUNT}:user/clinic-a"},
        "type": {"Type": "String", "Value": "report.completed"},
        "status": {"Type": "String", "Value": "COMPLETED"},
    },
}
# What the first event of each function does before its first network call: its own (private) factories,
# the HTTP resolver for the configured origin, its input model, and the boto3 clients it calls (clients
# are made on first use). Keep these in step with functions/<name>/app.py.
_FIRST_EVENT = {
    # POST /summarize: the report is stored (DynamoDB) and queued (SQS)
    "api": (
        "deps = app._default_deps()\n"
        "app._resolver(deps.cors_allow_origin)\n"
        "from medsum.models import SummarizeRequest\n"
        "SummarizeRequest.model_validate({'patient_id': 'p-1', 'report_type': 'radiology',"
        " 'report_text': 'No acute cardiopulmonary process.'})\n"
    ),
    # GET /admin/dlq: the dead-letter queues (SQS) joined with the reports (DynamoDB)
    "admin": "deps = app._default_deps()\napp._resolver(deps.cors_allow_origin)\n",
    # one work message: the report (DynamoDB), the model (Bedrock), the event (SNS)
    "worker": (
        "app._default_deps()\n"
        "from medsum.records.work import WorkRecord\n"
        f"WorkRecord.model_validate({dict(_RECORD, body=json.dumps({'report_id': _REPORT_ID}))!r})\n"
    ),
    # the plan step: the upload (S3) and the batch (DynamoDB)
    "ingest": (
        "app._default_deps()\n"
        "from medsum.logic.ingest import parse_step\n"
        f"parse_step({ {'step': 'plan', 'bucket': 'uploads', 'key': f'uploads/o/{_REPORT_ID}.jsonl'}!r})\n"
    ),
    # one event (as SNS delivers it to the notifier's queue): the owner's webhooks (DynamoDB), their
    # secrets (KMS)
    "notifier": (
        "app._default_deps()\n"
        "from medsum.records.notifications import NotifierRecord\n"
        f"NotifierRecord.model_validate({dict(_RECORD, body=json.dumps(_NOTIFICATION))!r})\n"
    ),
}
_FIRST_CALLS = {
    "api": ("dynamodb", "sqs"),
    "admin": ("sqs", "dynamodb"),
    "worker": ("dynamodb", "bedrock-runtime", "sns"),
    "ingest": ("s3", "dynamodb"),
    "notifier": ("dynamodb", "kms"),
}


# The floor: what each function's *libraries* cost with no medsum code at all, set up as
# medsum.observability and the function's module set them up (Logger, Metrics, the Tracer patching
# botocore when tracing is on; the REST resolver with validation; the SQS batch processor; the
# idempotency layer). Its (2) adds the same boto3 clients as the function's first event. The distance
# between a function and its floor is what medsum's own code costs; the floor's distance to the baseline
# is the price of the libraries the brief chose (Powertools, pydantic, the X-Ray SDK).
_FLOOR_COMMON = (
    "import gc\ngc.disable()\n"  # as every function's module does; it ends with gc.freeze(); gc.enable()
    "import boto3\n"
    # pydantic loads its model machinery when the first model class is made, not on import
    "from pydantic import BaseModel, ConfigDict, Field\n"
    "class Probe(BaseModel):\n    model_config = ConfigDict(frozen=True, defer_build=True)\n"
    "    name: str = Field(min_length=1)\n"
    "from aws_lambda_powertools import Logger, Metrics\n"
    "Logger(); Metrics()\n"
)
_FLOOR_TRACER = "from aws_lambda_powertools import Tracer\nTracer(patch_modules=('botocore',))\n"
_FLOOR_REST = (
    "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
    "APIGatewayRestResolver(enable_validation=True)\n"
)
_FLOOR_BATCH = (
    "from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType\n"
    "BatchProcessor(event_type=EventType.SQS)\n"
)
_FLOOR = {
    "api": _FLOOR_REST + "from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer\n",
    "admin": _FLOOR_REST,
    "worker": _FLOOR_BATCH,
    "ingest": "",
    "notifier": _FLOOR_BATCH + "import urllib3\n",
}


def floor(name: str, tracing: str) -> tuple[str, str]:
    """The floor probe's import code and first-event code for function ``name``."""
    imports = (
        _FLOOR_COMMON
        + (_FLOOR_TRACER if tracing == "on" else "")
        + _FLOOR[name]
        + "gc.freeze()\ngc.enable()\n"
    )
    services = ", ".join(repr(service) for service in _FIRST_CALLS[name])
    clients = (
        f"session = boto3.session.Session()\nfor service in ({services},):\n    session.client(service)\n"
    )
    return imports, clients


def first_event(name: str) -> str:
    """The code the probe runs after ``import app`` (``app`` is the module)."""
    services = ", ".join(repr(service) for service in _FIRST_CALLS[name])
    return (
        _FIRST_EVENT[name]
        + "from medsum.adapters.clients import client\n"
        + f"for service in ({services},):\n    client(service).meta\n"
    )


_PROBE = """
import importlib, json, os, sys, time
started, cpu_started = time.perf_counter(), time.process_time()
if sys.argv[1] == "baseline":
    import boto3
    boto3.client("dynamodb", region_name=os.environ["AWS_REGION"])
    imported = first = time.perf_counter()
    cpu_imported = cpu_first = time.process_time()
elif sys.argv[1] == "floor":
    scope = {}
    exec(sys.argv[3], scope)
    imported, cpu_imported = time.perf_counter(), time.process_time()
    exec(sys.argv[2], scope)
    first, cpu_first = time.perf_counter(), time.process_time()
else:
    app = importlib.import_module("app")
    imported, cpu_imported = time.perf_counter(), time.process_time()
    exec(sys.argv[2], {"app": app})
    first, cpu_first = time.perf_counter(), time.process_time()
print("@@" + json.dumps({
    "import": (imported - started) * 1e3,
    "first": (first - started) * 1e3,
    "import_cpu": (cpu_imported - cpu_started) * 1e3,
    "first_cpu": (cpu_first - cpu_started) * 1e3,
}))
"""

# --------------------------------------------------------------------------------------------------
# The template's environment, resolved with plausible physical ids (no stack is deployed)
# --------------------------------------------------------------------------------------------------
_PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": STACK,
    "AWS::Partition": "aws",
}


class _Resolver:
    """Resolve the intrinsic functions of environment values: Ref, GetAtt, Sub, Join, If (and the
    conditions they name), Select, Split."""

    def __init__(self, template: Mapping[str, Any], overrides: Mapping[str, str]) -> None:
        self.template = template
        self.parameters = {
            name: overrides.get(name, spec.get("Default", ""))
            for name, spec in template.get("Parameters", {}).items()
        }
        unknown = set(overrides) - set(self.parameters)
        if unknown:
            raise SystemExit(f"unknown template parameters: {sorted(unknown)}")

    def physical_id(self, logical_id: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        name = f"{STACK}-{logical_id}-1A2B3C4D5E6F"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
        if kind == "AWS::KMS::Key":
            return "1234abcd-12ab-34cd-56ef-1234567890ab"
        if kind == "AWS::Serverless::Api":
            return "a1b2c3d4e5"
        return name.lower() if kind == "AWS::S3::Bucket" else name

    def arn(self, logical_id: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        service = kind.split("::")[1].lower()
        physical = self.physical_id(logical_id).rsplit("/", 1)[-1]
        resource = f"key/{physical}" if service == "kms" else f"table/{physical}"
        if service != "kms" and service != "dynamodb":
            resource = physical
        return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"

    def ref(self, name: str) -> Any:
        if name in _PSEUDO:
            return _PSEUDO[name]
        if name in self.parameters:
            spec = self.template["Parameters"][name]
            value = self.parameters[name]
            return value.split(",") if spec.get("Type") == "CommaDelimitedList" else value
        return self.physical_id(name)

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {key: self.resolve(value) for key, value in node.items()}
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::GetAtt":
            logical_id, attribute = arg
            if attribute != "Arn":
                raise SystemExit(f"cannot resolve GetAtt {logical_id}.{attribute}")
            return self.arn(logical_id)
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            values = {key: self.resolve(value) for key, value in variables.items()}

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in values:
                    return str(values[name])
                if "." in name:
                    return str(self.resolve({"Fn::GetAtt": name.split(".", 1)}))
                return str(self.ref(name))

            return re.sub(r"\$\{([^!}][^}]*)\}", substitute, text)
        if fn == "Fn::Join":
            separator, items = arg
            return separator.join(str(item) for item in self.resolve(items))
        if fn == "Fn::If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.condition(name) else when_false)
        if fn == "Fn::Equals":
            left, right = self.resolve(arg)
            return str(left) == str(right)
        if fn == "Fn::Not":
            return not self.resolve(arg[0])
        if fn == "Fn::And":
            return all(self.resolve(item) for item in arg)
        if fn == "Fn::Or":
            return any(self.resolve(item) for item in arg)
        if fn == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(index)]
        if fn == "Fn::Split":
            separator, text = arg
            return str(self.resolve(text)).split(separator)
        return {fn: self.resolve(arg)}


@dataclass(frozen=True)
class Target:
    name: str
    env: dict[str, str]
    tracing: str  # "on" or "off", as the function would run on Lambda
    first_event: str = ""
    kind: str = "function"  # "baseline", "function" or "floor"
    floor_imports: str = ""


def _lambda_env(resolver: _Resolver, name: str, logical_id: str | None) -> tuple[dict[str, str], str]:
    """The function's environment on Lambda, and whether Powertools tracing is live there."""
    template = resolver.template
    function_globals = template.get("Globals", {}).get("Function", {})
    properties = template["Resources"][logical_id]["Properties"] if logical_id else {}
    variables = {
        **function_globals.get("Environment", {}).get("Variables", {}),
        **properties.get("Environment", {}).get("Variables", {}),
    }
    env = {key: str(resolver.resolve(value)) for key, value in variables.items()}
    tracing_mode = str(resolver.resolve(properties.get("Tracing", function_globals.get("Tracing", ""))))
    task_root = ROOT / "functions" / name if logical_id else ROOT
    env.update(
        {
            # What Lambda's runtime sets (credentials are dummies: nothing is ever called).
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "ASIAXXXXXXXXXXXXXXXX",
            "AWS_SECRET_ACCESS_KEY": "cold-start-bench-not-a-secret",
            "AWS_SESSION_TOKEN": "cold-start-bench",
            "AWS_LAMBDA_FUNCTION_NAME": f"{STACK}-{logical_id or 'baseline'}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # Never read this machine's AWS configuration, never ask an instance metadata service.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            # The function's code, then the layer (shared/), as on Lambda.
            "PYTHONPATH": os.pathsep.join([str(task_root), str(ROOT / "shared")]) if logical_id else "",
        }
    )
    if tracing_mode == "Active":
        env.update(
            {"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000", "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR"}
        )
    disabled = env.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in {"1", "true", "yes", "on"}
    return env, "on" if tracing_mode == "Active" and not disabled else "off"


def targets(overrides: Mapping[str, str], names: list[str], *, with_floor: bool = False) -> list[Target]:
    resolver = _Resolver(load_template(ROOT / "template.yaml"), overrides)
    env, _ = _lambda_env(resolver, "baseline", None)
    found = [Target("baseline", env, "-", kind="baseline")]
    for name in names:
        env, tracing = _lambda_env(resolver, name, FUNCTIONS[name])
        found.append(Target(name, env, tracing, first_event(name)))
        if with_floor:
            imports, clients = floor(name, tracing)
            found.append(Target(f"{name} floor", env, tracing, clients, kind="floor", floor_imports=imports))
    return found


# --------------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------------
def sample(target: Target, scratch: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, target.kind, target.first_event, target.floor_imports],
        check=False,
        capture_output=True,
        text=True,
        env=target.env,
        cwd=scratch,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("@@")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{target.name}: probe failed ({out.returncode}):\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(lines[-1][2:])
    return result


def _p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.9 * len(ordered) + 0.5) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="samples per target (after one warm-up round)")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter override, as `sam deploy --parameter-overrides` would set it",
    )
    parser.add_argument("--functions", nargs="+", choices=list(FUNCTIONS), default=list(FUNCTIONS))
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure each function's floor: its libraries alone, set up as the function sets them up",
    )
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.parameter)
    chosen = targets(overrides, args.functions, with_floor=args.floor)
    rng = random.Random(args.seed)
    samples: dict[str, list[dict[str, float]]] = {target.name: [] for target in chosen}
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        for round_no in range(args.runs + 1):
            order = list(chosen)
            rng.shuffle(order)
            for target in order:
                result = sample(target, Path(scratch))
                if round_no:  # round 0 compiles and caches the bytecode
                    samples[target.name].append(result)
            print(f"round {round_no}/{args.runs}", file=sys.stderr, flush=True)

    def median(name: str, key: str) -> float:
        return statistics.median(s[key] for s in samples[name])

    base, base_cpu = median("baseline", "import"), median("baseline", "import_cpu")
    base_p90 = _p90([s["import"] for s in samples["baseline"]])
    shown = ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "template defaults"
    print(f"Parameters: {shown}; {args.runs} runs per target; Python {sys.version.split()[0]}\n")
    print(
        "| function | tracing | (1) import ms: median / p90 | (1) x baseline: wall / CPU "
        "| (2) import + first event ms: median / p90 | (2) x baseline: wall / CPU |"
    )
    print("|---|---|---|---|---|---|")
    print(f"| baseline: boto3 + DynamoDB client | - | {base:.0f} / {base_p90:.0f} | 1.00 / 1.00 | - | - |")
    for target in chosen[1:]:
        name = target.name
        imports, firsts = [s["import"] for s in samples[name]], [s["first"] for s in samples[name]]
        print(
            f"| {name} | {target.tracing} "
            f"| {median(name, 'import'):.0f} / {_p90(imports):.0f} "
            f"| {median(name, 'import') / base:.2f} / {median(name, 'import_cpu') / base_cpu:.2f} "
            f"| {median(name, 'first'):.0f} / {_p90(firsts):.0f} "
            f"| {median(name, 'first') / base:.2f} / {median(name, 'first_cpu') / base_cpu:.2f} |"
        )


if __name__ == "__main__":
    main()
