"""Which namespaces exist and are active, and their labels, kept in memory from a watch on the
store.

Every create of a namespaced object must check that its namespace exists and is not
terminating (upstream's NamespaceLifecycle admission, which reads an informer), and every pod
write is judged by its namespace's Pod Security labels. Reading the store for that on every
create costs a round trip to a reader thread; this cache answers from memory instead. It is
only trusted about namespaces it knows to be active: a namespace it does not know yet (just
created), believes terminating, or was told to :meth:`forget` (the API server just wrote it) is
read from the store, so a stale cache can cost a read but never let a write through that the
store's state would refuse.
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
        self._labels: dict[str, dict[str, str]] = {}  # of the active namespaces
        self._task: asyncio.Task[None] | None = None

    def is_active(self, name: str) -> bool:
        """True only when the last seen state of ``name`` is an active namespace."""
        return name in self._labels

    def labels(self, name: str) -> dict[str, str] | None:
        """The labels of ``name`` when it is known to be active, else None (read the store)."""
        return self._labels.get(name)

    def forget(self, name: str) -> None:
        """The API server just wrote ``name``: check the store until the watch catches up."""
        self._labels.pop(name, None)

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
        active = {}
        for kv in items:
            labels = _labels_if_active(kv.value)
            if labels is not None:
                active[self._name(kv.key)] = labels
        self._labels = active

    async def _changed(self, event: Event) -> None:
        name = self._name(event.kv.key)
        labels = _labels_if_active(event.kv.value) if event.type is EventType.PUT else None
        if labels is None:
            self._labels.pop(name, None)
        else:
            self._labels[name] = labels

    def _name(self, key: str) -> str:
        return key[len(self._prefix) :]


def _labels_if_active(value: bytes) -> dict[str, str] | None:
    """A stored namespace's labels when it is active, else None."""
    namespace = orjson.loads(value)
    metadata = namespace.get("metadata") or {}
    if (
        metadata.get("deletionTimestamp")
        or (namespace.get("status") or {}).get("phase", "Active") != "Active"
    ):
        return None
    return {str(key): str(label) for key, label in (metadata.get("labels") or {}).items()}
