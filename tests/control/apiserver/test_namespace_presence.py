"""NamespacePresence over a real store: "none here" is answered from memory only after the first
list, follows creates and deletes through the watch, and a pending create (marked before it is
stored) always makes the namespace be read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from control.apiserver.namespace_presence import NamespacePresence
from control.store.sqlite import SqliteStore

PREFIX = "/registry/core/resourcequotas/"
WAIT = 10.0


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_presence_follows_the_store(store: SqliteStore) -> None:
    await store.create(f"{PREFIX}team-a/compute", b"{}")
    presence = NamespacePresence(store=store, prefix=PREFIX, what="test presence")
    assert presence.may_hold("anything")  # not listed yet: every namespace may hold some
    presence.start()
    try:
        await asyncio.wait_for(presence.synced.wait(), timeout=WAIT)
        assert presence.may_hold("team-a")
        assert not presence.may_hold("team-b")

        created = await store.create(f"{PREFIX}team-b/pods", b"{}")
        await until(lambda: presence.may_hold("team-b"), "the created quota")
        await store.delete(f"{PREFIX}team-b/pods", expected_revision=created.mod_revision)
        await until(lambda: not presence.may_hold("team-b"), "the deleted quota")
        assert presence.may_hold("team-a")
    finally:
        await presence.stop()


async def test_a_pending_create_makes_the_namespace_read(store: SqliteStore) -> None:
    presence = NamespacePresence(store=store, prefix=PREFIX, what="test presence")
    presence.start()
    try:
        await asyncio.wait_for(presence.synced.wait(), timeout=WAIT)
        assert not presence.may_hold("team-c")
        presence.creating("team-c")  # admitted, not stored (or not delivered) yet
        assert presence.may_hold("team-c")
        assert not presence.may_hold("team-d")
    finally:
        await presence.stop()
