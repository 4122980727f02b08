"""Integration tests: the real handlers with AWS-shaped events against moto.

The resources come from ``template.yaml`` itself (translated with aws-sam-translator and created
through moto's CloudFormation), so a table key or queue setting that drifts from the code fails here.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from medsum.adapters import clients
from medsum.settings import get_api_settings, get_worker_settings
from medsum_local.template import load_template, strip_unsupported, translate
from moto import mock_aws

from tests.support.events import ROOT

REGION = "us-east-1"
ARTIFACTS = "medsum-test-artifacts"


@dataclass(frozen=True)
class Stack:
    outputs: dict[str, str]
    resources: dict[str, str]

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.txt", "code runs from the repository in tests")
    return buffer.getvalue()


def deploy_template(parameters: dict[str, str] | None = None) -> Stack:
    """Create the application stack from template.yaml inside the active moto mock."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)

    def upload(path: str) -> tuple[str, str]:
        key = path.strip("/").replace("/", "-") + ".zip"
        s3.put_object(Bucket=ARTIFACTS, Key=key, Body=_empty_zip())
        return ARTIFACTS, key

    template = strip_unsupported(translate(load_template(ROOT / "template.yaml"), REGION, upload))
    import json

    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName="medsum-test",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = cfn.describe_stacks(StackName="medsum-test")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    resources = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in cfn.describe_stack_resources(StackName="medsum-test")["StackResources"]
    }
    return Stack(outputs=outputs, resources=resources)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """A fresh moto account with the application deployed from the template, and the functions'
    environment pointing at it."""
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
    clients.client.cache_clear()
    with mock_aws():
        deployed = deploy_template()
        env = {
            "TABLE_NAME": deployed.resources["PatientReports"],
            "IDEMPOTENCY_TABLE_NAME": deployed.resources["IdempotencyTable"],
            "WORK_QUEUE_URL": deployed.resources["WorkQueue"],
            "EVENTS_TOPIC_ARN": deployed.resources["ReportEventsTopic"],
            "REPORT_RETENTION_DAYS": "30",
            "RETRY_AFTER_SECONDS": "5",
            "BEDROCK_MODEL_ID": "amazon.nova-lite-v1:0",
            "PUBLIC_API_URL": "https://abc123.execute-api.us-east-1.amazonaws.com/v1",
            "MAX_RECEIVE_COUNT": "5",
            "LEASE_SECONDS": "60",
            "BEDROCK_RETRY_BUDGET_SECONDS": "1",
            "BEDROCK_MAX_ATTEMPTS": "2",
            "REQUEUE_BASE_DELAY_SECONDS": "1",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_api_settings.cache_clear()
        get_worker_settings.cache_clear()
        yield deployed
    clients.client.cache_clear()
    get_api_settings.cache_clear()
    get_worker_settings.cache_clear()


__all__ = ["REGION", "Stack", "deploy_template", "os"]
