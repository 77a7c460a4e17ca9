"""Shared informers: one reflector and one cache per collection, fanned out to many handlers.

client-go's SharedIndexInformer, for asyncio. A :class:`SharedInformer` runs a
:class:`Reflector` into an :class:`Indexer` and tells every registered handler what changed:

- ``on_add(obj)``; ``on_update(old, new)`` — also for objects seen again on a relist or a
  periodic resync, when ``old`` and ``new`` may be the same version (compare resourceVersions if
  that matters); ``on_delete(obj)`` where ``obj`` is the last state seen or, when the deletion
  was only inferred from a relist (the watch missed it), a :class:`DeletedFinalStateUnknown`
  tombstone holding the last *known* state.
- Handlers are plain functions called in order on the event loop. They must be quick and must
  not block: the usual handler computes a key and adds it to a workqueue. An exception in one
  handler is logged and does not affect the others.
- A handler added after the informer synced first gets ``on_add`` for everything cached.

Objects passed to handlers and returned by the cache are shared: **never mutate them**.

An :class:`InformerFactory` hands every consumer asking for the same (resource, namespace,
selectors) the same informer, so a process watches each collection once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from control.client.clock import REAL_CLOCK, Clock
from control.client.indexer import Indexer, IndexFunc, object_key
from control.client.reflector import ListerWatcher, Reflector
from control.client.rest import Resource

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """An object that disappeared while the watch was down: ``obj`` is its last known state."""

    key: str
    obj: dict[str, Any]


def deletion_handling_key(obj: Mapping[str, Any] | DeletedFinalStateUnknown) -> str:
    """The cache key of an object or of a tombstone (client-go's DeletionHandlingMetaNamespaceKeyFunc);
    what an ``on_delete`` handler queues.
    """
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    return object_key(obj)


OnAdd = Callable[[dict[str, Any]], None]
OnUpdate = Callable[[dict[str, Any], dict[str, Any]], None]
OnDelete = Callable[[dict[str, Any] | DeletedFinalStateUnknown], None]


class HandlerRegistration:
    """One set of callbacks on an informer; :meth:`has_synced` once it has seen the initial state."""

    def __init__(
        self, *, on_add: OnAdd | None, on_update: OnUpdate | None, on_delete: OnDelete | None
    ) -> None:
        self.on_add = on_add
        self.on_update = on_update
        self.on_delete = on_delete
        self._synced = False

    def has_synced(self) -> bool:
        return self._synced


class SharedInformer:
    """Reflector → cache → handlers for one collection. ``start()`` it inside a running loop.

    ``cache`` is the read side (``get_by_key``, ``list``, ``by_index``): shared objects, do not
    mutate. ``resync_period`` (seconds), if set, replays every cached object to ``on_update``
    periodically, for handlers that reconcile against the world outside the API.
    """

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        *,
        name: str = "informer",
        indexers: Mapping[str, IndexFunc] | None = None,
        resync_period: float | None = None,
        use_watch_list: bool = False,
        detect_mutations: bool | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        if resync_period is not None and resync_period <= 0:
            raise ValueError(f"resync_period must be positive, got {resync_period}")
        self.name = name
        self.cache = Indexer(indexers=indexers, detect_mutations=detect_mutations)
        self._handlers: list[HandlerRegistration] = []
        self._resync_period = resync_period
        self._clock = clock
        self.reflector = Reflector(
            lister_watcher, _InformerStore(self), name=name, clock=clock, use_watch_list=use_watch_list
        )
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- handlers -------------------------------------------------------------------------------

    def add_event_handler(
        self,
        *,
        on_add: OnAdd | None = None,
        on_update: OnUpdate | None = None,
        on_delete: OnDelete | None = None,
    ) -> HandlerRegistration:
        """Register callbacks. If the cache is already synced they get ``on_add`` for every object now."""
        registration = HandlerRegistration(on_add=on_add, on_update=on_update, on_delete=on_delete)
        self._handlers.append(registration)
        if self.has_synced():
            if on_add is not None:
                for obj in self.cache.list():
                    self._call(on_add, obj)
            registration._synced = True
        return registration

    def remove_event_handler(self, registration: HandlerRegistration) -> None:
        self._handlers.remove(registration)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self.cache.add_indexers(indexers)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("%s: event handler %r failed", self.name, callback)

    def _notify_add(self, obj: dict[str, Any]) -> None:
        for handler in self._handlers:
            if handler.on_add is not None:
                self._call(handler.on_add, obj)

    def _notify_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        for handler in self._handlers:
            if handler.on_update is not None:
                self._call(handler.on_update, old, new)

    def _notify_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        for handler in self._handlers:
            if handler.on_delete is not None:
                self._call(handler.on_delete, obj)

    # --- lifecycle ------------------------------------------------------------------------------

    def has_synced(self) -> bool:
        """Whether the first full list has reached the cache and every handler."""
        return self._synced.is_set()

    # A timeout argument rather than asyncio.timeout(): the answer is a verdict, not an exception.
    async def wait_for_sync(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until synced; False if ``timeout`` seconds pass first or the informer stops.

        As client-go's ``WaitForCacheSync``, this returns a verdict rather than raising.
        """
        if self.has_synced():
            return True
        if self._task is None:
            raise RuntimeError(f"{self.name}: wait_for_sync() before start()")
        waiter = asyncio.ensure_future(self._synced.wait())
        try:
            await asyncio.wait((waiter, self._task), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
        return self.has_synced()

    def start(self) -> None:
        """Start listing and watching in a background task. Idempotent; a stopped informer stays stopped."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"informer {self.name}")

    async def stop(self) -> None:
        """Stop the background task and wait for it (idempotent)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        """Run the reflector (and the resync timer) until cancelled."""
        if self._resync_period is None:
            await self.reflector.run()
            return
        async with asyncio.TaskGroup() as group:
            group.create_task(self.reflector.run())
            group.create_task(self._resync_loop())

    async def _resync_loop(self) -> None:
        assert self._resync_period is not None
        while True:
            await self._clock.sleep(self._resync_period)
            if self.has_synced():
                for obj in self.cache.list():
                    self._notify_update(obj, obj)

    # --- the reflector's store ------------------------------------------------------------------

    def _replace(self, items: list[dict[str, Any]]) -> None:
        cache = self.cache
        new_keys = set()
        changes: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
        for obj in items:
            key = cache.key(obj)
            new_keys.add(key)
            changes.append((cache.get_by_key(key), obj))
        gone = [(key, cache.get_by_key(key)) for key in cache.list_keys() if key not in new_keys]
        cache.replace(items)
        # client-go's DeltaFIFO order: the listed objects first, then the inferred deletions.
        for old, new in changes:
            if old is None:
                self._notify_add(new)
            else:
                self._notify_update(old, new)
        for key, old in gone:
            assert old is not None
            self._notify_delete(DeletedFinalStateUnknown(key, old))
        if not self._synced.is_set():
            for handler in self._handlers:
                handler._synced = True
            self._synced.set()

    def _upsert(self, obj: dict[str, Any]) -> None:
        old = self.cache.add(obj)
        if old is None:
            self._notify_add(obj)
        else:
            self._notify_update(old, obj)

    def _delete(self, obj: dict[str, Any]) -> None:
        if self.cache.delete(obj) is not None:
            self._notify_delete(obj)


class _InformerStore:
    """The informer as the reflector sees it (kept apart so users do not write to the cache)."""

    def __init__(self, informer: SharedInformer) -> None:
        self._informer = informer

    def replace(self, items: list[dict[str, Any]], resource_version: str) -> None:
        self._informer._replace(items)

    def add(self, obj: dict[str, Any]) -> None:
        self._informer._upsert(obj)

    def update(self, obj: dict[str, Any]) -> None:
        self._informer._upsert(obj)

    def delete(self, obj: dict[str, Any]) -> None:
        self._informer._delete(obj)


class ListerWatcherFactory(Protocol):
    """What an :class:`InformerFactory` needs from a client: ``RESTClient`` is one."""

    def lister_watcher(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ListerWatcher: ...


@dataclass(frozen=True, slots=True)
class _InformerKey:
    resource: Resource
    namespace: str | None
    label_selector: str | None
    field_selector: str | None


class InformerFactory:
    """Shares one informer per (resource, namespace, selectors) among a process's consumers.

    Ask for informers with :meth:`informer` (registering handlers and indexers), then
    :meth:`start` them all and :meth:`wait_for_sync` before starting workers; :meth:`shutdown`
    stops them.
    """

    def __init__(
        self,
        client: ListerWatcherFactory,
        *,
        resync_period: float | None = None,
        use_watch_list: bool = False,
        detect_mutations: bool | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self._client = client
        self._resync_period = resync_period
        self._use_watch_list = use_watch_list
        self._detect_mutations = detect_mutations
        self._clock = clock
        self._informers: dict[_InformerKey, SharedInformer] = {}

    def informer(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> SharedInformer:
        """The shared informer for this collection, created on first request (not started)."""
        key = _InformerKey(resource, namespace, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            scope = f"{namespace}/" if namespace else ""
            selectors = ",".join(s for s in (label_selector, field_selector) if s)
            informer = SharedInformer(
                self._client.lister_watcher(
                    resource,
                    namespace=namespace,
                    label_selector=label_selector,
                    field_selector=field_selector,
                ),
                name=f"{scope}{resource.group_resource}" + (f"[{selectors}]" if selectors else ""),
                resync_period=self._resync_period,
                use_watch_list=self._use_watch_list,
                detect_mutations=self._detect_mutations,
                clock=self._clock,
            )
            self._informers[key] = informer
        return informer

    def informers(self) -> list[SharedInformer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer not yet running."""
        for informer in self._informers.values():
            informer.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait for every started informer to sync; False if any did not within ``timeout``."""
        started = [
            informer for informer in self._informers.values() if informer.running or informer.has_synced()
        ]
        if not started:
            return True
        results = await asyncio.gather(*(informer.wait_for_sync(timeout) for informer in started))
        return all(results)

    async def shutdown(self) -> None:
        """Stop every informer and wait for them."""
        await asyncio.gather(*(informer.stop() for informer in self._informers.values()))
