"""The Store contract, run against every backend: SQLite and a real etcd.

Each test names one promise of :mod:`control.store.protocol` and checks it through the
public API only, so both backends are held to exactly the same semantics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from control.store import (
    CompactedError,
    Event,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyValue,
    Store,
)

WATCH_TIMEOUT = 10.0


async def collect(watcher: AsyncIterator[list[Event]], count: int) -> list[Event]:
    """The next ``count`` events (fails the test if they do not come)."""
    events: list[Event] = []
    async with asyncio.timeout(WATCH_TIMEOUT):
        while len(events) < count:
            events.extend(await anext(watcher))
    return events


# Create and get.


async def test_create_then_get_returns_value_and_revisions(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"one")

    assert created.key == prefix + "a"
    assert created.value == b"one"
    assert created.create_revision == created.mod_revision > 0
    assert await store.get(prefix + "a") == created
    assert await store.current_revision() == created.mod_revision


async def test_create_of_existing_key_raises_key_exists(store: Store, prefix: str) -> None:
    first = await store.create(prefix + "a", b"one")

    with pytest.raises(KeyExistsError) as caught:
        await store.create(prefix + "a", b"two")

    assert caught.value.key == prefix + "a"
    assert await store.get(prefix + "a") == first


async def test_get_of_missing_key_is_none(store: Store, prefix: str) -> None:
    assert await store.get(prefix + "missing") is None


async def test_empty_value_round_trips(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "empty", b"")

    assert (await store.get(prefix + "empty")) == created
    assert created.value == b""


async def test_bad_arguments_raise_value_error(store: Store, prefix: str) -> None:
    with pytest.raises(ValueError):
        await store.create("", b"x")
    with pytest.raises(ValueError):
        await store.get("")
    with pytest.raises(ValueError):
        await store.get(prefix + "a", revision=-1)
    with pytest.raises(ValueError):
        await store.list(prefix, revision=-1)
    with pytest.raises(ValueError):
        await store.list(prefix, limit=-1)
    with pytest.raises(ValueError):
        await store.update(prefix + "a", b"x", expected_revision=0)
    with pytest.raises(ValueError):
        await store.delete(prefix + "a", expected_revision=-1)
    with pytest.raises(ValueError):
        await store.compact(-1)
    with pytest.raises(ValueError):
        await anext(store.watch(prefix, start_revision=-1))


# Compare-and-swap.


async def test_update_with_current_revision_swaps(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"one")

    result = await store.update(prefix + "a", b"two", expected_revision=created.mod_revision)

    assert result.succeeded
    assert result.kv == KeyValue(prefix + "a", b"two", created.create_revision, result.revision)
    assert result.revision > created.mod_revision
    assert await store.get(prefix + "a") == result.kv


async def test_update_with_stale_revision_fails_carrying_current_value(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"one")
    current = (await store.update(prefix + "a", b"two", expected_revision=created.mod_revision)).kv

    result = await store.update(prefix + "a", b"three", expected_revision=created.mod_revision)

    assert not result.succeeded
    assert result.kv == current
    assert result.revision == await store.current_revision()
    assert await store.get(prefix + "a") == current


async def test_update_of_missing_key_fails_without_value(store: Store, prefix: str) -> None:
    result = await store.update(prefix + "missing", b"x", expected_revision=1)

    assert not result.succeeded
    assert result.kv is None
    assert await store.get(prefix + "missing") is None


async def test_delete_with_stale_revision_fails_carrying_current_value(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"one")
    current = (await store.update(prefix + "a", b"two", expected_revision=created.mod_revision)).kv

    result = await store.delete(prefix + "a", expected_revision=created.mod_revision)

    assert not result.succeeded
    assert result.kv == current
    assert await store.get(prefix + "a") == current


async def test_delete_with_expected_revision_returns_last_value_at_deletion_revision(
    store: Store, prefix: str
) -> None:
    created = await store.create(prefix + "a", b"one")

    result = await store.delete(prefix + "a", expected_revision=created.mod_revision)

    assert result.succeeded
    assert result.revision > created.mod_revision
    assert result.kv == KeyValue(prefix + "a", b"one", created.create_revision, result.revision)
    assert await store.get(prefix + "a") is None


async def test_unconditional_delete(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"one")

    result = await store.delete(prefix + "a")

    assert result.succeeded
    assert result.kv == KeyValue(prefix + "a", b"one", created.create_revision, result.revision)
    assert await store.get(prefix + "a") is None


async def test_delete_of_missing_key_fails(store: Store, prefix: str) -> None:
    unconditional = await store.delete(prefix + "missing")
    conditional = await store.delete(prefix + "missing", expected_revision=5)

    assert (unconditional.succeeded, unconditional.kv) == (False, None)
    assert (conditional.succeeded, conditional.kv) == (False, None)


async def test_delete_twice_fails_the_second_time(store: Store, prefix: str) -> None:
    await store.create(prefix + "a", b"one")
    await store.delete(prefix + "a")

    again = await store.delete(prefix + "a")

    assert (again.succeeded, again.kv) == (False, None)


async def test_recreate_after_delete_starts_a_new_life(store: Store, prefix: str) -> None:
    first = await store.create(prefix + "a", b"one")
    deleted = await store.delete(prefix + "a")

    second = await store.create(prefix + "a", b"two")

    assert second.create_revision == second.mod_revision > deleted.revision
    assert await store.get(prefix + "a") == second
    assert await store.get(prefix + "a", revision=first.mod_revision) == first
    assert await store.get(prefix + "a", revision=deleted.revision) is None


async def test_revisions_strictly_increase(store: Store, prefix: str) -> None:
    revisions = [(await store.create(prefix + "a", b"1")).mod_revision]
    revisions.append((await store.create(prefix + "b", b"1")).mod_revision)
    revisions.append((await store.update(prefix + "a", b"2", expected_revision=revisions[0])).revision)
    revisions.append((await store.delete(prefix + "b")).revision)
    revisions.append((await store.create(prefix + "b", b"again")).mod_revision)

    assert revisions == sorted(set(revisions))
    assert await store.current_revision() == revisions[-1]


async def test_concurrent_cas_has_exactly_one_winner_per_round(store: Store, prefix: str) -> None:
    key = prefix + "counter"
    await store.create(key, b"0")

    for round_number in range(5):
        current = await store.get(key)
        assert current is not None
        results = await asyncio.gather(
            *(
                store.update(
                    key, b"%d-%d" % (round_number, contender), expected_revision=current.mod_revision
                )
                for contender in range(16)
            )
        )

        winners = [result for result in results if result.succeeded]
        assert len(winners) == 1
        assert all(loser.kv == winners[0].kv for loser in results if not loser.succeeded)
        assert await store.get(key) == winners[0].kv


async def test_concurrent_creates_of_one_key_have_one_winner(store: Store, prefix: str) -> None:
    results = await asyncio.gather(
        *(store.create(prefix + "once", b"%d" % n) for n in range(8)), return_exceptions=True
    )

    created = [result for result in results if isinstance(result, KeyValue)]
    assert len(created) == 1
    assert all(isinstance(result, KeyExistsError) for result in results if result is not created[0])
    assert await store.get(prefix + "once") == created[0]


# Reads at a revision, lists and paging.


async def test_get_at_old_revisions_sees_history(store: Store, prefix: str) -> None:
    before = await store.current_revision()
    one = await store.create(prefix + "a", b"one")
    two = (await store.update(prefix + "a", b"two", expected_revision=one.mod_revision)).kv
    gone = await store.delete(prefix + "a")

    assert await store.get(prefix + "a", revision=before) is None
    assert await store.get(prefix + "a", revision=one.mod_revision) == one
    assert await store.get(prefix + "a", revision=gone.revision - 1) == two
    assert await store.get(prefix + "a", revision=gone.revision) is None


async def test_list_keeps_prefixes_apart(store: Store, prefix: str) -> None:
    await store.create(prefix + "a/1", b"x")
    await store.create(prefix + "a/2", b"x")
    await store.create(prefix + "ab/1", b"x")
    await store.create(prefix + "a", b"x")

    listed = await store.list(prefix + "a/")

    assert [kv.key for kv in listed.items] == [prefix + "a/1", prefix + "a/2"]
    assert [kv.key for kv in (await store.list(prefix + "ab/")).items] == [prefix + "ab/1"]
    assert await store.count(prefix + "a/") == 2
    assert await store.count(prefix) == 4
    assert await store.count(prefix + "none/") == 0


async def test_non_ascii_keys_round_trip_and_sort_by_bytes(store: Store, prefix: str) -> None:
    name = await store.create(prefix + "ns/é/名前", b"1")
    plain = await store.create(prefix + "ns/é/z", b"2")
    await store.create(prefix + "ns/ê", b"3")

    listed = await store.list(prefix + "ns/é/")

    assert listed.items == [plain, name]
    assert await store.get(prefix + "ns/é/名前") == name


async def test_list_leaves_out_deleted_keys_and_reports_its_revision(store: Store, prefix: str) -> None:
    await store.create(prefix + "a", b"1")
    await store.create(prefix + "b", b"2")
    deleted = await store.delete(prefix + "a")

    listed = await store.list(prefix)

    assert [kv.key for kv in listed.items] == [prefix + "b"]
    assert listed.revision == deleted.revision == await store.current_revision()
    assert (listed.more, listed.remaining) == (False, 0)


async def test_list_pages_with_start_key_and_limit(store: Store, prefix: str) -> None:
    keys = [prefix + name for name in ("a", "b", "c", "d", "e")]
    for key in keys:
        await store.create(key, key.encode())

    first = await store.list(prefix, limit=2)
    second = await store.list(prefix, start_key=first.items[-1].key + "\0", limit=2, revision=first.revision)
    last = await store.list(prefix, start_key=second.items[-1].key + "\0", limit=2, revision=first.revision)

    assert [kv.key for kv in first.items] == keys[:2]
    assert (first.more, first.remaining) == (True, 3)
    assert [kv.key for kv in second.items] == keys[2:4]
    assert (second.more, second.remaining) == (True, 1)
    assert [kv.key for kv in last.items] == keys[4:]
    assert (last.more, last.remaining) == (False, 0)
    assert [kv.value for kv in first.items] == [key.encode() for key in keys[:2]]
    exact = await store.list(prefix, limit=5)
    assert (len(exact.items), exact.more, exact.remaining) == (5, False, 0)
    beyond = await store.list(prefix, start_key=prefix + "z")
    assert (beyond.items, beyond.more) == ([], False)


async def test_list_at_revision_is_a_snapshot(store: Store, prefix: str) -> None:
    a = await store.create(prefix + "a", b"1")
    b = await store.create(prefix + "b", b"1")
    snapshot = b.mod_revision
    await store.update(prefix + "a", b"2", expected_revision=a.mod_revision)
    await store.delete(prefix + "b")
    await store.create(prefix + "c", b"1")

    listed = await store.list(prefix, revision=snapshot)

    assert listed.items == [a, b]
    assert listed.revision == snapshot
    paged = await store.list(prefix, revision=snapshot, limit=1)
    assert (paged.items, paged.more, paged.remaining) == ([a], True, 1)


# Watch.


async def test_watch_replays_history_then_live_writes_without_gaps_or_duplicates(
    store: Store, prefix: str
) -> None:
    history = [(await store.create(prefix + f"old{n:02}", b"%d" % n)).mod_revision for n in range(20)]
    live: list[int] = []
    seen: list[int] = []

    watcher = store.watch(prefix, start_revision=history[0])
    async with asyncio.timeout(WATCH_TIMEOUT):
        async for batch in watcher:
            seen.extend(event.revision for event in batch)
            if len(live) < 20:  # write while the watcher is still replaying, and after
                live.append((await store.create(prefix + f"new{len(live):02}", b"x")).mod_revision)
            if len(seen) >= len(history) + 20:
                break
    await watcher.aclose()

    assert seen == history + live


async def test_watch_from_revision_includes_that_revision(store: Store, prefix: str) -> None:
    await store.create(prefix + "a", b"1")
    second = await store.create(prefix + "b", b"2")

    watcher = store.watch(prefix, start_revision=second.mod_revision)
    events = await collect(watcher, 1)
    await watcher.aclose()

    assert events == [Event(EventType.PUT, second, None)]


async def test_watch_from_zero_sees_only_future_events(store: Store, prefix: str) -> None:
    await store.create(prefix + "before", b"x")
    watcher = store.watch(prefix, start_revision=0)
    first = asyncio.ensure_future(anext(watcher))
    # Registration happens on the first iteration; wait until it is in place by writing
    # until an event arrives (a write racing the registration is simply not seen).
    async with asyncio.timeout(WATCH_TIMEOUT):
        written: list[KeyValue] = []
        while not first.done():
            written.append(await store.create(prefix + f"after{len(written)}", b"x"))
            await asyncio.wait([first], timeout=0.05)
    events = first.result()
    await watcher.aclose()

    assert events
    assert all(event.kv.key.startswith(prefix + "after") for event in events)
    assert {event.kv for event in events} <= set(written)


async def test_watch_filters_by_prefix(store: Store, prefix: str) -> None:
    start = await store.current_revision() + 1
    await store.create(prefix + "ab/1", b"other")
    wanted = await store.create(prefix + "a/1", b"mine")
    await store.create(prefix + "b", b"other")
    last = await store.create(prefix + "a/2", b"mine")

    watcher = store.watch(prefix + "a/", start_revision=start)
    events = await collect(watcher, 2)
    await watcher.aclose()

    assert [event.kv for event in events] == [wanted, last]


async def test_watch_events_carry_previous_values(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"one")
    updated = (await store.update(prefix + "a", b"two", expected_revision=created.mod_revision)).kv
    deleted = await store.delete(prefix + "a")
    recreated = await store.create(prefix + "a", b"three")

    watcher = store.watch(prefix, start_revision=created.mod_revision)
    events = await collect(watcher, 4)
    await watcher.aclose()

    assert events == [
        Event(EventType.PUT, created, None),
        Event(EventType.PUT, updated, created),
        Event(EventType.DELETE, deleted.kv, updated),
        Event(EventType.PUT, recreated, None),
    ]
    assert deleted.kv.value == b"two"  # a DELETE event carries the last value
    assert events[0].is_create and not events[1].is_create and events[3].is_create


async def test_live_delete_event_carries_last_value(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"last words")
    watcher = store.watch(prefix, start_revision=created.mod_revision + 1)
    pending = asyncio.ensure_future(anext(watcher))

    deleted = await store.delete(prefix + "a")
    async with asyncio.timeout(WATCH_TIMEOUT):
        events = await pending
    await watcher.aclose()

    assert events == [Event(EventType.DELETE, deleted.kv, created)]
    assert events[0].kv == KeyValue(prefix + "a", b"last words", created.create_revision, deleted.revision)


async def test_close_ends_watchers(store: Store, prefix: str) -> None:
    start = await store.current_revision() + 1
    received: list[Event] = []
    first_event = asyncio.Event()

    async def consume() -> None:
        async for batch in store.watch(prefix, start_revision=start):
            received.extend(batch)
            first_event.set()

    consumer = asyncio.create_task(consume())
    await store.create(prefix + "a", b"1")
    async with asyncio.timeout(WATCH_TIMEOUT):
        await first_event.wait()

    await store.close()

    async with asyncio.timeout(WATCH_TIMEOUT):
        await consumer  # ends normally: no exception
    assert [event.kv.key for event in received] == [prefix + "a"]


# Compaction and revision bounds.


async def test_compaction_forgets_history_but_keeps_latest_values(store: Store, prefix: str) -> None:
    one = await store.create(prefix + "a", b"one")
    await store.create(prefix + "gone", b"x")
    await store.delete(prefix + "gone")
    two = (await store.update(prefix + "a", b"two", expected_revision=one.mod_revision)).kv
    mark = two.mod_revision
    later = await store.create(prefix + "later", b"l")

    await store.compact(mark)

    assert await store.compacted_revision() == mark
    with pytest.raises(CompactedError) as caught:
        await store.get(prefix + "a", revision=one.mod_revision)
    assert (caught.value.requested, caught.value.compacted) == (one.mod_revision, mark)
    with pytest.raises(CompactedError):
        await store.list(prefix, revision=mark - 1)
    with pytest.raises(CompactedError):
        await anext(store.watch(prefix, start_revision=one.mod_revision))
    assert await store.get(prefix + "a") == two
    assert await store.get(prefix + "a", revision=mark) == two
    assert await store.get(prefix + "gone") is None
    assert (await store.list(prefix, revision=mark)).items == [two]
    assert (await store.list(prefix)).items == [two, later]
    watcher = store.watch(prefix, start_revision=mark)
    assert [event.kv for event in await collect(watcher, 2)] == [two, later]
    await watcher.aclose()


async def test_compaction_at_or_below_compacted_revision_is_a_no_op(store: Store, prefix: str) -> None:
    first = await store.create(prefix + "a", b"1")
    await store.create(prefix + "b", b"2")
    mark = await store.current_revision()
    await store.compact(mark)

    await store.compact(first.mod_revision)
    await store.compact(mark)

    assert await store.compacted_revision() == mark


async def test_future_revisions_are_refused(store: Store, prefix: str) -> None:
    await store.create(prefix + "a", b"1")
    current = await store.current_revision()

    with pytest.raises(FutureRevisionError) as caught:
        await store.get(prefix + "a", revision=current + 10)
    assert caught.value.requested == current + 10
    assert caught.value.current >= current
    with pytest.raises(FutureRevisionError):
        await store.list(prefix, revision=current + 10)
    with pytest.raises(FutureRevisionError):
        await store.compact(current + 10)
