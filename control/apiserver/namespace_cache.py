"""Which namespaces exist and are active, kept in memory from a watch on the store.

Every create of a namespaced object must check that its namespace exists and is not
terminating (upstream's NamespaceLifecycle admission, which reads an informer). Reading
the store for that on every create costs a round trip to a reader thread; this cache
answers from memory instead. It is only trusted to say "active": a namespace it does not
know yet (just created) or believes terminating is checked against the store, so a stale
cache can cost a read but never let a create through that the store would refuse.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson

from control.apiserver.store_follower import follow_prefix
from control.store import Event, EventType, KeyValue, Store


class NamespaceCache:
    def __init__(self, *, store: Store, prefix: str) -> None:
        self._store = store
        self._prefix = prefix
        self._active: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def is_active(self, name: str) -> bool:
        """True only when the last seen state of ``name`` is an active namespace."""
        return name in self._active

    def forget(self, name: str) -> None:
        """The API server just wrote ``name``: check the store until the watch catches up."""
        self._active.discard(name)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="namespace-cache")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        await follow_prefix(
            self._store, self._prefix, on_list=self._relisted, on_event=self._changed, what="namespace cache"
        )

    async def _relisted(self, items: list[KeyValue]) -> None:
        self._active = {self._name(kv.key) for kv in items if _active(kv.value)}

    async def _changed(self, event: Event) -> None:
        name = self._name(event.kv.key)
        if event.type is EventType.PUT and _active(event.kv.value):
            self._active.add(name)
        else:
            self._active.discard(name)

    def _name(self, key: str) -> str:
        return key[len(self._prefix) :]


def _active(value: bytes) -> bool:
    namespace = orjson.loads(value)
    if (namespace.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (namespace.get("status") or {}).get("phase", "Active") == "Active"
