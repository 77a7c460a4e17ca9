"""The work queue's client-go semantics: dedup, dirty/processing, done re-queue, shutdown, delays, rate limiting."""

from __future__ import annotations

import asyncio

import pytest

from control.client.ratelimit import ItemExponentialFailureRateLimiter
from control.client.testing import FakeClock
from control.client.workqueue import DelayingQueue, QueueShutDown, RateLimitingQueue, WorkQueue


async def test_add_deduplicates_waiting_keys_and_keeps_fifo_order():
    queue: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "c", "b"):
        queue.add(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]
    assert len(queue) == 0


async def test_key_added_while_processing_is_held_until_done_then_requeued_once():
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0, "a key being processed must not be handed to a second worker"
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "a"
    queue.done("a")
    assert len(queue) == 0


async def test_done_without_new_add_does_not_requeue():
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.done(await queue.get())
    assert len(queue) == 0


async def test_get_waits_for_an_add():
    queue: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.add("x")
    assert await getter == "x"


async def test_two_waiting_workers_each_get_a_different_key():
    queue: WorkQueue[str] = WorkQueue()
    first, second = asyncio.create_task(queue.get()), asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("a")
    queue.add("b")
    assert sorted(await asyncio.gather(first, second)) == ["a", "b"]


async def test_cancelled_getter_passes_its_wake_up_on():
    queue: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("a")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    assert await second == "a"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_shutdown_ignores_adds_hands_out_queued_keys_then_raises():
    queue: WorkQueue[str] = WorkQueue(name="test")
    queue.add("a")
    queue.shutdown()
    queue.add("b")
    assert queue.shutting_down
    assert await queue.get() == "a"
    with pytest.raises(QueueShutDown):
        await queue.get()


async def test_shutdown_wakes_waiting_workers():
    queue: WorkQueue[str] = WorkQueue()
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.shutdown()
    with pytest.raises(QueueShutDown):
        await waiting


async def test_done_after_shutdown_still_requeues_a_dirty_key():
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    await queue.get()
    queue.add("a")
    queue.shutdown()
    queue.done("a")
    assert await queue.get() == "a"


async def test_shutdown_with_drain_waits_for_keys_in_processing():
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    drain = asyncio.create_task(queue.shutdown_with_drain())
    await asyncio.sleep(0)
    assert not drain.done()
    queue.add("b")
    assert len(queue) == 0, "adds are ignored while draining"
    queue.done(key)
    await drain


async def test_shutdown_with_drain_returns_at_once_when_idle():
    queue: WorkQueue[str] = WorkQueue()
    await queue.shutdown_with_drain()
    assert queue.shutting_down


async def test_shutdown_ends_a_drain_that_waits_forever():
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    await queue.get()
    drain = asyncio.create_task(queue.shutdown_with_drain())
    await asyncio.sleep(0)
    queue.shutdown()
    await drain


async def test_add_after_makes_the_key_ready_only_when_the_delay_passes():
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    queue.add_after("a", 5.0)
    assert len(queue) == 0 and queue.waiting() == 1
    clock.advance(4.999)
    assert len(queue) == 0
    clock.advance(0.001)
    assert len(queue) == 1 and queue.waiting() == 0
    assert await queue.get() == "a"


async def test_add_after_keeps_the_earlier_ready_time():
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    queue.add_after("a", 10.0)
    queue.add_after("a", 2.0)
    queue.add_after("a", 7.0)
    assert queue.waiting() == 1
    clock.advance(2.0)
    assert len(queue) == 1
    queue.done(await queue.get())
    clock.advance(20.0)
    assert len(queue) == 0, "the superseded later entries must not fire"


async def test_delayed_keys_come_out_in_ready_order():
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    queue.add_after("late", 3.0)
    queue.add_after("early", 1.0)
    queue.add_after("middle", 2.0)
    clock.advance(3.0)
    assert [await queue.get() for _ in range(3)] == ["early", "middle", "late"]


async def test_add_after_zero_or_negative_adds_at_once():
    queue: DelayingQueue[str] = DelayingQueue(clock=FakeClock())
    queue.add_after("a", 0)
    queue.add_after("b", -1)
    assert len(queue) == 2


async def test_delayed_key_dedups_with_a_waiting_key():
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    queue.add("a")
    queue.add_after("a", 1.0)
    clock.advance(1.0)
    assert len(queue) == 1


async def test_shutdown_cancels_pending_delays():
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    queue.add_after("a", 1.0)
    queue.shutdown()
    queue.add_after("b", 1.0)
    assert clock.pending() == []
    clock.advance(5.0)
    assert len(queue) == 0


async def test_delayed_key_wakes_a_waiting_worker():
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    getter = asyncio.create_task(queue.get())
    queue.add_after("a", 1.0)
    await asyncio.sleep(0)
    assert not getter.done()
    clock.advance(1.0)
    assert await getter == "a"


async def test_rate_limited_adds_back_off_per_key_and_forget_resets():
    clock = FakeClock()
    limiter = ItemExponentialFailureRateLimiter(base_delay=1.0, max_delay=60.0)
    queue: RateLimitingQueue[str] = RateLimitingQueue(limiter, clock=clock)
    queue.add_rate_limited("a")  # 1 s
    assert queue.num_requeues("a") == 1
    clock.advance(1.0)
    queue.done(await queue.get())
    queue.add_rate_limited("a")  # 2 s
    clock.advance(1.999)
    assert len(queue) == 0
    clock.advance(0.001)
    assert await queue.get() == "a"
    assert queue.num_requeues("a") == 2
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    queue.done("a")
    queue.add_rate_limited("a")
    clock.advance(1.0)
    assert len(queue) == 1


async def test_default_rate_limiter_starts_at_five_milliseconds():
    clock = FakeClock()
    queue: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    queue.add_rate_limited("a")
    assert clock.pending() == [pytest.approx(clock.now() + 0.005)]
    clock.advance(0.005)
    assert len(queue) == 1
