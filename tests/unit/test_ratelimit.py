"""The local stack's token bucket (gateway stage throttling, local Bedrock ``throttle_rps``)."""

from __future__ import annotations

from medsum_local.ratelimit import TokenBucket


def test_a_full_bucket_lets_a_burst_through_then_turns_calls_away() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=1, burst=3, clock=lambda: now[0])

    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=2, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]

    now[0] += 0.5  # one token at 2 per second
    assert [bucket.take() for _ in range(2)] == [True, False]

    now[0] += 60.0  # a long pause refills to the burst only
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_a_burst_below_one_still_lets_one_call_through() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=0.5, burst=0.5, clock=lambda: now[0])

    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] += 2.0
    assert bucket.take() is True
