"""WATCH: a chunked stream of JSON event lines, as kube-apiserver writes it.

Where the stream starts:
- ``resourceVersion`` unset or "0": synthetic ADDED events for every current object, then
  the changes after that list's revision;
- ``resourceVersion=N``: the changes after N (an in-stream ERROR 410 Expired event when N
  has been compacted);
- ``sendInitialEvents=true`` (WatchList, client-go >= 0.35): ADDED for every object, then a
  BOOKMARK annotated ``k8s.io/initial-events-end: "true"``, then the changes.

With a selector, an object that starts matching arrives as ADDED and one that stops
matching as DELETED, as upstream's cacher does. Every watcher gets objects in the version it
watches, whichever version wrote them (``ResourceType.stored_as``; custom resources with a
converter are converted batch by batch, and a failed conversion ends the stream with an
ERROR event). Bookmarks (``allowWatchBookmarks``) carry
the newest revision this watcher has seen, every few seconds and just before the
``timeoutSeconds`` deadline. Every object carries kind and apiVersion.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from control.apiserver import errors
from control.apiserver.call import JSON, Call
from control.apiserver.codec import decode, served_bytes
from control.apiserver.conversion import converted_bytes, decoded, read_objects, shared_converted
from control.apiserver.metrics import APIServerMetrics
from control.apiserver.negotiation import Shape
from control.apiserver.predicate import Predicate, compile_predicate
from control.apiserver.reads import parse_resource_version
from control.apiserver.tables import partial_metadata, table
from control.apiserver.watch_cache import ResourceBroadcaster, WatchCache
from control.resources.registry import StoredAs
from control.store import CompactedError, Event, EventType, KeyValue, StoreError

log = logging.getLogger("kubelab.apiserver.watch")

BOOKMARK_INTERVAL_SECONDS = 5.0
_TICK_SECONDS = 1.0  # how often an idle stream checks for a gone client
_MIN_REQUEST_TIMEOUT = 1800  # upstream's --min-request-timeout


async def watch(call: Call, *, metrics: APIServerMetrics, cache: WatchCache) -> web.StreamResponse:
    rt = call.rt
    predicate = compile_predicate(
        rt, label_selector=call.param("labelSelector"), field_selector=call.param("fieldSelector")
    )
    bookmarks = call.param("allowWatchBookmarks").lower() == "true"
    send_initial = call.param("sendInitialEvents")
    rv = call.param("resourceVersion")
    if send_initial and (call.param("resourceVersionMatch") != "NotOlderThan" or not bookmarks):
        raise errors.StatusError(
            code=422,
            reason="Invalid",
            message="sendInitialEvents requires setting resourceVersionMatch to NotOlderThan and "
            "allowWatchBookmarks to true",
        )
    timeout = _timeout_seconds(call.param("timeoutSeconds"))
    prefix = call.objects.prefix(rt, namespace=call.info.namespace)
    store = call.objects.store
    # Started before the initial list, so its ring covers everything after that list.
    broadcaster = await cache.broadcaster(rt.storage_prefix)
    encoder = _EventEncoder(call)
    initial: list[KeyValue] = []
    initial_events = send_initial.lower() == "true" or (not send_initial and rv in ("", "0"))
    if initial_events:
        listing = await store.list(prefix)
        await encoder.prepare(listing.items)
        initial = [
            kv
            for kv in listing.items
            if predicate.matches_everything or predicate.matches(encoder.listed_obj(kv))
        ]
        start = listing.revision
    else:
        start = parse_resource_version(rv) if rv else await store.current_revision()

    response = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    await response.prepare(call.request)
    await response.write(b"")  # flush the headers: later lines may go straight to the transport
    stream = _Stream(response=response, call=call)
    deadline = time.monotonic() + timeout
    metrics.registered_watchers.labels(group=rt.group, version=rt.version, kind=rt.kind).inc()
    try:
        for kv in initial:
            await stream.write(encoder.line("ADDED", kv))
        if send_initial.lower() == "true":
            await stream.write(encoder.bookmark(start, initial_events_end=True))
        sink = _DirectSink(call=call, predicate=predicate, encoder=encoder, prefix=prefix, start=start)
        # Conversions through a converter are awaited: those watchers follow the store themselves.
        if rt.conversion is None and broadcaster.register(sink, after=start):
            try:
                await _serve_live(sink, broadcaster=broadcaster, deadline=deadline, bookmarks=bookmarks)
            finally:
                broadcaster.unregister(sink)
        else:
            await _follow(
                call,
                stream=stream,
                encoder=encoder,
                predicate=predicate,
                prefix=prefix,
                start=start,
                deadline=deadline,
                bookmarks=bookmarks,
            )
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        metrics.registered_watchers.labels(group=rt.group, version=rt.version, kind=rt.kind).dec()
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _serve_live(
    sink: _DirectSink, *, broadcaster: ResourceBroadcaster, deadline: float, bookmarks: bool
) -> None:
    """Wait while the broadcaster feeds ``sink``; send bookmarks; end at the deadline."""
    next_bookmark = time.monotonic() + BOOKMARK_INTERVAL_SECONDS
    while not sink.closed.is_set():
        now = time.monotonic()
        if now >= deadline:
            if bookmarks:
                sink.write(sink.encoder.bookmark(max(sink.last_seen, broadcaster.last_revision)))
            return
        if sink.client_gone():
            return
        wait = min(
            deadline - now, _TICK_SECONDS, max(0.0, next_bookmark - now) if bookmarks else _TICK_SECONDS
        )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(sink.closed.wait(), timeout=wait)
        if bookmarks and time.monotonic() >= next_bookmark and not sink.closed.is_set():
            sink.write(sink.encoder.bookmark(max(sink.last_seen, broadcaster.last_revision)))
            next_bookmark = time.monotonic() + BOOKMARK_INTERVAL_SECONDS


class _DirectSink:
    """A watcher fed synchronously by a broadcaster, writing chunks straight to its socket.

    The response's headers are already sent and it is chunked, so each event goes out as
    one ``<hex length>\\r\\n<line>\\r\\n`` write: no task switch, no per-write coroutine.
    A watcher whose connection stops draining is closed (upstream closes unresponsive
    watchers too); its client re-watches from its last resourceVersion.
    """

    SLOW_WATCHER_BYTES = 8 * 1024 * 1024

    def __init__(
        self, *, call: Call, predicate: Predicate, encoder: _EventEncoder, prefix: str, start: int
    ) -> None:
        self._transport = call.request.transport
        self._predicate = predicate
        self.encoder = encoder
        self._prefix = prefix
        self._min_revision = start + 1
        self.last_seen = start
        self.closed = asyncio.Event()

    def deliver(self, event: Event) -> None:
        if event.revision < self._min_revision or not event.kv.key.startswith(self._prefix):
            return
        self.last_seen = event.revision
        line = _transition(event, self._predicate, self.encoder)
        if line is not None:
            self.write(line)

    def write(self, line: bytes) -> None:
        transport = self._transport
        if self.closed.is_set():
            return
        if transport is None or transport.is_closing():
            self.close()
            return
        if transport.get_write_buffer_size() > self.SLOW_WATCHER_BYTES:
            log.warning(
                "closing a watcher that stopped reading (%d bytes queued)", transport.get_write_buffer_size()
            )
            self.close()
            return
        transport.write(b"%x\r\n%b\r\n" % (len(line), line))

    def client_gone(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def close(self) -> None:
        self.closed.set()


async def _follow(
    call: Call,
    *,
    stream: _Stream,
    encoder: _EventEncoder,
    predicate: Predicate,
    prefix: str,
    start: int,
    deadline: float,
    bookmarks: bool,
) -> None:
    store = call.objects.store
    events: AsyncIterator[list[Event]] = store.watch(prefix, start_revision=start + 1).__aiter__()
    last_seen = start
    next_bookmark = time.monotonic() + BOOKMARK_INTERVAL_SECONDS
    pending: asyncio.Future[list[Event]] | None = None
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                if bookmarks:
                    await stream.write(encoder.bookmark(last_seen))
                return
            if stream.client_gone():
                return
            if pending is None:
                pending = asyncio.ensure_future(events.__anext__())
            wait = min(
                deadline - now, _TICK_SECONDS, max(0.0, next_bookmark - now) if bookmarks else _TICK_SECONDS
            )
            done, _ = await asyncio.wait({pending}, timeout=wait)
            if pending in done:
                future, pending = pending, None
                try:
                    batch = future.result()
                except StopAsyncIteration:
                    return
                except CompactedError as exc:
                    await stream.write(encoder.error(errors.too_old_resource_version(start, exc.compacted)))
                    return
                except StoreError as exc:
                    await stream.write(encoder.error(errors.internal(f"watch stopped: {exc}")))
                    return
                try:
                    await encoder.prepare([kv for e in batch for kv in (e.kv, e.prev) if kv is not None])
                except errors.StatusError as exc:  # a failed conversion ends the watch, as upstream
                    await stream.write(encoder.error(exc))
                    return
                for event in batch:
                    last_seen = max(last_seen, event.revision)
                    line = _transition(event, predicate, encoder)
                    if line is not None:
                        await stream.write(line)
            elif bookmarks and time.monotonic() >= next_bookmark:
                await stream.write(encoder.bookmark(last_seen))
                next_bookmark = time.monotonic() + BOOKMARK_INTERVAL_SECONDS
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()


@functools.lru_cache(maxsize=4096)
def _shared_decode(kv: KeyValue) -> dict[str, Any]:
    """One decoded object per stored version, shared by every watcher that filters it.

    Watchers of one resource all receive the same KeyValue objects from the store, so
    500 watchers with selectors decode an event once, not 500 times. The dict is shared:
    predicates and encoders only read it.
    """
    return decode(kv)


@functools.lru_cache(maxsize=4096)
def _object_line(type_: str, kv: KeyValue) -> bytes:
    """The wire line of an event in the plain object shape, built once per event."""
    return b'{"type":"' + type_.encode() + b'","object":' + served_bytes(kv) + b"}\n"


@functools.lru_cache(maxsize=4096)
def _converted_line(type_: str, stored_as: StoredAs, kv: KeyValue) -> bytes:
    """The wire line of an event of a kind stored as another version, built once per event."""
    return b'{"type":"' + type_.encode() + b'","object":' + converted_bytes(stored_as, kv) + b"}\n"


def _transition(event: Event, predicate: Predicate, encoder: _EventEncoder) -> bytes | None:
    """The line a watcher with ``predicate`` sees for ``event``, or None."""
    if predicate.matches_everything:
        if event.type is EventType.DELETE:
            return encoder.line("DELETED", event.kv)
        return encoder.line("ADDED" if event.is_create else "MODIFIED", event.kv)
    now_matches = predicate.matches(encoder.obj(event.kv))
    before_matches = event.prev is not None and predicate.matches(encoder.obj(event.prev))
    if event.type is EventType.DELETE:
        return encoder.line("DELETED", event.kv) if (now_matches or before_matches) else None
    if now_matches and before_matches:
        return encoder.line("MODIFIED", event.kv)
    if now_matches:
        return encoder.line("ADDED", event.kv)
    if before_matches:
        return encoder.line("DELETED", event.kv)
    return None


class _EventEncoder:
    """Event lines in the shape the client asked for (object, Table row, metadata)."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._shape = call.wanted.shape
        self._stored_as = call.rt.stored_as
        self._conversion = call.rt.conversion
        self._plain = self._stored_as is None and self._conversion is None  # served as stored
        self._prepared: dict[KeyValue, dict[str, Any]] = {}

    async def prepare(self, kvs: list[KeyValue]) -> None:
        """Convert a batch of stored objects ahead of ``obj``/``line`` when the kind has a
        converter (one webhook call per batch); nothing to do otherwise."""
        if self._conversion is not None:
            self._prepared = dict(zip(kvs, await read_objects(self._call.rt, kvs), strict=True))

    def listed_obj(self, kv: KeyValue) -> dict[str, Any]:
        """An initially listed object in the watched version, kept out of the per-event caches."""
        if self._conversion is None:
            return decoded(self._call.rt, kv)
        return self._prepared[kv]

    def obj(self, kv: KeyValue) -> dict[str, Any]:
        """The event's object in the watched version, shared with other watchers: read only."""
        if self._plain:
            return _shared_decode(kv)
        if self._stored_as is not None:
            return shared_converted(self._stored_as, kv)
        return self._prepared[kv]

    def line(self, type_: str, kv: KeyValue) -> bytes:
        if self._shape is Shape.OBJECT:
            if self._plain:
                return _object_line(type_, kv)
            if self._stored_as is not None:
                return _converted_line(type_, self._stored_as, kv)
            body = orjson.dumps(self._prepared[kv])
            return b'{"type":"' + type_.encode() + b'","object":' + body + b"}\n"
        body = orjson.dumps(self._convert(self.obj(kv)))
        return b'{"type":"' + type_.encode() + b'","object":' + body + b"}\n"

    def _convert(self, obj: dict[str, Any]) -> dict[str, Any]:
        call = self._call
        if self._shape is Shape.PARTIAL_METADATA:
            return partial_metadata(obj, version=call.wanted.table_version)
        include = call.param("includeObject") or "Metadata"
        return table(
            call.rt,
            [obj],
            list_meta={"resourceVersion": obj["metadata"]["resourceVersion"]},
            include_object=include,
            now=call.now,
            version=call.wanted.table_version,
        )

    def bookmark(self, revision: int, *, initial_events_end: bool = False) -> bytes:
        rt = self._call.rt
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_events_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": metadata}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    @staticmethod
    def error(status: errors.StatusError) -> bytes:
        return orjson.dumps({"type": "ERROR", "object": status.status()}) + b"\n"


class _Stream:
    def __init__(self, *, response: web.StreamResponse, call: Call) -> None:
        self._response = response
        self._request = call.request

    async def write(self, line: bytes) -> None:
        await self._response.write(line)

    def client_gone(self) -> bool:
        transport = self._request.transport
        return transport is None or transport.is_closing()


def _timeout_seconds(text: str) -> float:
    if not text:
        return float(random.randint(_MIN_REQUEST_TIMEOUT, 2 * _MIN_REQUEST_TIMEOUT))
    try:
        value = int(text)
    except ValueError as exc:
        raise errors.bad_request(f'timeoutSeconds: Invalid value: "{text}": must be an integer') from exc
    return float(max(value, 0))
