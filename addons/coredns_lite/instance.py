"""One running coredns_lite: backend, record rules, forwarder, cache, listeners, probes, reload.

Start-up follows CoreDNS: the status endpoints first (so liveness answers while we wait), then
the informers, up to ``startup_timeout`` for their first sync (CoreDNS's 5 s; unsynced name
errors are SERVFAIL until they sync), then the DNS listeners. ``/ready`` opens when both the
caches have synced and the listeners are up.

A config reload builds the new pieces beside the running ones and swaps them in: a new backend
only when what it watches changed (then it syncs before the swap), new listeners only when the
address or port changed (bound before the old ones close). Queries keep being answered
throughout. An invalid new Corefile is logged, counted in ``coredns_reload_failed_total``, and
the running configuration stays.

Stopping (SIGTERM): readiness closes first; after ``lameduck`` (from ``health { lameduck }``)
the listeners close, then the informers stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from prometheus_client import CollectorRegistry

from addons.coredns_lite import metrics as metrics_module
from addons.coredns_lite.answers import KubernetesOptions, PodMode, Rules
from addons.coredns_lite.backend import Backend, InformerBackend
from addons.coredns_lite.cache import ForwardCache
from addons.coredns_lite.forward import Forwarder
from addons.coredns_lite.handler import Handler
from addons.coredns_lite.metrics import DNSMetrics
from addons.coredns_lite.server import DNSServer
from addons.coredns_lite.setup import Config, SetupError, parse_corefile
from addons.kit.client import client_config, open_client
from addons.kit.informers import SyncGate
from addons.kit.reload import FileWatcher
from addons.kit.serving import Listener, Probe, Readiness, StatusServer
from addons.kit.tracing import Tracing, span

log = logging.getLogger(__name__)

COMPONENT = "coredns_lite"
KUBERNETES_GATE = "kubernetes"
DNS_GATE = "dns"


def status_listeners(config: Config) -> list[Listener]:
    """CoreDNS's layout: /health on the health port, /ready on the ready port, /metrics on 9153
    (each also under the kubelab names /healthz and /readyz). Listeners sharing an address merge.
    """
    wanted: dict[tuple[str, int], dict[str, Probe]] = {}
    if config.health is not None:
        wanted.setdefault((config.health.host, config.health.port), {}).update(
            {"/health": Probe.HEALTH, "/healthz": Probe.HEALTH}
        )
    if config.ready is not None:
        wanted.setdefault((config.ready.host, config.ready.port), {}).update(
            {"/ready": Probe.READY, "/readyz": Probe.READY}
        )
    if config.prometheus is not None:
        wanted.setdefault((config.prometheus.host, config.prometheus.port), {})["/metrics"] = Probe.METRICS
    return [Listener(host or "0.0.0.0", port, paths) for (host, port), paths in wanted.items()]


def _backend_settings(options: KubernetesOptions | None, kubeconfig: str | None) -> tuple[object, ...] | None:
    if options is None:
        return None
    return (
        options.labels,
        options.pods is PodMode.VERIFIED,
        options.noendpoints,
        options.kubeconfig or kubeconfig,
        options.context,
    )


class Instance:
    """Everything one process serves. ``await start()``, ``await reload(content)``, ``await stop()``."""

    def __init__(
        self,
        config: Config,
        *,
        conf_path: str | os.PathLike[str] | None = None,
        kubeconfig: str | None = None,
        registry: CollectorRegistry | None = None,
        serve_status: bool = True,
        reuse_port: bool = False,
        tracing: Tracing | None = None,
    ) -> None:
        self.config = config
        self.tracing = tracing
        self.conf_path = Path(conf_path) if conf_path is not None else None
        self.kubeconfig = kubeconfig
        self.metrics = DNSMetrics()
        self.registry = registry if registry is not None else CollectorRegistry()
        metrics_module.register(self.registry, lambda: self.metrics)
        self.readiness = Readiness()
        self.readiness.add(DNS_GATE)
        self.status = StatusServer(registry=self.registry, readiness=self.readiness) if serve_status else None
        self.reuse_port = reuse_port
        self.backend: Backend | None = None
        self.handler: Handler | None = None
        self.server: DNSServer | None = None
        self.forwarder: Forwarder | None = None
        self.cache: ForwardCache | None = None
        self.watcher: FileWatcher | None = None
        self._client = None
        self._sync: SyncGate | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # --- building blocks ----------------------------------------------------------------------

    def _local_ips(self, config: Config) -> list[str]:
        specific = [host for host in config.bind if host not in ("0.0.0.0", "::")]
        if specific:
            return specific
        pod_ip = os.environ.get("POD_IP", "")
        return [pod_ip] if pod_ip else ["127.0.0.1"]

    async def _open_backend(self, options: KubernetesOptions) -> tuple[object, InformerBackend, SyncGate]:
        config = client_config(kubeconfig=options.kubeconfig or self.kubeconfig, context=options.context)
        client = open_client(config, component=COMPONENT)
        backend = InformerBackend(
            client,
            pods=options.pods is PodMode.VERIFIED,
            endpoints=not options.noendpoints,
            label_selector=options.labels,
        )
        backend.add_listener(self._on_change)
        gate = SyncGate([backend], readiness=self.readiness, gate=KUBERNETES_GATE)
        return client, backend, gate

    def _make_handler(self, config: Config, backend: Backend) -> Handler:
        options = config.kubernetes or KubernetesOptions(zones=())
        rules = Rules(options=options, backend=backend, local_ips=self._local_ips(config))
        return Handler(
            rules=rules,
            metrics=self.metrics,
            forwarder=self.forwarder,
            cache=self.cache,
            tracing=self.tracing,
        )

    def _make_forwarder(self, config: Config) -> Forwarder | None:
        if config.forward is None:
            return None
        forward = config.forward
        return Forwarder(
            forward.upstreams,
            metrics=self.metrics,
            policy=forward.policy,
            max_concurrent=forward.max_concurrent,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        if self.status is not None:
            await self.status.start(status_listeners(config))
        self.forwarder = self._make_forwarder(config)
        self.cache = ForwardCache(config.cache) if config.cache is not None else None
        self.metrics.cache_entries = self._cache_sizes
        self.metrics.plugins = list(config.plugins)
        backend: Backend
        if config.kubernetes is not None:
            self._client, backend, self._sync = await self._open_backend(config.kubernetes)
            self.backend = backend
            await self._sync.start(timeout=config.kubernetes.startup_timeout)
        else:
            backend = _NoCluster()
            self.backend = backend
        self.handler = self._make_handler(config, backend)
        self.server = DNSServer(
            self._serve, addresses=config.bind, port=config.port, reuse_port=self.reuse_port
        )
        await self.server.start()
        self.metrics.servers = self.server.labels
        self.readiness.set(DNS_GATE, True)
        if config.reload is not None and self.conf_path is not None:
            self._start_watcher(config.reload)

    def _on_change(self, tags: list) -> None:
        if self.handler is not None:
            self.handler.on_change(tags)

    def _cache_sizes(self) -> dict[str, int]:
        return self.cache.sizes() if self.cache is not None else {}

    def _serve(self, packet: bytes, *, server: str, tcp: bool, family: str = "1") -> object:
        handler = self.handler
        assert handler is not None
        return handler.serve(packet, server=server, tcp=tcp, family=family)

    def _start_watcher(self, interval: float) -> None:
        assert self.conf_path is not None
        self.watcher = FileWatcher(self.conf_path, on_change=self.reload, interval=interval)
        with contextlib.suppress(OSError):
            self.watcher.prime(self.conf_path.read_bytes())
        self._watch_task = asyncio.create_task(self.watcher.run(), name="coredns_lite reload")

    async def reload(self, content: bytes) -> None:
        """Apply a new Corefile (``content``); raise SetupError (and keep running) when it is bad."""
        async with self._lock:
            try:
                config = parse_corefile(
                    content.decode("utf-8", errors="replace"), where=str(self.conf_path or "Corefile")
                )
            except SetupError:
                self.metrics.reload_failures += 1
                raise
            with span(self.tracing, "coredns_lite.reload", plugins=list(config.plugins)):
                await self._apply(config)

    async def _apply(self, config: Config) -> None:
        old = self.config
        old_forwarder, old_client, old_backend, old_sync = (
            self.forwarder,
            self._client,
            self.backend,
            self._sync,
        )
        backend = self.backend
        new_backend = _backend_settings(config.kubernetes, self.kubeconfig) != _backend_settings(
            old.kubernetes, self.kubeconfig
        )
        if new_backend:
            if config.kubernetes is not None:
                client, backend, sync = await self._open_backend(config.kubernetes)
                await sync.start(timeout=config.kubernetes.startup_timeout)
                self._client, self._sync = client, sync
            else:
                backend, self._client, self._sync = _NoCluster(), None, None
        assert backend is not None
        self.forwarder = self._make_forwarder(config) if config.forward != old.forward else old_forwarder
        if config.cache != old.cache:
            self.cache = ForwardCache(config.cache) if config.cache is not None else None
        self.backend = backend
        self.handler = self._make_handler(config, backend)
        assert self.server is not None
        if (config.bind, config.port) != (old.bind, old.port):
            server = DNSServer(
                self._serve, addresses=config.bind, port=config.port, reuse_port=self.reuse_port
            )
            await server.start()
            old_server, self.server = self.server, server
            await old_server.stop()
            self.metrics.servers = server.labels
        if self.status is not None and status_listeners(config) != status_listeners(old):
            await self.status.stop()
            await self.status.start(status_listeners(config))
        self.metrics.plugins = list(config.plugins)
        self.config = config
        if self.watcher is not None and config.reload is not None:
            self.watcher.interval = config.reload
        if self.forwarder is not old_forwarder and old_forwarder is not None:
            await old_forwarder.close()
        if new_backend:
            if old_sync is not None and old_sync is not self._sync:
                await old_sync.stop()  # closes the shared gate: reopen it for the new backend
                if self._sync is not None:
                    self.readiness.set(KUBERNETES_GATE, self._sync.synced.is_set())
            if isinstance(old_backend, InformerBackend):
                await old_backend.stop()
            if old_client is not None:
                await old_client.close()  # type: ignore[attr-defined]
            if config.kubernetes is None:
                self.readiness.add(KUBERNETES_GATE, ready=True)
        log.info("configuration reloaded", extra={"plugins": list(config.plugins)})

    async def stop(self) -> None:
        """Close readiness, wait out the lameduck period, then close everything."""
        self.readiness.set(DNS_GATE, False)
        if self.config.lameduck > 0 and self.server is not None and self.server.bound:
            await asyncio.sleep(self.config.lameduck)
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        if self.server is not None:
            await self.server.stop()
        if self._sync is not None:
            await self._sync.stop()
        if isinstance(self.backend, InformerBackend):
            await self.backend.stop()
        if self._client is not None:
            await self._client.close()  # type: ignore[attr-defined]
        if self.forwarder is not None:
            await self.forwarder.close()
        if self.status is not None:
            await self.status.stop()


class _NoCluster:
    """The backend when the Corefile has no ``kubernetes`` directive: no zones, nothing to watch."""

    def has_synced(self) -> bool:
        return True

    def modified(self) -> int:
        return 0

    def namespace_exists(self, namespace: str) -> bool:
        return False

    def service(self, namespace: str, name: str) -> None:
        return None

    def endpoints(self, namespace: str, service: str) -> list:
        return []

    def services_by_ip(self, ip: str) -> list:
        return []

    def endpoints_by_ip(self, ip: str) -> list:
        return []

    def pods_by_ip(self, ip: str) -> list:
        return []

    def add_listener(self, listener: object) -> None:
        return None
