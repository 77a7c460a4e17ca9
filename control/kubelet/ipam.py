"""Pod IP addresses from the node's pod CIDR, kept on disk like CNI's host-local plugin.

Each allocation is a file ``<data-dir>/ipam/<cidr>/<ip>`` holding the pod's UID, so a
restarted node agent keeps every running pod's address and never hands it out twice.
Addresses are given round-robin after the last one handed out (``last_reserved_ip``), so
a freed address is not reused at once — connections to a pod just deleted should not reach
its successor. The network and broadcast addresses and the first host address (the
gateway, in CNI's convention) are never handed out.

All of 127.0.0.0/8 is loopback on Linux, so an address from ``127.244.N.0/24`` needs no
set-up: a pod's processes bind to it (``POD_IP``) and anything on the machine reaches them.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path


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

    def _hosts(self) -> list[str]:
        return [str(ip) for ip in list(self.network.hosts())[1:]]

    def owner(self, ip: str) -> str | None:
        try:
            return (self.directory / ip).read_text().strip()
        except FileNotFoundError:
            return None

    def allocations(self) -> dict[str, str]:
        """ip -> pod uid."""
        found = {}
        for entry in os.scandir(self.directory):
            if entry.name[0].isdigit():
                found[entry.name] = Path(entry.path).read_text().strip()
        return found

    def allocate(self, pod_uid: str) -> str:
        """The pod's address: the one it already has, or the next free one."""
        allocations = self.allocations()
        for ip, owner in allocations.items():
            if owner == pod_uid:
                return ip
        hosts = self._hosts()
        last_file = self.directory / "last_reserved_ip"
        try:
            last = last_file.read_text().strip()
            start = hosts.index(last) + 1
        except (FileNotFoundError, ValueError):
            start = 0
        for offset in range(len(hosts)):
            ip = hosts[(start + offset) % len(hosts)]
            if ip in allocations:
                continue
            try:
                fd = os.open(self.directory / ip, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as out:
                out.write(pod_uid)
            last_file.write_text(ip)
            return ip
        raise IPAMError(f"no free address left in {self.network} ({len(hosts)} addresses, all in use)")

    def release(self, pod_uid: str) -> None:
        for ip, owner in self.allocations().items():
            if owner == pod_uid:
                (self.directory / ip).unlink(missing_ok=True)


def release_pod(root: Path, pod_uid: str) -> None:
    """Free every address ``pod_uid`` holds under ``root``, whatever CIDR it came from (the
    node's pod CIDR may have changed since the address was given)."""
    if not root.is_dir():
        return
    for network in os.scandir(root):
        if not network.is_dir():
            continue
        for allocation in os.scandir(network.path):
            if not allocation.name[0].isdigit():
                continue
            try:
                if Path(allocation.path).read_text().strip() == pod_uid:
                    os.unlink(allocation.path)
            except FileNotFoundError:
                continue
