"""Unit tests: pure logic with fakes. Sockets are off (pytest-socket)."""

from __future__ import annotations

import aws_xray_sdk.core  # noqa: F401 - creates its UDP emitter socket once, before sockets are disabled
import pytest
from pytest_socket import disable_socket


@pytest.fixture(autouse=True)
def _no_sockets() -> None:
    disable_socket(allow_unix_socket=True)
