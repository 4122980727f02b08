"""``Idempotency-Key``: Powertools' idempotency utility, keyed on (owner, key), its errors ours.

The same key from the same owner with the same request within 24 hours answers what the first call
answered and does nothing again; with a different request, ``422 idempotency_key_reused``; while the
first call still runs, ``409 request_in_progress`` (docs/decisions.md, 2026-11-26).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from medsum.errors import IdempotencyKeyReusedError, RequestInProgressError

TTL_SECONDS = 24 * 3600
#: ``command`` is ``{"owner", "key", "request"}``: the key is (owner, key), the payload hash covers
#: ``request`` (the validated body, or the digest of a raw one).
CONFIG = IdempotencyConfig(
    event_key_jmespath="[owner, key]",
    payload_validation_jmespath="request",
    expires_after_seconds=TTL_SECONDS,
    raise_on_no_idempotency_key=True,
)

Command = dict[str, Any]


def at_most_once(
    work: Callable[..., dict[str, Any]],
    store: BasePersistenceLayer,
    command: Command,
    **kwargs: Any,
) -> dict[str, Any]:
    """``work(command=command, **kwargs)`` once per (owner, key); its (JSON) result is replayed.

    Raises
    ------
    IdempotencyKeyReusedError
        The key was used with another request.
    RequestInProgressError
        The first call with this key is still running.
    """
    once = idempotent_function(data_keyword_argument="command", persistence_store=store, config=CONFIG)(work)
    try:
        result: dict[str, Any] = once(command=command, **kwargs)
    except IdempotencyValidationError as exc:
        raise IdempotencyKeyReusedError("idempotency key reused") from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise RequestInProgressError("request in progress") from exc
    return result
