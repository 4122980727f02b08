"""End-to-end fixtures: the whole offline stack over HTTP.

``template.yaml`` is deployed into the embedded emulator, the real handlers run in local Lambda
sandboxes, requests go through the SigV4-checking gateway, the worker is fed by the SQS poller and
calls the local Bedrock. The stack starts once for the e2e package, on free ports, with parameter
overrides that make the retry path fast. Its state file is written into a temporary project directory
(``stack_dir``), so the ``medsum`` CLI can be run from there without touching a developer's
``.medsum/local-stack.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from medsum_local.identities import DEFAULT_IDENTITIES
from medsum_local.stack import LocalStack, StackInfo
from medsum_local.testing import ApiClient, isolated_config, sign_request

ROOT = Path(__file__).resolve().parents[2]

#: Retries in seconds, not minutes.
FAST_RETRIES: dict[str, str] = {
    "RequeueBaseDelaySeconds": "1",
    "BedrockRetryBudgetSeconds": "2",
    "BedrockMaxAttempts": "2",
    # Webhooks: the local-only http://127.0.0.1 receivers, and a retry schedule of seconds.
    "AllowLocalhostWebhooks": "true",
    "NotifierRetryBaseDelaySeconds": "1",
    "NotifierRetryMaxDelaySeconds": "2",
    "NotifierMaxReceiveCount": "3",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="package")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose ``.medsum/local-stack.json`` describes the running stack (run the CLI here)."""
    return tmp_path_factory.mktemp("medsum-project")


@pytest.fixture(scope="package")
def local_stack(stack_dir: Path) -> Iterator[LocalStack]:
    """The running offline stack (``LocalStack``; ``.invoke()``, ``.emulator.client()`` ...)."""
    config = isolated_config(  # no Bedrock faults: tests set them through the admin routes
        ROOT,
        stack_dir,
        parameter_overrides=FAST_RETRIES,
        # A client of its own for schemathesis (test_api_schema_e2e.py): what it creates is nobody else's.
        identities=(*DEFAULT_IDENTITIES, ("fuzzer", "client")),
    )
    stack = LocalStack(config)
    with stack:
        yield stack


@pytest.fixture(scope="package")
def stack_info(local_stack: LocalStack) -> StackInfo:
    """``api_url``, ``region``, ``aws_endpoint_url``, ``bedrock_endpoint_url``, ``bedrock_admin_url``,
    ``outputs``, ``parameters`` and ``identities`` (``stack_info.identity("clinic-a")``)."""
    assert local_stack.info is not None
    return local_stack.info


@pytest.fixture(scope="package")
def api(stack_info: StackInfo) -> ApiClient:
    """Signed HTTP calls as ``clinic-a`` (``identity="clinic-b"`` / ``"operator"`` / None per call)."""
    return ApiClient(stack_info, identity="clinic-a")


@pytest.fixture(scope="package")
def api_as(stack_info: StackInfo) -> Callable[[str | None], ApiClient]:
    """``api_as("clinic-b")``: a client signing as another identity (None: unsigned)."""
    return lambda identity: ApiClient(stack_info, identity=identity)


@pytest.fixture(scope="package")
def signed_headers(stack_info: StackInfo) -> Callable[..., dict[str, str]]:
    """``signed_headers("clinic-a", "POST", url, body=b"...", headers={...})``: botocore SigV4 headers."""

    def sign(
        identity: str, method: str, url: str, *, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        who = stack_info.identity(identity)
        return sign_request(
            method,
            url,
            credentials=who.credentials(),
            region=stack_info.region,
            body=body,
            headers=headers,
        )

    return sign


@pytest.fixture(scope="package")
def aws(local_stack: LocalStack) -> Callable[[str], Any]:
    """``aws("dynamodb")``: a boto3 client of the stack's emulator."""
    emulator = local_stack.emulator
    assert emulator is not None
    return emulator.client


@pytest.fixture
def bedrock_admin(stack_info: StackInfo) -> Iterator[str]:
    """The local Bedrock's admin base URL (``/faults``, ``/stats``, ``/reset``); faults and stats are
    reset after the test."""
    yield stack_info.bedrock_admin_url
    requests.put(f"{stack_info.bedrock_admin_url}/faults", json={}, timeout=10).raise_for_status()
    requests.post(f"{stack_info.bedrock_admin_url}/reset", timeout=10).raise_for_status()
