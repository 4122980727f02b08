"""Logger, Tracer and Metrics, created once per process.

Service names and namespace come from the Powertools environment set by ``template.yaml``
(``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``). Nothing here may log report text:
log static lowercase messages with ids and sizes as structured keys.
"""

from __future__ import annotations

import traceback

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def safe_exception_fields(exc: BaseException) -> dict[str, object]:
    """Loggable facts about an exception without its message (which could echo request data):
    the type and the innermost frames as ``file:line in function``."""
    frames = traceback.extract_tb(exc.__traceback__)[-8:]
    return {
        "error_type": type(exc).__name__,
        "frames": [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} in {f.name}" for f in frames],
    }
