"""The proxier: keeps this node's listeners and balancers equal to the routes of every Service.

It knows sockets, not the API: :meth:`Proxier.apply` takes one Service's routes (from
:func:`control.proxy.state.routes_for_service`) and makes the world match them —

- a route with backends gets a listener (opened if missing) and its pool's balancer gets the new
  backend list, in place, so round-robin position and affinities carry over;
- a route without backends gets *no* listener: connecting to the address is refused at once
  (``ECONNREFUSED`` for TCP, ICMP port-unreachable for UDP) — what a cluster's
  kube-proxy REJECT rule gives a client of a Service without endpoints;
- listeners of routes that disappeared (the Service was deleted, a port removed, a NodePort
  changed, the last endpoint went away) are closed. Closing a TCP listener only stops new
  connections: established ones keep their backend until either side closes. UDP flows to
  backends that left the pool are closed (kube-proxy clears their conntrack entries).

A listener belongs to the first Service that claimed its address; another Service asking for the
same address (only possible with hand-written, conflicting objects) gets an error until the
owner lets go. Bind failures do not stop the rest of a sync: everything else is applied and
the failures are raised together as a :class:`SyncError`, for the caller to retry.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from control.client.clock import REAL_CLOCK, Clock
from control.proxy.balancer import Balancer
from control.proxy.metrics import Counts
from control.proxy.sockets import ListenError, listen_socket
from control.proxy.state import Backend, ListenerKey, PoolKey, Route
from control.proxy.tcp import Relay, TCPListener
from control.proxy.udp import DEFAULT_IDLE_TIMEOUT, UDPListener

Listener = TCPListener | UDPListener


class SyncError(Exception):
    """Some listeners of a Service could not be opened; ``errors`` says which and why."""

    def __init__(self, service: str, errors: list[ListenError]) -> None:
        super().__init__(f"{service}: " + "; ".join(str(error) for error in errors))
        self.service = service
        self.errors = errors


class Proxier:
    """Listeners on ClusterIPs (shared with the other node agents) and on this node's NodePorts."""

    def __init__(
        self,
        *,
        node_ip: str,
        udp_idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        clock: Clock = REAL_CLOCK,
        counts: Counts | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if udp_idle_timeout <= 0:
            raise ValueError(f"the UDP idle timeout must be positive, got {udp_idle_timeout}")
        self.node_ip = node_ip
        self.counts = counts if counts is not None else Counts()
        self._udp_idle_timeout = udp_idle_timeout
        self._clock = clock
        self._rng = rng or random.Random()
        self._listeners: dict[ListenerKey, Listener] = {}
        self._owners: dict[ListenerKey, str] = {}
        self._applied: dict[str, dict[ListenerKey, Route]] = {}  # service -> routes with a listener
        self._balancers: dict[PoolKey, Balancer] = {}
        self._connections: set[Relay] = set()

    # --- what the metrics read ------------------------------------------------------------------

    def listener_count(self, protocol: str) -> int:
        return sum(1 for key in self._listeners if key.protocol == protocol)

    @property
    def tcp_connections(self) -> int:
        return len(self._connections)

    @property
    def udp_flows(self) -> int:
        return sum(
            listener.flow_count for listener in self._listeners.values() if isinstance(listener, UDPListener)
        )

    def backends(self, key: ListenerKey) -> tuple[Backend, ...]:
        """Where new connections to ``key`` go now (empty: nothing listens there)."""
        listener = self._listeners.get(key)
        return listener.balancer.backends if listener is not None else ()

    # --- syncing --------------------------------------------------------------------------------

    async def apply(self, service: str, routes: Mapping[ListenerKey, Route]) -> None:
        """Make ``service``'s listeners match ``routes`` (``{}`` removes them all).

        Raises :class:`SyncError` for the listeners that could not be opened, after applying
        everything else.
        """
        wanted = {key: route for key, route in routes.items() if route.backends}
        previous = self._applied.pop(service, {})
        for key in previous.keys() - wanted.keys():
            self._close(key)
        for route in wanted.values():
            balancer = self._balancers.get(route.pool)
            if balancer is None:
                balancer = self._balancers[route.pool] = Balancer(clock=self._clock, rng=self._rng)
            balancer.update(route.backends, affinity_timeout=route.affinity_timeout)

        applied: dict[ListenerKey, Route] = {}
        errors: list[ListenError] = []
        for key, route in wanted.items():
            balancer = self._balancers[route.pool]
            listener = self._listeners.get(key)
            if listener is None:
                try:
                    listener = await self._open(key, balancer)
                except ListenError as exc:
                    self.counts.listen_errors += 1
                    errors.append(exc)
                    continue
                self._listeners[key] = listener
                self._owners[key] = service
            elif self._owners[key] != service:
                message = f"cannot listen on {key}: it is already used by service {self._owners[key]}"
                errors.append(ListenError(message, key=key))
                continue
            listener.balancer = balancer
            if isinstance(listener, UDPListener):
                listener.prune()
            applied[key] = route
        if applied:
            self._applied[service] = applied
        in_use = {route.pool for route in applied.values()}
        for pool in [p for p in self._balancers if p.service == service and p not in in_use]:
            del self._balancers[pool]
        if errors:
            raise SyncError(service, errors)

    async def _open(self, key: ListenerKey, balancer: Balancer) -> Listener:
        # ClusterIPs are shared by every node agent on the machine; NodePorts are this node's own.
        sock = listen_socket(key, shared=key.ip != self.node_ip)
        if key.protocol == "TCP":
            listener: Listener = TCPListener(
                key=key,
                balancer=balancer,
                source_ip=self.node_ip,
                connections=self._connections,
                counts=self.counts,
            )
            try:
                await listener.start(sock)
            except BaseException:
                sock.close()
                raise
            return listener
        listener = UDPListener(
            key=key,
            balancer=balancer,
            source_ip=self.node_ip,
            idle_timeout=self._udp_idle_timeout,
            clock=self._clock,
            counts=self.counts,
        )
        listener.start(sock)
        return listener

    def _close(self, key: ListenerKey) -> None:
        listener = self._listeners.pop(key, None)
        self._owners.pop(key, None)
        if listener is not None:
            listener.close()

    def close(self) -> None:
        """Close every listener and reset every relayed connection (the proxy is stopping)."""
        for key in list(self._listeners):
            self._close(key)
        self._applied.clear()
        self._balancers.clear()
        for relay in list(self._connections):
            relay.abort()
        self._connections.clear()
