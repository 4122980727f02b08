"""A heartbeat: a short lease kept alive while the work it guards is alive.

The worker holds two leases on a report while it summarizes it: the report's ``lease_expires_at`` in
DynamoDB (no other delivery may claim it) and the work message's visibility in SQS (no other delivery
receives it). Both are short (``LeaseSeconds``) and a heartbeat moves both on every third of that,
for as long as the invocation is alive. A worker that dies stops beating, so its report is claimable
and its message visible again within about one lease, not after the queue's visibility timeout
(docs/decisions.md, "Time is a budget").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from medsum.observability import logger


class Heartbeat:
    """Calls ``beat`` every ``interval`` seconds on a daemon thread, the first time ``interval`` after
    the ``with`` block starts, until it ends (the thread is joined, so nothing runs on while a Lambda
    sandbox is frozen).

    ``beat`` must not raise; if it does, the error is logged (its type only) and the beat goes on.
    """

    def __init__(self, beat: Callable[[], None], interval: float) -> None:
        self._beat = beat
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="medsum-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._beat()
            except Exception as exc:  # a beat must never end the heartbeat
                logger.warning("heartbeat failed", error_type=type(exc).__name__)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join()
