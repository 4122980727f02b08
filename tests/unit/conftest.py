"""Unit tests: pure logic with fakes. Sockets are off (pytest-socket).

The CLI's fixtures are here too (its fake transport and builders: ``tests/support/cli.py``)."""

from __future__ import annotations

from pathlib import Path

import aws_xray_sdk.core  # noqa: F401 - creates its UDP emitter socket once, before sockets are disabled
import pytest
import requests
from medsum_cli import transport as transport_module
from medsum_cli.main import main
from medsum_cli.resources import reports as reports_module
from pytest_socket import disable_socket

from tests.support.cli import Run, write_local_stack
from tests.support.clock import FakeClock


@pytest.fixture(autouse=True)
def _no_sockets() -> None:
    disable_socket(allow_unix_socket=True)


# --------------------------------------------------------------------------------------------------
# The medsum CLI (modules: ``pytestmark = pytest.mark.usefixtures("isolated_env")``)
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ambient AWS configuration, no instance metadata, no MEDSUM_API_URL; cwd is an empty dir."""
    for name in (
        "MEDSUM_API_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at the console width; keep lines whole
    workdir = tmp_path / "empty"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    # Polls and retries do not sleep in tests.
    monkeypatch.setattr(reports_module, "DEFAULT_POLL_INTERVAL", 0.0)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a running local stack; the cwd is a nested directory of it."""
    root = tmp_path / "project"
    write_local_stack(root)
    nested = root / "reports" / "2026"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    return nested


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """``run(argv, session)``: ``medsum`` with ``argv`` over ``session``; (exit code, stdout, stderr)."""

    def _run(argv: list[str], session: requests.Session | None = None) -> tuple[int, str, str]:
        code = main(argv, session=session)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return _run


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The CLI's transport waits and times out on a :class:`FakeClock` (sleeping returns at once), on
    a terminal that is not forced to be one."""
    fake = FakeClock()
    monkeypatch.setattr(transport_module, "time", fake)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return fake
