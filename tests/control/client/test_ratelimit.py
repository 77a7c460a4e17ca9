"""Rate limiters: per-item exponential backoff, token bucket, max-of, and client-go's default."""

from __future__ import annotations

import pytest

from control.client.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)
from control.client.testing import FakeClock


def test_exponential_doubles_per_item_up_to_the_cap():
    limiter = ItemExponentialFailureRateLimiter(base_delay=0.005, max_delay=1.0)
    delays = [limiter.when("a") for _ in range(10)]
    assert delays[:8] == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64])
    assert delays[8:] == [1.0, 1.0]
    assert limiter.num_requeues("a") == 10
    assert limiter.when("b") == pytest.approx(0.005), "other items have their own count"


def test_exponential_forget_starts_over():
    limiter = ItemExponentialFailureRateLimiter(base_delay=0.5, max_delay=100.0)
    limiter.when("a")
    limiter.when("a")
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.5
    limiter.forget("never-seen")  # no error


def test_exponential_does_not_overflow_after_many_failures():
    limiter = ItemExponentialFailureRateLimiter(base_delay=0.005, max_delay=1000.0)
    for _ in range(2000):
        delay = limiter.when("a")
    assert delay == 1000.0


@pytest.mark.parametrize(("base", "maximum"), [(0, 1), (-1, 1), (2, 1)])
def test_exponential_rejects_bad_delays(base, maximum):
    with pytest.raises(ValueError, match="base_delay"):
        ItemExponentialFailureRateLimiter(base_delay=base, max_delay=maximum)


def test_bucket_allows_a_burst_then_spaces_by_qps():
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10.0, burst=3, clock=clock)
    assert [limiter.when(i) for i in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.when(3) == pytest.approx(0.1)
    assert limiter.when(4) == pytest.approx(0.2)
    assert limiter.num_requeues(3) == 0


def test_bucket_refills_with_time_but_not_beyond_burst():
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10.0, burst=2, clock=clock)
    limiter.when("a")
    limiter.when("b")
    clock.advance(100.0)
    assert [limiter.when(i) for i in range(3)] == [0.0, 0.0, pytest.approx(0.1)]


@pytest.mark.parametrize(("qps", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_bucket_rejects_bad_settings(qps, burst):
    with pytest.raises(ValueError, match="qps"):
        BucketRateLimiter(qps=qps, burst=burst, clock=FakeClock())


def test_max_of_takes_the_longest_wait_and_forgets_everywhere():
    slow = ItemExponentialFailureRateLimiter(base_delay=1.0, max_delay=100.0)
    fast = ItemExponentialFailureRateLimiter(base_delay=0.1, max_delay=100.0)
    limiter = MaxOfRateLimiter(fast, slow)
    assert limiter.when("a") == 1.0
    assert limiter.when("a") == 2.0
    assert limiter.num_requeues("a") == 2
    limiter.forget("a")
    assert slow.num_requeues("a") == fast.num_requeues("a") == 0


def test_max_of_needs_a_limiter():
    with pytest.raises(ValueError):
        MaxOfRateLimiter()


def test_default_controller_rate_limiter_combines_item_backoff_and_bucket():
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock=clock)
    assert limiter.when("a") == pytest.approx(0.005)
    assert limiter.when("a") == pytest.approx(0.01)
    for i in range(98):  # the bucket's burst of 100 is now used up
        limiter.when(f"other-{i}")
    assert limiter.when("fresh") == pytest.approx(0.1), "the overall 10 qps limit applies"
