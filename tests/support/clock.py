"""The one fake clock of the test suite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: Where a :class:`FakeClock` starts unless told otherwise.
START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class FakeClock:
    """Wall time and monotonic time that move together, and only when a test advances them or the
    code under test sleeps (which returns at once).

    It stands in for every clock the code takes: call it for the UTC ``datetime`` (the ``Clock`` of
    the domain's deps), ``monotonic()`` and ``sleep()`` for pacing and polling, or pass it where a
    ``time`` module is expected.

    Examples
    --------
    >>> clock = FakeClock()
    >>> clock.sleep(1.5); clock.advance(2)
    >>> clock.sleeps, clock.monotonic(), clock().isoformat()
    ([1.5], 1003.5, '2026-11-26T12:00:03.500000+00:00')
    """

    def __init__(self, start: datetime = START, monotonic: float = 1000.0) -> None:
        self.now = start
        self._monotonic = monotonic
        #: Every ``sleep`` the code under test asked for, in order.
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (``time.monotonic``)."""
        return self._monotonic

    def time(self) -> float:
        """Seconds since the epoch (``time.time``)."""
        return self.now.timestamp()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass without anyone sleeping (slow work, another process's time)."""
        assert seconds >= 0, "a clock does not go back"
        self.now += timedelta(seconds=seconds)
        self._monotonic += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and let its time pass, at once."""
        self.sleeps.append(seconds)
        self.advance(seconds)

    @property
    def slept(self) -> float:
        """The seconds slept in all."""
        return sum(self.sleeps)
