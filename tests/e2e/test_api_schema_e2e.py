"""schemathesis against the running local stack: the API answers only what its OpenAPI document says.

The document is the one the API serves (``GET /openapi.json``). For every operation, schemathesis
generates a bounded number of valid and invalid requests (``EXAMPLES`` each, derandomized so a run is
reproducible); every request is SigV4-signed as the ``fuzzer`` identity, a client of its own (so the
reports, batches and webhooks it creates, deletes or cancels are nobody else's, and no other test
sees them). Every answer must pass: no server error, a documented status, a body that matches the
documented schema, a documented content type.

The work the fuzzer submitted is drained before the module ends, so later tests do not queue behind it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from medsum_local.stack import StackInfo
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.signing import session_as

#: Generated requests per operation and mode (positive, negative): 27 operations (19 client, 8 operator).
EXAMPLES = 20
FUZZER = "fuzzer"
RATE = "40/s"
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]


@schemathesis.serializer("application/x-ndjson")
def _json_lines(ctx: Any, value: Any) -> bytes:
    """One batch item a line (the document's ``application/x-ndjson`` body is the item schema)."""
    return (json.dumps(value) + "\n").encode()


@pytest.fixture(scope="module")
def document(stack_info: StackInfo) -> dict[str, Any]:
    response = requests.get(f"{stack_info.api_url}/openapi.json", timeout=30)
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    assert served["servers"] == [{"url": stack_info.api_url}]
    return served


def drain(aws: Callable[[str], Any], stack_info: StackInfo, timeout: float = 180.0) -> None:
    """Wait until both work queues are empty (nothing waiting, nothing in flight)."""
    sqs = aws("sqs")
    urls = [stack_info.outputs["WorkQueueUrl"], stack_info.outputs["BulkQueueUrl"]]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attributes = [sqs.get_queue_attributes(QueueUrl=u, AttributeNames=names)["Attributes"] for u in urls]
        if all(int(a[n]) == 0 for a in attributes for n in names):
            return
        time.sleep(1)


def test_every_answer_is_documented(
    document: dict[str, Any], stack_info: StackInfo, aws: Callable[[str], Any]
) -> None:
    # Below the stage's throttling (ApiThrottlingRateLimit 50/s): a fuzzer answered 429 tests nothing.
    schema = schemathesis.openapi.from_dict(
        document, config=schemathesis.Config.from_dict({"rate-limit": RATE})
    )
    session = session_as(stack_info, FUZZER)
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    cases = 0

    def run(operation: Any, mode: GenerationMode) -> None:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case[Any]) -> None:
            nonlocal cases
            cases += 1
            response = case.call(base_url=stack_info.api_url, session=session, timeout=60)
            statuses.setdefault(operation.label, set()).add(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS)
            except (AssertionError, FailureGroup) as failure:  # a check failed: record it, go on
                failures.append(f"{operation.label} [{mode.value}] {response.status_code}: {failure}"[:1500])

        try:
            check()
        except hypothesis.errors.Unsatisfiable:
            # Nothing of the operation can be made invalid (no parameters, no body): no negative cases
            assert mode is GenerationMode.NEGATIVE, operation.label

    try:
        for result in schema.get_all_operations():
            # The document is generated and validated (tests/unit/test_openapi_doc.py): no invalid operation
            assert isinstance(result, Ok), result.err()
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run(operation, mode)
    finally:
        drain(aws, stack_info)
    print(
        f"schemathesis: {cases} cases, {len(statuses)} operations, statuses {dict(sorted(statuses.items()))}"
    )
    assert cases >= len(statuses) * EXAMPLES
    assert not failures, "\n\n".join(failures[:20])
