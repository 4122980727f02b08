"""The whole offline stack: emulator, deployed template, functions, API gateway, pollers, local Bedrock.

>>> with LocalStack(LocalStackConfig.from_env(api_port=0, emulator_port=0, bedrock_port=0)) as info:
...     info.api_url, info.identity("clinic-a").access_key_id   # doctest: +SKIP

``medsum-local`` (:mod:`medsum_local.main`) runs the same object in the foreground.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsum_local.deploy import DeployedFunction, DeployedStack, deploy_template, parse_parameter_overrides
from medsum_local.emulator import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, Emulator
from medsum_local.identities import DEFAULT_IDENTITIES, Identity, IdentityRegistry, create_identities
from medsum_local.logs import ENV_LOG_FORMAT, Console, LogFormat, parse_log_format
from medsum_local.runtime import FunctionRuntime, FunctionSpec

__all__ = [
    "STATE_FILE",
    "LocalStack",
    "LocalStackConfig",
    "StackInfo",
    "function_environment",
    "operator_overrides",
    "with_local_defaults",
]

#: Where the stack describes itself for tools and tests, relative to the project root.
STATE_FILE = Path(".medsum") / "local-stack.json"

ENV_API_PORT = "MEDSUM_API_PORT"
ENV_EMULATOR_PORT = "MEDSUM_EMULATOR_PORT"
ENV_BEDROCK_PORT = "MEDSUM_BEDROCK_PORT"
ENV_PARAMETER_OVERRIDES = "MEDSUM_PARAMETER_OVERRIDES"
ENV_TEMPLATE_OVERRIDES = "MEDSUM_TEMPLATE_OVERRIDES"
#: Template parameter naming the operators' principals (the local ``operator`` identity by default).
OPERATOR_PARAMETER = "OperatorPrincipalArns"
#: Template parameters the local stack sets unless the caller does: the local stand-in model's context
#: window (the template's 0 means the deployed model family's, which the stand-in does not have).
LOCAL_PARAMETER_DEFAULTS: Mapping[str, str] = {"BedrockContextTokens": "8192"}


def _env_port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{name}={raw!r} is not a port number")
    return port


@dataclass(frozen=True)
class LocalStackConfig:
    """How to run the offline stack.

    Attributes
    ----------
    project_root
        Repository root (``template.yaml`` and the code directories live there).
    template
        The SAM template; default ``project_root / "template.yaml"``.
    api_port, emulator_port, bedrock_port
        Listening ports; 0 picks free ports (tests).
    parameter_overrides
        Template parameter values (``{"RequeueBaseDelaySeconds": "1"}``).
    template_overrides
        Literal settings of the template replaced before it is deployed, by dotted path
        (``{"Resources.WorkerFunction.Properties.Timeout": "24"}``; see
        :func:`medsum_local.template.with_overrides`): for settings that are not parameters, in local
        runs only (the chaos benchmark's quick mode shortens the worker's timeouts with it).
    state_file
        Where to write the stack description; None: ``project_root / .medsum/local-stack.json``.
        Written only when ``write_state_file`` is true.
    bedrock_faults
        Initial faults of the local Bedrock; None reads ``MEDSUM_BEDROCK_FAULTS``.
    bedrock_context_tokens
        Context window of the local Bedrock model, in tokens; None reads
        ``MEDSUM_BEDROCK_CONTEXT_TOKENS``, else 8192.
    default_concurrency
        Sandboxes of a function whose concurrency the template does not bound.
    prewarm
        Cold-start one sandbox per function while the stack starts.
    log_format
        ``json``: every record as produced (Powertools logs, EMF metrics, access log lines); ``text``:
        one readable line per request, worker outcome, warning and error (:mod:`medsum_local.logs`).
        ``medsum-local`` defaults to ``text``; this object to ``json``, so tests see every record.
    """

    project_root: Path = field(default_factory=Path.cwd)
    template: Path | None = None
    host: str = "127.0.0.1"
    api_port: int = 3000
    emulator_port: int = 4566
    bedrock_port: int = 3002
    region: str = "us-east-1"
    stack_name: str = "medsum"
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    template_overrides: Mapping[str, str] = field(default_factory=dict)
    state_file: Path | None = None
    write_state_file: bool = True
    bedrock_faults: Mapping[str, Any] | None = None
    bedrock_context_tokens: int | None = None
    identities: tuple[tuple[str, str], ...] = DEFAULT_IDENTITIES
    default_concurrency: int = 4
    prewarm: bool = True
    log_format: LogFormat = "json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LocalStackConfig:
        """Read ``MEDSUM_API_PORT`` / ``MEDSUM_EMULATOR_PORT`` / ``MEDSUM_BEDROCK_PORT``,
        ``MEDSUM_PARAMETER_OVERRIDES`` ("K=V K2=V2"), ``MEDSUM_TEMPLATE_OVERRIDES``
        ("Resources.X.Properties.Y=V ...") and ``MEDSUM_LOG_FORMAT`` (``text`` / ``json``); keyword
        arguments win over the environment (``parameter_overrides`` and ``template_overrides`` are
        merged over the environment's)."""
        env = os.environ if environ is None else environ
        parameters = parse_parameter_overrides(env.get(ENV_PARAMETER_OVERRIDES))
        parameters.update(overrides.pop("parameter_overrides", None) or {})
        settings = parse_parameter_overrides(env.get(ENV_TEMPLATE_OVERRIDES))
        settings.update(overrides.pop("template_overrides", None) or {})
        values: dict[str, Any] = {
            "api_port": _env_port(env, ENV_API_PORT, 3000),
            "emulator_port": _env_port(env, ENV_EMULATOR_PORT, 4566),
            "bedrock_port": _env_port(env, ENV_BEDROCK_PORT, 3002),
            "parameter_overrides": parameters,
            "template_overrides": settings,
            "log_format": parse_log_format(env.get(ENV_LOG_FORMAT), default=cls.log_format),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @property
    def template_path(self) -> Path:
        """The template to deploy."""
        return self.template or self.project_root / "template.yaml"

    @property
    def state_path(self) -> Path:
        """The state file path."""
        return self.state_file or self.project_root / STATE_FILE


@dataclass(frozen=True)
class StackInfo:
    """What a running stack offers (the content of ``.medsum/local-stack.json``, plus a few extras)."""

    api_url: str
    region: str
    aws_endpoint_url: str
    bedrock_endpoint_url: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    identities: tuple[Identity, ...]
    stack_name: str
    functions: dict[str, str]
    startup_seconds: float

    @property
    def bedrock_admin_url(self) -> str:
        """Base of the local Bedrock's admin routes (``/faults``, ``/stats``, ``/reset``, ``/replies``)."""
        return f"{self.bedrock_endpoint_url}/_local"

    def identity(self, name: str) -> Identity:
        """The identity called ``name`` (``clinic-a``, ``clinic-b``, ``operator``)."""
        for identity in self.identities:
            if identity.name == name:
                return identity
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The JSON document written to the state file."""
        return {
            "api_url": self.api_url,
            "region": self.region,
            "aws_endpoint_url": self.aws_endpoint_url,
            "bedrock_endpoint_url": self.bedrock_endpoint_url,
            "bedrock_admin_url": self.bedrock_admin_url,
            "stack_name": self.stack_name,
            "outputs": self.outputs,
            "parameters": self.parameters,
            "functions": self.functions,
            "identities": [identity.public() for identity in self.identities],
            "pid": os.getpid(),
            "startup_seconds": round(self.startup_seconds, 2),
        }


def function_environment(
    function: DeployedFunction,
    *,
    region: str,
    emulator_url: str,
    bedrock_url: str,
    api_url: str | None,
) -> dict[str, str]:
    """The ``os.environ`` of a function's sandbox: its deployed environment plus Lambda's own variables.

    Only endpoints and credentials differ from AWS: the SDK reaches moto through ``AWS_ENDPOINT_URL``
    and the local model through ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``; X-Ray has no daemon here, so
    Powertools tracing is disabled; ``PUBLIC_API_URL`` (links in events) points at the local API.
    """
    env = dict(function.environment)
    env.update(
        {
            # What Lambda's runtime sets.
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout_seconds),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": function.log_group_name,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime or 'python3.13'}",
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            "_HANDLER": function.handler,
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            # Credentials and endpoints: the emulator and the local model, never real AWS.
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_ENDPOINT_URL": emulator_url,
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    if api_url is not None and "PUBLIC_API_URL" in env:
        env["PUBLIC_API_URL"] = api_url
    return env


class LocalStack:
    """Start and stop the offline stack; also a context manager yielding :class:`StackInfo`.

    Parameters
    ----------
    config
        The configuration; default ``LocalStackConfig.from_env()``.
    log
        Receives the stack's own progress lines (default: print to stdout).
    console
        Where the components' logs go; default: stdout, in ``config.log_format``.
    """

    def __init__(
        self,
        config: LocalStackConfig | None = None,
        *,
        log: Callable[[str], None] | None = None,
        console: Console | None = None,
    ) -> None:
        self.config = config or LocalStackConfig.from_env()
        self._log = log or (lambda line: print(line, flush=True))
        self.console = console or Console(self.config.log_format)
        self._stopped = threading.Event()
        self.emulator: Emulator | None = None
        self.bedrock: Any = None
        self.deployed: DeployedStack | None = None
        self.runtime: FunctionRuntime | None = None
        self.gateway: Any = None
        self.pollers: list[Any] = []
        self.info: StackInfo | None = None
        self._state_written = False
        self._uninstall_stepfunctions: Callable[[], None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> StackInfo:
        """Start everything; return once the API answers. On failure, what started is stopped again."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> StackInfo:
        # Imported here: the sandboxes import this package too, and must not pay for moto or werkzeug.
        from medsum_local.bedrock import LocalBedrock
        from medsum_local.gateway import LocalApiGateway
        from medsum_local.poller import SqsEventSourcePoller
        from medsum_local.stepfunctions import install as install_stepfunctions

        config = self.config
        started = time.monotonic()
        self.emulator = Emulator(config.host, config.emulator_port, config.region)
        self.emulator.start()
        # moto imports its CloudFormation models (and EC2's catalogues) lazily on the first call: warm
        # them up while the code is zipped and the template translated.
        warm_up = threading.Thread(target=_import_moto_cloudformation, daemon=True)
        warm_up.start()
        self.bedrock = LocalBedrock(
            config.host,
            config.bedrock_port,
            faults=config.bedrock_faults,
            context_tokens=config.bedrock_context_tokens,
        ).start()
        runtime_holder: list[FunctionRuntime] = []

        def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
            return runtime_holder[0].invoke(function, event)

        # State machines run in moto's Step Functions engine; their Lambda tasks run in the sandboxes.
        # The engine reaches moto's Lambda API at localhost:$MOTO_PORT (this process hosts the emulator).
        os.environ["MOTO_PORT"] = self.emulator.url.rsplit(":", 1)[1]
        self._uninstall_stepfunctions = install_stepfunctions(invoke)
        identities = create_identities(self.emulator.client("iam"), config.identities)
        registry = IdentityRegistry(identities)
        declared = _declared_parameters(config.template_path)
        self.deployed = deployed = deploy_template(
            self.emulator,
            config.template_path,
            parameter_overrides=with_local_defaults(
                operator_overrides(config.parameter_overrides, identities, declared), declared
            ),
            template_overrides=config.template_overrides,
            stack_name=config.stack_name,
        )

        if len(deployed.apis) > 1:
            raise RuntimeError("the local stack serves one REST API; the template declares several")
        api_url: str | None = None
        if deployed.apis:
            self.gateway = LocalApiGateway(
                deployed.apis[0],
                invoke,
                registry,
                region=deployed.region,
                account_id=deployed.account_id,
                host=config.host,
                port=config.api_port,
                log=self.console.access_log,
                request_log=self.console.api_request,
            )
            api_url = self.gateway.bind()

        self.runtime = FunctionRuntime(
            self._function_specs(deployed, api_url),
            log=self.console.record,
            output=self.console.function_output if self.console.captures_function_output else None,
        )
        runtime_holder.append(self.runtime)
        self.bedrock.add_control_route("sandboxes", lambda: {"sandboxes": runtime_holder[0].sandboxes()})
        self.runtime.start(prewarm=config.prewarm)
        if self.gateway is not None:
            self.gateway.start()
        sqs = self.emulator.client("sqs")
        for source in deployed.event_sources:
            if source.event_source_arn.split(":")[2] != "sqs":
                continue
            poller = SqsEventSourcePoller(
                source,
                sqs,
                invoke,
                region=deployed.region,
                default_concurrency=config.default_concurrency,
                log=self.console.record,
            )
            poller.start()
            self.pollers.append(poller)

        # Ready means warm: the first request should not pay the functions' cold starts (they ran in
        # parallel with the steps above).
        self.runtime.wait_warm()
        self.info = StackInfo(
            api_url=api_url or "",
            region=deployed.region,
            aws_endpoint_url=self.emulator.url,
            bedrock_endpoint_url=self.bedrock.url,
            outputs=dict(deployed.outputs),
            parameters=dict(deployed.parameters),
            identities=tuple(identities),
            stack_name=deployed.stack_name,
            functions={logical_id: f.function_name for logical_id, f in deployed.functions.items()},
            startup_seconds=time.monotonic() - started,
        )
        if config.write_state_file:
            self._write_state(self.info)
        return self.info

    def _function_specs(self, deployed: DeployedStack, api_url: str | None) -> list[FunctionSpec]:
        assert self.emulator is not None and self.bedrock is not None
        concurrency: dict[str, int] = {}
        for source in deployed.event_sources:
            wanted = source.maximum_concurrency or self.config.default_concurrency
            concurrency[source.function_logical_id] = concurrency.get(source.function_logical_id, 0) + wanted
        specs: list[FunctionSpec] = []
        for logical_id, function in deployed.functions.items():
            size = concurrency.get(logical_id, self.config.default_concurrency)
            if function.reserved_concurrency is not None:
                size = min(size, max(1, function.reserved_concurrency))
            specs.append(
                FunctionSpec(
                    logical_id=logical_id,
                    function_name=function.function_name,
                    function_arn=function.function_arn,
                    handler=function.handler,
                    code_dir=str(function.code_dir),
                    layer_dirs=tuple(str(d) for d in function.layer_dirs),
                    timeout_seconds=function.timeout_seconds,
                    memory_mb=function.memory_mb,
                    environment=function_environment(
                        function,
                        region=deployed.region,
                        emulator_url=self.emulator.url,
                        bedrock_url=self.bedrock.url,
                        api_url=api_url,
                    ),
                    concurrency=size,
                    log_group_name=function.log_group_name,
                )
            )
        return specs

    def _write_state(self, info: StackInfo) -> None:
        path = self.config.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        # The file holds the identities' secrets: readable by the owner only.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(info.to_json(), handle, indent=2)
            handle.write("\n")
        temporary.replace(path)
        self._state_written = True

    def stop(self) -> None:
        """Stop everything that was started, in reverse order (idempotent); remove the state file."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        for poller in self.pollers:
            poller.signal_stop()
        if self.gateway is not None:
            self.gateway.stop()
        if self.runtime is not None:
            self.runtime.stop()
        for poller in self.pollers:
            poller.stop()
        if self.bedrock is not None:
            self.bedrock.stop()
        if self.emulator is not None:
            self.emulator.stop()
        if self._uninstall_stepfunctions is not None:
            self._uninstall_stepfunctions()
            self._uninstall_stepfunctions = None
        if self._state_written:
            with contextlib.suppress(FileNotFoundError):
                self.config.state_path.unlink()
            self._state_written = False

    def invoke(self, function_logical_id: str, event: Any) -> dict[str, Any]:
        """Invoke a function of the stack (see :meth:`FunctionRuntime.invoke`)."""
        if self.runtime is None:
            raise RuntimeError("stack not started")
        return self.runtime.invoke(function_logical_id, event)

    def __enter__(self) -> StackInfo:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def operator_overrides(
    overrides: Mapping[str, str], identities: Sequence[Identity], declared: Collection[str]
) -> dict[str, str]:
    """The parameter overrides, with ``OperatorPrincipalArns`` naming the local ``operator`` identities
    unless the caller set it (the template's default, empty, would leave the stack without operators).
    Templates that do not declare the parameter get the overrides unchanged."""
    merged = dict(overrides)
    if OPERATOR_PARAMETER in declared and OPERATOR_PARAMETER not in merged:
        merged[OPERATOR_PARAMETER] = ",".join(i.arn for i in identities if i.role == "operator")
    return merged


def with_local_defaults(overrides: Mapping[str, str], declared: Collection[str]) -> dict[str, str]:
    """The parameter overrides, with :data:`LOCAL_PARAMETER_DEFAULTS` for the declared parameters the
    caller did not set."""
    defaults = {name: value for name, value in LOCAL_PARAMETER_DEFAULTS.items() if name in declared}
    return {**defaults, **overrides}


def _declared_parameters(template_path: Path) -> set[str]:
    import yaml

    from medsum_local.template import load_template

    try:
        return set(load_template(template_path).get("Parameters") or {})
    except (OSError, ValueError, yaml.YAMLError):
        return set()  # deploy_template reports an unreadable template with its own error


def _import_moto_cloudformation() -> None:
    with contextlib.suppress(Exception):
        import moto.cloudformation.models  # noqa: F401
