"""Pod IP addresses from the node's pod CIDR, kept on disk like CNI's host-local plugin.

Each allocation is a file ``<data-dir>/ipam/<cidr>/<ip>`` holding the pod's UID, so a
restarted node agent keeps every running pod's address and never hands it out twice.
Addresses are given round-robin after the last one handed out (``last_reserved_ip``), so
a freed address is not reused at once — connections to a pod just deleted should not reach
its successor. The network and broadcast addresses and the first host address (the
gateway, in CNI's convention) are never handed out.

The node agent is the only writer of its directory, so the allocations are read from disk
once and then kept in memory.

Allocation touches the disk, so pod workers call it from a worker thread (a lock keeps two
of them from choosing at once). ``last_reserved_ip`` is rewritten in place, padded, never
truncated: ext4 flushes a file that is truncated and written again
when it is closed (``auto_da_alloc``), and behind the API server's SQLite fsyncs that made
each allocation wait on the journal with the node agent's event loop blocked (py-spy, 100-pod
burst: most of the loop thread's samples). The burst's duration did not change measurably:
two CPUs are its limit, not these waits.

All of 127.0.0.0/8 is loopback on Linux, so an address from ``127.244.N.0/24`` needs no
set-up: a pod's processes bind to it (``POD_IP``) and anything on the machine reaches them.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from pathlib import Path

# Room for any IPv6 address in text: last_reserved_ip is overwritten in place, never truncated.
_LAST_WIDTH = 39


class IPAMError(Exception):
    """No address can be allocated (the range is exhausted, or the CIDR is unusable)."""


class HostLocalIPAM:
    def __init__(self, *, directory: Path, cidr: str) -> None:
        try:
            self.network = ipaddress.ip_network(cidr)
        except ValueError as exc:
            raise IPAMError(f"pod CIDR {cidr!r} is not a network: {exc}") from exc
        if self.network.num_addresses < 4:
            raise IPAMError(f"pod CIDR {cidr} is too small for pods")
        self.directory = directory / str(self.network).replace("/", "-")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._hosts = [str(ip) for ip in list(self.network.hosts())[1:]]
        self._owners: dict[str, str] = {}
        for entry in os.scandir(self.directory):
            if entry.name[0].isdigit():
                self._owners[entry.name] = Path(entry.path).read_text().strip()
        try:
            last = (self.directory / "last_reserved_ip").read_text().strip()
            self._next = self._hosts.index(last) + 1
        except (FileNotFoundError, ValueError):
            self._next = 0
        self._lock = threading.Lock()

    @classmethod
    def existing(cls, directory: Path) -> list[HostLocalIPAM]:
        """The ranges allocated from before (``<cidr>`` directories under ``directory``)."""
        if not directory.is_dir():
            return []
        found = []
        for entry in os.scandir(directory):
            address, _, prefix = entry.name.rpartition("-")
            if entry.is_dir() and address and prefix.isdigit():
                try:
                    found.append(cls(directory=directory, cidr=f"{address}/{prefix}"))
                except IPAMError:
                    continue
        return found

    def allocations(self) -> dict[str, str]:
        """ip -> pod uid."""
        return dict(self._owners)

    def allocate(self, pod_uid: str) -> str:
        """The pod's address: the one it already has, or the next free one (call it from a
        worker thread: it writes to the disk)."""
        with self._lock:
            return self._allocate(pod_uid)

    def _allocate(self, pod_uid: str) -> str:
        for ip, owner in self._owners.items():
            if owner == pod_uid:
                return ip
        count = len(self._hosts)
        for offset in range(count):
            index = (self._next + offset) % count
            ip = self._hosts[index]
            if ip in self._owners:
                continue
            try:
                fd = os.open(self.directory / ip, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as out:
                out.write(pod_uid)
            last = os.open(self.directory / "last_reserved_ip", os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.pwrite(last, ip.ljust(_LAST_WIDTH).encode(), 0)
            finally:
                os.close(last)
            self._owners[ip] = pod_uid
            self._next = index + 1
            return ip
        raise IPAMError(f"no free address left in {self.network} ({count} addresses, all in use)")

    def release(self, pod_uid: str) -> None:
        with self._lock:
            for ip in [ip for ip, owner in self._owners.items() if owner == pod_uid]:
                (self.directory / ip).unlink(missing_ok=True)
                del self._owners[ip]
