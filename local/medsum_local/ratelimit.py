"""The token bucket both local throttles use: the gateway's stage throttling and the local Bedrock's.

This module imports the standard library only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second on average, bursts up to ``burst`` (at least one); never blocks.

    The bucket starts full and refills continuously; :meth:`take` answers at once whether a token was
    left, so a caller turns an over-rate request away instead of waiting (API Gateway's ``429``,
    Bedrock's ``ThrottlingException``). Thread-safe.

    Parameters
    ----------
    rate
        Tokens added per second.
    burst
        The bucket's capacity; values below one count as one.
    clock
        Seconds from a monotonic clock (``time.monotonic`` unless a test passes its own).
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = float(rate)
        self._capacity = max(1.0, float(burst))
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Consume one token; False means the call is over the rate (throttled)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False
