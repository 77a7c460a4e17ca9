"""The node IPAM controller: gives every Node a pod CIDR (upstream's ``pkg/controller/nodeipam``,
range allocator).

The cluster CIDR (``ControllerOptions.cluster_cidr``, ``127.244.0.0/16``) is cut into subnets of
``node_cidr_mask_size`` bits (``/24``). A Node without ``spec.podCIDR`` gets one subnet, written
as ``spec.podCIDR`` and ``spec.podCIDRs`` in one patch, as upstream's ``PatchNodeCIDRs``; a Node
that already has one keeps it and the subnet is marked used; a deleted Node's subnet is freed.

Which subnet: kubelab's address plan gives node N the IP ``127.100.0.N`` and the pod CIDR
``127.244.N.0/24``, so a Node whose ``InternalIP`` is the N-th address of the node network gets
subnet N when it is free. Any other Node (or one whose subnet is taken) gets the lowest free
subnet that no other still-unassigned Node is entitled to. Upstream's allocator instead hands
out the next free subnet after the last one given, which would scatter the plan.

Allocation is decided in memory, synchronously, before the patch is sent, so two Nodes never
get the same subnet even with several workers; a failed patch frees the subnet again. The
used set is rebuilt from the Node cache each time the controller starts. When the range is
exhausted the Node gets a ``CIDRNotAvailable`` event (``Node <name> status is now:
CIDRNotAvailable``, as upstream's ``RecordNodeStatusChange``) and is retried with backoff.

IPv4 or IPv6 single-stack only: one cluster CIDR, one ``podCIDRs`` entry.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

from control.client import errors
from control.client.controller import Controller, TemporaryError
from control.client.informer import DeletedFinalStateUnknown, deletion_handling_key
from control.client.rest import PatchType
from control.client.workqueue import RateLimitingQueue
from control.controllers.events import EventRecorder
from control.controllers.kinds import NODES
from control.controllers.manager import ControllerContext

log = logging.getLogger("kubelab.controllers.nodeipam")

# The workqueue's name, as upstream names it (its workqueue_* metrics' ``name`` label).
QUEUE_NAME = "cidrallocator_node"


CONTROLLER_NAME = "node-ipam-controller"
# The address plan's node network: node N is the N-th address of it (127.100.0.N).
NODE_NETWORK = "127.100.0.0/24"

Obj = Mapping[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CIDRRangeError(ValueError):
    """The cluster CIDR or the node mask size cannot be used."""


class CIDRSet:
    """The subnets of a cluster CIDR, by index, and which Node holds each (upstream's ``cidrset``)."""

    def __init__(self, cluster_cidr: str, *, mask_size: int) -> None:
        try:
            network = ipaddress.ip_network(cluster_cidr, strict=True)
        except ValueError as exc:
            raise CIDRRangeError(f"invalid cluster CIDR {cluster_cidr!r}: {exc}") from exc
        if not network.prefixlen <= mask_size <= network.max_prefixlen:
            raise CIDRRangeError(
                f"node CIDR mask size {mask_size} must be between the cluster CIDR's prefix length "
                f"({network.prefixlen}) and {network.max_prefixlen}"
            )
        if mask_size - network.prefixlen > 24:
            raise CIDRRangeError(
                f"cluster CIDR {cluster_cidr} with node mask size {mask_size} has more than 2^24 subnets"
            )
        self.network: Network = network
        self.mask_size = mask_size
        self.size = 1 << (mask_size - network.prefixlen)
        self._step = 1 << (network.max_prefixlen - mask_size)
        self._holders: dict[int, str] = {}  # subnet index -> node name
        self._by_node: dict[str, int] = {}

    def subnet(self, index: int) -> str:
        base = int(self.network.network_address) + index * self._step
        return f"{ipaddress.ip_address(base)}/{self.mask_size}"

    def index_of(self, cidr: str) -> int | None:
        """The index of ``cidr`` if it is exactly one of our subnets."""
        try:
            subnet = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            return None
        if subnet.version != self.network.version or subnet.prefixlen != self.mask_size:
            return None
        if not subnet.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        return (int(subnet.network_address) - int(self.network.network_address)) // self._step

    def holder(self, index: int) -> str | None:
        return self._holders.get(index)

    def held_by(self, node: str) -> int | None:
        return self._by_node.get(node)

    def occupy(self, index: int, node: str) -> str | None:
        """Record that ``node`` uses subnet ``index``; returns the other node already holding it, if any."""
        other = self._holders.get(index)
        if other is not None and other != node:
            return other
        previous = self._by_node.get(node)
        if previous is not None and previous != index:
            self._holders.pop(previous, None)
        self._holders[index] = node
        self._by_node[node] = index
        return None

    def release(self, node: str) -> None:
        index = self._by_node.pop(node, None)
        if index is not None and self._holders.get(index) == node:
            del self._holders[index]

    def indexes(self) -> range:
        return range(self.size)

    def is_free(self, index: int) -> bool:
        return 0 <= index < self.size and index not in self._holders


def internal_ip(node: Obj) -> str | None:
    for address in (node.get("status") or {}).get("addresses") or ():
        if address.get("type") == "InternalIP" and address.get("address"):
            return str(address["address"])
    return None


def node_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = [cidr for cidr in spec.get("podCIDRs") or () if cidr]
    if not cidrs and spec.get("podCIDR"):
        cidrs = [spec["podCIDR"]]
    return cidrs


class NodeIPAMController:
    """Assigns pod CIDRs to Nodes; see the module docstring for the rules."""

    name = "nodeipam"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        node_network: str = NODE_NETWORK,
        workers: int | None = None,
    ) -> None:
        self._cluster_cidr = ctx.options.cluster_cidr
        self._mask_size = ctx.options.node_cidr_mask_size
        self._cidrs = CIDRSet(self._cluster_cidr, mask_size=self._mask_size)
        try:
            self._node_network = ipaddress.ip_network(node_network, strict=True)
        except ValueError as exc:
            raise CIDRRangeError(f"invalid node network {node_network!r}: {exc}") from exc
        self._client = ctx.client
        self._recorder: EventRecorder = ctx.recorder(CONTROLLER_NAME)
        self._workers = workers or ctx.options.concurrent_syncs
        self._nodes = ctx.informers.informer(NODES)
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name=QUEUE_NAME)

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name=QUEUE_NAME)
        if not await self._nodes.wait_for_sync():
            return
        self._cidrs = CIDRSet(self._cluster_cidr, mask_size=self._mask_size)
        for node in self._nodes.cache.list():
            self._occupy_existing(node)
        registration = self._nodes.add_event_handler(
            on_add=self._on_node,
            on_update=lambda old, new: self._on_node(new),
            on_delete=self._on_node_delete,
        )
        try:
            await Controller(
                self.name, queue, self.reconcile, workers=self._workers, informers=[self._nodes]
            ).run()
        finally:
            self._nodes.remove_event_handler(registration)

    # --- event handlers ---------------------------------------------------------------------

    def _on_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        cidrs = node_cidrs(node)
        if not cidrs or self._cidrs.held_by(name) != self._cidrs.index_of(cidrs[0]):
            self._queue.add(name)

    def _on_node_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._queue.add(deletion_handling_key(obj))

    # --- reconcile --------------------------------------------------------------------------

    def preferred_index(self, node: Obj) -> int | None:
        """Subnet N for the node whose InternalIP is the N-th address of the node network."""
        address = internal_ip(node)
        if address is None:
            return None
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        if ip.version != self._node_network.version or ip not in self._node_network:
            return None
        index = int(ip) - int(self._node_network.network_address)
        return index if 0 <= index < self._cidrs.size else None

    def _occupy_existing(self, node: Obj) -> bool:
        """Mark the subnet a Node already has as used; False if it has none of ours."""
        name = node["metadata"]["name"]
        for cidr in node_cidrs(node):
            index = self._cidrs.index_of(cidr)
            if index is None:
                log.warning(
                    "node %s has pod CIDR %s outside the cluster CIDR %s", name, cidr, self._cidrs.network
                )
                continue
            other = self._cidrs.occupy(index, name)
            if other is not None:
                log.error("nodes %s and %s both have pod CIDR %s", name, other, cidr)
            return True
        return False

    def _choose(self, node: Obj) -> int | None:
        preferred = self.preferred_index(node)
        if preferred is not None and self._cidrs.is_free(preferred):
            return preferred
        name = node["metadata"]["name"]
        entitled = set()
        for other in self._nodes.cache.list():
            if other["metadata"]["name"] != name and not node_cidrs(other):
                index = self.preferred_index(other)
                if index is not None:
                    entitled.add(index)
        fallback = None
        for index in self._cidrs.indexes():
            if not self._cidrs.is_free(index):
                continue
            if index not in entitled:
                return index
            if fallback is None:
                fallback = index
        return fallback

    async def reconcile(self, key: str) -> None:
        """Give the Node named ``key`` a pod CIDR (or free the one of a deleted Node)."""
        node = self._nodes.cache.get_by_key(key)
        if node is None:
            self._cidrs.release(key)
            return
        if node_cidrs(node):
            self._occupy_existing(node)
            return
        held = self._cidrs.held_by(key)
        index = held if held is not None else self._choose(node)
        if index is None:
            await self._recorder.event(
                node,
                type="Normal",
                reason="CIDRNotAvailable",
                message=f"Node {key} status is now: CIDRNotAvailable",
            )
            raise TemporaryError(f"no pod CIDR left in {self._cidrs.network} for node {key}")
        self._cidrs.occupy(index, key)
        cidr = self._cidrs.subnet(index)
        try:
            await self._client.patch(
                NODES,
                key,
                {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}},
                patch_type=PatchType.MERGE,
            )
        except errors.NotFoundError:
            self._cidrs.release(key)
            return
        except errors.RequestError as exc:
            self._cidrs.release(key)
            await self._recorder.event(
                node,
                type="Normal",
                reason="CIDRAssignmentFailed",
                message=f"Node {key} status is now: CIDRAssignmentFailed",
            )
            raise TemporaryError(f"assigning pod CIDR {cidr} to node {key}: {exc}") from exc
        log.info("assigned pod CIDR %s to node %s", cidr, key)


def new_controller(ctx: ControllerContext) -> NodeIPAMController:
    return NodeIPAMController(ctx)
