"""The application in this process: ``template.yaml`` deployed into moto's in-process mock, each
function's handler loaded from ``functions/<name>/app.py``, and the AWS-shaped events and Lambda
context to call it with.

The integration tests and the in-process benchmarks (``bench/batch_calls.py``) share this; the offline
stack (:mod:`medsum_local.stack`) runs the same handlers out of process, behind the HTTP gateway and
the SQS poller. Nothing here is a fake of the application: the template is deployed exactly as the
offline stack deploys it (:func:`medsum_local.deploy.deploy_template`) and the handlers are the real
ones; only the AWS services are moto's, in-process.

Examples
--------
>>> with deployed_stack(monkeypatch) as stack:                                  # doctest: +SKIP
...     response = api_handler().lambda_handler(api_event("GET", "/reports"), FakeLambdaContext())
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import boto3

from medsum_local.stepfunctions import Invoker

__all__ = [
    "ACCOUNT",
    "CLINIC_A",
    "CLINIC_B",
    "HANDLERS",
    "OPERATOR",
    "PARAMETERS",
    "REGION",
    "ROOT",
    "Environment",
    "FakeLambdaContext",
    "Handler",
    "Stack",
    "admin_handler",
    "api_event",
    "api_handler",
    "deploy",
    "deployed_stack",
    "ingest_handler",
    "invoke_in_process",
    "load_function",
    "notifier_handler",
    "sqs_event",
    "sqs_record",
    "worker_handler",
]

#: The project root (``template.yaml``, ``functions/``).
ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
CLINIC_A = f"arn:aws:iam::{ACCOUNT}:user/clinic-a"
CLINIC_B = f"arn:aws:iam::{ACCOUNT}:user/clinic-b"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:user/operator"

#: Fast retries, as in the e2e tests (the values must satisfy the template's constraints).
PARAMETERS = {
    "BedrockRetryBudgetSeconds": "1",
    "BedrockMaxAttempts": "2",
    "RequeueBaseDelaySeconds": "1",
    "OperatorPrincipalArns": OPERATOR,
    "NotifierMaxReceiveCount": "3",
    "NotifierRetryBaseDelaySeconds": "1",
    "NotifierRetryMaxDelaySeconds": "2",
}


# ------------------------------------------------------------------------------------------------------
# Handlers and what they are called with
# ------------------------------------------------------------------------------------------------------
def load_function(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` under a unique module name (every function's is ``app``)."""
    module_name = f"medsum_function_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


@dataclass
class FakeLambdaContext:
    """What a handler reads of Lambda's context object; the remaining time runs on the real clock."""

    function_name: str = "medsum-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:medsum-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_seconds: float = 300.0  # the worker's Timeout (the longest of the functions)
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left of ``timeout_seconds`` since the context was made."""
        return int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000)


def api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    caller: str | None = CLINIC_A,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    stage: str = "v1",
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event as the IAM-authorized API delivers it (``caller=None``:
    no identity, as for an unsigned request)."""
    all_headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "X-Forwarded-Proto": "https"}
    text = raw_body
    if body is not None:
        text = json.dumps(body)
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    identity = {
        "accessKey": "AKIDEXAMPLE" if caller else None,
        "accountId": ACCOUNT if caller else None,
        "caller": caller,
        "user": caller,
        "userArn": caller,
        "sourceIp": "127.0.0.1",
        "userAgent": "pytest",
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
    }
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or path,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": identity,
        },
        "body": text,
        "isBase64Encoded": False,
    }


def sqs_record(body: str, *, receive_count: int = 1, queue_arn: str | None = None) -> dict[str, Any]:
    """One record of Lambda's SQS event carrying ``body``."""
    now = str(int(time.time() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": f"rh-{uuid.uuid4()}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now,
            "SenderId": ACCOUNT,
            "ApproximateFirstReceiveTimestamp": now,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn or f"arn:aws:sqs:{REGION}:{ACCOUNT}:work",
        "awsRegion": REGION,
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    """Lambda's SQS event of ``records``."""
    return {"Records": list(records)}


@dataclass(frozen=True)
class Handler:
    """A function's ``lambda_handler`` with its dependencies injected."""

    module: ModuleType
    deps: Any

    def lambda_handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Call the function's handler with ``deps``."""
        response: dict[str, Any] = self.module.lambda_handler(event, context, deps=self.deps)
        return response


def api_handler(deps: Any = None) -> Handler:
    """The api function with ``deps`` (default: the adapters of the current environment, i.e. the
    moto account the template was deployed into)."""
    from medsum.http.deps import ApiDeps
    from medsum.settings import ApiSettings

    return Handler(load_function("api"), deps or ApiDeps.from_settings(ApiSettings.from_env()))


def admin_handler(deps: Any = None) -> Handler:
    """The admin function with ``deps`` (default: the adapters of the current environment)."""
    from medsum.http.deps import OperatorDeps
    from medsum.settings import AdminSettings

    return Handler(load_function("admin"), deps or OperatorDeps.from_settings(AdminSettings.from_env()))


def worker_handler(deps: Any = None) -> Handler:
    """The worker function with ``deps`` (default: the adapters of the current environment)."""
    from medsum.consumers.worker import WorkerFunctionDeps
    from medsum.settings import WorkerSettings

    return Handler(
        load_function("worker"), deps or WorkerFunctionDeps.from_settings(WorkerSettings.from_env())
    )


def notifier_handler(deps: Any = None) -> Handler:
    """The notifier function with ``deps`` (default: the adapters of the current environment)."""
    from medsum.consumers.notifier import NotifierFunctionDeps
    from medsum.settings import NotifierSettings

    return Handler(
        load_function("notifier"), deps or NotifierFunctionDeps.from_settings(NotifierSettings.from_env())
    )


def ingest_handler(deps: Any = None) -> Handler:
    """The ingest function with ``deps`` (default: the adapters of the current environment)."""
    from medsum.consumers.ingest import IngestFunctionDeps
    from medsum.settings import IngestSettings

    return Handler(
        load_function("ingest"), deps or IngestFunctionDeps.from_settings(IngestSettings.from_env())
    )


#: The template's function resources and their handlers with the adapters of the current environment.
HANDLERS: dict[str, Callable[[], Handler]] = {
    "ApiFunction": api_handler,
    "WorkerFunction": worker_handler,
    "IngestFunction": ingest_handler,
    "AdminFunction": admin_handler,
    "NotifierFunction": notifier_handler,
}


def invoke_in_process(function_arn: str, event: Any) -> Mapping[str, Any]:
    """An :data:`~medsum_local.stepfunctions.Invoker` that runs the template function named in
    ``function_arn`` in this process, shaping the answer as Lambda's Invoke does (what the local
    runtime does for a sandbox). The handler is given the adapters of the current environment (the
    deployed stack's), built for each invocation: nothing outlives the stack it was made for."""
    (handler,) = (build for logical_id, build in HANDLERS.items() if logical_id in function_arn)
    try:
        payload = handler().lambda_handler(event, FakeLambdaContext())
    except Exception as exc:
        error = {"errorType": type(exc).__name__, "errorMessage": ""}
        return {"FunctionError": "Unhandled", "Payload": error}
    return {"Payload": payload}


# ------------------------------------------------------------------------------------------------------
# The template deployed into moto, in-process
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stack:
    """The deployed template: its outputs, the physical ids of its resources by logical id, and each
    function's environment (as CloudFormation resolved it) by logical id."""

    outputs: dict[str, str]
    resources: dict[str, str]
    environments: dict[str, dict[str, str]]

    def client(self, service: str) -> Any:
        """A boto3 client of the mocked account."""
        return boto3.client(service, region_name=REGION)


class Environment(Protocol):
    """Where :func:`deployed_stack` sets the process environment, undone by its owner afterwards
    (``pytest.MonkeyPatch``)."""

    def setenv(self, name: str, value: str) -> None: ...

    def delenv(self, name: str, raising: bool = ...) -> None: ...


class _InProcessEmulator:
    """What :func:`~medsum_local.deploy.deploy_template` needs of an emulator, over ``mock_aws``."""

    region = REGION
    account_id = ACCOUNT

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


def deploy(parameters: Mapping[str, str] | None = None) -> Stack:
    """Deploy template.yaml into the active moto mock exactly as the offline stack does (parameters:
    :data:`PARAMETERS` unless given)."""
    from medsum_local.deploy import deploy_template

    deployed = deploy_template(
        _InProcessEmulator(),  # type: ignore[arg-type]
        ROOT / "template.yaml",
        parameter_overrides=dict(PARAMETERS if parameters is None else parameters),
        stack_name="medsum-test",
    )
    return Stack(
        outputs=deployed.outputs,
        resources=deployed.physical_ids,
        environments={name: fn.environment for name, fn in deployed.functions.items()},
    )


@contextlib.contextmanager
def deployed_stack(environment: Environment, *, invoker: Invoker | None = None) -> Iterator[Stack]:
    """A fresh moto account with the application deployed from the template, and the process
    environment (set through ``environment``) that of the functions, pointing at it. With ``invoker``,
    moto's Step Functions engine runs the template's state machines and its Lambda tasks call
    ``invoker`` (see :mod:`medsum_local.stepfunctions`; :func:`invoke_in_process` runs the handlers
    here)."""
    from moto import mock_aws

    from medsum_local.emulator import speed_up_dynamodb_transactions, speed_up_sqs
    from medsum_local.stepfunctions import install

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "MedsumTest",
        "POWERTOOLS_SERVICE_NAME": "medsum-test",
    }.items():
        environment.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_PROFILE"):
        environment.delenv(name, raising=False)
    _clear_caches()
    speed_up_sqs()
    speed_up_dynamodb_transactions()
    with mock_aws():
        uninstall = install(invoker) if invoker is not None else None
        try:
            deployed = deploy()
            # The functions' environment exactly as the template defines it (resolved by CloudFormation)
            for function in HANDLERS:
                for name, value in deployed.environments[function].items():
                    if not name.startswith("POWERTOOLS_"):
                        environment.setenv(name, value)
            _clear_caches()
            yield deployed
        finally:
            if uninstall is not None:
                uninstall()
    _clear_caches()


def _clear_caches() -> None:
    """Forget the boto3 clients made for the previous environment (the adapters share them per process).

    Nothing else is cached between stacks: the handlers are given their deps (:class:`Handler`,
    :func:`invoke_in_process`), built from the environment of the stack they run against, and never
    read the functions' own per-cold-start settings and deps.
    """
    from medsum.adapters import clients

    clients.client.cache_clear()
    clients.bedrock_client.cache_clear()
