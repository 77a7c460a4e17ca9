"""Subresources answered by the pod's kubelet: pods/log, pods/exec, pods/attach,
pods/portforward, and nodes/proxy.

As kube-apiserver's ``LogLocation``/``streamLocation``: read the pod, check the container
(``container X is not valid for pod Y``; with none named, the only container or
``a container name must be specified for pod Y, choose one of: [...]``), find its node's
kubelet (the Node's ``InternalIP`` and ``status.daemonEndpoints.kubeletEndpoint.Port``)
and call it over HTTPS with the API server's ``apiserver-kubelet-client`` certificate,
verifying the kubelet's serving certificate against the lab CA.

- **pods/log** streams the kubelet's text as ``text/plain``, flushed as it arrives, so
  ``kubectl logs -f`` follows. A kubelet error becomes a Status the way upstream's
  response checker does it: 400 keeps the kubelet's words (``container "c" in pod "p" is
  waiting to start: ContainerCreating``), 500 is an InternalError. A pod not yet
  scheduled has no logs: an empty 200, as upstream.
- **exec, attach, portforward** must be upgrade requests. The request is replayed to the
  kubelet with its upgrade headers; if the kubelet switches protocols, the client gets the
  kubelet's 101 and from then on bytes are copied both ways untouched. WebSocket
  (``v5.channel.k8s.io``, ``SPDY/3.1+portforward.k8s.io``) and SPDY/3.1 therefore reach
  the kubelet end to end; any other kubelet answer is relayed as is, which is what makes
  kubectl fall back from WebSocket to SPDY, or print ``unable to upgrade connection: ...``.
- **nodes/proxy** relays any request to the kubelet's own path (``/stats/summary``,
  ``/pods``, ``/metrics/resource``...) with :func:`relay`, the streaming copy that
  pods/proxy and services/proxy (``control.apiserver.pod_service_proxy``) share: the request
  body and the answer flow through as they arrive, hop-by-hop headers stay behind, redirects
  are the client's to follow.

The kubelet client certificate lives beside the lab's other credentials
(``<data-dir>/pki/apiserver-kubelet-client.*``); it is created from the lab CA the first
time it is needed if the data directory does not have it yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import yarl
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from control.apiserver import errors
from control.apiserver.call import Call
from control.apiserver.options import APIServerOptions
from control.pki import PKIFiles, ensure_apiserver_kubelet_client_certificate, load_or_create_ca
from control.resources.registry import FieldError

DEFAULT_KUBELET_PORT = 10250
_LOG_CHUNK = 64 * 1024
_MAX_RESPONSE_HEAD = 64 * 1024
_MAX_ERROR_BODY = 50_000  # what upstream reads of a kubelet's error body
# Request headers an upgrade carries to the kubelet (the rest is the API server's business).
_UPGRADE_REQUEST_HEADERS = (
    "Connection",
    "Upgrade",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "X-Stream-Protocol-Version",
    "User-Agent",
)
# Response headers relayed to the client from a kubelet's 101.
_UPGRADE_RESPONSE_HEADERS = (
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
)
# Hop-by-hop headers (RFC 9110 7.6.1, and Go's httputil list): never copied across a proxy.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    }
)
# What the API server consumed itself (authentication, impersonation): not the backend's business.
_CALLER_CREDENTIALS = ("authorization", "impersonate-")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class KubeletProxy:
    """The handlers; one per API server, holding the TLS context used to dial kubelets."""

    def __init__(self, *, pki: PKIFiles) -> None:
        self._pki = pki
        self._context: ssl.SSLContext | None = None

    @classmethod
    def from_options(cls, options: APIServerOptions) -> KubeletProxy:
        return cls(pki=PKIFiles(options.data_dir / "pki"))

    def ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            files = self._pki
            if not (
                files.apiserver_kubelet_client_cert.exists() and files.apiserver_kubelet_client_key.exists()
            ):
                if not (files.ca_cert.exists() and files.ca_key.exists()):
                    raise errors.internal(
                        f"no kubelet client certificate: {files.directory} has no lab CA to sign one with"
                    )
                ca, _ = load_or_create_ca(cert_file=files.ca_cert, key_file=files.ca_key)
                ensure_apiserver_kubelet_client_certificate(files=files, ca=ca)
            context = ssl.create_default_context(cafile=str(files.ca_cert))
            context.load_cert_chain(
                str(files.apiserver_kubelet_client_cert), str(files.apiserver_kubelet_client_key)
            )
            context.set_alpn_protocols(["http/1.1"])
            self._context = context
        return self._context

    # ----------------------------------------------------------------- pods/log
    async def log(self, call: Call) -> web.StreamResponse:
        name = call.info.name
        query = call.request.query
        params = _log_params(name, query)
        pod = await call.objects.get(call.rt, namespace=call.info.namespace, name=name)
        container = container_for(pod, query.get("container", ""))
        empty = web.StreamResponse(headers={"Content-Type": "text/plain"})
        node_name = (pod.get("spec") or {}).get("nodeName", "")
        if not node_name:
            await empty.prepare(call.request)
            return empty
        host, port = await self._kubelet_address(call, node_name)
        path = f"/containerLogs/{_seg(call.info.namespace)}/{_seg(name)}/{_seg(container)}"
        url = f"https://{_host(host)}:{port}{path}"
        async with self._session() as session:
            try:
                upstream = await session.get(url, params=params)
            except aiohttp.ClientError as exc:
                raise _dial_failure(f'Get "{url}"', exc, host=host, port=port) from exc
            async with upstream:
                if upstream.status != 200:
                    body = (await upstream.content.read(_MAX_ERROR_BODY)).decode(errors="replace")
                    raise kubelet_error(upstream.status, body, resource="pods/log", name=name)
                response = web.StreamResponse(headers={"Content-Type": "text/plain"})
                response.enable_chunked_encoding()
                await response.prepare(call.request)
                with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                    # Ends with the kubelet's response; a kubelet or client going away mid-stream
                    # ends it early (the status line is long gone: nothing else can be said).
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
                    await response.write_eof()
                return response

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl_context()),
            timeout=aiohttp.ClientTimeout(total=None, connect=30),
            auto_decompress=False,
        )

    # ----------------------------------------------------------------- exec / attach / portforward
    async def exec(self, call: Call) -> web.StreamResponse:
        return await self._stream(call, "exec")

    async def attach(self, call: Call) -> web.StreamResponse:
        return await self._stream(call, "attach")

    async def portforward(self, call: Call) -> web.StreamResponse:
        return await self._stream(call, "portforward")

    async def _stream(self, call: Call, kind: str) -> web.StreamResponse:
        name = call.info.name
        query = call.request.query
        pod = await call.objects.get(call.rt, namespace=call.info.namespace, name=name)
        params: list[tuple[str, str]] = []
        if kind == "portforward":
            path = f"/portForward/{_seg(call.info.namespace)}/{_seg(name)}"
            ports = [value for value in query.getall("ports", []) if value]
            if ports:
                params.append(("port", ",".join(ports)))
        else:
            container = container_for(pod, query.get("container", ""))
            path = f"/{kind}/{_seg(call.info.namespace)}/{_seg(name)}/{_seg(container)}"
            for option, kubelet_name in (
                ("stdin", "input"),
                ("stdout", "output"),
                ("stderr", "error"),
                ("tty", "tty"),
            ):
                if _flag(query, option):
                    params.append((kubelet_name, "1"))
            if kind == "exec":
                params += [("command", part) for part in query.getall("command", [])]
        node_name = (pod.get("spec") or {}).get("nodeName", "")
        if not node_name:
            raise errors.bad_request(f"pod {name} does not have a host assigned")
        if "upgrade" not in call.request.headers.get("Connection", "").lower():
            raise errors.bad_request("Upgrade request required")
        host, port = await self._kubelet_address(call, node_name)
        target = path + ("?" + urlencode(params) if params else "")
        return await self._tunnel(call.request, host=host, port=port, target=target)

    async def _tunnel(self, request: web.Request, *, host: str, port: int, target: str) -> web.StreamResponse:
        head = [f"{request.method} {target} HTTP/1.1", f"Host: {_host(host)}:{port}"]
        for header in _UPGRADE_REQUEST_HEADERS:
            head += [f"{header}: {value}" for value in request.headers.getall(header, [])]
        return await tunnel(
            request,
            host=host,
            port=port,
            ssl_context=self.ssl_context(),
            head=head,
            relayed=lambda name: name in _UPGRADE_RESPONSE_HEADERS,
        )

    # ----------------------------------------------------------------- nodes/proxy
    async def node_proxy(self, call: Call) -> web.StreamResponse:
        host, port = await self._kubelet_address(call, call.info.name)
        path = "/" + "/".join(_seg(part) for part in call.info.parts)
        raw_query = call.request.rel_url.raw_query_string
        url = f"https://{_host(host)}:{port}{path}" + (f"?{raw_query}" if raw_query else "")
        headers = forwarded_headers(call.request, keep_host=False)
        async with self._session() as session:
            try:
                return await relay(call.request, session=session, url=url, headers=headers)
            except aiohttp.ClientError as exc:
                raise _dial_failure(f'{call.request.method} "{url}"', exc, host=host, port=port) from exc

    # ----------------------------------------------------------------- node address
    async def _kubelet_address(self, call: Call, node_name: str) -> tuple[str, int]:
        nodes = call.objects.registry.lookup(group="", version="v1", plural="nodes")
        assert nodes is not None, "the registry always has nodes"
        node = await call.objects.get(nodes, namespace="", name=node_name)
        return kubelet_address(node)


def kubelet_address(node: Mapping[str, Any]) -> tuple[str, int]:
    """The Node's InternalIP (then Hostname) and its kubelet port (10250 by default)."""
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    for kind in ("InternalIP", "Hostname", "ExternalIP"):
        for address in addresses:
            if address.get("type") == kind and address.get("address"):
                port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
                return address["address"], int(port or DEFAULT_KUBELET_PORT)
    known = [address.get("address", "") for address in addresses]
    raise errors.StatusError(
        code=500,
        reason="InternalError",
        message=f"Internal error occurred: no preferred addresses found; known addresses: {known}",
    )


def container_for(pod: Mapping[str, Any], requested: str) -> str:
    """Upstream's validateContainer: the named container, or the only one."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    names = [
        container.get("name", "")
        for key in ("initContainers", "containers", "ephemeralContainers")
        for container in spec.get(key) or ()
    ]
    if requested:
        if requested not in names:
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    containers = spec.get("containers") or []
    if len(containers) == 1:
        return containers[0].get("name", "")
    if not containers:
        raise errors.bad_request(f"a container name must be specified for pod {name}")
    raise errors.bad_request(
        f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
    )


def kubelet_error(status: int, body: str, *, resource: str, name: str) -> errors.StatusError:
    """A kubelet's non-2xx answer as upstream's GenericHttpResponseChecker turns it into a
    Status: 400 and 500 keep the kubelet's words, others get the generic message."""
    if status == 400:
        return errors.bad_request(body)
    if status == 500:
        return errors.internal(body)
    details = {"name": name, "kind": resource}
    if status == 404:
        return errors.StatusError(
            code=404,
            reason="NotFound",
            message="the server could not find the requested resource",
            details=details,
        )
    return errors.StatusError(
        code=status,
        reason="",
        message=f"the server responded with the status code {status} but did not return more information",
        details=details,
    )


def _dial_failure(what: str, exc: BaseException, *, host: str, port: int) -> errors.StatusError:
    """How upstream reports an unreachable kubelet, in Go's words
    (kubectl: ``Error from server: error dialing backend: dial tcp ...: connect: connection refused``)."""
    return errors.StatusError(code=500, reason="", message=f"{what}: {dial_error(exc, host=host, port=port)}")


def dial_error(exc: BaseException, *, host: str, port: int) -> str:
    """Why a connection to ``host:port`` failed, as Go's dialer words it
    (``dial tcp 127.0.0.1:1: connect: connection refused``)."""
    cause: BaseException = exc
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
    if isinstance(cause, ssl.SSLError | aiohttp.ClientSSLError):
        return f"tls: {cause}"
    if isinstance(cause, TimeoutError | aiohttp.ServerTimeoutError):
        return f"dial tcp {_host(host)}:{port}: i/o timeout"
    if isinstance(cause, OSError) and cause.errno:
        return f"dial tcp {_host(host)}:{port}: connect: {os.strerror(cause.errno).lower()}"
    return str(cause) or type(cause).__name__


def is_upgrade(request: web.BaseRequest) -> bool:
    """An upgrade request: ``Connection`` names ``upgrade`` (upstream's httpstream.IsUpgradeRequest)."""
    return "upgrade" in _connection_tokens(request.headers)


async def tunnel(
    request: web.BaseRequest,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    head: Sequence[str],
    relayed: Callable[[str], bool],
) -> web.StreamResponse:
    """An upgrade request's way through: dial ``host:port`` (TLS with ``ssl_context``), send
    ``head`` (the request line and headers), and if the target switches protocols answer the
    client's 101 with the response headers ``relayed`` accepts (lower-case names) and copy bytes
    both ways until either side closes. As upstream's UpgradeAwareHandler, an error answer (400
    and up) is relayed as it is, any other is a 500 ``invalid upgrade response: status code N``,
    and a target that cannot be dialled a 500 ``error dialing backend: dial tcp ...``."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host, port, ssl=ssl_context, server_hostname=host if ssl_context is not None else None
            ),
            30,
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise _dial_failure("error dialing backend", exc, host=host, port=port) from exc
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status, headers = await _read_response_head(reader)
        if status != 101 and status < 400:
            raise errors.StatusError(
                code=500, reason="", message=f"invalid upgrade response: status code {status}"
            )
        if status != 101:
            return await _relay_refusal(status, headers, reader)
        client = await _switch_protocols(
            request, headers={name: value for name, value in headers.items() if relayed(name)}
        )
        await _copy_both_ways(client, reader, writer)
        return client.response
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            await writer.wait_closed()


def forwarded_headers(request: web.BaseRequest, *, keep_host: bool) -> CIMultiDict[str]:
    """The request's headers as a proxy passes them on: without hop-by-hop headers (and those
    the ``Connection`` header names), without the caller's credentials, and with the caller's
    address appended to ``X-Forwarded-For`` as Go's reverse proxy does. ``keep_host``: the
    client's ``Host`` goes along (upstream's pod and service proxies), else the target's."""
    named = _connection_tokens(request.headers)
    headers: CIMultiDict[str] = CIMultiDict()
    for key, value in request.headers.items():
        lower = key.lower()
        if lower in _HOP_BY_HOP or lower in named or lower.startswith(_CALLER_CREDENTIALS):
            continue
        if lower == "host" and not keep_host:
            continue
        if lower != "x-forwarded-for":
            headers.add(key, value)
    if request.remote:
        prior = ", ".join(request.headers.getall("X-Forwarded-For", []))
        headers["X-Forwarded-For"] = f"{prior}, {request.remote}" if prior else request.remote
    return headers


async def relay(
    request: web.BaseRequest,
    *,
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    fix_headers: Callable[[CIMultiDict[str]], None] | None = None,
) -> web.StreamResponse:
    """Send ``request`` on to ``url`` (``url`` already quoted) and stream the answer back.

    The request body is streamed as the client sends it; the answer is copied chunk by chunk
    as it arrives, keeping its status, ``Content-Length`` and ``Content-Encoding`` (nothing is
    decompressed), minus hop-by-hop headers; ``fix_headers`` may change the headers before they
    leave. Redirects are not followed: they are the client's. Raises ``aiohttp.ClientError``
    only when the target cannot be reached, before anything was answered; once the answer has
    started, a side going away simply ends it."""
    upstream = await session.request(
        request.method,
        yarl.URL(url, encoded=True),
        data=request.content if request.body_exists else None,
        headers=headers,
        allow_redirects=False,
        skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
    )
    async with upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        named = _connection_tokens(upstream.headers)
        for key, value in upstream.headers.items():
            if key.lower() not in _HOP_BY_HOP and key.lower() not in named:
                response.headers.add(key, value)
        if fix_headers is not None:
            fix_headers(response.headers)
        await response.prepare(request)
        with contextlib.suppress(aiohttp.ClientError, ConnectionError):
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        return response


def _connection_tokens(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """Header names a ``Connection`` header declares hop-by-hop."""
    return frozenset(
        token.strip().lower()
        for value in headers.getall("Connection", [])
        for token in value.split(",")
        if token.strip()
    )


def _log_params(name: str, query: Mapping[str, str]) -> list[tuple[str, str]]:
    """Check PodLogOptions as upstream (400 for unparsable values, 422 for invalid ones)
    and build the kubelet's query."""
    params: list[tuple[str, str]] = []
    for option in ("follow", "previous", "timestamps"):
        if _flag(query, option):
            params.append((option, "true"))
    numbers: dict[str, int] = {}
    for option in ("tailLines", "sinceSeconds", "limitBytes"):
        raw = query.get(option, "")
        if raw == "":
            continue
        try:
            numbers[option] = int(raw)
        except ValueError as exc:
            raise errors.bad_request(f'strconv.ParseInt: parsing "{raw}": invalid syntax') from exc
        params.append((option, str(numbers[option])))
    if query.get("sinceTime"):
        params.append(("sinceTime", query["sinceTime"]))
    problems: list[FieldError] = []
    if numbers.get("tailLines", 0) < 0:
        problems.append(_invalid("tailLines", numbers["tailLines"], "must be greater than or equal to 0"))
    if numbers.get("limitBytes", 1) < 1:
        problems.append(_invalid("limitBytes", numbers["limitBytes"], "must be greater than 0"))
    if "sinceSeconds" in numbers and query.get("sinceTime"):
        problems.append(
            FieldError(
                type="FieldValueForbidden",
                field="",
                detail="at most one of `sinceTime` or `sinceSeconds` may be specified",
            )
        )
    elif numbers.get("sinceSeconds", 1) < 1:
        problems.append(_invalid("sinceSeconds", numbers["sinceSeconds"], "must be greater than 0"))
    if problems:
        texts = [problem.message() for problem in problems]
        raise errors.StatusError(
            code=422,
            reason="Invalid",
            message=f'PodLogOptions "{name}" is invalid: '
            + (texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"),
            details={
                "name": name,
                "kind": "PodLogOptions",
                "causes": [
                    {"reason": problem.type, "message": text, "field": problem.field}
                    for problem, text in zip(problems, texts, strict=True)
                ],
            },
        )
    return params


def _invalid(field: str, value: int, detail: str) -> FieldError:
    return FieldError(type="FieldValueInvalid", field=field, detail=detail, value=value, has_value=True)


def _flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name, "")
    if value == "" or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise errors.bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def _seg(segment: str) -> str:
    return quote(segment, safe="")


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _read_response_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """The status line's code and the headers (names lower-cased)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise errors.internal(f"error reading the backend's response: {exc}") from exc
    if len(head) > _MAX_RESPONSE_HEAD:
        raise errors.internal("the backend's response head is too large")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise errors.internal(f"malformed response from the backend: {lines[0]!r}") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return status, headers


async def _relay_refusal(
    status: int, headers: Mapping[str, str], reader: asyncio.StreamReader
) -> web.Response:
    """The target would not upgrade: pass its answer on unchanged (upstream's behaviour)."""
    length = headers.get("content-length")
    body = b""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, ValueError):
        if length is not None:
            body = await reader.readexactly(min(int(length), _MAX_ERROR_BODY))
        elif headers.get("transfer-encoding", "").lower() != "chunked":
            body = await reader.read(_MAX_ERROR_BODY)
    response = web.Response(status=status, body=body)
    response.headers["Content-Type"] = headers.get("content-type", "text/plain; charset=utf-8")
    for key in ("x-accepted-stream-protocol-versions",):
        if key in headers:
            response.headers[key] = headers[key]
    return response


class _ClientSide:
    """The client's connection after the API server answered 101: bytes in, bytes out."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self.request = request
        self.response = response
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.incoming.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.incoming.put_nowait(b"")


async def _switch_protocols(request: web.Request, *, headers: Mapping[str, str]) -> _ClientSide:
    response = web.StreamResponse(status=101, headers={"Connection": "Upgrade", **headers})
    response.force_close()
    client = _ClientSide(request, response)
    # Installed before the 101 leaves, so nothing the client sends next is parsed as HTTP.
    request.protocol.set_parser(client)  # type: ignore[arg-type]  # duck-typed payload parser
    request.protocol.keep_alive(False)
    await response.prepare(request)
    await response.write(b"")
    return client


async def _copy_both_ways(
    client: _ClientSide, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Copy until either side closes; what the kubelet sent before closing still reaches the client."""

    async def upstream() -> None:
        while chunk := await client.incoming.get():
            writer.write(chunk)
            await writer.drain()

    async def downstream() -> None:
        while chunk := await reader.read(_LOG_CHUNK):
            await client.response.write(chunk)

    tasks = {asyncio.create_task(upstream()), asyncio.create_task(downstream())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
