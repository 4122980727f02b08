"""Helpers for tests that talk to a running local stack: SigV4-signed HTTP calls and polling.

Requests are signed by the CLI's signer, :func:`medsum_cli.signing.sign_request` (botocore's own
``SigV4Auth``, exactly like any AWS SDK client calling API Gateway would); it is re-exported here.
"""

from __future__ import annotations

import json as jsonlib
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests
from medsum_cli.signing import sign_request

from medsum_local.identities import Identity
from medsum_local.stack import LocalStackConfig, StackInfo

__all__ = ["ApiClient", "isolated_config", "run_cli", "sign_request", "wait_for"]

T = TypeVar("T")


class ApiClient:
    """Call the local API as one of the stack's identities (or unsigned).

    Parameters
    ----------
    info
        The running stack.
    identity
        Default identity name (``clinic-a``); None sends unsigned requests by default.

    Examples
    --------
    >>> api = ApiClient(info)                                           # doctest: +SKIP
    >>> api.post("/summarize", json={...}).status_code                  # doctest: +SKIP
    202
    >>> api.get("/reports/x", identity="clinic-b").status_code          # doctest: +SKIP
    404
    """

    def __init__(self, info: StackInfo, identity: str | None = "clinic-a", *, timeout: float = 30.0) -> None:
        self.info = info
        self.identity = identity
        self.timeout = timeout
        self.session = requests.Session()

    def _identity(self, identity: str | Identity | None) -> Identity | None:
        if identity is None or isinstance(identity, Identity):
            return identity
        return self.info.identity(identity)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        identity: str | Identity | None = "default",
    ) -> requests.Response:
        """Send a request (signed by ``identity``; ``identity=None`` for unsigned)."""
        prepared_headers = dict(headers or {})
        if json is not None:
            body = jsonlib.dumps(json).encode()
            prepared_headers.setdefault("Content-Type", "application/json")
        elif isinstance(data, str):
            body = data.encode()
        else:
            body = data or b""
        prepared = self.session.prepare_request(
            requests.Request(
                method,
                self.info.api_url + path,
                params=dict(params or {}),
                headers=prepared_headers,
                data=body,
            )
        )
        who = self._identity(self.identity if identity == "default" else identity)
        if who is not None:
            assert prepared.url is not None
            prepared.headers.update(
                sign_request(
                    method,
                    prepared.url,
                    credentials=who.credentials(),
                    region=self.info.region,
                    body=body,
                    headers=prepared_headers,
                )
            )
        return self.session.send(prepared, timeout=self.timeout)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """``GET path``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """``POST path``."""
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        """``DELETE path``."""
        return self.request("DELETE", path, **kwargs)


def wait_for(
    probe: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.2, message: str = "condition"
) -> T:
    """Call ``probe`` until it returns something truthy; return it, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


def isolated_config(
    project_root: Path,
    state_dir: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> LocalStackConfig:
    """A local stack that runs next to any other: every port chosen by the OS, no Bedrock faults
    (a test or bench sets its own), and its state file in ``state_dir/.medsum/`` (none without).

    ``environ`` and ``overrides`` as :meth:`LocalStackConfig.from_env` (``environ`` default: this
    process's environment; ``{}`` for none of it).
    """
    place: dict[str, Any] = (
        {"state_file": state_dir / ".medsum" / "local-stack.json"}
        if state_dir is not None
        else {"write_state_file": False}
    )
    return LocalStackConfig.from_env(
        environ,
        project_root=project_root,
        api_port=0,
        emulator_port=0,
        bedrock_port=0,
        bedrock_faults={},
        **{**place, **overrides},
    )


def run_cli(project: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``medsum *args`` as a user would, in a process of its own, from ``project`` (where it finds
    the stack's state file); its exit code and output (text), whatever the exit code."""
    return subprocess.run(  # noqa: S603 - this interpreter and the test's or bench's own arguments
        [sys.executable, "-m", "medsum_cli.main", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
