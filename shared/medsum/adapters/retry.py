"""Retries of what a batched AWS call leaves undone (``UnprocessedItems`` of ``BatchWriteItem``,
``UnprocessedKeys`` of ``BatchGetItem``, the ``Failed`` entries of ``SendMessageBatch``).

A batched call can succeed and still leave part of its request unprocessed (throttling): only that part
is sent again, after a full-jitter exponential backoff (tenacity's ``wait_random_exponential``), until
nothing is left or the attempts run out. Whatever is still left then is returned to the caller, which
turns it into its own error: nothing is dropped silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tenacity import RetryCallState

#: First backoff window and its cap, in seconds: the n-th wait is uniform in [0, min(2, 0.05 * 2**(n-1))].
FIRST_WAIT_SECONDS = 0.05
MAX_WAIT_SECONDS = 2.0

Pending = TypeVar("Pending", bound=Collection[object])


def retry_unprocessed(
    send: Callable[[Pending], Pending],
    pending: Pending,
    attempts: int,
    sleep: Callable[[float], None] = time.sleep,
) -> Pending:
    """Call ``send(pending)`` — which returns what it left unprocessed — again with only what is left,
    at most ``attempts`` times in all, backing off between calls; return what is still left (empty
    when everything went through). An exception raised by ``send`` ends the retries at once and
    propagates unchanged (``send`` catches what it wants retried and returns its request instead).

    Parameters
    ----------
    send:
        One batched call: takes a request, returns the part of it that was not processed.
    pending:
        The first request.
    attempts:
        Calls at most, the first included.
    sleep:
        How to wait (tests inject one that does not sleep).
    """
    # Imported here: only the batched paths pay for tenacity at cold start (BENCHMARKS.md, "Cold start").
    from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_random_exponential

    left = pending

    def once() -> Pending:
        nonlocal left
        left = send(left)
        return left

    def give_up(state: RetryCallState) -> Pending:
        return left

    retrying = Retrying(
        retry=retry_if_result(bool),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=FIRST_WAIT_SECONDS, max=MAX_WAIT_SECONDS),
        sleep=sleep,
        retry_error_callback=give_up,
    )
    result: Pending = retrying(once)
    return result
