"""Validation problems, described without echoing the client's input.

Pydantic reports where a value failed as a path (``loc``) made of the client's own keys: the name of an
unexpected body field, a ``metadata`` key. A key can carry patient data, and error bodies end up in
client logs, so a location keeps only names this service defines (its models' fields and its
parameters) and array indexes; any other segment becomes ``*``, and an unexpected field is reported at
its parent as ``unknown field``, without its name. Problems are pydantic's messages, which describe the
rule (pattern, length, allowed values), never the input.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from medsum import models

#: Where a value came from, as Powertools names it, and pydantic's marker of a mapping key.
_PLACES = frozenset({"body", "query", "path", "header", "cookie", "[key]"})
#: Parameters of the routes (path, query and header names).
PARAMETER_NAMES = frozenset(
    {
        "report_id",
        "patient_id",
        "batch_id",
        "webhook_id",
        "delivery_id",
        "job_id",
        "limit",
        "next_token",
        "error_code",
        "older_than",
        "Idempotency-Key",
    }
)


def _model_field_names() -> frozenset[str]:
    names: set[str] = set()
    for _, model in inspect.getmembers(models, inspect.isclass):
        if issubclass(model, BaseModel) and model is not BaseModel:
            for name, info in model.model_fields.items():
                names.add(name)
                if info.alias:
                    names.add(info.alias)
    return frozenset(names)


KNOWN_NAMES = _model_field_names() | PARAMETER_NAMES | _PLACES


def safe_location(loc: Sequence[Any], error_type: str = "") -> str:
    """``("body", "metadata", "<a client key>")`` -> ``"body.metadata.*"``; an ``extra_forbidden``
    error is located at the unexpected field's parent."""
    parts = list(loc)
    if error_type == "extra_forbidden" and parts:
        parts = parts[:-1]
    return ".".join(str(p) if isinstance(p, int) or p in KNOWN_NAMES else "*" for p in parts)


def safe_problem(error: Mapping[str, Any]) -> str:
    """The rule a value broke, in pydantic's words (which never quote the input)."""
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    return str(error.get("msg", "invalid"))


def problems(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """``[{"location", "problem"}]`` of pydantic errors, deduplicated, in order."""
    seen: dict[tuple[str, str], None] = {}
    for error in errors:
        seen.setdefault(
            (safe_location(error.get("loc", ()), str(error.get("type", ""))), safe_problem(error))
        )
    return [{"location": location, "problem": problem} for location, problem in seen]
