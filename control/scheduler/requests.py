"""What a pod asks for and what a node offers, in the scheduler's integer units.

Upstream keeps these as ``framework.Resource``: millicores of CPU, bytes of memory and of
ephemeral storage, and a map of *scalar* resources (extended resources such as
``example.com/gpu`` and ``hugepages-*``) counted in whole units. A pod's request follows
``resourcehelper.PodRequests``:

- the sum over its containers;
- init containers run one after another, so each needs only its own request *plus the
  sidecars started before it* (init containers with ``restartPolicy: Always``, which keep
  running and so are also added to the pod's sum); the pod needs the larger of the two;
- plus ``spec.overhead`` (RuntimeClass overhead).

Scoring uses a second figure, the *non-zero* request: a container that names no CPU or memory
request counts as 100m and 200Mi (``schedutil.DefaultMilliCPURequest``/``DefaultMemoryRequest``),
so that best-effort pods still spread by LeastAllocated instead of piling onto one node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from control.scheduler.quantity import QuantityError, milli_value, value

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"

DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


class InvalidResourcesError(ValueError):
    """A resource list with a value that is not a quantity (the field path is in the message)."""


def is_scalar_resource(name: str) -> bool:
    """Extended (``domain/name``) and hugepages resources: counted as whole units and fit-checked."""
    return name.startswith("hugepages-") or "/" in name


@dataclass(slots=True)
class Resources:
    """CPU in millicores, memory and ephemeral storage in bytes, scalar resources in units."""

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    scalars: dict[str, int] = field(default_factory=dict)

    def add(self, other: Resources, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        for name, amount in other.scalars.items():
            self.scalars[name] = self.scalars.get(name, 0) + sign * amount

    def set_max(self, other: Resources) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        for name, amount in other.scalars.items():
            self.scalars[name] = max(self.scalars.get(name, 0), amount)

    def copy(self) -> Resources:
        return Resources(self.milli_cpu, self.memory, self.ephemeral_storage, dict(self.scalars))

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral_storage or any(self.scalars.values()))


def resource_list(raw: Any, *, path: str) -> Resources:
    """A ``ResourceList`` (``{"cpu": "100m", ...}``); names the scheduler does not count are ignored."""
    resources = Resources()
    if not raw:
        return resources
    if not isinstance(raw, Mapping):
        raise InvalidResourcesError(f"{path}: must be a map of resource names to quantities")
    try:
        for name, quantity in raw.items():
            if name == CPU:
                resources.milli_cpu = milli_value(quantity)
            elif name == MEMORY:
                resources.memory = value(quantity)
            elif name == EPHEMERAL_STORAGE:
                resources.ephemeral_storage = value(quantity)
            elif is_scalar_resource(name):
                resources.scalars[name] = value(quantity)
    except QuantityError as exc:
        raise InvalidResourcesError(f"{path}[{name}]: {exc}") from exc
    return resources


def _container_requests(container: Mapping[str, Any], *, path: str, non_missing: bool) -> Resources:
    requests = (container.get("resources") or {}).get("requests") or {}
    resources = resource_list(requests, path=f"{path}.resources.requests")
    if non_missing:
        if CPU not in requests:
            resources.milli_cpu = DEFAULT_MILLI_CPU_REQUEST
        if MEMORY not in requests:
            resources.memory = DEFAULT_MEMORY_REQUEST
    return resources


def _requests(spec: Mapping[str, Any], *, non_missing: bool) -> Resources:
    total = Resources()
    for index, container in enumerate(spec.get("containers") or ()):
        total.add(_container_requests(container, path=f"spec.containers[{index}]", non_missing=non_missing))
    sidecars = Resources()
    init_peak = Resources()
    for index, container in enumerate(spec.get("initContainers") or ()):
        own = _container_requests(container, path=f"spec.initContainers[{index}]", non_missing=non_missing)
        if container.get("restartPolicy") == "Always":
            total.add(own)
            sidecars.add(own)
            needed = sidecars.copy()
        else:
            needed = own
            needed.add(sidecars)
        init_peak.set_max(needed)
    total.set_max(init_peak)
    total.add(resource_list(spec.get("overhead"), path="spec.overhead"))
    return total


def pod_requests(spec: Mapping[str, Any]) -> Resources:
    """The pod's effective request (containers, init containers, sidecars, overhead)."""
    return _requests(spec, non_missing=False)


def pod_non_zero_requests(spec: Mapping[str, Any]) -> tuple[int, int]:
    """``(millicores, bytes)`` with upstream's defaults standing in for missing CPU/memory requests."""
    resources = _requests(spec, non_missing=True)
    return resources.milli_cpu, resources.memory


def node_allocatable(status: Mapping[str, Any]) -> tuple[Resources, int]:
    """``status.allocatable`` as resources plus the number of pods the node accepts."""
    raw = status.get("allocatable") or {}
    resources = resource_list(raw, path="status.allocatable")
    try:
        pods = value(raw[PODS]) if PODS in raw else 0
    except QuantityError as exc:
        raise InvalidResourcesError(f"status.allocatable[pods]: {exc}") from exc
    return resources, pods
