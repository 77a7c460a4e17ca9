"""API aggregation: group/versions served by other API servers, reached through us.

kube-apiserver embeds kube-aggregator: an ``apiregistration.k8s.io/v1`` APIService whose
``spec.service`` names a Service hands ``/apis/<group>/<version>`` and everything below it to
the API server behind that Service (metrics-server's ``metrics.k8s.io`` is the common one; it is
what ``kubectl top`` reads). This module is that part:

- :class:`Aggregator` follows the stored APIServices (list, then watch the store, as the API
  server's other caches do) and keeps the remote ones by group/version; local ones
  (``spec.service`` null, one per group/version we serve ourselves) are only listed.
- Discovery: ``/apis`` and ``/apis/<group>`` include the remote groups, ordered by
  ``groupPriorityMinimum`` and ``versionPriority`` as upstream; ``/apis/<group>/<version>`` is the
  extension's own answer, proxied like everything below it.
- Proxying (``handler_proxy.go``): the request has been authenticated and authorized here; it
  goes to one ready endpoint of the Service (endpoint routing, see
  :mod:`control.apiserver.service_endpoints`) over HTTPS, verified against ``caBundle`` for
  ``<service>.<namespace>.svc`` (or not, with ``insecureSkipTLSVerify``), with the front proxy's
  client certificate (``--proxy-client-cert-file``) and the user in ``X-Remote-User``,
  ``X-Remote-Group`` and ``X-Remote-Extra-*``; the caller's own ``Authorization`` and
  impersonation headers are not passed on. The extension trusts those headers because the
  certificate is signed by the CA it reads from ``kube-system/extension-apiserver-authentication``.
  The answer streams back as it comes (watches too). While the APIService is not
  ``Available`` (see :mod:`control.apiserver.apiservice_availability`), or no endpoint is ready,
  the answer is upstream's plain ``503 service unavailable``, which kubectl shows as "the server
  is currently unable to handle the request".

Not done: protocol upgrades (exec-style streams) to extension servers are refused with 501, and
OpenAPI documents of extensions are not merged into ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from control.apiserver.authn import UserInfo
from control.apiserver.options import APIServerOptions
from control.apiserver.resource_store import ResourceStore
from control.apiserver.service_endpoints import (
    ServiceEndpoints,
    ServiceUnreachableError,
    trusting_ca_bundle,
)
from control.apiserver.store_follower import follow_prefix
from control.resources.registry import ResourceType
from control.store import Event, EventType, KeyValue

log = logging.getLogger("kubelab.apiserver.aggregator")

API_SERVICES = ("apiregistration.k8s.io", "v1", "apiservices")
# Proxied requests other than watches end after this long (kube-apiserver's --request-timeout).
REQUEST_TIMEOUT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 5.0
# Hop-by-hop headers (RFC 9110) and what this server answers for itself: never copied across.
_HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Content-Length",
    )
)
_CALLER_CREDENTIALS = ("authorization", "impersonate-")


@dataclass(frozen=True, kw_only=True)
class RemoteAPIService:
    """One APIService with ``spec.service``: where its group/version is served, and how to trust it."""

    name: str
    group: str
    version: str
    namespace: str
    service: str
    port: int
    ca_bundle: str
    insecure: bool
    group_priority: int
    version_priority: int
    available: bool

    @property
    def server_name(self) -> str:
        return f"{self.service}.{self.namespace}.svc"

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> RemoteAPIService | None:
        spec = obj.get("spec") or {}
        service = spec.get("service")
        if not isinstance(service, dict):
            return None  # local: served by this API server
        conditions = (obj.get("status") or {}).get("conditions") or []
        return cls(
            name=str((obj.get("metadata") or {}).get("name") or ""),
            group=str(spec.get("group") or ""),
            version=str(spec.get("version") or ""),
            namespace=str(service.get("namespace") or ""),
            service=str(service.get("name") or ""),
            port=int(service.get("port") or 443),
            ca_bundle=str(spec.get("caBundle") or ""),
            insecure=bool(spec.get("insecureSkipTLSVerify")),
            group_priority=int(spec.get("groupPriorityMinimum") or 0),
            version_priority=int(spec.get("versionPriority") or 0),
            available=any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions),
        )


def front_proxy_headers(user: UserInfo) -> list[tuple[str, str]]:
    """Upstream's SetAuthProxyHeaders: the user, one header per group, one per extra value."""
    headers = [("X-Remote-User", user.name)]
    headers += [("X-Remote-Group", group) for group in user.groups]
    for key, values in user.extra.items():
        headers += [(f"X-Remote-Extra-{quote(key, safe='')}", value) for value in values]
    return headers


class Aggregator:
    """Remote APIServices, followed from the store, and the proxy to them (see the module doc)."""

    def __init__(self, *, objects: ResourceStore, options: APIServerOptions) -> None:
        rt = objects.registry.lookup(group=API_SERVICES[0], version=API_SERVICES[1], plural=API_SERVICES[2])
        if rt is None:
            raise RuntimeError("the registry lacks apiservices")
        self.api_services: ResourceType = rt
        self._objects = objects
        self._options = options
        self._prefix = objects.prefix(rt, namespace="")
        self._remote: dict[str, RemoteAPIService] = {}
        self._by_group_version: dict[tuple[str, str], RemoteAPIService] = {}
        self._listeners: list[Callable[[], None]] = []
        self.endpoints = ServiceEndpoints(objects)
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()

    # ------------------------------------------------------------------ following the store
    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the set of remote APIServices or one of them changes."""
        self._listeners.append(listener)

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="apiservices")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    async def _follow(self) -> None:
        await follow_prefix(
            self._objects.store,
            self._prefix,
            on_list=self._relisted,
            on_event=self._changed,
            what="apiservices",
        )

    async def _relisted(self, items: list[KeyValue]) -> None:
        remote = {}
        for kv in items:
            found = RemoteAPIService.from_object(orjson.loads(kv.value))
            if found is not None:
                remote[found.name] = found
        self._remote = remote
        self._reindex()
        self.synced.set()

    async def _changed(self, event: Event) -> None:
        name = event.kv.key[len(self._prefix) :]
        found = None
        if event.type is EventType.PUT:
            found = RemoteAPIService.from_object(orjson.loads(event.kv.value))
        if found is None and name not in self._remote:
            return  # a local APIService: nothing of ours changed
        if found is None:
            del self._remote[name]
        else:
            self._remote[name] = found
        self._reindex()

    def _reindex(self) -> None:
        self._by_group_version = {(s.group, s.version): s for s in self._remote.values()}
        for listener in self._listeners:
            listener()

    # ------------------------------------------------------------------ lookups
    def remote(self) -> list[RemoteAPIService]:
        return list(self._remote.values())

    @property
    def has_remote(self) -> bool:
        return bool(self._remote)

    def get(self, name: str) -> RemoteAPIService | None:
        return self._remote.get(name)

    def target(self, path: str) -> RemoteAPIService | None:
        """The remote APIService serving ``path`` (``/apis/<group>/<version>[/...]``), if any."""
        if not self._by_group_version or not path.startswith("/apis/"):
            return None
        parts = path.split("/", 4)  # "", "apis", group, version, rest
        if len(parts) < 4:
            return None
        return self._by_group_version.get((parts[2], parts[3]))

    def discovery_groups(self) -> list[dict[str, Any]]:
        """``APIGroup`` entries of the remote groups, in upstream's order: groups by their highest
        ``groupPriorityMinimum``, versions by ``versionPriority`` (highest first)."""
        by_group: dict[str, list[RemoteAPIService]] = {}
        for service in self._remote.values():
            by_group.setdefault(service.group, []).append(service)
        ordered = sorted(
            by_group.items(), key=lambda item: (-max(s.group_priority for s in item[1]), item[0])
        )
        groups = []
        for group, services in ordered:
            services.sort(key=lambda s: (-s.version_priority, s.version))
            entries = [{"groupVersion": f"{group}/{s.version}", "version": s.version} for s in services]
            groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
        return groups

    # ------------------------------------------------------------------ proxying
    def ssl_context(self, *, ca_bundle: str, insecure: bool) -> ssl.SSLContext:
        """TLS to an extension: its caBundle (the system's roots without one) or no check at all,
        and the front proxy's client certificate when the server has one."""
        key = (ca_bundle, insecure)
        context = self._contexts.get(key)
        if context is None:
            if insecure:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                try:
                    context = trusting_ca_bundle(ca_bundle)
                except ValueError as exc:
                    raise ServiceUnreachableError(str(exc)) from exc
            cert, key_file = self._options.proxy_client_cert_file, self._options.proxy_client_key_file
            if cert is not None and key_file is not None:
                context.load_cert_chain(str(cert), str(key_file))
            self._contexts[key] = context
        return context

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        return self._session

    async def proxy(
        self, request: web.Request, *, target: RemoteAPIService, user: UserInfo, watch: bool
    ) -> web.StreamResponse:
        """Hand ``request`` to ``target``'s Service and stream its answer back."""
        if request.headers.get("Upgrade"):
            return web.Response(status=501, text="upgrading requests to aggregated APIs is not supported\n")
        if not target.available:
            return _service_unavailable()
        try:
            address, port = await self.endpoints(
                namespace=target.namespace, name=target.service, port=target.port
            )
            context = self.ssl_context(ca_bundle=target.ca_bundle, insecure=target.insecure)
        except ServiceUnreachableError as exc:
            log.warning("cannot reach %s: %s", target.name, exc)
            return _service_unavailable()
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in request.headers.items():
            lower = name.lower()
            if lower in _HOP_BY_HOP or lower.startswith(_CALLER_CREDENTIALS) or lower.startswith("x-remote-"):
                continue
            headers.add(name, value)
        for name, value in front_proxy_headers(user):
            headers.add(name, value)
        body = await request.read()
        host = f"[{address}]" if ":" in address else address
        timeout = aiohttp.ClientTimeout(
            total=None if watch else REQUEST_TIMEOUT_SECONDS, sock_connect=CONNECT_TIMEOUT_SECONDS
        )
        try:
            upstream = await self.session().request(
                request.method,
                f"https://{host}:{port}{request.raw_path}",
                headers=headers,
                data=body or None,
                ssl=context,
                server_hostname=target.server_name,
                timeout=timeout,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("proxying to %s failed: %s", target.name, exc)
            return web.Response(status=503, text=f"Error trying to reach service: {exc}\n")
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    response.headers.add(name, value)
            await response.prepare(request)
            # The extension or the caller may go away mid-answer (a watch usually ends so).
            with contextlib.suppress(aiohttp.ClientPayloadError, ConnectionResetError):
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            return response


def _service_unavailable() -> web.Response:
    """Upstream's proxyError: a plain-text 503 that kubectl words as "the server is currently
    unable to handle the request"."""
    return web.Response(status=503, text="service unavailable\n")
