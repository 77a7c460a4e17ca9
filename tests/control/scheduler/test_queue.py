"""The scheduling queue: priority order, backoff, unschedulable pods moved by events, gates, closing."""

from __future__ import annotations

import asyncio

import pytest

from control.client.testing import FakeClock
from control.scheduler.queue import QueueClosed, SchedulingQueue

FIT = frozenset({"NodeResourcesFit"})
AFFINITY = frozenset({"InterPodAffinity"})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock):
    q = SchedulingQueue(clock=clock)
    yield q
    q.close()


async def pop_now(queue: SchedulingQueue) -> str:
    return (await asyncio.wait_for(queue.pop(), timeout=1)).key


def test_backoff_durations():
    queue = SchedulingQueue(clock=FakeClock())
    assert [queue.backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    queue.close()
    with pytest.raises(ValueError, match="backoff"):
        SchedulingQueue(clock=FakeClock(), initial_backoff=5, max_backoff=1)


async def test_priority_then_age(queue, clock):
    queue.add("ns/low", priority=0)
    clock.advance(1)
    queue.add("ns/high", priority=100)
    queue.add("ns/low2", priority=0)
    queue.add("ns/low", priority=50)  # already queued: ignored
    assert [await pop_now(queue) for _ in range(3)] == ["ns/high", "ns/low", "ns/low2"]


async def test_a_priority_change_reorders(queue):
    queue.add("ns/a")
    queue.add("ns/b")
    queue.update("ns/b", priority=10)
    assert await pop_now(queue) == "ns/b"


async def test_pop_waits_for_a_pod(queue):
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.add("ns/a")
    assert (await asyncio.wait_for(waiter, 1)).key == "ns/a"


async def test_attempts_count_pops(queue, clock):
    queue.add("ns/a")
    popped = await queue.pop()
    assert popped.attempts == 1
    queue.requeue_backoff(popped)
    clock.advance(1)
    assert (await queue.pop()).attempts == 2


async def test_backoff_then_active(queue, clock):
    queue.add("ns/a")
    popped = await queue.pop()
    queue.requeue_backoff(popped)
    assert queue.counts()["backoff"] == 1
    clock.advance(0.9)
    assert queue.counts()["backoff"] == 1
    clock.advance(0.1)
    assert queue.counts() == {"active": 1, "backoff": 0, "unschedulable": 0, "gated": 0}
    popped = await pop_now(queue)
    assert popped == "ns/a"


async def test_backoff_timers_follow_the_earliest_expiry(queue, clock):
    for key in ("ns/a", "ns/b"):
        queue.add(key)
    first = await queue.pop()
    first.attempts = 3  # 4 s of backoff
    queue.requeue_backoff(first)
    second = await queue.pop()
    queue.requeue_backoff(second)  # 1 s
    clock.advance(1)
    assert await pop_now(queue) == "ns/b"
    clock.advance(2.9)
    assert queue.counts()["backoff"] == 1
    clock.advance(0.1)
    assert await pop_now(queue) == "ns/a"


async def test_unschedulable_pods_move_on_helpful_events_only(queue, clock):
    for key in ("ns/fit", "ns/aff", "ns/none"):
        queue.add(key)
    queue.requeue_unschedulable(await queue.pop(), rejected_by=FIT)
    queue.requeue_unschedulable(await queue.pop(), rejected_by=AFFINITY)
    queue.requeue_unschedulable(await queue.pop(), rejected_by=frozenset())
    assert queue.counts()["unschedulable"] == 3
    clock.advance(5)  # past the first backoff
    assert queue.move(frozenset({"TaintToleration"})) == 1  # only the pod rejected for no plugin
    assert queue.move(AFFINITY) == 1
    assert sorted([await pop_now(queue), await pop_now(queue)]) == ["ns/aff", "ns/none"]
    assert queue.move(None) == 1
    assert await pop_now(queue) == "ns/fit"


async def test_a_moved_pod_inside_its_backoff_waits_in_backoff(queue, clock):
    queue.add("ns/a")
    queue.requeue_unschedulable(await queue.pop(), rejected_by=FIT)
    clock.advance(0.5)
    queue.move(None)
    assert queue.counts()["backoff"] == 1
    clock.advance(0.5)
    assert await pop_now(queue) == "ns/a"


async def test_updates_give_unschedulable_pods_another_try(queue, clock):
    queue.add("ns/a")
    queue.requeue_unschedulable(await queue.pop(), rejected_by=FIT)
    clock.advance(2)
    queue.update("ns/a", spec_changed=False)  # a status-only change (our own condition)
    assert queue.counts()["unschedulable"] == 1
    queue.update("ns/a", spec_changed=True)
    assert await pop_now(queue) == "ns/a"


async def test_leftover_unschedulable_pods_are_retried_after_five_minutes(queue, clock):
    queue.add("ns/a")
    queue.requeue_unschedulable(await queue.pop(), rejected_by=FIT)
    clock.advance(270)
    assert queue.counts()["unschedulable"] == 1
    clock.advance(60)
    assert await pop_now(queue) == "ns/a"


async def test_gated_pods_wait_for_their_gates_to_go(queue):
    queue.add("ns/gated", gated=True)
    queue.update("ns/gated", gated=True)
    assert queue.counts()["gated"] == 1 and "ns/gated" in queue
    queue.update("ns/gated", priority=5, gated=False)
    assert await pop_now(queue) == "ns/gated"
    queue.update("ns/new", gated=True)  # unknown pods are added, gated or not
    assert queue.counts()["gated"] == 1


async def test_delete_removes_from_every_place(queue, clock):
    queue.add("ns/backoff")
    queue.add("ns/unsched")
    queue.requeue_backoff(await queue.pop())
    queue.requeue_unschedulable(await queue.pop(), rejected_by=FIT)
    queue.add("ns/active")
    queue.add("ns/gated", gated=True)
    assert queue.counts() == {"active": 1, "backoff": 1, "unschedulable": 1, "gated": 1}
    for key in ("ns/active", "ns/backoff", "ns/unsched", "ns/gated"):
        queue.delete(key)
    assert queue.counts() == {"active": 0, "backoff": 0, "unschedulable": 0, "gated": 0}
    clock.advance(20)  # the stale backoff entry is skipped
    queue.add("ns/later")
    assert await pop_now(queue) == "ns/later"


async def test_a_requeue_loses_to_a_newer_add(queue):
    queue.add("ns/a")
    popped = await queue.pop()
    queue.add("ns/a")  # the informer saw it again while it was being scheduled
    queue.requeue_unschedulable(popped, rejected_by=FIT)
    assert queue.counts() == {"active": 1, "backoff": 0, "unschedulable": 0, "gated": 0}


async def test_close_wakes_poppers_and_ignores_adds(clock):
    queue = SchedulingQueue(clock=clock)
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0)
    queue.close()
    with pytest.raises(QueueClosed):
        await waiter
    queue.add("ns/a")
    assert queue.counts()["active"] == 0
    assert clock.pending() == []  # no timer left behind
