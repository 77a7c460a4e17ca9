"""What kube-apiserver ensures exists at start-up: the system namespaces and the
``default/kubernetes`` Service with its Endpoints and EndpointSlice pointing at us.

Idempotent: on a resumed data dir it only corrects what changed (a new port or address).
"""

from __future__ import annotations

import copy
from typing import Any

from control.apiserver import errors
from control.apiserver.resource_store import ResourceStore
from control.resources.registry import ResourceType

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def ensure_system_objects(objects: ResourceStore, *, address: str, port: int) -> None:
    registry = objects.registry
    namespaces = _kind(registry, "", "v1", "namespaces")
    for name in SYSTEM_NAMESPACES:
        await _ensure(objects, namespaces, namespace="", desired={"metadata": {"name": name}})
    service_ip = objects.cluster_ips.kubernetes_service_ip
    await _ensure(
        objects,
        _kind(registry, "", "v1", "services"),
        namespace="default",
        desired={
            "metadata": {
                "name": "kubernetes",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": service_ip,
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                "sessionAffinity": "None",
            },
        },
        owned_fields=("spec.ports",),
    )
    await _ensure(
        objects,
        _kind(registry, "", "v1", "endpoints"),
        namespace="default",
        desired={
            "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [
                {
                    "addresses": [{"ip": address}],
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
                }
            ],
        },
        owned_fields=("subsets",),
    )
    slices = registry.lookup(group="discovery.k8s.io", version="v1", plural="endpointslices")
    if slices is not None:
        await _ensure(
            objects,
            slices,
            namespace="default",
            desired={
                "metadata": {
                    "name": "kubernetes",
                    "labels": {"kubernetes.io/service-name": "kubernetes"},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            },
            owned_fields=("endpoints", "ports"),
        )


def _kind(registry: Any, group: str, version: str, plural: str) -> ResourceType:
    rt = registry.lookup(group=group, version=version, plural=plural)
    if rt is None:
        raise RuntimeError(f"the registry lacks {plural}; cannot bootstrap")
    return rt


async def _ensure(
    objects: ResourceStore,
    rt: ResourceType,
    *,
    namespace: str,
    desired: dict[str, Any],
    owned_fields: tuple[str, ...] = (),
) -> None:
    name = desired["metadata"]["name"]
    body = {"apiVersion": rt.api_version, "kind": rt.kind, **copy.deepcopy(desired)}
    try:
        await objects.get_kv(rt, namespace=namespace, name=name)
    except errors.StatusError as exc:
        if exc.code != 404:
            raise
        await objects.create(rt, body, namespace=namespace)
        return
    if not owned_fields:
        return

    def correct(current: dict[str, Any]) -> dict[str, Any]:
        for path in owned_fields:
            source: Any = desired
            target: Any = current
            *parents, leaf = path.split(".")
            for part in parents:
                source = source[part]
                target = target.setdefault(part, {})
            target[leaf] = copy.deepcopy(source[leaf])
        return current

    await objects.update(rt, namespace=namespace, name=name, transform=correct)
