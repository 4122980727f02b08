"""Unit tests: pure logic with fakes. Sockets are off (pytest-socket)."""

from __future__ import annotations

import os

import pytest
from pytest_socket import disable_socket

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MedsumTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "medsum-test")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture(autouse=True)
def _no_sockets() -> None:
    disable_socket(allow_unix_socket=True)
