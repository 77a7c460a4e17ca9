"""NamespaceCache over a real store: active namespaces and their labels follow the watch, a
terminating or deleted namespace is not vouched for, and a namespace the API server just wrote
is read from the store until its event arrives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson

from control.apiserver.namespace_cache import NamespaceCache
from control.store.sqlite import SqliteStore

PREFIX = "/registry/core/namespaces/"
WAIT = 10.0


def namespace(name: str, *, labels: dict[str, str] | None = None, terminating: bool = False) -> bytes:
    metadata: dict = {"name": name, "labels": labels or {}}
    if terminating:
        metadata["deletionTimestamp"] = "2026-11-26T00:00:00Z"
    return orjson.dumps(
        {"metadata": metadata, "status": {"phase": "Terminating" if terminating else "Active"}}
    )


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_the_cache_follows_active_namespaces_and_their_labels(store: SqliteStore) -> None:
    await store.create(
        PREFIX + "team-a", namespace("team-a", labels={"pod-security.kubernetes.io/enforce": "baseline"})
    )
    await store.create(PREFIX + "leaving", namespace("leaving", terminating=True))
    cache = NamespaceCache(store=store, prefix=PREFIX)
    cache.start()
    try:
        await until(lambda: cache.is_active("team-a"), "the first list")
        assert cache.labels("team-a") == {"pod-security.kubernetes.io/enforce": "baseline"}
        assert not cache.is_active("leaving") and cache.labels("leaving") is None

        stored = await store.get(PREFIX + "team-a")
        assert stored is not None
        relabelled = namespace("team-a", labels={"pod-security.kubernetes.io/enforce": "restricted"})
        cache.forget("team-a")  # what the API server does when it writes a namespace
        assert cache.labels("team-a") is None  # read the store until the event arrives
        await store.update(PREFIX + "team-a", relabelled, expected_revision=stored.mod_revision)
        await until(lambda: cache.labels("team-a") is not None, "the relabelled namespace")
        assert cache.labels("team-a") == {"pod-security.kubernetes.io/enforce": "restricted"}

        current = await store.get(PREFIX + "team-a")
        assert current is not None
        await store.delete(PREFIX + "team-a", expected_revision=current.mod_revision)
        await until(lambda: not cache.is_active("team-a"), "the deleted namespace")
        assert cache.labels("team-a") is None
    finally:
        await cache.stop()
