"""The workqueue's metrics hook: what each metric reads after adds, gets, dones and retries, on a
fake clock, counted as client-go's defaultQueueMetrics does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from control.client.testing import FakeClock
from control.client.workqueue import (
    UNFINISHED_WORK_UPDATE_PERIOD,
    DelayingQueue,
    RateLimitingQueue,
    WorkQueue,
    set_metrics_provider,
)


class Value:
    def __init__(self) -> None:
        self.value = 0.0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1

    def set(self, value: float) -> None:
        self.value = value


class Observations:
    def __init__(self) -> None:
        self.values: list[float] = []

    def observe(self, value: float) -> None:
        self.values.append(value)


class RecordingProvider:
    """Hands out plain recorders and keeps them by queue name."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.depth: dict[str, Value] = {}
        self.adds: dict[str, Value] = {}
        self.latency: dict[str, Observations] = {}
        self.work_duration: dict[str, Observations] = {}
        self.unfinished: dict[str, Value] = {}
        self.longest: dict[str, Value] = {}
        self.retries: dict[str, Value] = {}

    def new_depth_metric(self, name: str) -> Value:
        self.names.append(name)
        return self.depth.setdefault(name, Value())

    def new_adds_metric(self, name: str) -> Value:
        return self.adds.setdefault(name, Value())

    def new_latency_metric(self, name: str) -> Observations:
        return self.latency.setdefault(name, Observations())

    def new_work_duration_metric(self, name: str) -> Observations:
        return self.work_duration.setdefault(name, Observations())

    def new_unfinished_work_seconds_metric(self, name: str) -> Value:
        return self.unfinished.setdefault(name, Value())

    def new_longest_running_processor_seconds_metric(self, name: str) -> Value:
        return self.longest.setdefault(name, Value())

    def new_retries_metric(self, name: str) -> Value:
        return self.retries.setdefault(name, Value())


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def no_global_provider() -> Iterator[None]:
    yield
    set_metrics_provider(None)


async def test_adds_count_only_keys_that_were_not_already_waiting(provider, clock):
    queue: WorkQueue[str] = WorkQueue(name="deployment", clock=clock, metrics_provider=provider)
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert provider.adds["deployment"].value == 2
    assert provider.depth["deployment"].value == 2


async def test_get_records_the_time_in_queue_from_the_first_add(provider, clock):
    queue: WorkQueue[str] = WorkQueue(name="q", clock=clock, metrics_provider=provider)
    queue.add("a")
    clock.advance(2.0)
    queue.add("a")  # deduplicated: the wait still counts from the first add
    clock.advance(1.0)
    assert await queue.get() == "a"
    assert provider.latency["q"].values == [3.0]
    assert provider.depth["q"].value == 0


async def test_done_records_the_work_duration(provider, clock):
    queue: WorkQueue[str] = WorkQueue(name="q", clock=clock, metrics_provider=provider)
    queue.add("a")
    key = await queue.get()
    clock.advance(0.25)
    queue.done(key)
    assert provider.work_duration["q"].values == [0.25]
    queue.done(key)  # a second done for the same key has nothing left to measure
    assert provider.work_duration["q"].values == [0.25]


async def test_a_key_added_while_processed_counts_in_depth_at_once(provider, clock):
    queue: WorkQueue[str] = WorkQueue(name="q", clock=clock, metrics_provider=provider)
    queue.add("a")
    key = await queue.get()
    clock.advance(1.0)
    queue.add("a")
    assert provider.depth["q"].value == 1  # dirty, though not handed out before done
    assert provider.adds["q"].value == 2
    clock.advance(1.0)
    queue.done(key)
    clock.advance(0.5)
    assert await queue.get() == "a"
    assert provider.latency["q"].values == [0.0, 1.5]  # from the second add
    assert provider.depth["q"].value == 0


async def test_unfinished_work_is_refreshed_while_keys_are_processed(provider, clock):
    queue: WorkQueue[str] = WorkQueue(name="q", clock=clock, metrics_provider=provider)
    queue.add("a")
    queue.add("b")
    first = await queue.get()
    clock.advance(0.2)
    second = await queue.get()
    clock.advance(UNFINISHED_WORK_UPDATE_PERIOD - 0.2)  # the first refresh, 0.5 s after the first get
    assert provider.unfinished["q"].value == pytest.approx(0.5 + 0.3)
    assert provider.longest["q"].value == pytest.approx(0.5)
    clock.advance(UNFINISHED_WORK_UPDATE_PERIOD)
    assert provider.unfinished["q"].value == pytest.approx(1.0 + 0.8)
    assert provider.longest["q"].value == pytest.approx(1.0)
    queue.done(first)
    queue.done(second)
    clock.advance(UNFINISHED_WORK_UPDATE_PERIOD)
    assert provider.unfinished["q"].value == 0
    assert provider.longest["q"].value == 0
    assert clock.pending() == []  # nothing in progress: the refresh stops


async def test_shutdown_stops_the_unfinished_work_refresh(provider, clock):
    queue: WorkQueue[str] = WorkQueue(name="q", clock=clock, metrics_provider=provider)
    queue.add("a")
    await queue.get()
    assert clock.pending() == [clock.now() + UNFINISHED_WORK_UPDATE_PERIOD]
    queue.shutdown()
    assert clock.pending() == []


async def test_every_add_after_counts_as_a_retry(provider, clock):
    queue: DelayingQueue[str] = DelayingQueue(name="q", clock=clock, metrics_provider=provider)
    queue.add_after("a", 1.0)
    queue.add_after("a", 0.0)  # at once: still a retry, and an add
    assert provider.retries["q"].value == 2
    assert provider.adds["q"].value == 1
    queue.shutdown()
    queue.add_after("b", 1.0)  # ignored once shutting down, and not counted
    assert provider.retries["q"].value == 2


async def test_rate_limited_adds_are_retries_and_count_as_adds_when_ready(provider, clock):
    queue: RateLimitingQueue[str] = RateLimitingQueue(name="job", clock=clock, metrics_provider=provider)
    queue.add_rate_limited("a")
    queue.add_rate_limited("a")
    assert provider.retries["job"].value == 2
    assert provider.adds["job"].value == 0  # still waiting out the backoff
    clock.advance(1.0)
    assert provider.adds["job"].value == 1
    assert provider.depth["job"].value == 1
    queue.shutdown()


async def test_a_plain_queue_has_no_retries_metric(provider, clock):
    WorkQueue(name="plain", clock=clock, metrics_provider=provider)
    assert provider.names == ["plain"]
    assert "plain" not in provider.retries


async def test_the_installed_provider_reaches_queues_built_after_it(provider, clock, no_global_provider):
    before: WorkQueue[str] = WorkQueue(name="before", clock=clock)
    set_metrics_provider(provider)
    after: WorkQueue[str] = WorkQueue(name="after", clock=clock)
    before.add("a")
    after.add("a")
    assert provider.names == ["after"]
    assert provider.adds["after"].value == 1
    set_metrics_provider(None)
    WorkQueue(name="later", clock=clock)
    assert provider.names == ["after"]


async def test_a_queue_of_its_own_provider_ignores_the_installed_one(provider, clock, no_global_provider):
    installed = RecordingProvider()
    set_metrics_provider(installed)
    queue: WorkQueue[str] = WorkQueue(name="own", clock=clock, metrics_provider=provider)
    queue.add("a")
    assert provider.adds["own"].value == 1
    assert installed.names == []


async def test_without_a_provider_a_queue_keeps_no_metrics(clock, no_global_provider):
    set_metrics_provider(None)
    queue: RateLimitingQueue[str] = RateLimitingQueue(name="q", clock=clock)
    queue.add("a")
    key = await queue.get()
    assert clock.pending() == []  # no unfinished-work refresh is scheduled
    queue.done(key)
    queue.add_rate_limited("a")
    assert clock.pending() == [clock.now() + 0.005]  # only the backoff
    queue.shutdown()
