"""Integration tests: the real handlers with AWS-shaped events against moto.

The resources come from ``template.yaml`` itself (translated with aws-sam-translator and created
through moto's CloudFormation), so a table key or queue setting that drifts from the code fails here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from medsum.adapters import clients
from medsum_local.deploy import deploy_template
from medsum_local.emulator import speed_up_dynamodb_transactions, speed_up_sqs
from medsum_local.stepfunctions import Invoker, install
from moto import mock_aws

from tests.support.events import ACCOUNT, OPERATOR, ROOT

REGION = "us-east-1"
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


@dataclass(frozen=True)
class Stack:
    outputs: dict[str, str]
    resources: dict[str, str]
    environments: dict[str, dict[str, str]]

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


class InProcessEmulator:
    """What ``medsum_local.deploy.deploy_template`` needs of an emulator, over ``mock_aws`` in-process."""

    region = REGION
    account_id = ACCOUNT

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


def deploy() -> Stack:
    """Deploy template.yaml into the active moto mock exactly as the offline stack does."""
    deployed = deploy_template(
        InProcessEmulator(),  # type: ignore[arg-type]
        ROOT / "template.yaml",
        parameter_overrides=PARAMETERS,
        stack_name="medsum-test",
    )
    return Stack(
        outputs=deployed.outputs,
        resources=deployed.physical_ids,
        environments={name: fn.environment for name, fn in deployed.functions.items()},
    )


@contextlib.contextmanager
def deployed_stack(monkeypatch: pytest.MonkeyPatch, *, invoker: Invoker | None = None) -> Iterator[Stack]:
    """A fresh moto account with the application deployed from the template, and the functions'
    environment pointing at it. With ``invoker``, moto's Step Functions engine runs the template's
    state machines and its Lambda tasks call ``invoker`` (see ``medsum_local.stepfunctions``)."""
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
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    _clear_caches()
    speed_up_sqs()
    speed_up_dynamodb_transactions()
    with mock_aws():
        uninstall = install(invoker) if invoker is not None else None
        try:
            deployed = deploy()
            # The functions' environment exactly as the template defines it (resolved by CloudFormation)
            for function in (
                "ApiFunction",
                "WorkerFunction",
                "IngestFunction",
                "AdminFunction",
                "NotifierFunction",
            ):
                for name, value in deployed.environments[function].items():
                    if not name.startswith("POWERTOOLS_"):
                        monkeypatch.setenv(name, value)
            _clear_caches()
            yield deployed
        finally:
            if uninstall is not None:
                uninstall()
    _clear_caches()


def _clear_caches() -> None:
    clients.client.cache_clear()
    clients.bedrock_client.cache_clear()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The template deployed into a fresh in-process moto account (see :func:`deployed_stack`)."""
    with deployed_stack(monkeypatch) as deployed:
        yield deployed


__all__ = ["REGION", "Stack", "deploy", "deployed_stack"]
