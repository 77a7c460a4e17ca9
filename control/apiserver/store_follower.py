"""List a prefix of the store, then follow its changes, for the API server's own caches.

The namespace cache and the custom-resource registry both keep in-memory state derived
from stored objects. They follow the store directly (not the HTTP API): list, then watch
from the list's revision; on compaction or a store error, list again; stop when the
store closes. This is the reflector loop, one level down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from control.apiserver import errors
from control.store import CompactedError, Event, EventType, KeyValue, Store, StoreError

log = logging.getLogger("kubelab.apiserver")

RETRY_SECONDS = 1.0


async def follow_prefix(
    store: Store,
    prefix: str,
    *,
    on_list: Callable[[list[KeyValue]], Awaitable[None]],
    on_event: Callable[[Event], Awaitable[None]],
    what: str,
) -> None:
    """Run until the store closes. ``on_list`` gets every (re)list's items; ``on_event``
    every change after it. A StatusError raised by a callback also causes a relist."""
    while True:
        try:
            listing = await store.list(prefix)
            await on_list(listing.items)
            async for batch in store.watch(prefix, start_revision=listing.revision + 1):
                for event in batch:
                    await on_event(event)
            return  # the store closed
        except CompactedError:
            continue
        except (StoreError, errors.StatusError) as exc:
            log.warning("%s failed, relisting in %.0f s: %s", what, RETRY_SECONDS, exc)
            await asyncio.sleep(RETRY_SECONDS)


class FollowedObjects:
    """The objects under one prefix, by name (the key after the prefix), followed in memory;
    ``changed`` runs after every (re)list and every change, to rebuild what derives from them.
    ``synced`` is set after the first list."""

    def __init__(self, *, store: Store, prefix: str, what: str, changed: Callable[[], None]) -> None:
        self._store = store
        self._prefix = prefix
        self._what = what
        self._changed = changed
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(
            follow_prefix(
                self._store, self._prefix, on_list=self._relisted, on_event=self._event, what=self._what
            ),
            name=self._what,
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _relisted(self, items: list[KeyValue]) -> None:
        self.objects = {kv.key[len(self._prefix) :]: orjson.loads(kv.value) for kv in items}
        self._changed()
        self.synced.set()

    async def _event(self, event: Event) -> None:
        name = event.kv.key[len(self._prefix) :]
        if event.type is EventType.PUT:
            self.objects[name] = orjson.loads(event.kv.value)
        else:
            self.objects.pop(name, None)
        self._changed()
