"""Test-wide environment: Powertools settings the template gives every function, set before any
medsum module (and so Logger/Metrics/Tracer) is imported. No real AWS credentials are ever used."""

from __future__ import annotations

import os

for _name, _value in {
    "POWERTOOLS_METRICS_NAMESPACE": "MedsumTest",
    "POWERTOOLS_SERVICE_NAME": "medsum-test",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(_name, _value)
