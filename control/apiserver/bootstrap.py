"""What kube-apiserver ensures exists at start-up: the system namespaces, the
``default/kubernetes`` Service with its Endpoints and EndpointSlice pointing at us, the
``system-node-critical`` and ``system-cluster-critical`` PriorityClasses, and the
``kube-system/extension-apiserver-authentication`` ConfigMap.

Idempotent: on a resumed data dir it only corrects what changed (a new port or address, a
new CA).

The ConfigMap is what upstream's ClientCARegistrationHook writes: the CA that signs client
certificates (``client-ca-file``) and, when a front proxy is configured, the CA that signs
its certificate and which names and headers to trust from it, the lists as JSON arrays in
strings. Extension API servers (metrics-server, any aggregated server built on
k8s.io/apiserver) read it to authenticate the requests the aggregator proxies to them.
Every key is ours, so a differing ConfigMap is overwritten whole.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from control.apiserver import errors
from control.apiserver.options import APIServerOptions
from control.apiserver.resource_store import ResourceStore
from control.resources.registry import ResourceType

EXTENSION_AUTHENTICATION_NAMESPACE = "kube-system"
EXTENSION_AUTHENTICATION_CONFIGMAP = "extension-apiserver-authentication"


class BootstrapError(Exception):
    """A start-up object cannot be written as configured; the message names the file or flag."""


SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# What upstream's scheduling/bootstrap-system-priority-classes post-start hook creates
# (pkg/apis/scheduling's SystemPriorityClasses), which add-on manifests name.
SYSTEM_PRIORITY_CLASSES: tuple[dict[str, Any], ...] = (
    {
        "metadata": {"name": "system-node-critical"},
        "value": 2_000_001_000,
        "description": "Used for system critical pods that must not be moved from their current node.",
    },
    {
        "metadata": {"name": "system-cluster-critical"},
        "value": 2_000_000_000,
        "description": "Used for system critical pods that must run in the cluster, but can be moved to "
        "another node if necessary.",
    },
)


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
    priority_classes = registry.lookup(group="scheduling.k8s.io", version="v1", plural="priorityclasses")
    if priority_classes is not None:
        for desired in SYSTEM_PRIORITY_CLASSES:
            await _ensure(objects, priority_classes, namespace="", desired=desired)
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


def extension_apiserver_authentication(options: APIServerOptions) -> dict[str, str]:
    """The ConfigMap's data for ``options`` (upstream's key names and encodings)."""
    data = {}
    if options.client_ca_file is not None:
        data["client-ca-file"] = _read_ca(options.client_ca_file, flag="--client-ca-file")
    if options.requestheader_client_ca_file is None:
        return data
    data["requestheader-username-headers"] = _json_list(options.requestheader_username_headers)
    data["requestheader-group-headers"] = _json_list(options.requestheader_group_headers)
    data["requestheader-extra-headers-prefix"] = _json_list(options.requestheader_extra_headers_prefix)
    data["requestheader-client-ca-file"] = _read_ca(
        options.requestheader_client_ca_file, flag="--requestheader-client-ca-file"
    )
    data["requestheader-allowed-names"] = _json_list(options.requestheader_allowed_names)
    return data


async def ensure_extension_apiserver_authentication(
    objects: ResourceStore, *, options: APIServerOptions
) -> None:
    """Write ``kube-system/extension-apiserver-authentication`` for ``options``; a ConfigMap whose
    data differs is replaced by ours. BootstrapError when a CA file cannot be read."""
    data = extension_apiserver_authentication(options)
    configmaps = _kind(objects.registry, "", "v1", "configmaps")
    desired = {"metadata": {"name": EXTENSION_AUTHENTICATION_CONFIGMAP}, "data": data}
    await _ensure(
        objects,
        configmaps,
        namespace=EXTENSION_AUTHENTICATION_NAMESPACE,
        desired=desired,
        owned_fields=("data",),
    )


def _read_ca(path: Path, *, flag: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BootstrapError(f"cannot read {flag} {path}: {exc}") from exc


def _json_list(values: tuple[str, ...]) -> str:
    """A list as upstream's jsonSerializeStringSlice writes it: ``["X-Remote-User"]``."""
    return orjson.dumps(list(values)).decode()


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
        current = await objects.get(rt, namespace=namespace, name=name)
    except errors.StatusError as exc:
        if exc.code != 404:
            raise
        await objects.create(rt, body, namespace=namespace)
        return
    if not owned_fields or _owned_fields_match(current, desired, owned_fields):
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


def _owned_fields_match(
    current: dict[str, Any], desired: dict[str, Any], owned_fields: tuple[str, ...]
) -> bool:
    """Whether ``current`` already holds the desired value at every owned path (no write needed)."""
    for path in owned_fields:
        source: Any = desired
        target: Any = current
        for part in path.split("."):
            source = source[part]
            target = target.get(part) if isinstance(target, dict) else None
        if target != source:
            return False
    return True
