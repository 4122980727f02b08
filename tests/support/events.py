"""Builders of AWS-shaped Lambda events and a Lambda context for handler tests."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
CLINIC_A = f"arn:aws:iam::{ACCOUNT}:user/clinic-a"
CLINIC_B = f"arn:aws:iam::{ACCOUNT}:user/clinic-b"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:user/operator"


def load_function(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` under a unique module name (both functions are ``app``)."""
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
    function_name: str = "medsum-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:medsum-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_seconds: float = 300.0  # the worker's Timeout (the longest of the functions)
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
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
    """An API Gateway REST (v1) proxy event as the IAM-authorized API delivers it."""
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
        "eventSourceARN": queue_arn or f"arn:aws:sqs:us-east-1:{ACCOUNT}:work",
        "awsRegion": "us-east-1",
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


@dataclass(frozen=True)
class Handler:
    """A function's ``lambda_handler`` with its dependencies injected, as tests call it."""

    module: ModuleType
    deps: Any

    def lambda_handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        response: dict[str, Any] = self.module.lambda_handler(event, context, deps=self.deps)
        return response


def api_handler(deps: Any = None) -> Handler:
    """The api function with ``deps`` (default: the adapters of the current environment, i.e. the
    moto account a test deployed the template into)."""
    from medsum.http.deps import ApiDeps
    from medsum.settings import ApiSettings

    environment = ApiSettings.from_env()
    return Handler(load_function("api"), deps or ApiDeps.from_settings(environment))


def admin_handler(deps: Any = None) -> Handler:
    """The admin function with ``deps`` (default: the adapters of the current environment)."""
    from medsum.http.deps import OperatorDeps
    from medsum.settings import AdminSettings

    environment = AdminSettings.from_env()
    return Handler(load_function("admin"), deps or OperatorDeps.from_settings(environment))


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

    environment = NotifierSettings.from_env()
    return Handler(load_function("notifier"), deps or NotifierFunctionDeps.from_settings(environment))
