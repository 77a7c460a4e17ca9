"""Discovery documents (/api, /apis, /apis/<g>, /api/v1, /apis/<g>/<v>) from the registry.

Legacy (unaggregated) shapes with ``Content-Type: application/json``: clients that ask
for aggregated discovery read the Content-Type and fall back to walking the group
versions (client-go's discovery client does exactly that). Documents are rendered once
and cached as bytes; the registry's change hook drops the cache, so kinds added at run
time (CRDs) show up on the next request. Groups served by other API servers (aggregated
APIServices, :mod:`control.apiserver.aggregator`) are listed in ``/apis`` and ``/apis/<group>``
after ours; their ``/apis/<group>/<version>`` is the extension's own, proxied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from control.resources.registry import Registry, ResourceType

# Subresources: verbs, and the group/version/kind they speak when it is not the parent's.
_SUBRESOURCE_SHAPES: dict[str, tuple[tuple[str, ...], tuple[str, str, str] | None]] = {
    "status": (("get", "patch", "update"), None),
    "scale": (("get", "patch", "update"), ("autoscaling", "v1", "Scale")),
    "log": (("get",), ("", "v1", "Pod")),
    "exec": (("create", "get"), ("", "v1", "PodExecOptions")),
    "attach": (("create", "get"), ("", "v1", "PodAttachOptions")),
    "portforward": (("create", "get"), ("", "v1", "PodPortForwardOptions")),
    "binding": (("create",), ("", "v1", "Binding")),
    "eviction": (("create",), ("policy", "v1", "Eviction")),
    "token": (("create",), ("authentication.k8s.io", "v1", "TokenRequest")),
    "finalize": (("update",), None),
    "proxy": (("create", "delete", "get", "patch", "update"), None),
    "ephemeralcontainers": (("get", "patch", "update"), None),
    "approval": (("get", "patch", "update"), None),
}
_PROXY_KINDS = {"pods": "PodProxyOptions", "nodes": "NodeProxyOptions", "services": "ServiceProxyOptions"}


class Discovery:
    def __init__(
        self,
        *,
        registry: Registry,
        server_address: str,
        remote_groups: Callable[[], list[dict[str, Any]]] = list,
    ) -> None:
        self._registry = registry
        self._server_address = server_address
        self._remote_groups = remote_groups
        self._cache: dict[str, bytes | None] = {}
        registry.on_change(self.invalidate)

    def invalidate(self) -> None:
        """What is served changed: render every document again when next asked."""
        self._cache.clear()

    def document(self, path: str) -> bytes | None:
        """The discovery document at ``path`` (no trailing slash), or None when not served."""
        if path in self._cache:
            return self._cache[path]
        body = self._render(path)
        encoded = orjson.dumps(body) if body is not None else None
        self._cache[path] = encoded
        return encoded

    def _render(self, path: str) -> dict[str, Any] | None:
        parts = path.strip("/").split("/")
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self._server_address}
                ],
            }
        if parts == ["apis"]:
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()}
        if len(parts) == 2 and parts[0] == "api":
            return self._resource_list("", parts[1])
        if len(parts) == 2 and parts[0] == "apis":
            for group in self._groups():
                if group["name"] == parts[1]:
                    return {"kind": "APIGroup", "apiVersion": "v1", **group}
            return None
        if len(parts) == 3 and parts[0] == "apis":
            return self._resource_list(parts[1], parts[2])
        return None

    def _groups(self) -> list[dict[str, Any]]:
        versions: dict[str, list[str]] = {}
        for group, version in self._registry.group_versions():
            if group:
                versions.setdefault(group, []).append(version)
        groups = []
        for group, served in versions.items():
            ordered = sorted(served, key=_version_priority)
            entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
            groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
        local = {group["name"]: group for group in groups}
        for remote in self._remote_groups():
            mine = local.get(remote["name"])
            if mine is None:
                groups.append(remote)
                continue
            # Both: ours first, then the extension's other versions (a rare, odd set-up).
            known = {entry["version"] for entry in mine["versions"]}
            mine["versions"] += [entry for entry in remote["versions"] if entry["version"] not in known]
        return groups

    def _resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        types = [rt for rt in self._registry if rt.group == group and rt.version == version]
        if not types:
            return None
        resources: list[dict[str, Any]] = []
        for rt in sorted(types, key=lambda t: t.plural):
            resources.append(_api_resource(rt))
            for sub in rt.subresources:
                resources.append(_api_subresource(rt, sub))
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }


def _api_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def _api_subresource(rt: ResourceType, sub: str) -> dict[str, Any]:
    verbs, shape = _SUBRESOURCE_SHAPES.get(sub, (("get",), None))
    entry: dict[str, Any] = {
        "name": f"{rt.plural}/{sub}",
        "singularName": "",
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(verbs),
    }
    if sub == "proxy":
        entry["kind"] = _PROXY_KINDS.get(rt.plural, rt.kind)
    elif shape is not None:
        group, version, kind = shape
        entry["kind"] = kind
        if (group, version) != (rt.group, rt.version):
            entry["group"] = group
            entry["version"] = version
    return entry


def _version_priority(version: str) -> tuple[int, int, int]:
    """v1 > v1beta1 > v1alpha1, higher majors first (upstream's version ordering)."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    major = int(match.group(1))
    stability = {"": 0, "beta": 1, "alpha": 2}[match.group(2) or ""]
    minor = int(match.group(3) or 0)
    return (stability, -major, -minor)
