"""The etcd v3 backend: etcd's own transactions, ranges and watch, over its JSON gateway.

etcd (3.4 and later) serves its gRPC API as JSON at ``/v3/...`` on the client URL, which
lets the store speak to it with aiohttp alone. The gateway's rules, all checked against a
real etcd: field names are the proto's (``create_revision``, ``prev_kv``), keys and values
are base64, int64 values are strings, and default values are left out (a failed txn has
no ``succeeded``, an empty value no ``value``, a PUT event no ``type``).

The mapping, as kube-apiserver's etcd3 storage does it:

- create = txn(``create_revision(key) == 0``) put;
- update = txn(``mod_revision(key) == expected``) put, else range (the current value);
- delete = the same with delete-range and ``prev_kv`` (so the result carries the last
  value); unconditional delete = delete-range with ``prev_kv``;
- watch = the streaming ``/v3/watch`` with ``prev_kv``; a DELETE event's kv is the
  previous kv with ``mod_revision`` set to the deletion's revision;
- compact = put ``compact_rev_key`` (guarded by its version, as kube-apiserver's compactor
  does, so concurrent compactors agree), then etcd's compaction. etcd does not report its
  compacted revision on reads, so the store reads it back from that key.

Several endpoints may be given: a request that cannot reach one moves on to the next. A
read is retried on any connection failure; a write only when it certainly was not sent
(connecting failed), since a write whose reply was lost may have happened.
"""

from __future__ import annotations

import base64
import ssl as ssl_module
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import orjson

from control.store.protocol import (
    CompactedError,
    Event,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyValue,
    ListResult,
    StoreError,
    StoreUnavailableError,
    SwapResult,
)

COMPACT_REV_KEY = "compact_rev_key"
"""Where the compacted revision is kept (kube-apiserver's key; kine uses the same name)."""

# etcd's error texts for the two revision errors: both are gRPC OutOfRange (HTTP 400), so
# like etcd's own Go client (api/v3rpc/rpctypes) the store tells them apart by description.
_ERR_COMPACTED = "etcdserver: mvcc: required revision has been compacted"
_ERR_FUTURE_REV = "etcdserver: mvcc: required revision is a future revision"
# gRPC codes that mean "try again": DEADLINE_EXCEEDED, UNAVAILABLE.
_RETRYABLE_CODES = frozenset({4, 14})

_JSON_HEADERS = {"Content-Type": "application/json"}
_ALL_KEYS = "AA=="  # base64 of b"\0": as a start key, the first key; as range_end, "no end"

# Connection failures that prove the request was not sent, so even a write may go to the
# next endpoint.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def _encode_key(key: str) -> str:
    return base64.b64encode(key.encode("utf-8", "surrogateescape")).decode("ascii")


def _decode_key(data: str) -> str:
    return base64.b64decode(data).decode("utf-8", "surrogateescape")


def _range_end(prefix: str) -> str:
    """etcd's range end for a prefix (clientv3.GetPrefixRangeEnd), base64-encoded."""
    end = bytearray(prefix.encode("utf-8", "surrogateescape"))
    while end and end[-1] == 0xFF:
        end.pop()
    if not end:
        return _ALL_KEYS
    end[-1] += 1
    return base64.b64encode(end).decode("ascii")


def _kv(data: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=_decode_key(data["key"]),
        value=base64.b64decode(data.get("value", "")),
        create_revision=int(data.get("create_revision", 0)),
        mod_revision=int(data.get("mod_revision", 0)),
    )


def _event(data: dict[str, Any]) -> Event:
    kv = data["kv"]
    prev = data.get("prev_kv")
    if data.get("type") == "DELETE":
        deleted_at = int(kv["mod_revision"])
        if prev is None:  # etcd leaves prev_kv out when its revision was already compacted
            return Event(EventType.DELETE, KeyValue(_decode_key(kv["key"]), b"", 0, deleted_at), None)
        last = _kv(prev)
        return Event(EventType.DELETE, KeyValue(last.key, last.value, last.create_revision, deleted_at), last)
    current = _kv(kv)
    if current.create_revision == current.mod_revision or prev is None:
        return Event(EventType.PUT, current, None)
    return Event(EventType.PUT, current, _kv(prev))


def _header_revision(reply: dict[str, Any]) -> int:
    return int(reply["header"]["revision"])


def _check_key(key: str) -> None:
    if not key:
        raise ValueError("key must not be empty")


def _check_revision(revision: int) -> None:
    if revision < 0:
        raise ValueError(f"revision must not be negative, not {revision}")


class EtcdStore:
    """The :class:`~control.store.protocol.Store` on an etcd v3 cluster (see the module docstring).

    ``endpoints`` are base URLs (``http://127.0.0.1:2379``); ``ssl`` is the TLS context for
    ``https`` endpoints (None = the system's trust store).
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        ssl: ssl_module.SSLContext | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        if request_timeout <= 0:
            raise ValueError(f"request timeout must be positive, not {request_timeout}")
        self.endpoints = [endpoint.rstrip("/") for endpoint in endpoints]
        self._ssl = ssl
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._watch_timeout = aiohttp.ClientTimeout(total=None, sock_connect=request_timeout)
        self._current = 0  # index of the endpoint that answered last
        self._session: aiohttp.ClientSession | None = None
        self._streams: set[aiohttp.ClientResponse] = set()
        self._closed = False

    async def start(self) -> None:
        if self._closed:
            raise StoreUnavailableError("store is closed")
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl if self._ssl is not None else True)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        try:
            await self.current_revision()
        except BaseException:
            session, self._session = self._session, None
            await session.close()
            raise

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for response in list(self._streams):
            response.close()  # its watch iterator sees the connection end and stops
        if self._session is not None:
            await self._session.close()

    async def current_revision(self) -> int:
        reply = await self._call("/v3/kv/range", {"key": _encode_key(COMPACT_REV_KEY), "count_only": True})
        return _header_revision(reply)

    async def compacted_revision(self) -> int:
        _, _, compacted = await self._compaction_state()
        return compacted

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        _check_key(key)
        _check_revision(revision)
        body: dict[str, Any] = {"key": _encode_key(key)}
        if revision:
            body["revision"] = str(revision)
        reply = await self._call("/v3/kv/range", body, revision=revision)
        kvs = reply.get("kvs")
        return _kv(kvs[0]) if kvs else None

    async def list(
        self, prefix: str, *, revision: int = 0, start_key: str = "", limit: int = 0
    ) -> ListResult:
        _check_revision(revision)
        if limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        start = max(prefix, start_key)
        body: dict[str, Any] = {
            "key": _encode_key(start) if start else _ALL_KEYS,
            "range_end": _range_end(prefix),
        }
        if revision:
            body["revision"] = str(revision)
        if limit:
            body["limit"] = str(limit)
        reply = await self._call("/v3/kv/range", body, revision=revision)
        items = [_kv(kv) for kv in reply.get("kvs", ())]
        more = bool(reply.get("more", False))
        remaining = int(reply.get("count", 0)) - len(items) if more else 0
        return ListResult(items, revision or _header_revision(reply), more, remaining)

    async def count(self, prefix: str) -> int:
        body = {
            "key": _encode_key(prefix) if prefix else _ALL_KEYS,
            "range_end": _range_end(prefix),
            "count_only": True,
        }
        reply = await self._call("/v3/kv/range", body)
        return int(reply.get("count", 0))

    async def create(self, key: str, value: bytes) -> KeyValue:
        _check_key(key)
        encoded = _encode_key(key)
        reply = await self._txn(
            compare=[{"key": encoded, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            success=[{"request_put": {"key": encoded, "value": base64.b64encode(value).decode("ascii")}}],
            failure=[],
        )
        if not reply.get("succeeded", False):
            raise KeyExistsError(key)
        revision = _header_revision(reply)
        return KeyValue(key, value, revision, revision)

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> SwapResult:
        _check_key(key)
        if expected_revision < 1:
            raise ValueError(f"update needs the key's current mod_revision, not {expected_revision}")
        encoded = _encode_key(key)
        put = {"key": encoded, "value": base64.b64encode(value).decode("ascii"), "prev_kv": True}
        reply = await self._txn(
            compare=[
                {"key": encoded, "target": "MOD", "result": "EQUAL", "mod_revision": str(expected_revision)}
            ],
            success=[{"request_put": put}],
            failure=[{"request_range": {"key": encoded}}],
        )
        revision = _header_revision(reply)
        if not reply.get("succeeded", False):
            return SwapResult(False, self._range_result(reply), revision)
        previous = _kv(reply["responses"][0]["response_put"]["prev_kv"])
        return SwapResult(True, KeyValue(key, value, previous.create_revision, revision), revision)

    async def delete(self, key: str, *, expected_revision: int = 0) -> SwapResult:
        _check_key(key)
        if expected_revision < 0:
            raise ValueError(f"expected revision must not be negative, not {expected_revision}")
        encoded = _encode_key(key)
        if not expected_revision:
            reply = await self._call(
                "/v3/kv/deleterange", {"key": encoded, "prev_kv": True}, idempotent=False
            )
            return self._delete_result(reply, reply.get("prev_kvs"))
        reply = await self._txn(
            compare=[
                {"key": encoded, "target": "MOD", "result": "EQUAL", "mod_revision": str(expected_revision)}
            ],
            success=[{"request_delete_range": {"key": encoded, "prev_kv": True}}],
            failure=[{"request_range": {"key": encoded}}],
        )
        if not reply.get("succeeded", False):
            return SwapResult(False, self._range_result(reply), _header_revision(reply))
        return self._delete_result(reply, reply["responses"][0]["response_delete_range"].get("prev_kvs"))

    async def compact(self, revision: int) -> None:
        _check_revision(revision)
        while True:
            current, version, compacted = await self._compaction_state()
            if revision > current:
                raise FutureRevisionError(requested=revision, current=current)
            if revision <= compacted:
                return
            encoded = _encode_key(COMPACT_REV_KEY)
            recorded = await self._txn(
                compare=[{"key": encoded, "target": "VERSION", "result": "EQUAL", "version": str(version)}],
                success=[
                    {"request_put": {"key": encoded, "value": base64.b64encode(b"%d" % revision).decode()}}
                ],
                failure=[],
            )
            if recorded.get("succeeded", False):
                break
            # Another compactor recorded first: look again.
        try:
            await self._call("/v3/kv/compaction", {"revision": str(revision)}, revision=revision)
        except CompactedError:
            return  # etcd is already compacted past it (e.g. by its own auto-compaction)

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[list[Event]]:
        _check_revision(start_revision)
        create: dict[str, Any] = {
            "key": _encode_key(prefix) if prefix else _ALL_KEYS,
            "range_end": _range_end(prefix),
            "prev_kv": True,
        }
        if start_revision:
            create["start_revision"] = str(start_revision)
        response = await self._open_watch({"create_request": create})
        self._streams.add(response)
        try:
            buffer = bytearray()
            async for chunk in response.content.iter_any():
                buffer.extend(chunk)
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if line.strip():
                        events = await self._watch_events(orjson.loads(line), start_revision)
                        if events:
                            yield events
            if not self._closed:
                raise StoreUnavailableError("etcd ended the watch stream")
        except (aiohttp.ClientError, TimeoutError) as exc:
            if self._closed:
                return
            raise StoreUnavailableError(f"etcd watch stream broke: {exc!r}") from exc
        finally:
            self._streams.discard(response)
            response.close()

    # Internals.

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise StoreUnavailableError("store is closed")
        if self._session is None:
            raise StoreUnavailableError("store is not started")
        return self._session

    async def _compaction_state(self) -> tuple[int, int, int]:
        """The current revision, and the version and value of ``compact_rev_key``."""
        reply = await self._call("/v3/kv/range", {"key": _encode_key(COMPACT_REV_KEY)})
        kvs = reply.get("kvs")
        if not kvs:
            return _header_revision(reply), 0, 0
        return _header_revision(reply), int(kvs[0].get("version", 0)), int(base64.b64decode(kvs[0]["value"]))

    async def _txn(
        self, *, compare: list[dict[str, Any]], success: list[dict[str, Any]], failure: list[dict[str, Any]]
    ) -> dict[str, Any]:
        body = {"compare": compare, "success": success, "failure": failure}
        return await self._call("/v3/kv/txn", body, idempotent=False)

    @staticmethod
    def _range_result(reply: dict[str, Any]) -> KeyValue | None:
        """The current value from a failed txn's range (None when the key is absent)."""
        kvs = reply["responses"][0]["response_range"].get("kvs")
        return _kv(kvs[0]) if kvs else None

    @staticmethod
    def _delete_result(reply: dict[str, Any], prev_kvs: list[dict[str, Any]] | None) -> SwapResult:
        revision = _header_revision(reply)
        if not prev_kvs:
            return SwapResult(False, None, revision)
        last = _kv(prev_kvs[0])
        return SwapResult(True, KeyValue(last.key, last.value, last.create_revision, revision), revision)

    async def _call(
        self, path: str, body: dict[str, Any], *, idempotent: bool = True, revision: int = 0
    ) -> dict[str, Any]:
        """POST to the gateway, moving to the next endpoint when one cannot be reached."""
        session = self._open_session()
        payload = orjson.dumps(body)
        failures: list[str] = []
        last_error: Exception | None = None
        for _ in range(len(self.endpoints)):
            if self._closed:
                raise StoreUnavailableError("store is closed")
            endpoint = self.endpoints[self._current]
            try:
                async with session.post(endpoint + path, data=payload, headers=_JSON_HEADERS) as response:
                    raw = await response.read()
                    status = response.status
            except _NOT_SENT as exc:
                last_error = exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                if not idempotent:
                    raise StoreUnavailableError(
                        f"etcd at {endpoint} failed during a write, which may or may not have happened: {exc!r}"
                    ) from exc
                last_error = exc
            else:
                return await self._reply(raw, status=status, revision=revision)
            failures.append(f"{endpoint}: {last_error!r}")
            self._current = (self._current + 1) % len(self.endpoints)
        raise StoreUnavailableError(f"no etcd endpoint answered ({'; '.join(failures)})") from last_error

    async def _open_watch(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        session = self._open_session()
        payload = orjson.dumps(body)
        failures: list[str] = []
        last_error: Exception | None = None
        for _ in range(len(self.endpoints)):
            endpoint = self.endpoints[self._current]
            try:
                response = await session.post(
                    endpoint + "/v3/watch", data=payload, headers=_JSON_HEADERS, timeout=self._watch_timeout
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                last_error = exc
                failures.append(f"{endpoint}: {exc!r}")
                self._current = (self._current + 1) % len(self.endpoints)
                continue
            if response.status != 200:
                async with response:
                    await self._reply(await response.read(), status=response.status, revision=0)
            return response
        raise StoreUnavailableError(f"no etcd endpoint answered ({'; '.join(failures)})") from last_error

    async def _reply(self, raw: bytes, *, status: int, revision: int) -> dict[str, Any]:
        """The decoded reply, or the store error it stands for (the one translation point)."""
        try:
            reply = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise StoreError(
                f"etcd answered HTTP {status} with a body that is not JSON: {raw[:200]!r}"
            ) from exc
        if status == 200 and "error" not in reply:
            return reply
        message = str(reply.get("message") or reply.get("error") or f"HTTP {status}")
        raise await self._error(message, code=reply.get("code"), status=status, revision=revision)

    async def _error(self, message: str, *, code: object, status: int, revision: int) -> StoreError:
        if message == _ERR_COMPACTED:
            _, _, compacted = await self._compaction_state()
            # Compaction done outside this store (etcd's --auto-compaction) does not update
            # compact_rev_key, so the recorded value is only a lower bound.
            return CompactedError(requested=revision, compacted=max(compacted, revision + 1))
        if message == _ERR_FUTURE_REV:
            return FutureRevisionError(requested=revision, current=await self.current_revision())
        if code in _RETRYABLE_CODES or status >= 500:
            return StoreUnavailableError(f"etcd: {message}")
        return StoreError(f"etcd: {message}")

    async def _watch_events(self, message: dict[str, Any], start_revision: int) -> list[Event]:
        """The events of one watch response, or the error it carries."""
        error = message.get("error")
        if error is not None:
            raise await self._error(
                str(error.get("message", error)),
                code=error.get("grpc_code"),
                status=int(error.get("http_code", 500)),
                revision=start_revision,
            )
        result = message.get("result", {})
        if result.get("canceled", False):
            compacted = int(result.get("compact_revision", 0))
            if compacted:
                raise CompactedError(requested=start_revision, compacted=compacted)
            raise StoreError(f"etcd cancelled the watch: {result.get('cancel_reason') or 'no reason given'}")
        return [_event(event) for event in result.get("events", ())]
