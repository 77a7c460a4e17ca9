"""Rate limiters for retries: how long to wait before an item may be tried again (client-go's
``workqueue/default_rate_limiters.go``).

Kept apart from the queue, as in client-go, so the policy can change without touching the
queue: a limiter answers ``when(item)`` (and counts that as a failure of ``item``),
``forget(item)`` (the item succeeded: start over) and ``num_requeues(item)``.

:func:`default_controller_rate_limiter` is client-go's ``DefaultControllerRateLimiter``: the
larger of a per-item exponential backoff (5 ms doubling to 1000 s) and an overall token bucket
(10 per second, bursts of 100), so one failing object backs off on its own while a storm of
failures cannot retry faster than 10 per second overall.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from control.client.clock import REAL_CLOCK, Clock


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float:
        """Seconds to wait before ``item`` may be retried; counts one more failure of it."""
        ...

    def forget(self, item: Hashable) -> None:
        """``item`` succeeded: drop what is remembered about its failures."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """How many failures of ``item`` are being counted."""
        ...


class ItemExponentialFailureRateLimiter:
    """``base_delay * 2**failures``, capped at ``max_delay``, per item."""

    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError(f"need 0 < base_delay <= max_delay, got {base_delay} and {max_delay}")
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exponent = self._failures.get(item, 0)
        self._failures[item] = exponent + 1
        if exponent >= 1024:  # 2**exponent would overflow a float; long past the cap anyway
            return self._max_delay
        return min(self._base_delay * 2.0**exponent, self._max_delay)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """A token bucket shared by all items (golang.org/x/time/rate's ``Reserve().Delay()``).

    Holds up to ``burst`` tokens, refilled at ``qps`` per second; each ``when`` takes one token,
    possibly going into debt, and the debt is the wait.
    """

    def __init__(self, *, qps: float = 10.0, burst: int = 100, clock: Clock = REAL_CLOCK) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"need qps > 0 and burst >= 1, got qps={qps} burst={burst}")
        self._qps = qps
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.now()

    def when(self, item: Hashable) -> float:
        now = self._clock.now()
        if now > self._last:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
            self._last = now
        self._tokens -= 1.0
        return -self._tokens / self._qps if self._tokens < 0 else 0.0

    def forget(self, item: Hashable) -> None:
        return None

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest wait any of several limiters asks for (every limiter counts the failure)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self._limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self._limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self._limiters)


def default_controller_rate_limiter(*, clock: Clock = REAL_CLOCK) -> MaxOfRateLimiter:
    """client-go's DefaultControllerRateLimiter: max(5 ms..1000 s per item, 10 qps / 100 burst overall)."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base_delay=0.005, max_delay=1000.0),
        BucketRateLimiter(qps=10.0, burst=100, clock=clock),
    )
