"""The DefaultIngressClass admission plugin (upstream's
plugin/pkg/admission/network/defaultingressclass): a new Ingress that names no class gets the
cluster's default IngressClass.

On CREATE of an Ingress (never a subresource, never an update, as upstream's handler): when
``spec.ingressClassName`` is unset and the legacy ``kubernetes.io/ingress.class`` annotation is
absent, ``spec.ingressClassName`` becomes the IngressClass annotated
``ingressclass.kubernetes.io/is-default-class: "true"`` — the newest such class when there are
several (ties: the smaller name), as upstream's getDefaultClass; with none the Ingress is left
alone. Ingress controllers that serve only their own class (ingress-nginx and most others) rely
on this to pick up class-less Ingresses, and ``kubectl get ingress`` shows the class.

The classes are read from the store directly (the API server has no informers): one small prefix
list per Ingress created.
"""

from __future__ import annotations

from typing import Any

import orjson

from control.apiserver.admission import CREATE, AdmissionRequest
from control.apiserver.resource_store import ResourceStore

DEFAULT_INGRESS_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def is_default_class(ingress_class: dict[str, Any]) -> bool:
    annotations = (ingress_class.get("metadata") or {}).get("annotations") or {}
    return annotations.get(DEFAULT_INGRESS_CLASS_ANNOTATION) == "true"


def default_ingress_class(classes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Upstream's getDefaultClass: the newest class annotated as the default (ties: the smaller name)."""
    defaults = [ingress_class for ingress_class in classes if is_default_class(ingress_class)]
    # RFC 3339 UTC timestamps of one format sort as strings.
    defaults.sort(key=lambda ic: ic["metadata"].get("name", ""))
    defaults.sort(key=lambda ic: ic["metadata"].get("creationTimestamp", ""), reverse=True)
    return defaults[0] if defaults else None


class DefaultIngressClass:
    """Sets ``spec.ingressClassName`` of a new Ingress that names no class to the default class."""

    resources = frozenset({("networking.k8s.io", "ingresses")})

    def __init__(self, *, objects: ResourceStore) -> None:
        self.objects = objects
        classes = objects.registry.lookup(group="networking.k8s.io", version="v1", plural="ingressclasses")
        if classes is None:
            raise ValueError("the registry has no networking.k8s.io/v1 ingressclasses")
        self._classes = classes

    async def mutate(self, request: AdmissionRequest) -> None:
        rt = request.rt
        ingress = request.obj
        if (rt.group, rt.plural) != ("networking.k8s.io", "ingresses") or request.subresource:
            return
        if request.operation != CREATE or ingress is None:
            return
        spec = ingress.setdefault("spec", {})
        annotations = (ingress.get("metadata") or {}).get("annotations") or {}
        if spec.get("ingressClassName") is not None or LEGACY_INGRESS_CLASS_ANNOTATION in annotations:
            return
        listing = await self.objects.store.list(self._classes.storage_prefix)
        chosen = default_ingress_class([orjson.loads(kv.value) for kv in listing.items])
        if chosen is not None:
            spec["ingressClassName"] = chosen["metadata"]["name"]
