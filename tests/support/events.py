"""Builders of AWS-shaped Lambda events, a Lambda context and the handlers as tests call them.

They live in :mod:`medsum_local.inprocess` (the benchmarks that run the application in-process use
them too); this is the tests' one place to import them from.
"""

from __future__ import annotations

from medsum_local.inprocess import (
    ACCOUNT,
    CLINIC_A,
    CLINIC_B,
    OPERATOR,
    ROOT,
    FakeLambdaContext,
    Handler,
    admin_handler,
    api_event,
    api_handler,
    ingest_handler,
    load_function,
    notifier_handler,
    sqs_event,
    sqs_record,
    worker_handler,
)

__all__ = [
    "ACCOUNT",
    "CLINIC_A",
    "CLINIC_B",
    "OPERATOR",
    "ROOT",
    "FakeLambdaContext",
    "Handler",
    "admin_handler",
    "api_event",
    "api_handler",
    "ingest_handler",
    "load_function",
    "notifier_handler",
    "sqs_event",
    "sqs_record",
    "worker_handler",
]
