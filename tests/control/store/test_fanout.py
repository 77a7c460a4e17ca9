"""The in-process watch hub: prefix matching, start revisions, bounded buffers, close."""

from __future__ import annotations

import asyncio

import pytest

from control.store import Event, EventType, KeyValue, WatcherOverflowError
from control.store.fanout import WatchHub


def put(key: str, revision: int) -> Event:
    return Event(EventType.PUT, KeyValue(key, b"v", revision, revision), None)


async def next_batch(hub_batches: object) -> list[Event]:
    async with asyncio.timeout(5):
        return await anext(hub_batches)  # type: ignore[call-overload]


async def test_publish_reaches_only_matching_prefixes() -> None:
    hub = WatchHub(buffer_limit=100)
    pods = hub.subscribe("/registry/pods/", min_revision=1)
    everything = hub.subscribe("", min_revision=1)
    pod, service = put("/registry/pods/a", 1), put("/registry/services/a", 2)

    hub.publish([pod, service])

    assert await next_batch(pods.batches()) == [pod]
    assert await next_batch(everything.batches()) == [pod, service]


async def test_events_before_min_revision_are_skipped() -> None:
    hub = WatchHub(buffer_limit=100)
    subscription = hub.subscribe("/k/", min_revision=3)

    hub.publish([put("/k/a", 1), put("/k/b", 2)])
    hub.publish([put("/k/c", 2), put("/k/d", 3), put("/k/e", 4)])

    assert [event.revision for event in await next_batch(subscription.batches())] == [3, 4]


async def test_pending_events_arrive_as_one_batch() -> None:
    hub = WatchHub(buffer_limit=100)
    subscription = hub.subscribe("/k/", min_revision=1)
    for revision in range(1, 4):
        hub.publish([put("/k/a", revision)])

    assert [event.revision for event in await next_batch(subscription.batches())] == [1, 2, 3]


async def test_overflow_delivers_the_buffer_then_raises_and_unsubscribes() -> None:
    hub = WatchHub(buffer_limit=2)
    slow = hub.subscribe("/k/", min_revision=1)
    fast = hub.subscribe("/k/", min_revision=1)
    fast_batches = fast.batches()

    hub.publish([put("/k/a", 1), put("/k/b", 2)])
    assert len(await next_batch(fast_batches)) == 2
    hub.publish([put("/k/c", 3)])

    batches = slow.batches()
    assert [event.revision for event in await next_batch(batches)] == [1, 2]
    with pytest.raises(WatcherOverflowError):
        await next_batch(batches)
    assert len(hub) == 1  # the slow one is gone; the fast one stays
    assert [event.revision for event in await next_batch(fast_batches)] == [3]


async def test_close_ends_iteration_after_buffered_events() -> None:
    hub = WatchHub(buffer_limit=10)
    subscription = hub.subscribe("/k/", min_revision=1)
    batches = subscription.batches()
    waiting = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0)

    hub.publish([put("/k/a", 1)])
    hub.close()

    assert [event.revision for event in await waiting] == [1]
    with pytest.raises(StopAsyncIteration):
        await next_batch(batches)
    assert len(hub) == 0


def test_unsubscribe_is_idempotent() -> None:
    hub = WatchHub(buffer_limit=10)
    subscription = hub.subscribe("/k/", min_revision=1)

    hub.unsubscribe(subscription)
    hub.unsubscribe(subscription)

    assert len(hub) == 0


def test_buffer_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WatchHub(buffer_limit=0)
