"""The kubelet's HTTPS API: what the API server (and metrics-server) call on a node.

Served on the node's IP, port 10250, with a serving certificate signed by the lab CA, and
*only* to clients presenting a certificate the lab CA signed (the TLS handshake enforces
it: no certificate, no connection). Of those, only the API server — its
``apiserver-kubelet-client`` certificate, as kubeadm names it — and members of
``system:masters`` may call it: everyone else, other nodes' kubelets included, gets upstream's
403 (``Forbidden (user=system:node:node-2, verb=get, resource=nodes, subresource(s)=[pods
proxy])``, the attributes a webhook-authorizing kubelet would have asked about). A real kubelet
asks the API server (SubjectAccessReview) whom to let in; the lab's kubelet has exactly one
legitimate caller, so it decides locally, without a round trip per request. Paths and
behaviour are the kubelet's:

==========================================  ==============================================
``/healthz``                                "ok"
``/pods``                                   PodList of the pods bound to this node
``/containerLogs/<ns>/<pod>/<container>``   CRI log file as text (follow, tailLines,
                                            sinceSeconds, sinceTime, timestamps, previous,
                                            limitBytes); errors as the kubelet words them
``/stats/summary``                          stats/v1alpha1 Summary
``/metrics/resource``                       node/pod/container CPU and memory (metrics-server)
``/metrics``                                this server's own request metrics
``/exec/<ns>/<pod>[/<uid>]/<container>``    remote command (WebSocket v5/v4/base64, SPDY)
``/attach/<ns>/<pod>[/<uid>]/<container>``  attach to the container's main process
``/portForward/<ns>/<pod>[/<uid>]``         port-forward (SPDY, SPDY-in-WebSocket,
                                            WebSocket channels); ``/portforward`` too
==========================================  ==============================================

The server knows the node's pods through a :class:`PodSource` (the pod manager: the pod
objects, and which log file a ``kubectl logs [--previous]`` means), runs commands through
the :class:`Runtime` protocol (the running container is the one the pod's status names),
reads the CRI log files with ``control.kubelet.logs`` and takes usage numbers from a
``summary.UsageSource``: narrow seams, so every endpoint is tested with fakes, and
:func:`kubelet_api` plugs the server into a real node agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from control.apiserver.authn import UserInfo, user_from_peercert
from control.apiserver.authorization import SUPERUSER_GROUP
from control.kubelet import logs, portforward, spdy, streaming, summary
from control.kubelet.agent import NodeAgent
from control.kubelet.pods import LogSource, LogUnavailableError, PodManager
from control.kubelet.runtime.protocol import ExecSession, Runtime
from control.pki import (
    APISERVER_KUBELET_CLIENT_USER,
    PKIFiles,
    ensure_kubelet_serving_certificate,
    load_or_create_ca,
    serving_ssl_context,
)

log = logging.getLogger("kubelab.kubelet.server")

DEFAULT_PORT = 10250
_LONG_RUNNING = frozenset({"exec", "attach", "portForward", "portforward"})
_METHOD_VERBS = {"POST": "create", "GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# Upstream's path -> nodes/<subresource> mapping (KubeletFineGrainedAuthz, on since 1.33): these
# paths are asked about as their own subresource and then as nodes/proxy...
_FINE_GRAINED_SUBRESOURCES = (
    ("/pods", "pods"),
    ("/healthz", "healthz"),
    ("/configz", "configz"),
    ("/runningpods", "pods"),
)
# ... these only as their own; every other path is nodes/proxy.
_SUBRESOURCES = (
    ("/stats", "stats"),
    ("/metrics", "metrics"),
    ("/logs", "log"),
    ("/spec", "spec"),
    ("/checkpoint", "checkpoint"),
)


class KubeletServerError(Exception):
    """The kubelet API cannot start (its address is taken, its certificates are unusable)."""


@dataclass(frozen=True, kw_only=True)
class KubeletServerConfig:
    node_name: str
    address: str  # the node IP to listen on
    cert_file: Path
    key_file: Path
    client_ca_file: Path
    port: int = DEFAULT_PORT

    @classmethod
    def for_node(
        cls, *, pki: PKIFiles, node_name: str, address: str, port: int = DEFAULT_PORT
    ) -> KubeletServerConfig:
        """The node's config, with its serving certificate created (or renewed) from the lab CA."""
        if not (pki.ca_cert.exists() and pki.ca_key.exists()):
            raise KubeletServerError(
                f"no lab CA in {pki.directory}: the kubelet's certificate is signed by the lab's CA, "
                "which `kubelab up` (or `kubelab server`) creates"
            )
        ca, _ = load_or_create_ca(cert_file=pki.ca_cert, key_file=pki.ca_key)
        ensure_kubelet_serving_certificate(files=pki, ca=ca, node_name=node_name, addresses=[address])
        return cls(
            node_name=node_name,
            address=address,
            port=port,
            cert_file=pki.kubelet_serving_cert(node_name),
            key_file=pki.kubelet_serving_key(node_name),
            client_ca_file=pki.ca_cert,
        )


class PodSource(Protocol):
    """The pods bound to this node as the kubelet sees them (``control.kubelet.pods.PodManager``
    through :class:`AgentPods`)."""

    def pods(self) -> Sequence[Mapping[str, Any]]: ...

    def pod(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def log_source(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> LogSource:
        """Which log file to read; ``LogUnavailableError`` (with the kubelet's words) if none."""


class AgentPods:
    """A node agent's pod manager as a :class:`PodSource`."""

    def __init__(self, manager: PodManager) -> None:
        self._manager = manager

    def pods(self) -> list[dict[str, Any]]:
        return self._manager.running_pods()

    def pod(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        worker = self._manager.find(namespace, name)
        return None if worker is None else worker.pod

    def log_source(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> LogSource:
        return self._manager.log_source(namespace, pod, container, previous=previous)


def log_options(query: Mapping[str, str]) -> tuple[logs.LogOptions, bool]:
    """PodLogOptions from the kubelet's query: (reader options, previous). ValueError names
    the bad parameter (answered 400)."""

    def flag(name: str) -> bool:
        value = query.get(name, "false").lower()
        if value not in ("true", "false", "1", "0", ""):
            raise ValueError(f"{name}: invalid boolean {query[name]!r}")
        return value in ("true", "1")

    def number(name: str, *, minimum: int) -> int | None:
        if name not in query:
            return None
        try:
            value = int(query[name])
        except ValueError as exc:
            raise ValueError(f"{name}: invalid integer {query[name]!r}") from exc
        if value < minimum:
            raise ValueError(f"{name}: must be greater than or equal to {minimum}")
        return value

    tail = query.get("tail", "")  # the kubelet's older spelling; "all" = no limit
    tail_lines = number("tailLines", minimum=0) if tail in ("", "all") else number("tail", minimum=0)
    since_seconds = number("sinceSeconds", minimum=1)
    since_time: float | None = None
    if query.get("sinceTime"):
        if since_seconds is not None:
            raise ValueError("at most one of sinceTime or sinceSeconds may be specified")
        try:
            moment = datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"sinceTime: invalid RFC 3339 time {query['sinceTime']!r}") from exc
        since_time = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    elif since_seconds is not None:
        since_time = time.time() - since_seconds
    options = logs.LogOptions(
        follow=flag("follow"),
        tail_lines=tail_lines,
        since_time=since_time,
        timestamps=flag("timestamps"),
        limit_bytes=number("limitBytes", minimum=1),
    )
    return options, flag("previous")


def running_container_id(pod: Mapping[str, Any], container: str) -> str | None:
    """The id of the running instance of ``container`` (init and ephemeral ones included)."""
    for running in summary.running_containers([pod]):
        if running.name == container:
            return running.container_id
    return None


def has_container(pod: Mapping[str, Any], container: str) -> bool:
    spec = pod.get("spec") or {}
    return any(
        item.get("name") == container
        for key in ("containers", "initContainers", "ephemeralContainers")
        for item in spec.get(key) or ()
    )


def may_call_kubelet_api(user: UserInfo) -> bool:
    """Only the API server's kubelet client certificate and the cluster's superusers."""
    return user.name == APISERVER_KUBELET_CLIENT_USER or SUPERUSER_GROUP in user.groups


def request_subresources(path: str) -> list[str]:
    """The ``nodes/<subresource>`` a request for ``path`` is authorized as, in the order upstream's
    kubelet asks (``/pods`` -> pods, then proxy; ``/stats/summary`` -> stats)."""
    subresources: list[str] = []
    for prefix, subresource in _FINE_GRAINED_SUBRESOURCES:
        if _is_subpath(path, prefix):
            subresources.append(subresource)
            break
    for prefix, subresource in _SUBRESOURCES:
        if _is_subpath(path, prefix):
            subresources.append(subresource)
            return subresources
    subresources.append("proxy")
    return subresources


def forbidden_message(user: UserInfo, *, method: str, path: str) -> str:
    """The kubelet's 403 text (pkg/kubelet/server: ``InstallAuthFilter``)."""
    subresources = " ".join(request_subresources(path))
    verb = _METHOD_VERBS.get(method.upper(), "")
    return f"Forbidden (user={user.name}, verb={verb}, resource=nodes, subresource(s)=[{subresources}])\n"


def _is_subpath(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def server_ssl_context(config: KubeletServerConfig) -> ssl.SSLContext:
    """TLS 1.2+, the node's certificate, and client certificates *required* (lab CA only)."""
    try:
        return serving_ssl_context(
            cert_file=config.cert_file,
            key_file=config.key_file,
            client_ca_file=config.client_ca_file,
            require_client_certificate=True,
        )
    except (OSError, ssl.SSLError) as exc:
        raise KubeletServerError(f"cannot load the kubelet's TLS files: {exc}") from exc


class _ServerMetrics:
    """The kubelet server's own metrics, under upstream's names."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("method", "path", "server_type", "long_running")
        self.requests = Counter(
            "kubelet_http_requests",
            "Number of the http requests received since the server started",
            labels,
            registry=registry,
        )
        self.inflight = Gauge(
            "kubelet_http_inflight_requests",
            "Number of the inflight http requests",
            labels,
            registry=registry,
        )


class KubeletServer:
    def __init__(
        self,
        *,
        config: KubeletServerConfig,
        pods: PodSource,
        runtime: Runtime,
        usage: summary.UsageSource,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self._pods = pods
        self._runtime = runtime
        self._usage = usage
        self.metrics_registry = metrics_registry or CollectorRegistry()
        self._metrics = _ServerMetrics(self.metrics_registry)
        self._boot_time = summary.boot_time()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://{self.config.address}:{self.config.port}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._observe, self._authorize])
        router = app.router
        router.add_get("/healthz", self._healthz)
        router.add_get("/pods", self._pod_list)
        router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._container_logs)
        router.add_get("/stats/summary", self._stats_summary)
        router.add_get("/metrics/resource", self._resource_metrics)
        router.add_get("/metrics", self._own_metrics)
        for kind in ("exec", "attach"):
            for path in (
                f"/{kind}/{{namespace}}/{{pod}}/{{container}}",
                f"/{kind}/{{namespace}}/{{pod}}/{{uid}}/{{container}}",
            ):
                router.add_route("GET", path, self._remote_command)
                router.add_route("POST", path, self._remote_command)
        for prefix in ("/portForward", "/portforward"):
            for path in (f"{prefix}/{{namespace}}/{{pod}}", f"{prefix}/{{namespace}}/{{pod}}/{{uid}}"):
                router.add_route("GET", path, self._port_forward)
                router.add_route("POST", path, self._port_forward)
        return app

    async def start(self) -> None:
        context = server_ssl_context(self.config)
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(
            runner, self.config.address, self.config.port, ssl_context=context, reuse_address=True
        )
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise KubeletServerError(
                f"cannot listen on {self.config.address}:{self.config.port} for the kubelet API: "
                f"{exc.strerror or exc}"
            ) from exc
        self._runner = runner
        log.info("kubelet API listening", extra={"address": self.config.address, "port": self.config.port})

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # ------------------------------------------------------------------ plumbing
    @web.middleware
    async def _observe(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        root = _metric_path(request.path)
        labels = (request.method, root, "readwrite", str(root in _LONG_RUNNING).lower())
        self._metrics.requests.labels(*labels).inc()
        gauge = self._metrics.inflight.labels(*labels)
        gauge.inc()
        try:
            return await handler(request)
        finally:
            gauge.dec()

    @web.middleware
    async def _authorize(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Who may call: the TLS layer verified the certificate; its subject is the user."""
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        user = user_from_peercert(ssl_object.getpeercert() if ssl_object is not None else None)
        if not user.authenticated:
            return _text(401, "Unauthorized")
        if not may_call_kubelet_api(user):
            log.info("refused a kubelet API call", extra={"user": user.name, "path": request.path})
            return _text(403, forbidden_message(user, method=request.method, path=request.path))
        return await handler(request)

    def _find_pod(self, request: web.Request) -> Mapping[str, Any] | None:
        info = request.match_info
        pod = self._pods.pod(info["namespace"], info["pod"])
        uid = info.get("uid")
        if pod is not None and uid and (pod.get("metadata") or {}).get("uid") != uid:
            return None
        return pod

    # ------------------------------------------------------------------ simple endpoints
    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _pod_list(self, request: web.Request) -> web.Response:
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": list(self._pods.pods())}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _stats_summary(self, request: web.Request) -> web.Response:
        body = summary.summary(
            node_name=self.config.node_name,
            start_time=self._boot_time,
            pods=self._pods.pods(),
            usage=self._usage,
        )
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _resource_metrics(self, request: web.Request) -> web.Response:
        body = summary.resource_metrics(pods=self._pods.pods(), usage=self._usage)
        return web.Response(body=body, headers={"Content-Type": summary.RESOURCE_METRICS_CONTENT_TYPE})

    async def _own_metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.metrics_registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    # ------------------------------------------------------------------ logs
    async def _container_logs(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        namespace, name, container = info["namespace"], info["pod"], info["container"]
        try:
            options, previous = log_options(request.query)
        except ValueError as exc:
            return _text(400, f"Unable to decode query: {exc}")
        pod = self._pods.pod(namespace, name)
        if pod is None:
            return _text(404, f'pod "{name}" does not exist')
        if not has_container(pod, container):
            return _text(404, f'container "{container}" not found in pod "{name}"')
        try:
            source = self._pods.log_source(namespace, name, container, previous=previous)
        except LogUnavailableError as exc:
            return _text(400, str(exc))
        if not source.path.exists():
            return _text(
                400, f'failed to try resolving symlinks in path "{source.path}": no such file or directory'
            )

        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunks = logs.read_container_log(source.path, options, still_running=source.still_running)
        try:
            async for chunk in chunks:
                await response.write(chunk)
            await response.write_eof()
        except (ConnectionError, FileNotFoundError):
            pass  # the client left, or the file was removed mid-read: nothing more can be said
        finally:
            await chunks.aclose()
        return response

    # ------------------------------------------------------------------ exec / attach
    async def _remote_command(self, request: web.Request) -> web.StreamResponse:
        kind = (
            streaming.CommandKind.EXEC if request.path.startswith("/exec/") else streaming.CommandKind.ATTACH
        )
        try:
            options = streaming.StreamOptions.from_query(request.query)
        except streaming.BadStreamRequestError as exc:
            return _text(400, str(exc))
        pod = self._find_pod(request)
        if pod is None:
            return _text(404, "pod does not exist")
        container = request.match_info["container"]
        command = request.query.getall("command", [])
        if kind is streaming.CommandKind.EXEC and not command:
            return _text(400, "you must specify at least one command for the container")
        container_id = running_container_id(pod, container)
        if container_id is None:
            return _text(500, f'container not found ("{container}")')
        runtime = self._runtime

        async def start() -> ExecSession:
            if kind is streaming.CommandKind.EXEC:
                return await runtime.exec(container_id, command, stdin=options.stdin, tty=options.tty)
            return await runtime.attach(container_id, stdin=options.stdin, tty=options.tty)

        try:
            if streaming.is_websocket_request(request):
                return await streaming.serve_websocket_command(
                    request, options=options, kind=kind, command=command, start=start
                )
            if streaming.is_spdy_request(request):
                return await streaming.serve_spdy_command(
                    request, options=options, kind=kind, command=command, start=start
                )
        except streaming.HandshakeError as exc:
            return _text(exc.status, str(exc), headers=exc.headers)
        return _text(400, "Upgrade request required")

    # ------------------------------------------------------------------ port-forward
    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        pod = self._find_pod(request)
        if pod is None:
            return _text(404, "pod does not exist")
        metadata = pod.get("metadata") or {}
        ip = (pod.get("status") or {}).get("podIP", "")
        if not ip:
            return _text(500, f'pod "{metadata.get("name", "")}" has no IP address yet')
        target = portforward.ForwardTarget(
            pod_name=metadata.get("name", ""), pod_uid=metadata.get("uid", ""), ip=ip
        )
        try:
            if streaming.is_websocket_request(request):
                if portforward.tunnel_protocol(request):
                    return await self._forward_tunnel(request, target)
                return await self._forward_channels(request, target)
            if streaming.is_spdy_request(request):
                protocol = streaming.spdy_protocol(request, (portforward.PROTOCOL,))
                connection, session = await streaming.accept_spdy(request, protocol=protocol)
                await _serve_forwarding(session, target)
                return connection.response
        except streaming.HandshakeError as exc:
            return _text(exc.status, str(exc), headers=exc.headers)
        return _text(400, "Upgrade request required")

    async def _forward_tunnel(
        self, request: web.Request, target: portforward.ForwardTarget
    ) -> web.StreamResponse:
        ws = await streaming.accept_websocket(request, protocol=portforward.TUNNEL_PROTOCOL)
        try:
            await _serve_forwarding(spdy.Session(portforward.WebSocketTransport(ws)), target)
        finally:
            await ws.close()
        return ws

    async def _forward_channels(
        self, request: web.Request, target: portforward.ForwardTarget
    ) -> web.StreamResponse:
        protocol = portforward.channel_protocol(request)
        try:
            ports = portforward.parse_ports(
                request.query.getall("ports", []) + request.query.getall("port", [])
            )
        except ValueError as exc:
            return _text(400, str(exc))
        ws = await streaming.accept_websocket(request, protocol=protocol)
        await portforward.serve_channels(ws, ports=ports, text="base64" in protocol, target=target)
        return ws


def kubelet_api(*, pki: PKIFiles, port: int = DEFAULT_PORT) -> Callable[[NodeAgent], Awaitable[None]]:
    """The node agent's server hook: ``run_node_agent(..., servers=[kubelet_api(pki=...)])``
    serves this API on the node's IP until the agent stops."""

    async def serve(agent: NodeAgent) -> None:
        config = KubeletServerConfig.for_node(
            pki=pki, node_name=agent.node_name, address=agent.node_ip, port=port
        )
        server = KubeletServer(
            config=config, pods=AgentPods(agent.pods), runtime=agent.runtime, usage=agent.stats
        )
        await server.start()
        try:
            await asyncio.get_running_loop().create_future()  # until the agent cancels us
        finally:
            await server.stop()

    return serve


async def _serve_forwarding(session: spdy.Session, target: portforward.ForwardTarget) -> None:
    reader = asyncio.create_task(session.run())
    try:
        await portforward.serve_spdy(session, target)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, spdy.SPDYError, ConnectionError):
            await reader


def _text(status: int, message: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=message, headers=headers)


def _metric_path(path: str) -> str:
    """The kubelet's path bucket: the first segment, or ``metrics/<x>``."""
    parts = path.strip("/").split("/", 2)
    if parts[0] == "metrics" and len(parts) > 1:
        return f"metrics/{parts[1]}"
    return parts[0]
