"""``medsum-local``: run the whole application offline, in the foreground, until Ctrl-C / SIGTERM.

Options override the environment (``MEDSUM_API_PORT``, ``MEDSUM_EMULATOR_PORT``,
``MEDSUM_BEDROCK_PORT``, ``MEDSUM_PARAMETER_OVERRIDES``, ``MEDSUM_TEMPLATE_OVERRIDES``,
``MEDSUM_BEDROCK_FAULTS``, ``MEDSUM_LOG_FORMAT``).

The terminal shows one readable line per API request, per worker outcome and per warning or error
(:mod:`medsum_local.logs`); ``--verbose`` (or ``MEDSUM_LOG_FORMAT=json``) prints every JSON record
instead: the functions' Powertools logs and EMF metrics, the access log, the platform records.

This module is imported again by every function sandbox (``multiprocessing`` 'spawn' re-imports the
main module), so its top level imports the standard library only.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medsum_local.stack import StackInfo

__all__ = ["banner", "main"]

ENV_ALLOW_LOCALHOST_WEBHOOKS = "MEDSUM_ALLOW_LOCALHOST_WEBHOOKS"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medsum-local",
        description="Run medsum offline: template.yaml deployed into an embedded AWS emulator, the real "
        "handlers in local Lambda sandboxes, a SigV4-checking API gateway, SQS pollers and a local Bedrock.",
    )
    parser.add_argument("--api-port", type=int, help="API port (default $MEDSUM_API_PORT or 3000)")
    parser.add_argument(
        "--emulator-port", type=int, help="AWS emulator port (default $MEDSUM_EMULATOR_PORT or 4566)"
    )
    parser.add_argument(
        "--bedrock-port", type=int, help="local Bedrock port (default $MEDSUM_BEDROCK_PORT or 3002)"
    )
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        metavar="KEY=VALUE",
        default=[],
        help="template parameters, merged over $MEDSUM_PARAMETER_OVERRIDES (e.g. RequeueBaseDelaySeconds=1)",
    )
    parser.add_argument(
        "--template-overrides",
        nargs="+",
        metavar="PATH=VALUE",
        default=[],
        help="literal template settings that are not parameters, by dotted path, merged over "
        "$MEDSUM_TEMPLATE_OVERRIDES (e.g. Resources.WorkerFunction.Properties.Timeout=24); local runs only",
    )
    parser.add_argument(
        "--allow-localhost-webhooks",
        action="store_true",
        default=os.environ.get(ENV_ALLOW_LOCALHOST_WEBHOOKS, "") in {"1", "true"},
        help="accept plain http://127.0.0.1:PORT webhook URLs, e.g. `medsum webhooks listen --register` "
        f"(template parameter AllowLocalhostWebhooks=true; default ${ENV_ALLOW_LOCALHOST_WEBHOOKS})",
    )
    parser.add_argument("--template", type=Path, help="SAM template (default ./template.yaml)")
    parser.add_argument(
        "--state-file", type=Path, help="stack description (default ./.medsum/local-stack.json)"
    )
    parser.add_argument(
        "--region", default="us-east-1", help="region of the emulated account (default us-east-1)"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print every log record as JSON (functions' Powertools logs, EMF metrics, access log) instead "
        "of one line per request and worker outcome (default $MEDSUM_LOG_FORMAT=text|json, else text)",
    )
    return parser


def _example_file(root: Path) -> str:
    preferred = root / "examples" / "chest-xray-pneumonia.txt"
    if preferred.is_file():
        return str(preferred.relative_to(root))
    examples = sorted((root / "examples").glob("*.txt")) if (root / "examples").is_dir() else []
    return str(examples[0].relative_to(root)) if examples else "examples/<report>.txt"


def banner(info: StackInfo, *, state_file: Path, project_root: Path, log_format: str = "text") -> str:
    """The text printed when the stack is ready."""
    width = max(len(identity.name) for identity in info.identities) if info.identities else 8
    identities = "\n".join(
        f"    {identity.name:<{width}}  {identity.role:<8}  {identity.access_key_id}  {identity.arn}"
        for identity in info.identities
    )
    example = _example_file(project_root)
    first = info.identities[0].name if info.identities else "clinic-a"
    user = f'.identities[] | select(.name=="{first}") | .access_key_id + ":" + .secret_access_key'
    logs = (
        "every record as JSON (functions, metrics, access log)"
        if log_format == "json"
        else "one line per request, worker outcome, warning, error (--verbose: JSON)"
    )
    return f"""
medsum local stack ready in {info.startup_seconds:.1f} s  (Ctrl-C to stop)

  API             {info.api_url}   (SigV4, service execute-api, region {info.region})
  AWS emulator    {info.aws_endpoint_url}   (moto; stack {info.stack_name!r})
  Bedrock         {info.bedrock_endpoint_url}
                  (admin: {info.bedrock_admin_url}/faults|stats|reset|replies|sandboxes)
  State file      {state_file}   (secrets are there, mode 0600)
  Logs            {logs}

  Identities (access key ids; secret keys in the state file):
{identities}

  Try it (in another shell, after `source .venv/bin/activate`):
    medsum submit {example} --type radiology --wait
    medsum webhooks listen --register      # then submit again: a verified report.completed arrives
    curl --aws-sigv4 "aws:amz:{info.region}:execute-api" \\
      --user "$(jq -r '{user}' {state_file})" \\
      -H 'Content-Type: application/json' \\
      -d '{{"patient_id": "pt-001", "report_text": "FINDINGS: Small left effusion. No pneumothorax."}}' \\
      {info.api_url}/summarize
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stack in the foreground; return the exit status."""
    args = _parser().parse_args(argv)
    from medsum_local.deploy import DeploymentError, parse_parameter_overrides
    from medsum_local.logs import ENV_LOG_FORMAT, parse_log_format
    from medsum_local.stack import LocalStack, LocalStackConfig

    try:
        overrides = parse_parameter_overrides(" ".join(args.parameter_overrides))
        if args.allow_localhost_webhooks:
            overrides.setdefault("AllowLocalhostWebhooks", "true")
        config = LocalStackConfig.from_env(
            api_port=args.api_port,
            emulator_port=args.emulator_port,
            bedrock_port=args.bedrock_port,
            parameter_overrides=overrides,
            template_overrides=parse_parameter_overrides(" ".join(args.template_overrides)),
            template=args.template.resolve() if args.template else None,
            state_file=args.state_file.resolve() if args.state_file else None,
            region=args.region,
            # A person reads this terminal: readable lines unless asked for the records.
            log_format="json" if args.verbose else parse_log_format(os.environ.get(ENV_LOG_FORMAT)),
        )
    except ValueError as exc:
        print(f"medsum-local: {exc}", file=sys.stderr)
        return 2

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if stop_requested.is_set():
            raise SystemExit(130)  # a second Ctrl-C: give up on a clean stop
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(config)
    try:
        print(f"medsum-local: deploying {config.template_path.name} into the emulator ...", flush=True)
        try:
            info = stack.start()
        except (DeploymentError, OSError, ValueError) as exc:
            print(f"medsum-local: cannot start: {exc}", file=sys.stderr)
            return 1
        print(
            banner(
                info,
                state_file=config.state_path,
                project_root=config.project_root,
                log_format=config.log_format,
            ),
            flush=True,
        )
        while not stop_requested.wait(0.5):
            pass
        print("medsum-local: stopping ...", flush=True)
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("medsum-local: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
