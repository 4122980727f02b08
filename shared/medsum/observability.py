"""Logger, Tracer and Metrics, created once per process.

Service names and namespace come from the Powertools environment set by ``template.yaml``
(``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``). Nothing here may log report text:
log static lowercase messages with ids and sizes as structured keys.

Tracing costs nothing when it is off (docs/decisions.md, "Cold start"): Powertools' Tracer imports the
X-Ray SDK (and its recorder) even when disabled, so when ``POWERTOOLS_TRACE_DISABLED`` is true (the
template's ``FunctionTracing=Disabled``, the local stack, tests) or the process is not a Lambda
function, the Tracer gets a provider that does nothing and the SDK is never imported. When on, only
botocore is patched: the one traced library the functions use (Powertools' default, ``patch_all``, would
also import and patch whatever else happens to be installed).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

#: What the X-Ray SDK patches when tracing is on: the AWS calls (subsegments per DynamoDB/SQS/... call).
TRACED_MODULES = ("botocore",)


class _NoSegment(BaseSegment):
    """A trace segment that records nothing."""

    def close(self, end_time: int | None = None) -> None:
        """Nothing to close."""

    def add_subsegment(self, subsegment: Any) -> None:
        """Nothing is recorded."""

    def remove_subsegment(self, subsegment: Any) -> None:
        """Nothing is recorded."""

    def put_annotation(self, key: str, value: Any) -> None:
        """Nothing is recorded."""

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        """Nothing is recorded."""

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        """Nothing is recorded."""


class NoTracing(BaseProvider):
    """The Tracer's provider when tracing is off: no X-Ray SDK, no segments, no patching."""

    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _NoSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> AsyncGenerator[BaseSegment, None]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: Any) -> None:
        """Nothing is recorded."""

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        """Nothing is recorded."""

    def patch(self, modules: Sequence[str]) -> None:
        """Nothing is patched."""

    def patch_all(self) -> None:
        """Nothing is patched."""


def tracing_enabled() -> bool:
    """Whether this process traces: on Lambda (``LAMBDA_TASK_ROOT``), not in an emulator (SAM CLI,
    Chalice) and ``POWERTOOLS_TRACE_DISABLED`` not true; the conditions under which Powertools' own
    Tracer would be live."""
    disabled = resolve_truthy_env_var_choice(env=os.getenv(constants.TRACER_DISABLED_ENV, "false"))
    emulated = os.getenv(constants.SAM_LOCAL_ENV) or os.getenv(constants.CHALICE_LOCAL_ENV)
    return bool(os.getenv(constants.LAMBDA_TASK_ROOT_ENV)) and not emulated and not disabled


def _tracer() -> Tracer:
    if tracing_enabled():
        return Tracer(patch_modules=TRACED_MODULES)
    return Tracer(provider=NoTracing(), disabled=True, auto_patch=False)


logger = Logger()
tracer = _tracer()
metrics = Metrics()


def safe_exception_fields(exc: BaseException) -> dict[str, object]:
    """Loggable facts about an exception without its message (which could echo request data):
    the type and the innermost frames as ``file:line in function``."""
    frames = traceback.extract_tb(exc.__traceback__)[-8:]
    return {
        "error_type": type(exc).__name__,
        "frames": [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} in {f.name}" for f in frames],
    }
