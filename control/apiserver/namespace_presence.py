"""Which namespaces hold any object of one kind, kept in memory from a watch on the store, so an
admission plugin can skip reading the store for the namespaces that hold none.

The ResourceQuota and LimitRanger plugins must see every quota and limit range of a namespace
on (nearly) every create there, and almost all namespaces have none: a store list per create
to find that out costs as much as a third of the create itself. This cache answers "none" from
memory, and is only trusted in that direction, under two rules that make a stale cache cost a
read but never let a write skip a quota:

- until the first list has arrived, every namespace "may hold" objects;
- the plugin calls ``creating(namespace)`` when it admits a create of the kind, before that
  object is stored, so a namespace whose new object the watch has not delivered yet is read
  from the store anyway. Marks are never cleared (clearing one safely would need to know which
  pending create an event answers): a namespace that ever got a quota or limit range while this
  server ran keeps being read, which costs reads, not safety.

Objects written without admission (the API server's own writes) are never quotas or limit
ranges. With several API servers on one store, another server's new quota is seen here when its
watch event arrives — the informer lag upstream's quota admission has too.
"""

from __future__ import annotations

import asyncio
import contextlib

from control.apiserver.store_follower import follow_prefix
from control.store import Event, EventType, KeyValue, Store


class NamespacePresence:
    def __init__(self, *, store: Store, prefix: str, what: str) -> None:
        self._store = store
        self._prefix = prefix
        self._what = what
        self._names: dict[str, set[str]] = {}
        self._creating: set[str] = set()
        self.synced = asyncio.Event()  # set once the first list has arrived
        self._task: asyncio.Task[None] | None = None

    def may_hold(self, namespace: str) -> bool:
        """False only when ``namespace`` certainly holds none (as of the watch, and no create pending)."""
        return not self.synced.is_set() or namespace in self._names or namespace in self._creating

    def creating(self, namespace: str) -> None:
        """An object of the kind is about to be created in ``namespace``: read it from the store."""
        self._creating.add(namespace)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._what)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        await follow_prefix(
            self._store, self._prefix, on_list=self._relisted, on_event=self._changed, what=self._what
        )

    async def _relisted(self, items: list[KeyValue]) -> None:
        names: dict[str, set[str]] = {}
        for kv in items:
            namespace, _, name = kv.key[len(self._prefix) :].partition("/")
            names.setdefault(namespace, set()).add(name)
        self._names = names
        self.synced.set()

    async def _changed(self, event: Event) -> None:
        namespace, _, name = event.kv.key[len(self._prefix) :].partition("/")
        if event.type is EventType.PUT:
            self._names.setdefault(namespace, set()).add(name)
            return
        names = self._names.get(namespace)
        if names is not None:
            names.discard(name)
            if not names:
                del self._names[namespace]
