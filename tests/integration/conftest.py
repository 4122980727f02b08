"""Integration tests: the real handlers with AWS-shaped events against moto.

The resources come from ``template.yaml`` itself (translated with aws-sam-translator and created
through moto's CloudFormation), so a table key or queue setting that drifts from the code fails here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from medsum_local.inprocess import Handler, Stack, api_handler, deployed_stack, worker_handler
from medsum_local.stack import LocalStack, StackInfo


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The template deployed into a fresh in-process moto account (see
    :func:`medsum_local.inprocess.deployed_stack`)."""
    with deployed_stack(monkeypatch) as deployed:
        yield deployed


@pytest.fixture
def modules(stack: Stack) -> tuple[Handler, Handler]:
    """The api and worker functions with the adapters of the deployed stack."""
    return api_handler(), worker_handler()


@pytest.fixture
def events_queue(stack: Stack) -> str:
    """An SQS queue subscribed to the events topic (SNS envelopes, not raw delivery), to observe what
    is published."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=stack.resources["ReportEventsTopic"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "false"},
    )
    return str(url)


@pytest.fixture(scope="module")
def info(local_stack: LocalStack) -> StackInfo:
    """What the module's running offline stack offers (its ``local_stack`` fixture configures it)."""
    assert local_stack.info is not None
    return local_stack.info
