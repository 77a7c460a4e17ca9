"""``/healthz``, ``/readyz`` and ``/metrics`` for an add-on, on one listener or several.

Every kubelab component answers the same three questions over HTTP:

- *health* (liveness): is the process working at all? 200 ``OK`` unless a health check fails;
  the kubelet restarts a container whose liveness probe keeps failing.
- *ready* (readiness): should it get traffic? 200 ``OK`` only when every :class:`Readiness` gate
  is open (caches synced, listeners bound); 503 naming the closed gates otherwise. While an
  add-on stops, it closes a gate first so Services stop sending it work.
- *metrics*: the component's own ``CollectorRegistry`` in the Prometheus text format. A registry
  per component (never the global one) keeps tests independent and lets two components share a
  process.

Listeners are explicit because add-ons differ: CoreDNS serves ``/health`` on :8080, ``/ready``
on :8181 and ``/metrics`` on :9153, while a new add-on can put ``/healthz``, ``/readyz`` and
``/metrics`` on one port (:func:`standard_paths`). A port that cannot be bound raises
:class:`BindError` naming the address and, for ports below 1024, the privilege it needs.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)


class Probe(enum.Enum):
    HEALTH = "health"
    READY = "ready"
    METRICS = "metrics"


def standard_paths() -> dict[str, Probe]:
    """The kubelab convention for one port: ``/healthz``, ``/readyz``, ``/metrics``."""
    return {"/healthz": Probe.HEALTH, "/readyz": Probe.READY, "/metrics": Probe.METRICS}


@dataclass(frozen=True)
class Listener:
    """One HTTP listener: ``host:port`` (port 0 picks a free port) serving ``paths``."""

    host: str
    port: int
    paths: Mapping[str, Probe] = field(default_factory=standard_paths)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        for path in self.paths:
            if not path.startswith("/"):
                raise ValueError(f"a path must start with '/', got {path!r}")


class BindError(Exception):
    """A listener's address could not be bound."""


def bind_error(*, host: str, port: int, error: OSError) -> BindError:
    """A :class:`BindError` that says what to do about the usual causes (chain ``error`` as its cause)."""
    hint = ""
    if port and port < 1024:
        hint = (
            f" (ports below 1024 need root, CAP_NET_BIND_SERVICE or a lower "
            f"net.ipv4.ip_unprivileged_port_start; {error.strerror or error})"
        )
    return BindError(f"cannot listen on {host}:{port}: {error.strerror or error}{hint}")


class Readiness:
    """Named gates; ready when every gate is open. Gates are added closed unless said otherwise."""

    def __init__(self) -> None:
        self._gates: dict[str, bool] = {}

    def add(self, name: str, *, ready: bool = False) -> None:
        self._gates[name] = ready

    def set(self, name: str, ready: bool) -> None:
        if name not in self._gates:
            raise KeyError(f"no readiness gate {name!r} (known: {', '.join(self._gates) or 'none'})")
        self._gates[name] = ready

    def pending(self) -> list[str]:
        return [name for name, ready in self._gates.items() if not ready]

    def is_ready(self) -> bool:
        return all(self._gates.values())


HealthCheck = Callable[[], str | None]  # None when healthy, else what is wrong


class StatusServer:
    """Serves the probes of one component on its listeners. ``await start(...)``, ``await stop()``."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        readiness: Readiness,
        health_checks: Sequence[HealthCheck] = (),
    ) -> None:
        self.registry = registry
        self.readiness = readiness
        self._health_checks = list(health_checks)
        self._runners: list[web.AppRunner] = []
        self.addresses: list[tuple[str, int]] = []

    def add_health_check(self, check: HealthCheck) -> None:
        self._health_checks.append(check)

    # --- handlers -------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        problems = [problem for check in self._health_checks if (problem := check())]
        if problems:
            return web.Response(status=503, text="\n".join(problems) + "\n")
        return web.Response(text="OK")

    async def _ready(self, request: web.Request) -> web.Response:
        if self.readiness.is_ready():
            return web.Response(text="OK")
        return web.Response(status=503, text="not ready: " + ", ".join(self.readiness.pending()) + "\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, listeners: Sequence[Listener]) -> None:
        """Bind every listener; on failure the ones already bound are closed and BindError raised."""
        handlers = {Probe.HEALTH: self._health, Probe.READY: self._ready, Probe.METRICS: self._metrics}
        try:
            for listener in listeners:
                app = web.Application()
                for path, probe in listener.paths.items():
                    app.router.add_get(path, handlers[probe])
                runner = web.AppRunner(app, access_log=None, handle_signals=False)
                await runner.setup()
                self._runners.append(runner)
                site = web.TCPSite(runner, listener.host, listener.port, reuse_address=True)
                try:
                    await site.start()
                except OSError as exc:
                    raise bind_error(host=listener.host, port=listener.port, error=exc) from exc
                server = site._server
                assert server is not None
                for sock in server.sockets:  # type: ignore[attr-defined]
                    host, port = sock.getsockname()[:2]
                    self.addresses.append((host, port))
        except BaseException:
            await self.stop()
            raise
        log.info("status endpoints listening", extra={"addresses": [f"{h}:{p}" for h, p in self.addresses]})

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()
        self.addresses = []
