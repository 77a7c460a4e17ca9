"""The reflector: keep a store in step with one collection by LIST, then WATCH (client-go's reflector.go, 0.32).

One pass (``list_and_watch``):

1. LIST in pages of 500. The first list asks for ``resourceVersion=0`` (any cached state is fine,
   cheap for the server); relists ask for the last resourceVersion seen, unpaged. If a relist
   answers 410 Expired (or "resourceVersion too large"), it is retried at once from ``""``
   (a consistent read of the latest state). The store is replaced with the result.
2. WATCH from the list's resourceVersion with ``allowWatchBookmarks=true`` and a random
   ``timeoutSeconds`` in [300, 600) s, so a fleet of clients does not reconnect in lockstep.
   ADDED/MODIFIED/DELETED go to the store; every event, BOOKMARKs included, advances the last
   resourceVersion. When the server ends the watch normally, a new one starts from there.
3. The pass ends — and the next one relists — when the watch fails: an ERROR 410 (relist from
   the last resourceVersion), any other error, or a watch that closed in under a second without
   a single event (a server or proxy in trouble). A 429 or a connection failure when *starting*
   a watch only backs off and re-watches.

Between passes the reflector backs off exponentially with jitter (0.8 s doubling to 30 s, so
waits settle in [30, 60) s; reset after 2 minutes without trouble) through the injected
:class:`Clock`, so tests run it without waiting.

With ``use_watch_list=True`` the initial state comes from a WatchList request instead
(``sendInitialEvents=true``, ``resourceVersionMatch=NotOlderThan``): ADDED events up to a
BOOKMARK annotated ``k8s.io/initial-events-end: "true"``, then the same stream carries on as the
watch. If the server refuses it, the pass falls back to LIST. Off by default, as in client-go 0.32.

The reflector talks to a :class:`ListerWatcher` (``RESTClient.lister_watcher`` in production; a
fake that injects faults in tests) and feeds a :class:`ReflectorStore` (the informer).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from control.client.clock import REAL_CLOCK, Clock
from control.client.errors import (
    TransportError,
    is_expired,
    is_resource_version_too_large,
    is_too_many_requests,
)
from control.client.indexer import object_key
from control.client.pager import DEFAULT_PAGE_SIZE, list_pages
from control.client.rest import EventType, WatchEvent

log = logging.getLogger(__name__)

INITIAL_EVENTS_END_ANNOTATION = "k8s.io/initial-events-end"
MIN_WATCH_TIMEOUT = 300.0  # seconds; each watch asks for a timeout in [this, 2 * this)
SHORT_WATCH = 1.0  # seconds; a watch closing sooner with no events counts as an error


class WatchEvents(Protocol):
    """An open watch: events in order, then the end of the iteration when the watch closes."""

    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...

    async def aclose(self) -> None: ...


class ListerWatcher(Protocol):
    """The two calls a reflector makes (client-go's ``cache.ListerWatcher``)."""

    async def list(
        self,
        *,
        resource_version: str | None,
        resource_version_match: str | None,
        limit: int | None,
        continue_: str | None,
    ) -> dict[str, Any]: ...

    async def watch(
        self,
        *,
        resource_version: str | None,
        resource_version_match: str | None,
        timeout_seconds: int | None,
        allow_watch_bookmarks: bool,
        send_initial_events: bool | None,
    ) -> WatchEvents: ...


class ReflectorStore(Protocol):
    """Where the reflector puts what it sees."""

    def replace(self, items: list[dict[str, Any]], resource_version: str) -> None: ...

    def add(self, obj: dict[str, Any]) -> None: ...

    def update(self, obj: dict[str, Any]) -> None: ...

    def delete(self, obj: dict[str, Any]) -> None: ...


class WatchTooShortError(Exception):
    """The watch closed in under a second without delivering an event."""


class Backoff:
    """client-go's exponential backoff manager: ``initial`` doubling up to ``cap``, plus up to
    ``jitter`` times the step of random extra, starting over when ``reset_after`` seconds have passed
    since the previous backoff.
    """

    def __init__(
        self,
        *,
        initial: float = 0.8,
        cap: float = 30.0,
        factor: float = 2.0,
        jitter: float = 1.0,
        reset_after: float = 120.0,
        clock: Clock = REAL_CLOCK,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._initial = initial
        self._cap = cap
        self._factor = factor
        self._jitter = jitter
        self._reset_after = reset_after
        self._clock = clock
        self._rand = rand
        self._duration = initial
        self._last: float | None = None

    def next(self) -> float:
        """The next wait, in seconds."""
        now = self._clock.now()
        if self._last is None or now - self._last > self._reset_after:
            self._duration = self._initial
        self._last = now
        duration = self._duration
        self._duration = min(duration * self._factor, self._cap)
        return duration + self._rand() * self._jitter * duration


class _TemporaryStore:
    """Collects a WatchList's initial events before they replace the real store in one go."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def replace(self, items: list[dict[str, Any]], resource_version: str) -> None:
        self.items = {object_key(obj): obj for obj in items}

    def add(self, obj: dict[str, Any]) -> None:
        self.items[object_key(obj)] = obj

    update = add

    def delete(self, obj: dict[str, Any]) -> None:
        self.items.pop(object_key(obj), None)


def _resource_version(obj: dict[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion") or ""


def _is_watch_start_retriable(exc: BaseException) -> bool:
    # client-go: connection refused or 429 -> back off and re-watch rather than relist.
    return isinstance(exc, TransportError) or is_too_many_requests(exc)


class Reflector:
    """Keeps ``store`` in step with what ``lister_watcher`` lists and watches. Run with :meth:`run`."""

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        store: ReflectorStore,
        *,
        name: str = "reflector",
        clock: Clock = REAL_CLOCK,
        page_size: int = DEFAULT_PAGE_SIZE,
        min_watch_timeout: float = MIN_WATCH_TIMEOUT,
        use_watch_list: bool = False,
        backoff: Backoff | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self._lw = lister_watcher
        self._store = store
        self._clock = clock
        self._page_size = page_size
        self._min_watch_timeout = min_watch_timeout
        self._use_watch_list = use_watch_list
        self._backoff = backoff if backoff is not None else Backoff(clock=clock, rand=rand)
        self._rand = rand
        self._last_rv = ""
        self._last_rv_unavailable = False
        self._paginated_result = False

    @property
    def last_sync_resource_version(self) -> str:
        """The resourceVersion of the last list or watch event processed (``""`` before the first list)."""
        return self._last_rv

    async def run(self) -> None:
        """List and watch until cancelled, backing off between passes."""
        log.debug("%s: starting", self.name)
        while True:
            try:
                await self.list_and_watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: list and watch failed: %s", self.name, exc)
            await self._clock.sleep(self._backoff.next())

    async def list_and_watch(self) -> None:
        """One pass: list (or WatchList), then watch until the watch fails. Raises if the list fails."""
        stream: WatchEvents | None = None
        if self._use_watch_list:
            try:
                stream = await self._watch_list()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "%s: the watch-list request failed (%s); falling back to list and watch", self.name, exc
                )
        if stream is None:
            await self._list()
        log.debug("%s: caches populated at resourceVersion %s", self.name, self._last_rv)
        await self._watch(stream)

    # --- list -----------------------------------------------------------------------------------

    def _relist_resource_version(self) -> str:
        if self._last_rv_unavailable:
            return ""
        return self._last_rv or "0"

    async def _list(self) -> None:
        resource_version = self._relist_resource_version()
        page_size: int | None = self._page_size
        if not self._paginated_result and resource_version not in ("", "0"):
            # A relist at a known resourceVersion can be served from the watch cache only
            # without a limit (client-go switches paging off for it).
            page_size = None
        try:
            result, paginated = await list_pages(
                self._lw.list, resource_version=resource_version, page_size=page_size
            )
        except Exception as exc:
            if not (is_expired(exc) or is_resource_version_too_large(exc)):
                raise
            log.info(
                "%s: resourceVersion %s is unavailable (%s); listing the latest state",
                self.name,
                resource_version,
                exc,
            )
            self._last_rv_unavailable = True
            result, paginated = await list_pages(
                self._lw.list, resource_version=self._relist_resource_version(), page_size=page_size
            )
        if resource_version == "0" and paginated:
            self._paginated_result = True
        self._last_rv_unavailable = False
        list_rv = _resource_version(result)
        self._store.replace(list(result.get("items") or ()), list_rv)
        self._last_rv = list_rv

    # --- watch-list -----------------------------------------------------------------------------

    async def _watch_list(self) -> WatchEvents:
        while True:
            resource_version = "" if self._last_rv_unavailable else self._last_rv
            temporary = _TemporaryStore()
            initial_rv = ""

            def set_rv(rv: str) -> None:
                nonlocal initial_rv
                initial_rv = rv

            start = self._clock.now()
            try:
                stream = await self._lw.watch(
                    resource_version=resource_version,
                    resource_version_match="NotOlderThan",
                    timeout_seconds=self._watch_timeout(),
                    allow_watch_bookmarks=True,
                    send_initial_events=True,
                )
            except Exception as exc:
                if await self._watch_list_retry(exc):
                    continue
                raise
            try:
                ended = await self._handle_watch(
                    stream, temporary, start=start, set_rv=set_rv, exit_on_initial_events_end=True
                )
            except BaseException as exc:
                await stream.aclose()
                if isinstance(exc, Exception) and await self._watch_list_retry(exc):
                    continue
                raise
            if ended:
                break
            await stream.aclose()
        self._last_rv_unavailable = False
        self._store.replace(list(temporary.items.values()), initial_rv)
        self._last_rv = initial_rv
        return stream

    async def _watch_list_retry(self, exc: Exception) -> bool:
        if _is_watch_start_retriable(exc):
            log.info("%s: watch-list failed (%s); backing off", self.name, exc)
            await self._clock.sleep(self._backoff.next())
            return True
        if is_expired(exc) or is_resource_version_too_large(exc):
            self._last_rv_unavailable = True
            return True
        return False

    # --- watch ----------------------------------------------------------------------------------

    def _watch_timeout(self) -> int:
        return int(self._min_watch_timeout * (self._rand() + 1.0))

    async def _watch(self, stream: WatchEvents | None) -> None:
        while True:
            start = self._clock.now()
            if stream is None:
                try:
                    stream = await self._lw.watch(
                        resource_version=self._last_rv,
                        resource_version_match=None,
                        timeout_seconds=self._watch_timeout(),
                        allow_watch_bookmarks=True,
                        send_initial_events=None,
                    )
                except Exception as exc:
                    if not _is_watch_start_retriable(exc):
                        raise
                    log.info("%s: starting the watch failed (%s); backing off", self.name, exc)
                    await self._clock.sleep(self._backoff.next())
                    continue
            try:
                await self._handle_watch(stream, self._store, start=start, set_rv=self._set_rv)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_expired(exc):
                    log.info("%s: watch closed with: %s; relisting", self.name, exc)
                    return
                if is_too_many_requests(exc):
                    log.info("%s: watch answered 429; backing off", self.name)
                    await self._clock.sleep(self._backoff.next())
                    continue
                log.warning("%s: watch ended with: %s", self.name, exc)
                return
            finally:
                await stream.aclose()
                stream = None

    def _set_rv(self, resource_version: str) -> None:
        self._last_rv = resource_version

    async def _handle_watch(
        self,
        stream: WatchEvents,
        store: ReflectorStore,
        *,
        start: float,
        set_rv: Callable[[str], None],
        exit_on_initial_events_end: bool = False,
    ) -> bool:
        """Apply events to ``store`` until the watch ends; True if the initial-events-end bookmark came."""
        initial_events_end = False
        count = 0
        async for event in stream:
            obj = event.object
            kind = event.type
            try:
                if kind is EventType.ADDED:
                    store.add(obj)
                elif kind is EventType.MODIFIED:
                    store.update(obj)
                elif kind is EventType.DELETED:
                    store.delete(obj)
                elif kind is EventType.BOOKMARK:
                    annotations = (obj.get("metadata") or {}).get("annotations") or {}
                    if annotations.get(INITIAL_EVENTS_END_ANNOTATION) == "true":
                        initial_events_end = True
            except Exception:
                log.exception("%s: unable to apply a %s event to the store", self.name, kind)
            resource_version = _resource_version(obj)
            if resource_version:
                set_rv(resource_version)
            count += 1
            if exit_on_initial_events_end and initial_events_end:
                return True
        if count == 0 and self._clock.now() - start < SHORT_WATCH:
            raise WatchTooShortError(
                f"{self.name}: very short watch: the watch lasted less than a second and no items were received"
            )
        return initial_events_end
