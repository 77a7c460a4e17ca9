"""Service ClusterIP and NodePort allocation.

Upstream keeps allocation bitmaps in etcd so several API servers agree. kubelab runs one
API server per store, so the bitmap lives in memory and is rebuilt from the stored
Services at start-up (``seed``); a failed create releases what it reserved. Allocation
picks at random (as upstream does) so that deleting and recreating a Service does not
hand its old address to the next one straight away.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable


class AllocationError(Exception):
    """The requested value is taken or outside the range; or the range is full."""


class _RangeAllocator:
    def __init__(self, *, first: int, last: int, what: str, rng: random.Random | None = None) -> None:
        self._first = first
        self._last = last
        self._what = what
        self._used: set[int] = set()
        self._rng = rng or random.Random()

    def _reserve(self, value: int, shown: str) -> None:
        if not self._first <= value <= self._last:
            raise AllocationError(f"provided {self._what} {shown} is not in the valid range")
        if value in self._used:
            raise AllocationError(f"provided {self._what} {shown} is already allocated")
        self._used.add(value)

    def _allocate_next(self) -> int:
        size = self._last - self._first + 1
        if len(self._used) >= size:
            raise AllocationError(f"range is full: no {self._what}s left")
        start = self._rng.randrange(size)
        for offset in range(size):
            value = self._first + (start + offset) % size
            if value not in self._used:
                self._used.add(value)
                return value
        raise AllocationError(f"range is full: no {self._what}s left")

    def _release(self, value: int) -> None:
        self._used.discard(value)


class ClusterIPAllocator(_RangeAllocator):
    """Addresses of the service CIDR; the first usable one is the kubernetes Service's."""

    def __init__(self, cidr: str, *, rng: random.Random | None = None) -> None:
        network = ipaddress.ip_network(cidr)
        if network.num_addresses < 4:
            raise ValueError(f"service CIDR {cidr} is too small")
        self.network = network
        super().__init__(
            first=int(network.network_address) + 1,
            last=int(network.broadcast_address) - 1,
            what="IP",
            rng=rng,
        )

    @property
    def kubernetes_service_ip(self) -> str:
        return str(self.network.network_address + 1)

    def reserve(self, ip: str) -> None:
        try:
            value = int(ipaddress.ip_address(ip))
        except ValueError as exc:
            raise AllocationError(f"{ip!r} is not a valid IP address") from exc
        self._reserve(value, ip)

    def allocate(self) -> str:
        """A free address other than the first, which belongs to the kubernetes Service."""
        first_was_taken = self._first in self._used
        self._used.add(self._first)
        try:
            return str(ipaddress.ip_address(self._allocate_next()))
        finally:
            if not first_was_taken:
                self._used.discard(self._first)

    def release(self, ip: str) -> None:
        try:
            self._release(int(ipaddress.ip_address(ip)))
        except ValueError:
            return

    def seed(self, ips: Iterable[str]) -> None:
        for ip in ips:
            try:
                self._used.add(int(ipaddress.ip_address(ip)))
            except ValueError:
                continue


class NodePortAllocator(_RangeAllocator):
    def __init__(self, first: int, last: int, *, rng: random.Random | None = None) -> None:
        if not 0 < first <= last < 65536:
            raise ValueError(f"invalid node port range {first}-{last}")
        super().__init__(first=first, last=last, what="port", rng=rng)

    def reserve(self, port: int) -> None:
        """Errors worded as upstream's portallocator (``ErrNotInRange``, ``ErrAllocated``):
        users see them verbatim in ``spec.ports[i].nodePort: Invalid value: ...``."""
        if not self._first <= port <= self._last:
            raise AllocationError(
                "provided port is not in the valid range. "
                f"The range of valid ports is {self._first}-{self._last}"
            )
        if port in self._used:
            raise AllocationError("provided port is already allocated")
        self._used.add(port)

    def allocate(self) -> int:
        return self._allocate_next()

    def release(self, port: int) -> None:
        self._release(port)

    def seed(self, ports: Iterable[int]) -> None:
        self._used.update(ports)
