"""This node's Node object and its Lease: registration, status, heartbeats.

As the kubelet (``kubelet_node_status.go``, ``nodelease``):

- **Registration** creates the Node (labels ``kubernetes.io/hostname``, ``kubernetes.io/os``,
  ``kubernetes.io/arch`` and their ``beta.`` forms, plus configured ones and taints) or, if
  it exists, updates its labels and status. A Node deleted while the agent runs is
  registered again.
- **Status**: capacity from the machine (CPUs, memory, ephemeral storage of the data
  directory's filesystem, 110 pods, no hugepages); allocatable is capacity less the hard
  eviction thresholds (memory 100Mi, 10% of the filesystem); addresses ``InternalIP`` and
  ``Hostname``; ``daemonEndpoints.kubeletEndpoint.Port`` 10250; ``nodeInfo`` (kubelet
  ``v1.33.0-kubelab``, runtime ``kubelab-process://0.1``, kernel, OS image, architecture,
  machine and boot IDs); conditions ``MemoryPressure`` (available memory under 100Mi),
  ``DiskPressure`` (under 10% free), ``PIDPressure`` (no threshold by default, as upstream:
  always False) and ``Ready``, each with upstream's reasons and messages. The status is
  sent when it changes and at least every ``status_report_interval`` (upstream's
  nodeStatusReportFrequency, 5 min), checked every 10 s; ``lastHeartbeatTime`` is the time
  of the report.
- **Lease** ``kube-node-lease/<node>`` (owned by the Node), renewed every 10 s with
  ``leaseDurationSeconds: 40``; this is the heartbeat the node lifecycle controller reads.

In a lab every node agent runs on the same machine, so every Node reports the whole
machine's capacity.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control.client import errors
from control.client.rest import Resource, RESTClient
from control.kubelet.runtime import procfs

log = logging.getLogger("kubelab.kubelet.node")

NODES = Resource(group="", version="v1", plural="nodes", kind="Node", namespaced=False)
LEASES = Resource(group="coordination.k8s.io", version="v1", plural="leases", kind="Lease")
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.33.0-kubelab"
CONTAINER_RUNTIME_VERSION = "kubelab-process://0.1"
KUBELET_PORT = 10250
MEMORY_EVICTION_BYTES = 100 * 1024 * 1024
NODEFS_EVICTION_FRACTION = 0.10
_ARCHITECTURES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}
Obj = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class NodeOptions:
    max_pods: int = 110
    lease_duration_seconds: int = 40
    lease_renew_interval: float = 10.0
    status_update_interval: float = 10.0
    status_report_interval: float = 300.0
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Obj] = ()


def architecture() -> str:
    machine = platform.machine()
    return _ARCHITECTURES.get(machine, machine)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip('"')
    return platform.system()


def micro_time(epoch: float) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e6):06d}Z"


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class NodeStatus:
    """Registers the Node, keeps its status current and its Lease renewed."""

    def __init__(
        self,
        *,
        client: RESTClient,
        node_name: str,
        node_ip: str,
        data_dir: Path,
        options: NodeOptions | None = None,
    ) -> None:
        self._client = client
        self.node_name = node_name
        self.node_ip = node_ip
        self.data_dir = data_dir
        self.options = options or NodeOptions()
        self.node: Obj | None = None
        self._memory_total_bytes = 0  # read once: every pod start asks for allocatable
        self._lease: Obj | None = None
        self._last_report = 0.0
        self._last_conditions: dict[str, Obj] = {}
        self.registered = asyncio.Event()

    # ------------------------------------------------------------------ what we report

    def _memory_total(self) -> int:
        """The machine's memory (``MemTotal`` does not change while the machine runs)."""
        if not self._memory_total_bytes:
            self._memory_total_bytes = procfs.machine_memory().total_bytes
        return self._memory_total_bytes

    def capacity(self) -> dict[str, str]:
        disk = os.statvfs(self.data_dir)
        return {
            "cpu": str(os.cpu_count() or 1),
            "memory": f"{self._memory_total() // 1024}Ki",
            "ephemeral-storage": f"{disk.f_blocks * disk.f_frsize // 1024}Ki",
            "pods": str(self.options.max_pods),
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
        }

    def allocatable(self) -> dict[str, str]:
        disk = os.statvfs(self.data_dir)
        total_disk = disk.f_blocks * disk.f_frsize
        return {
            "cpu": str(os.cpu_count() or 1),
            "memory": f"{max(0, self._memory_total() - MEMORY_EVICTION_BYTES) // 1024}Ki",
            "ephemeral-storage": str(int(total_disk * (1 - NODEFS_EVICTION_FRACTION))),
            "pods": str(self.options.max_pods),
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
        }

    def node_info(self) -> dict[str, str]:
        machine_id = _read("/etc/machine-id")
        return {
            "machineID": machine_id,
            "systemUUID": _read("/sys/class/dmi/id/product_uuid") or machine_id,
            "bootID": _read("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": platform.release(),
            "osImage": _os_image(),
            "containerRuntimeVersion": CONTAINER_RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": architecture(),
        }

    def _pressure(self) -> dict[str, tuple[str, str, str]]:
        """condition -> (status, reason, message)."""
        memory = procfs.machine_memory()
        disk = os.statvfs(self.data_dir)
        free_fraction = disk.f_bavail / disk.f_blocks if disk.f_blocks else 1.0
        return {
            "MemoryPressure": (
                "True",
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            )
            if memory.available_bytes < MEMORY_EVICTION_BYTES
            else ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            "DiskPressure": ("True", "KubeletHasDiskPressure", "kubelet has disk pressure")
            if free_fraction < NODEFS_EVICTION_FRACTION
            else ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
        }

    def status(self, *, now: float | None = None) -> Obj:
        now = time.time() if now is None else now
        conditions = []
        reported = {c.get("type"): c for c in ((self.node or {}).get("status") or {}).get("conditions") or ()}
        for kind, (status, reason, message) in self._pressure().items():
            before = self._last_conditions.get(kind) or reported.get(kind)
            transition = (
                before["lastTransitionTime"] if before and before.get("status") == status else rfc3339(now)
            )
            conditions.append(
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": rfc3339(now),
                    "lastTransitionTime": transition,
                }
            )
        return {
            "capacity": self.capacity(),
            "allocatable": self.allocatable(),
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": self.node_ip},
                {"type": "Hostname", "address": self.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
            "nodeInfo": self.node_info(),
        }

    def labels(self) -> dict[str, str]:
        arch = architecture()
        return {
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch,
            **self.options.labels,
        }

    # ------------------------------------------------------------------ registration

    async def register(self) -> Obj:
        """Create the Node, or bring an existing one up to date; returns the Node."""
        status = self.status()
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": self.labels(),
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {"taints": list(self.options.taints)} if self.options.taints else {},
            "status": status,
        }
        try:
            node = await self._client.create(NODES, body)
            log.info("registered node %s", self.node_name)
        except errors.AlreadyExistsError:
            node = await self._client.patch(NODES, self.node_name, {"metadata": {"labels": self.labels()}})
            log.info("node %s already registered; updating it", self.node_name)
        self.node = await self._client.patch(NODES, self.node_name, {"status": status}, subresource="status")
        self._remember(status)
        self.registered.set()
        return node

    def _remember(self, status: Obj) -> None:
        self._last_conditions = {condition["type"]: condition for condition in status["conditions"]}
        self._last_report = time.monotonic()

    def observe(self, node: Obj) -> None:
        """The Node as the informer last saw it (podCIDR, spec changes)."""
        self.node = node

    @property
    def pod_cidr(self) -> str:
        return ((self.node or {}).get("spec") or {}).get("podCIDR") or ""

    async def update_status(self, *, force: bool = False) -> None:
        status = self.status()
        changed = any(
            self._last_conditions.get(condition["type"], {}).get("status") != condition["status"]
            for condition in status["conditions"]
        )
        due = time.monotonic() - self._last_report >= self.options.status_report_interval
        if not (force or changed or due):
            return
        try:
            self.node = await self._client.patch(
                NODES, self.node_name, {"status": status}, subresource="status"
            )
        except errors.NotFoundError:
            log.warning("node %s was deleted; registering it again", self.node_name)
            await self.register()
            return
        self._remember(status)

    # ------------------------------------------------------------------ lease

    async def renew_lease(self) -> None:
        now = time.time()
        if self._lease is not None:
            lease = dict(self._lease)
            lease["spec"] = {
                **lease.get("spec", {}),
                "renewTime": micro_time(now),
                "holderIdentity": self.node_name,
            }
            try:
                self._lease = await self._client.replace(LEASES, lease, namespace=LEASE_NAMESPACE)
                return
            except (errors.ConflictError, errors.NotFoundError):
                self._lease = None
        try:
            current = await self._client.get(LEASES, self.node_name, namespace=LEASE_NAMESPACE)
        except errors.NotFoundError:
            current = None
        spec = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": self.options.lease_duration_seconds,
            "renewTime": micro_time(now),
        }
        if current is None:
            metadata: Obj = {"name": self.node_name, "namespace": LEASE_NAMESPACE}
            node_uid = ((self.node or {}).get("metadata") or {}).get("uid")
            if node_uid:
                metadata["ownerReferences"] = [
                    {"apiVersion": "v1", "kind": "Node", "name": self.node_name, "uid": node_uid}
                ]
            self._lease = await self._client.create(
                LEASES,
                {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec},
                namespace=LEASE_NAMESPACE,
            )
        else:
            current["spec"] = {**(current.get("spec") or {}), **spec}
            self._lease = await self._client.replace(LEASES, current, namespace=LEASE_NAMESPACE)

    # ------------------------------------------------------------------ loops

    async def run(self) -> None:
        """Renew the lease and report status until cancelled (register first)."""
        await asyncio.gather(self._lease_loop(), self._status_loop())

    async def _lease_loop(self) -> None:
        while True:
            try:
                await self.renew_lease()
            except errors.RequestError as exc:
                log.warning("renewing lease %s/%s failed: %s", LEASE_NAMESPACE, self.node_name, exc)
            await asyncio.sleep(self.options.lease_renew_interval)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.status_update_interval)
            try:
                await self.update_status()
            except errors.RequestError as exc:
                log.warning("updating the status of node %s failed: %s", self.node_name, exc)
