"""An async REST client for the Kubernetes API (client-go's ``rest`` + ``dynamic`` clients, on aiohttp).

Objects are plain dicts, as in client-go's dynamic client: the client knows no kinds, so it
works unchanged against kubelab and a real cluster, for built-in kinds and CRDs alike. What it
does know is the API's *addressing* — a :class:`Resource` names group, version, plural and scope
and builds ``/api/v1/namespaces/<ns>/pods/<name>/status``-style paths — and its wire format:

- requests and answers are JSON (orjson); ``Accept: application/json``; ``User-Agent:
  kubelab/<version>``; one ``aiohttp.ClientSession`` so connections are reused (and one
  connection per open watch, HTTP/1.1 having no multiplexing: the pool is unbounded);
- failures become the :mod:`control.client.errors` types, built from the ``Status`` body and
  chained to aiohttp's exception;
- like client-go, a request answered 429 or 5xx *with* ``Retry-After`` is retried after that many
  seconds (up to ``max_retries`` times), and a GET whose connection was reset is retried after
  one second; a request authenticated by a token source (:mod:`control.client.tokensource`)
  and answered 401 is retried once with a new token; everything else is the caller's to retry;
- a watch is an async iterator of :class:`WatchEvent` read from the chunked JSON-lines stream;
  an ``ERROR`` event is raised as its :class:`APIError` (410 → :class:`GoneError`), and a stream
  cut by the network simply ends, as client-go's StreamWatcher treats a probable EOF.

The client must be created and used inside a running event loop (aiohttp's rule); close it
with ``await client.close()`` or use it as an async context manager.

Request metrics go through a seam, as client-go's ``tools/metrics``: the library defines
:class:`RequestMetrics` and a component puts real ones in its configuration's
``request_metrics`` (``control.controllers.metrics`` makes component-base's
``rest_client_requests_total`` and ``rest_client_request_duration_seconds``). Unlike client-go's
process-wide ``metrics.Register``, the sink travels with the configuration, so the controller
manager and the scheduler sharing a process each count only their own requests. Every attempt
counts one result — its status code, or ``<error>`` when no answer came — and every non-streaming
request one latency, retries and the reading of the answer included. A configuration without
``request_metrics`` measures nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import importlib.metadata
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol
from urllib.parse import quote, urlsplit

import aiohttp
import orjson
import yarl
from multidict import CIMultiDictProxy

from control.client.auth import Authenticator, RequestCredentials
from control.client.clock import REAL_CLOCK, Clock
from control.client.config import ClientConfig
from control.client.errors import (
    DecodeError,
    TransportError,
    api_error_from_response,
    api_error_from_status,
    is_status,
)
from control.client.pager import DEFAULT_PAGE_SIZE, list_pages

log = logging.getLogger(__name__)

JSON = "application/json"
CONNECT_TIMEOUT = 30.0  # seconds, Go's net.Dialer default in client-go's transport
DEFAULT_MAX_RETRIES = 10  # client-go's rest.Request maxRetries
# Ordinary requests share at most this many keep-alive connections; a burst beyond it waits for
# one to come free instead of paying a TLS handshake (client-go multiplexes everything over one
# HTTP/2 connection; over HTTP/1.1 this bound plays that part). Watches and other streams hold
# their connection for as long as they last, so they have a pool of their own, unbounded.
MAX_REQUEST_CONNECTIONS = 16


def _version() -> str:
    try:
        return importlib.metadata.version("kubelab")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


USER_AGENT = f"kubelab/{_version()}"


class LatencyMetric(Protocol):
    def observe(self, *, verb: str, host: str, seconds: float) -> None: ...


class ResultMetric(Protocol):
    def increment(self, *, code: str, method: str, host: str) -> None: ...


@dataclass(frozen=True, slots=True)
class RequestMetrics:
    """What a component measures its API requests with (client-go's ``metrics.RegisterOpts``)."""

    latency: LatencyMetric
    result: ResultMetric


ERROR_CODE = "<error>"  # the code label of an attempt that got no answer, as client-go's


@dataclass(frozen=True, slots=True)
class Resource:
    """An API resource: where a kind lives. ``plural`` is the URL segment (``deployments``)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``pods``: how error messages and RBAC name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(
        self, *, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path (not escaped twice: namespace and name are percent-encoded here)."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            if not self.namespaced:
                raise ValueError(f"{self.group_resource} is cluster-scoped; no namespace may be given")
            prefix = f"{prefix}/namespaces/{quote(namespace, safe='')}"
        path = f"{prefix}/{self.plural}"
        if name is not None:
            if not name:
                raise ValueError(f"{self.group_resource}: an empty name is not allowed")
            path = f"{path}/{quote(name, safe=':@')}"
        if subresource:
            if name is None:
                raise ValueError(f"{self.group_resource}: subresource {subresource!r} needs an object name")
            path = f"{path}/{subresource}"
        return path


class PatchType(enum.StrEnum):
    """The four patch formats, as the Content-Type the server dispatches on."""

    MERGE = "application/merge-patch+json"
    JSON = "application/json-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"


class PropagationPolicy(enum.StrEnum):
    ORPHAN = "Orphan"
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"


@dataclass(frozen=True, slots=True)
class Preconditions:
    """Delete only if the object still has this uid and/or resourceVersion (409 otherwise)."""

    uid: str | None = None
    resource_version: str | None = None


class EventType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"


_EVENT_TYPES = {member.value: member for member in EventType}


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One watch event. For BOOKMARK only ``object.metadata.resourceVersion`` (and annotations) mean anything."""

    type: EventType
    object: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Response:
    """A complete, successful raw answer (:meth:`RESTClient.request`)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"the answer is not JSON: {exc}") from exc


# Transport-level failures of aiohttp and the socket layer.
_TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


class ResponseStream:
    """A successful answer whose body is read as it arrives (watches, followed logs)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status: int = response.status
        self.headers: CIMultiDictProxy[str] = response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in whatever pieces the network delivers; ends quietly if the connection drops."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except _TRANSPORT_ERRORS as exc:
            log.debug("stream from %s ended: %r", self._response.url, exc)

    async def lines(self) -> AsyncIterator[bytes]:
        """The body split at ``\\n`` (newline dropped). A last line without a newline is yielded too."""
        async for line, _ in self.split_lines():
            yield line

    async def split_lines(self) -> AsyncIterator[tuple[bytes, bool]]:
        """``(line, complete)`` pairs: ``complete`` is False only for a last line the body ended
        without terminating (the connection may have been cut inside it).
        """
        parts: list[bytes] = []
        async for chunk in self.chunks():
            start = 0
            newline = chunk.find(b"\n")
            while newline >= 0:
                if parts:
                    parts.append(chunk[start:newline])
                    yield b"".join(parts), True
                    parts.clear()
                else:
                    yield chunk[start:newline], True
                start = newline + 1
                newline = chunk.find(b"\n", start)
            if start < len(chunk):
                parts.append(chunk[start:])
        if parts:
            yield b"".join(parts), False

    async def aclose(self) -> None:
        # Closing (not releasing) drops the connection: an unread stream cannot be reused.
        self._response.close()


class WatchStream:
    """The events of one watch request, in order; use ``async for``, then :meth:`aclose`.

    Also an async context manager (``async with await client.watch(...) as events``). Iteration
    ends when the server closes the watch (``timeoutSeconds``) or the connection drops; an ERROR
    event raises its :class:`APIError`; an undecodable line raises :class:`DecodeError`.
    """

    def __init__(self, stream: ResponseStream) -> None:
        self._stream = stream
        self._events = self._decode()

    async def _decode(self) -> AsyncIterator[WatchEvent]:
        lines = self._stream.split_lines()
        try:
            async for line, complete in lines:
                if not line.strip():
                    continue
                if complete:
                    yield _parse_event(line)
                    continue
                # The body ended inside a line: if the connection broke mid-event it is cut
                # short, which client-go treats as an unexpected EOF, i.e. the end of the watch.
                try:
                    event = _parse_event(line)
                except DecodeError:
                    log.debug("watch stream ended inside an event")
                    return
                yield event
        finally:
            await lines.aclose()

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> WatchEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()
        await self._stream.aclose()

    async def __aenter__(self) -> WatchStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _parse_event(line: bytes) -> WatchEvent:
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"unable to decode an event from the watch stream: {exc}") from exc
    if not isinstance(raw, dict):
        raise DecodeError("unable to decode an event from the watch stream: not an object")
    kind, obj = raw.get("type"), raw.get("object")
    if kind == "ERROR":
        if is_status(obj):
            raise api_error_from_status(obj)
        raise DecodeError(f"watch ERROR event without a Status object: {obj!r:.200}")
    event_type = _EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if event_type is None or not isinstance(obj, dict):
        raise DecodeError(f"got invalid watch event type: {kind!r}")
    return WatchEvent(event_type, obj)


def _query(**params: Any) -> dict[str, str]:
    """Query parameters with ``None`` dropped and booleans spelled as the API expects."""
    query: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        query[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return query


def _write_query(
    *, field_manager: str | None, field_validation: str | None, dry_run: bool, force: bool | None = None
) -> dict[str, str]:
    """The options every write verb (create, replace, patch) takes."""
    return _query(
        fieldManager=field_manager,
        force=force,
        fieldValidation=field_validation,
        dryRun="All" if dry_run else None,
    )


def _retry_after(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _is_connection_reset(exc: BaseException) -> bool:
    """client-go's IsConnectionReset / IsProbableEOF: the server dropped a (reused) connection."""
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return True
    return isinstance(exc, OSError) and exc.errno == errno.ECONNRESET


def _metadata(body: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = body.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _encode(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return orjson.dumps(body)


class RESTClient:
    """The REST client. Every verb returns the decoded JSON answer (a dict) or raises a :class:`RequestError`.

    ``request_timeout`` bounds each non-streaming request (seconds; ``None``: no bound, as client-go's
    default); connecting is bounded by 30 s regardless. ``clock`` paces retries. Requests reuse up to
    ``MAX_REQUEST_CONNECTIONS`` connections; watches and streams get connections of their own.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        user_agent: str = USER_AGENT,
        request_timeout: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("RESTClient must be created inside a running event loop") from None
        self.config = config
        self._base = config.server.rstrip("/")
        self._host = urlsplit(self._base).netloc
        self._metrics = config.request_metrics
        self._auth = Authenticator(config, clock=clock)
        self._max_retries = max_retries
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, sock_connect=CONNECT_TIMEOUT)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
        self._warnings_seen: set[str] = set()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=MAX_REQUEST_CONNECTIONS),
            headers={"User-Agent": user_agent},
            trust_env=False,
        )
        self._stream_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), headers={"User-Agent": user_agent}, trust_env=False
        )

    async def __aenter__(self) -> RESTClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()
        await self._stream_session.close()

    @property
    def closed(self) -> bool:
        return self._session.closed

    # --- plumbing -----------------------------------------------------------------------------

    async def _open(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: bytes | None,
        content_type: str | None,
        accept: str,
        client_timeout: aiohttp.ClientTimeout,
    ) -> tuple[aiohttp.ClientResponse, str]:
        """Send one request, with client-go's Retry-After and connection-reset retries, and one
        retry after a 401 to a token source's token (with the new token it then hands out)."""
        url = yarl.URL(self._base + path, encoded=True)
        attempt = 0
        renewed = False
        while True:
            credentials: RequestCredentials = await self._auth.credentials()
            headers = credentials.headers
            headers["Accept"] = accept
            if content_type is not None:
                headers["Content-Type"] = content_type
            extra: dict[str, Any] = {}
            if self.config.tls_server_name:
                extra["server_hostname"] = self.config.tls_server_name
            metrics = self._metrics
            try:
                session = self._stream_session if client_timeout is self._stream_timeout else self._session
                response = await session.request(
                    method,
                    url,
                    params=params,
                    data=body,
                    headers=headers,
                    ssl=credentials.ssl if credentials.ssl is not None else True,
                    timeout=client_timeout,
                    **extra,
                )
            except _TRANSPORT_ERRORS as exc:
                if metrics is not None:
                    metrics.result.increment(code=ERROR_CODE, method=method, host=self._host)
                if method == "GET" and _is_connection_reset(exc) and attempt < self._max_retries:
                    attempt += 1
                    log.debug("%s %s: %r; retrying in 1s (attempt %d)", method, url, exc, attempt)
                    await self._clock.sleep(1.0)
                    continue
                raise TransportError(f"{method} {url.with_query(params or {})}: {exc!r}") from exc
            if metrics is not None:
                metrics.result.increment(code=str(response.status), method=method, host=self._host)
            for warning in response.headers.getall("Warning", ()):
                if warning not in self._warnings_seen:  # deprecation warnings repeat on every call
                    self._warnings_seen.add(warning)
                    log.warning("%s %s: server warning: %s", method, path, warning)
            if response.status == 401:
                self._auth.unauthorized(credentials)
                if credentials.renewable and not renewed:
                    renewed = True
                    response.release()
                    log.debug("%s %s: 401; retrying once with a new token", method, path)
                    continue
            wait = _retry_after(response.headers)
            if (
                wait is not None
                and (response.status == 429 or response.status >= 500)
                and attempt < self._max_retries
            ):
                attempt += 1
                response.release()
                log.debug(
                    "%s %s: %d, Retry-After %ds (attempt %d)", method, path, response.status, wait, attempt
                )
                await self._clock.sleep(wait)
                continue
            return response, str(response.url)

    @staticmethod
    def _fail(
        response: aiohttp.ClientResponse, data: bytes, *, method: str, qualified_resource: str, name: str
    ) -> NoReturn:
        error = api_error_from_response(
            code=response.status,
            body=data,
            content_type=response.headers.get("Content-Type"),
            method=method,
            retry_after=_retry_after(response.headers),
            qualified_resource=qualified_resource,
            name=name,
        )
        try:
            response.raise_for_status()
        except aiohttp.ClientResponseError as exc:
            raise error from exc
        raise error

    async def _read_failure(
        self, response: aiohttp.ClientResponse, *, method: str, qualified_resource: str
    ) -> NoReturn:
        try:
            data = await response.read()
        except _TRANSPORT_ERRORS as exc:
            raise TransportError(f"{method} {response.url}: reading the answer: {exc!r}") from exc
        self._fail(response, data, method=method, qualified_resource=qualified_resource, name="")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = JSON,
        request_timeout: float | None = None,
        qualified_resource: str = "",
        name: str = "",
    ) -> Response:
        client_timeout = (
            self._timeout
            if request_timeout is None
            else aiohttp.ClientTimeout(total=request_timeout, sock_connect=CONNECT_TIMEOUT)
        )
        started = time.perf_counter()
        try:
            response, url = await self._open(
                method,
                path,
                params=params,
                body=body,
                content_type=content_type,
                accept=accept,
                client_timeout=client_timeout,
            )
            async with response:
                try:
                    data = await response.read()
                except _TRANSPORT_ERRORS as exc:
                    raise TransportError(f"{method} {url}: reading the answer: {exc!r}") from exc
        finally:
            metrics = self._metrics
            if metrics is not None:
                metrics.latency.observe(verb=method, host=self._host, seconds=time.perf_counter() - started)
        if not 200 <= response.status <= 206:
            self._fail(response, data, method=method, qualified_resource=qualified_resource, name=name)
        return Response(response.status, response.headers, data)

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._call(method, path, **kwargs)
        if not response.body:
            return {}
        obj = response.json()
        if not isinstance(obj, dict):
            raise DecodeError(f"{method} {path}: expected a JSON object, got {type(obj).__name__}")
        if is_status(obj) and obj.get("status") == "Failure":
            raise api_error_from_status(obj, code=response.status)
        return obj

    # --- raw access ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = JSON,
        request_timeout: float | None = None,
    ) -> Response:
        """Any request (discovery, ``/version``, ``pods/log``...). ``body``: bytes, str, or JSON-encodable.

        Raises :class:`APIError` for a failure answer; returns the whole successful answer.
        """
        data = None if body is None else _encode(body)
        if data is not None and content_type is None:
            content_type = JSON
        return await self._call(
            method.upper(),
            path,
            params=_query(**params) if params else None,
            body=data,
            content_type=content_type,
            accept=accept,
            request_timeout=request_timeout,
        )

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, accept: str = JSON
    ) -> AsyncIterator[ResponseStream]:
        """A request whose answer is read as it arrives: ``async with client.stream("GET", p) as s``.

        A failure answer raises :class:`APIError` on entry.
        """
        response, _ = await self._open(
            method.upper(),
            path,
            params=_query(**params) if params else None,
            body=None,
            content_type=None,
            accept=accept,
            client_timeout=self._stream_timeout,
        )
        stream = ResponseStream(response)
        try:
            if not 200 <= response.status <= 206:
                await self._read_failure(response, method=method.upper(), qualified_resource="")
            yield stream
        finally:
            await stream.aclose()

    # --- verbs --------------------------------------------------------------------------------

    @staticmethod
    def _namespace_for(
        resource: Resource, namespace: str | None, body: Mapping[str, Any] | None = None
    ) -> str | None:
        if not resource.namespaced:
            return None
        if namespace is None and body is not None:
            namespace = _metadata(body).get("namespace")
        if not namespace:
            raise ValueError(f"{resource.group_resource} is namespaced: a namespace is required")
        return namespace

    async def get(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        path = resource.path(
            namespace=self._namespace_for(resource, namespace), name=name, subresource=subresource
        )
        return await self._json(
            "GET",
            path,
            params=_query(resourceVersion=resource_version) or None,
            qualified_resource=resource.group_resource,
            name=name,
        )

    async def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        timeout_seconds: int | None = None,
    ) -> dict[str, Any]:
        """One LIST request (one page when ``limit`` is set). ``namespace=None``: all namespaces.

        Items get ``kind`` and ``apiVersion`` filled in (the server leaves them out of list items),
        as client-go's unstructured lists do, so listed and watched objects look alike.
        """
        params = _query(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            limit=limit,
            resourceVersion=resource_version,
            resourceVersionMatch=resource_version_match,
            timeoutSeconds=timeout_seconds,
        )
        if continue_:
            params["continue"] = continue_
        result = await self._json(
            "GET",
            resource.path(namespace=namespace),
            params=params,
            qualified_resource=resource.group_resource,
        )
        kind, api_version = resource.kind, resource.api_version
        for item in result.get("items") or ():
            if "kind" not in item:
                item["kind"] = kind
            if "apiVersion" not in item:
                item["apiVersion"] = api_version
        return result

    async def list_all(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> dict[str, Any]:
        """The whole collection, fetched in pages of ``page_size`` (see :mod:`control.client.pager`)."""
        lister = self.lister_watcher(
            resource, namespace=namespace, label_selector=label_selector, field_selector=field_selector
        )
        result, _ = await list_pages(
            lister.list,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
            page_size=page_size,
        )
        return result

    async def create(
        self,
        resource: Resource,
        body: Mapping[str, Any],
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
        field_manager: str | None = None,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """POST an object. With ``subresource`` (``binding``, ``eviction``, ``token``) POST to the named
        object's subresource; ``name`` defaults to ``body.metadata.name``.
        """
        namespace = self._namespace_for(resource, namespace, body)
        if subresource and name is None:
            name = _metadata(body).get("name")
        path = resource.path(namespace=namespace, name=name if subresource else None, subresource=subresource)
        return await self._json(
            "POST",
            path,
            params=_write_query(
                field_manager=field_manager, field_validation=field_validation, dry_run=dry_run
            ),
            body=orjson.dumps(body),
            content_type=JSON,
            qualified_resource=resource.group_resource,
            name=name or "",
        )

    async def replace(
        self,
        resource: Resource,
        body: Mapping[str, Any],
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
        field_manager: str | None = None,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """PUT an object (or its ``status``/``scale``). Name and namespace default to the body's.

        Send the ``metadata.resourceVersion`` you read to get a 409 Conflict if it changed since.
        """
        namespace = self._namespace_for(resource, namespace, body)
        name = name or _metadata(body).get("name")
        if not name:
            raise ValueError("replace needs a name (argument or metadata.name)")
        return await self._json(
            "PUT",
            resource.path(namespace=namespace, name=name, subresource=subresource),
            params=_write_query(
                field_manager=field_manager, field_validation=field_validation, dry_run=dry_run
            ),
            body=orjson.dumps(body),
            content_type=JSON,
            qualified_resource=resource.group_resource,
            name=name,
        )

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = PatchType.MERGE,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """PATCH an object. ``patch``: a dict/list (encoded as JSON) or ready bytes/str.

        Server-side apply (``PatchType.APPLY``) requires ``field_manager``; ``force`` is only
        meaningful for apply (it takes over conflicting fields).
        """
        patch_type = PatchType(patch_type)
        if patch_type is PatchType.APPLY and not field_manager:
            raise ValueError("server-side apply requires a field_manager")
        if force is not None and patch_type is not PatchType.APPLY:
            raise ValueError("force is only valid with server-side apply")
        return await self._json(
            "PATCH",
            resource.path(
                namespace=self._namespace_for(resource, namespace), name=name, subresource=subresource
            ),
            params=_write_query(
                field_manager=field_manager, field_validation=field_validation, dry_run=dry_run, force=force
            ),
            body=_encode(patch),
            content_type=patch_type.value,
            qualified_resource=resource.group_resource,
            name=name,
        )

    @staticmethod
    def _delete_options(
        *,
        propagation_policy: PropagationPolicy | str | None,
        grace_period_seconds: int | None,
        preconditions: Preconditions | None,
        dry_run: bool,
    ) -> bytes:
        # The dynamic client's encoding: DeleteOptions in meta v1, sent as core "v1".
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            options["propagationPolicy"] = str(PropagationPolicy(propagation_policy))
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions is not None:
            options["preconditions"] = {
                key: value
                for key, value in (
                    ("uid", preconditions.uid),
                    ("resourceVersion", preconditions.resource_version),
                )
                if value is not None
            }
        if dry_run:
            options["dryRun"] = ["All"]
        return orjson.dumps(options)

    async def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        propagation_policy: PropagationPolicy | str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Preconditions | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """DELETE an object. Returns what the server answers: the object (still there while
        finalizers or graceful deletion run) or a ``Status`` with ``status: Success``.
        """
        return await self._json(
            "DELETE",
            resource.path(namespace=self._namespace_for(resource, namespace), name=name),
            body=self._delete_options(
                propagation_policy=propagation_policy,
                grace_period_seconds=grace_period_seconds,
                preconditions=preconditions,
                dry_run=dry_run,
            ),
            content_type=JSON,
            qualified_resource=resource.group_resource,
            name=name,
        )

    async def delete_collection(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        propagation_policy: PropagationPolicy | str | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """DELETE every object matching the selectors in a namespace (or cluster-wide for cluster-scoped)."""
        return await self._json(
            "DELETE",
            resource.path(namespace=self._namespace_for(resource, namespace)),
            params=_query(labelSelector=label_selector, fieldSelector=field_selector) or None,
            body=self._delete_options(
                propagation_policy=propagation_policy,
                grace_period_seconds=grace_period_seconds,
                preconditions=None,
                dry_run=dry_run,
            ),
            content_type=JSON,
            qualified_resource=resource.group_resource,
        )

    async def watch(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        allow_watch_bookmarks: bool = False,
        timeout_seconds: int | None = None,
        send_initial_events: bool | None = None,
    ) -> WatchStream:
        """Open a watch; failures to start it (403, 410...) raise here, later ones while iterating.

        ``resource_version``: ``None``/``"0"`` start with synthetic ADDED events for what exists,
        ``"N"`` sends the changes after N. ``send_initial_events=True`` (WatchList) needs
        ``resource_version_match="NotOlderThan"`` and ends the initial events with a BOOKMARK
        annotated ``k8s.io/initial-events-end: "true"``.
        """
        if send_initial_events and resource_version_match != "NotOlderThan":
            raise ValueError('send_initial_events requires resource_version_match="NotOlderThan"')
        params = _query(
            watch=True,
            labelSelector=label_selector,
            fieldSelector=field_selector,
            resourceVersion=resource_version,
            resourceVersionMatch=resource_version_match,
            allowWatchBookmarks=True if allow_watch_bookmarks else None,
            timeoutSeconds=timeout_seconds,
            sendInitialEvents=send_initial_events,
        )
        path = resource.path(namespace=namespace)
        response, _ = await self._open(
            "GET",
            path,
            params=params,
            body=None,
            content_type=None,
            accept=JSON,
            client_timeout=self._stream_timeout,
        )
        if not 200 <= response.status <= 206:
            async with response:
                await self._read_failure(response, method="GET", qualified_resource=resource.group_resource)
        return WatchStream(ResponseStream(response))

    def lister_watcher(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ResourceListerWatcher:
        """The reflector's view of one collection (client-go's ``NewFilteredListWatchFromClient``)."""
        return ResourceListerWatcher(
            self, resource, namespace=namespace, label_selector=label_selector, field_selector=field_selector
        )


class ResourceListerWatcher:
    """List and watch one resource (optionally one namespace, filtered by selectors) with a :class:`RESTClient`.

    Implements :class:`control.client.reflector.ListerWatcher`.
    """

    def __init__(
        self,
        client: RESTClient,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector

    async def list(
        self,
        *,
        resource_version: str | None,
        resource_version_match: str | None,
        limit: int | None,
        continue_: str | None,
    ) -> dict[str, Any]:
        return await self.client.list(
            self.resource,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            limit=limit,
            continue_=continue_,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
        )

    async def watch(
        self,
        *,
        resource_version: str | None,
        resource_version_match: str | None,
        timeout_seconds: int | None,
        allow_watch_bookmarks: bool,
        send_initial_events: bool | None,
    ) -> WatchStream:
        return await self.client.watch(
            self.resource,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
            allow_watch_bookmarks=allow_watch_bookmarks,
            timeout_seconds=timeout_seconds,
            send_initial_events=send_initial_events,
        )
