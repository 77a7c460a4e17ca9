"""Choosing a backend for a new connection: round-robin, with ClientIP session affinity.

The model is kube-proxy's userspace ``LoadBalancerRR`` (``pkg/proxy/userspace/roundrobin.go``):
each Service port has one rotation over its backends, and with ``sessionAffinity: ClientIP`` a
client address keeps the backend it was given for as long as it comes back within
``timeoutSeconds`` of its previous connection (each pick renews the lease). A backend leaving
the pool ends the affinities that pointed at it; one failing to accept a connection is skipped
for that attempt (``exclude``) and loses the client's affinity.

One deliberate difference: the *first* choice for a client of an affinity pool is not the next in
the rotation but the highest-scoring backend by rendezvous hashing of (client IP, backend). The
node agents of one lab all listen on the same ClusterIPs (``SO_REUSEPORT``, see
:mod:`control.proxy.sockets`) and the kernel spreads a client's connections over their proxies;
with a per-proxy rotation each proxy would pin the client to a different backend. Hashing makes
every proxy pick the same backend for the same client without talking to each other, and
adding a backend moves only the clients that now score highest on it (once their affinity
times out). Without affinity the rotation starts at a random place, so proxies do not all send
their first connection to the same backend.

Everything here is synchronous and runs on the event loop: no locks.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection

from control.client.clock import REAL_CLOCK, Clock
from control.proxy.state import Backend

# Expired affinities are swept when the table grows past this many entries (then twice its live size).
_AFFINITY_SWEEP_AT = 1024


class Balancer:
    """The backends of one pool and the state of its rotation and affinities."""

    def __init__(self, *, clock: Clock = REAL_CLOCK, rng: random.Random | None = None) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._backends: tuple[Backend, ...] = ()
        self._next = 0
        self._affinity_timeout: float | None = None
        # client IP -> [backend, last pick time]; a list so a renewal does not allocate.
        self._affinity: dict[str, list] = {}
        self._sweep_at = _AFFINITY_SWEEP_AT

    @property
    def backends(self) -> tuple[Backend, ...]:
        return self._backends

    @property
    def affinity_timeout(self) -> float | None:
        return self._affinity_timeout

    def update(self, backends: tuple[Backend, ...], *, affinity_timeout: float | None) -> None:
        """Take a new backend list (sorted, as routes carry it) and affinity setting.

        Affinities to backends still present survive; the rotation keeps its place.
        """
        if backends != self._backends:
            kept = frozenset(backends)
            self._affinity = {ip: entry for ip, entry in self._affinity.items() if entry[0] in kept}
            if not self._backends and backends:
                self._next = self._rng.randrange(len(backends))
            elif backends:
                self._next %= len(backends)
            else:
                self._next = 0
            self._backends = backends
        if affinity_timeout != self._affinity_timeout:
            if affinity_timeout is None:
                self._affinity.clear()
            self._affinity_timeout = affinity_timeout

    def pick(self, client_ip: str, *, exclude: Collection[Backend] = ()) -> Backend | None:
        """The backend for a new connection from ``client_ip``; None when there is none to try.

        ``exclude`` lists backends that already failed this connection: they are skipped and,
        for an affinity pool, the client's affinity is moved to the new choice.
        """
        backends = self._backends
        if not backends:
            return None
        if self._affinity_timeout is None:
            return self._rotate(backends, exclude)
        now = self._clock.now()
        entry = self._affinity.get(client_ip)
        if entry is not None and now - entry[1] < self._affinity_timeout and entry[0] not in exclude:
            entry[1] = now
            return entry[0]
        candidates = [b for b in backends if b not in exclude] if exclude else backends
        if not candidates:
            return None
        backend = max(candidates, key=lambda b: _score(client_ip, b))
        self._affinity[client_ip] = [backend, now]
        if len(self._affinity) >= self._sweep_at:
            self._sweep(now)
        return backend

    def _rotate(self, backends: tuple[Backend, ...], exclude: Collection[Backend]) -> Backend | None:
        count = len(backends)
        for _ in range(count):
            backend = backends[self._next]
            self._next = (self._next + 1) % count
            if backend not in exclude:
                return backend
        return None

    def _sweep(self, now: float) -> None:
        timeout = self._affinity_timeout
        assert timeout is not None
        self._affinity = {ip: entry for ip, entry in self._affinity.items() if now - entry[1] < timeout}
        self._sweep_at = max(_AFFINITY_SWEEP_AT, 2 * len(self._affinity))


def _score(client_ip: str, backend: Backend) -> bytes:
    """Rendezvous-hash score: stable across processes (unlike ``hash()``, which is salted)."""
    return hashlib.blake2b(f"{client_ip}|{backend[0]}:{backend[1]}".encode(), digest_size=8).digest()
