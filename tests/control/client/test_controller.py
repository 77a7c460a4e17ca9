"""The worker loop: outcomes of reconcile (success, temporary, permanent, crash) and running N workers after sync."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from control.client.controller import Controller, PermanentError, TemporaryError, process_next_item
from control.client.ratelimit import ItemExponentialFailureRateLimiter
from control.client.testing import FakeClock
from control.client.workqueue import RateLimitingQueue
from tests.control.client.support import eventually


def make_queue(clock: FakeClock) -> RateLimitingQueue[str]:
    return RateLimitingQueue(ItemExponentialFailureRateLimiter(base_delay=1.0, max_delay=100.0), clock=clock)


async def test_success_forgets_the_key():
    clock = FakeClock()
    queue = make_queue(clock)
    queue.rate_limiter.when("a")  # an earlier failure
    queue.add("a")
    seen = []

    async def reconcile(key):
        seen.append(key)

    assert await process_next_item(queue, reconcile)
    assert seen == ["a"]
    assert queue.num_requeues("a") == 0
    assert len(queue) == 0 and clock.pending() == []


async def test_temporary_error_with_delay_retries_after_exactly_that_delay():
    clock = FakeClock()
    queue = make_queue(clock)
    queue.add("a")

    async def reconcile(key):
        raise TemporaryError("not yet", delay=7.5)

    await process_next_item(queue, reconcile)
    assert clock.pending() == [clock.now() + 7.5]
    assert queue.num_requeues("a") == 0
    clock.advance(7.5)
    assert len(queue) == 1


async def test_temporary_error_without_delay_and_crashes_back_off(caplog):
    clock = FakeClock()
    queue = make_queue(clock)
    outcomes = [TemporaryError("busy"), RuntimeError("bug")]

    async def reconcile(key):
        raise outcomes.pop(0)

    queue.add("a")
    await process_next_item(queue, reconcile)
    assert queue.num_requeues("a") == 1 and clock.pending() == [clock.now() + 1.0]
    clock.advance(1.0)
    with caplog.at_level(logging.ERROR):
        await process_next_item(queue, reconcile)
    assert queue.num_requeues("a") == 2 and clock.pending() == [clock.now() + 2.0]
    assert "bug" in caplog.text


async def test_permanent_error_is_logged_and_forgotten(caplog):
    clock = FakeClock()
    queue = make_queue(clock)
    queue.rate_limiter.when("a")
    queue.add("a")

    async def reconcile(key):
        raise PermanentError("spec.replicas is negative")

    with caplog.at_level(logging.ERROR):
        await process_next_item(queue, reconcile, name="rs-controller")
    assert "spec.replicas is negative" in caplog.text and "rs-controller" in caplog.text
    assert queue.num_requeues("a") == 0
    assert len(queue) == 0 and clock.pending() == []


async def test_max_retries_drops_a_key_that_keeps_failing():
    clock = FakeClock()
    queue = make_queue(clock)

    async def reconcile(key):
        raise RuntimeError("always")

    queue.add("a")
    for attempt in range(3):
        await process_next_item(queue, reconcile, max_retries=2)
        if attempt < 2:
            clock.advance_to_next()
    assert clock.pending() == [] and len(queue) == 0
    assert queue.num_requeues("a") == 0


async def test_key_added_during_reconcile_is_processed_again():
    clock = FakeClock()
    queue = make_queue(clock)
    queue.add("a")

    async def reconcile(key):
        queue.add("a")  # the object changed while we worked on it

    await process_next_item(queue, reconcile)
    assert len(queue) == 1


async def test_shut_down_queue_ends_the_loop():
    queue = make_queue(FakeClock())
    queue.shutdown()

    async def reconcile(key):
        raise AssertionError("must not be called")

    assert await process_next_item(queue, reconcile) is False


async def test_cancellation_during_reconcile_still_marks_done():
    queue = make_queue(FakeClock())
    queue.add("a")
    started = asyncio.Event()

    async def reconcile(key):
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(process_next_item(queue, reconcile))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    queue.add("a")
    assert len(queue) == 1, "the key left processing, so it can be queued again"


class Gate:
    """A Syncable whose sync the test controls."""

    def __init__(self) -> None:
        self.synced = asyncio.Event()

    async def wait_for_sync(self, timeout=None) -> bool:  # noqa: ASYNC109 (the Syncable shape)
        try:
            await asyncio.wait_for(self.synced.wait(), timeout)
        except TimeoutError:
            return False
        return True


async def test_workers_start_only_after_sync_and_never_share_a_key():
    queue = make_queue(FakeClock())
    gate = Gate()
    active: set[str] = set()
    overlaps: list[str] = []
    done: list[str] = []
    release = asyncio.Event()

    async def reconcile(key):
        if key in active:
            overlaps.append(key)
        active.add(key)
        await release.wait()
        active.discard(key)
        done.append(key)

    controller = Controller("test", queue, reconcile, workers=3, informers=[gate])
    run = asyncio.create_task(controller.run())
    for key in ("a", "b", "c", "d"):
        queue.add(key)
    await asyncio.sleep(0)
    assert active == set(), "no work before the caches sync"
    gate.synced.set()
    await eventually(lambda: len(active) == 3)
    queue.add("a")  # while "a" is being worked on
    release.set()
    await eventually(lambda: len(done) == 5)
    assert sorted(done) == ["a", "a", "b", "c", "d"]
    assert overlaps == []
    queue.shutdown()
    await run


async def test_cancelling_run_shuts_the_queue_down():
    queue = make_queue(FakeClock())

    async def reconcile(key):
        return None

    controller = Controller("test", queue, reconcile, workers=2)
    run = asyncio.create_task(controller.run())
    await asyncio.sleep(0)
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    assert queue.shutting_down


async def test_sync_timeout_fails_the_run():
    queue = make_queue(FakeClock())

    async def reconcile(key):
        return None

    controller = Controller("test", queue, reconcile, informers=[Gate()], sync_timeout=0.01)
    with pytest.raises(TimeoutError, match="caches did not sync"):
        await controller.run()
    assert queue.shutting_down


def test_needs_a_worker():
    with pytest.raises(ValueError, match="workers"):
        Controller("test", make_queue(FakeClock()), None, workers=0)
