"""Fakes for testing code built on this library: a manual clock and a fault-injecting ListerWatcher.

Like client-go's ``clock/testing`` and ``tools/cache/testing``, these ship with the library so
controller and add-on tests can use them too. They exist to make time and faults controllable —
a relist after 410, a watch dropped after 0.5 s, a 429 — which a real API server cannot be made
to produce on cue. Anything else should be tested against the real API server.

- :class:`FakeClock` only moves when told (:meth:`FakeClock.advance`); sleepers and timers fire
  as it passes their deadlines, and every requested sleep is recorded in ``sleeps``.
- :class:`FakeListerWatcher` is an in-memory collection with a revision counter and history. It
  lists (with ``limit``/``continue``) and watches (replay after a resourceVersion, synthetic
  ADDED for ``""``/``"0"``, WatchList with the initial-events-end bookmark) like an API server;
  ``create``/``update``/``delete`` change it and notify open watches; ``fail_next_list``,
  ``fail_next_watch``, ``expire_watches``, ``drop_watches``, ``bookmark`` and ``compact`` inject
  the faults. Every call is recorded in ``list_calls``/``watch_calls``.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from control.client.errors import APIError, ExpiredError, api_error_from_status
from control.client.indexer import object_key
from control.client.reflector import INITIAL_EVENTS_END_ANNOTATION
from control.client.rest import EventType, WatchEvent


@dataclass(order=True, slots=True)
class _FakeTimer:
    when: float
    sequence: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that stands still until :meth:`advance` is called."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[_FakeTimer] = []
        self._sequence = itertools.count()
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> _FakeTimer:
        timer = _FakeTimer(self._now + max(delay, 0.0), next(self._sequence), callback)
        heapq.heappush(self._timers, timer)
        return timer

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        timer = self.call_later(seconds, lambda: future.done() or future.set_result(None))
        try:
            await future
        finally:
            timer.cancel()

    def pending(self) -> list[float]:
        """Deadlines of the timers and sleepers still waiting, earliest first."""
        return sorted(timer.when for timer in self._timers if not timer.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer whose deadline is passed, in deadline order."""
        target = self._now + seconds
        while self._timers and self._timers[0].when <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, timer.when)
            timer.callback()
        self._now = target

    def advance_to_next(self) -> float:
        """Advance exactly to the earliest pending deadline; returns the step taken."""
        pending = self.pending()
        if not pending:
            raise AssertionError("nothing is waiting on the fake clock")
        step = pending[0] - self._now
        self.advance(step)
        return step


_END = object()


class FakeWatch:
    """One open watch of a :class:`FakeListerWatcher`; implements ``WatchEvents``."""

    def __init__(self, owner: FakeListerWatcher, call: dict[str, Any]) -> None:
        self.call = call
        self.closed = False
        self._owner = owner
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def send(self, event_type: EventType, obj: dict[str, Any]) -> None:
        if not self.closed:
            self._queue.put_nowait(WatchEvent(event_type, orjson.loads(orjson.dumps(obj))))

    def fail(self, error: BaseException) -> None:
        """Make the consumer's next read raise ``error`` (an ERROR event, say)."""
        if not self.closed:
            self._queue.put_nowait(error)

    def end(self) -> None:
        """The server (or the network) closes the watch: iteration stops after what is queued."""
        if not self.closed:
            self._queue.put_nowait(_END)

    def __aiter__(self) -> FakeWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        if self.closed:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            self._close()
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self._owner._open.discard(self)


def expired_error(message: str = "too old resource version") -> ExpiredError:
    """The 410 Expired a server sends (in-stream or as a response) for a compacted resourceVersion."""
    error = api_error_from_status(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": "Expired",
            "code": 410,
        }
    )
    assert isinstance(error, ExpiredError)
    return error


@dataclass
class _Change:
    revision: int
    type: EventType
    obj: dict[str, Any]


class FakeListerWatcher:
    """An in-memory API collection for driving reflectors and informers in tests."""

    def __init__(
        self,
        objects: Iterable[dict[str, Any]] = (),
        *,
        kind: str = "ConfigMap",
        api_version: str = "v1",
        support_watch_list: bool = True,
    ) -> None:
        self.kind = kind
        self.api_version = api_version
        self.support_watch_list = support_watch_list
        self.revision = 1
        self.compacted = 0
        self.objects: dict[str, dict[str, Any]] = {}
        self.history: list[_Change] = []
        self.list_calls: list[dict[str, Any]] = []
        self.watch_calls: list[dict[str, Any]] = []
        self.watches: list[FakeWatch] = []
        self._open: set[FakeWatch] = set()
        self._list_faults: deque[BaseException] = deque()
        self._watch_faults: deque[BaseException] = deque()
        for obj in objects:
            self.create(obj)

    # --- changing the collection ----------------------------------------------------------------

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.revision += 1
        stored = orjson.loads(orjson.dumps(obj))
        stored.setdefault("kind", self.kind)
        stored.setdefault("apiVersion", self.api_version)
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.revision)
        return stored

    def _record(self, event_type: EventType, obj: dict[str, Any]) -> None:
        self.history.append(_Change(self.revision, event_type, obj))
        for watch in list(self._open):
            watch.send(event_type, obj)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        key = object_key(obj)
        if key in self.objects:
            raise ValueError(f"{key} already exists")
        stored = self._stamp(obj)
        self.objects[key] = stored
        self._record(EventType.ADDED, stored)
        return stored

    def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        key = object_key(obj)
        if key not in self.objects:
            raise KeyError(key)
        stored = self._stamp(obj)
        self.objects[key] = stored
        self._record(EventType.MODIFIED, stored)
        return stored

    def delete(self, key: str) -> dict[str, Any]:
        old = self.objects.pop(key)
        self.revision += 1
        final = orjson.loads(orjson.dumps(old))
        final["metadata"]["resourceVersion"] = str(self.revision)
        self._record(EventType.DELETED, final)
        return final

    def delete_silently(self, key: str) -> None:
        """Remove an object with no watch event, as if the event fell into a dropped watch."""
        del self.objects[key]
        self.revision += 1

    # --- faults ---------------------------------------------------------------------------------

    def fail_next_list(self, error: BaseException) -> None:
        self._list_faults.append(error)

    def fail_next_watch(self, error: BaseException) -> None:
        self._watch_faults.append(error)

    def compact(self) -> None:
        """Forget history: lists and watches from older resourceVersions now get 410."""
        self.compacted = self.revision
        self.history.clear()

    def bookmark(self, annotations: dict[str, str] | None = None) -> None:
        """Send a BOOKMARK at the current revision to every open watch."""
        for watch in list(self._open):
            watch.send(EventType.BOOKMARK, self._bookmark_object(annotations))

    def expire_watches(self) -> None:
        """Every open watch gets an ERROR 410 Expired event."""
        for watch in list(self._open):
            watch.fail(expired_error())

    def drop_watches(self) -> None:
        """Every open watch ends (server timeout or connection drop)."""
        for watch in list(self._open):
            watch.end()

    @property
    def open_watches(self) -> list[FakeWatch]:
        return [watch for watch in self.watches if not watch.closed]

    def _bookmark_object(self, annotations: dict[str, str] | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"resourceVersion": str(self.revision)}
        if annotations:
            metadata["annotations"] = annotations
        return {"kind": self.kind, "apiVersion": self.api_version, "metadata": metadata}

    # --- ListerWatcher --------------------------------------------------------------------------

    async def list(
        self,
        *,
        resource_version: str | None,
        resource_version_match: str | None,
        limit: int | None,
        continue_: str | None,
    ) -> dict[str, Any]:
        self.list_calls.append(
            {
                "resource_version": resource_version,
                "resource_version_match": resource_version_match,
                "limit": limit,
                "continue": continue_,
            }
        )
        await asyncio.sleep(0)
        if self._list_faults:
            raise self._list_faults.popleft()
        if continue_:
            token = orjson.loads(base64.urlsafe_b64decode(continue_))
            snapshot_rv, start = token["rv"], token["start"]
            if snapshot_rv < self.compacted:
                raise expired_error("The provided continue parameter is too old")
        else:
            snapshot_rv, start = self.revision, 0
        keys = sorted(self.objects)
        end = len(keys) if not limit else start + limit
        items = [orjson.loads(orjson.dumps(self.objects[key])) for key in keys[start:end]]
        metadata: dict[str, Any] = {"resourceVersion": str(snapshot_rv)}
        if end < len(keys):
            metadata["continue"] = base64.urlsafe_b64encode(
                orjson.dumps({"rv": snapshot_rv, "start": end})
            ).decode()
        return {
            "kind": f"{self.kind}List",
            "apiVersion": self.api_version,
            "metadata": metadata,
            "items": items,
        }

    async def watch(
        self,
        *,
        resource_version: str | None,
        resource_version_match: str | None,
        timeout_seconds: int | None,
        allow_watch_bookmarks: bool,
        send_initial_events: bool | None,
    ) -> FakeWatch:
        call = {
            "resource_version": resource_version,
            "resource_version_match": resource_version_match,
            "timeout_seconds": timeout_seconds,
            "allow_watch_bookmarks": allow_watch_bookmarks,
            "send_initial_events": send_initial_events,
        }
        self.watch_calls.append(call)
        await asyncio.sleep(0)
        if self._watch_faults:
            raise self._watch_faults.popleft()
        if send_initial_events and not self.support_watch_list:
            raise _invalid("sendInitialEvents is not supported")
        watch = FakeWatch(self, call)
        self.watches.append(watch)
        self._open.add(watch)
        if send_initial_events or resource_version in (None, "", "0"):
            for key in sorted(self.objects):
                watch.send(EventType.ADDED, self.objects[key])
            if send_initial_events:
                watch.send(EventType.BOOKMARK, self._bookmark_object({INITIAL_EVENTS_END_ANNOTATION: "true"}))
        else:
            since = int(resource_version)
            if since < self.compacted:
                # As kube-apiserver's watch cache does: the answer is 200, then an ERROR event.
                watch.fail(expired_error(f"too old resource version: {since} ({self.compacted})"))
            else:
                for change in self.history:
                    if change.revision > since:
                        watch.send(change.type, change.obj)
        return watch


def _invalid(message: str) -> APIError:
    return api_error_from_status(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": "Invalid",
            "code": 422,
        }
    )
