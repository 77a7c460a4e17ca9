"""NodeRestriction: a kubelet may write only what belongs to its own node (upstream's
plugin/pkg/admission/noderestriction).

The Node authorizer and the ``system:node`` rules let any node update Nodes, pod statuses and
Leases, create and delete pods and request ServiceAccount tokens, because an authorizer sees only
the request's path and cannot tell which node an object belongs to. This admission plugin sees the
objects and narrows each of those writes to the requesting node (``system:node:<name>`` in
``system:nodes``; every other user passes untouched, after one string comparison):

- its own Node object only, and without adding, changing or removing labels under
  ``node-restriction.kubernetes.io/`` or kubernetes.io/k8s.io labels that are not the kubelet's own
  (hostname, os, arch, zone...), without changing its taints or setting a config source;
- pods bound to it only: status updates (not through them its labels), deletion, eviction; and it
  may create only mirror pods (annotated, bound to itself, owned by its Node, referencing no
  ServiceAccount, Secret, ConfigMap or PersistentVolumeClaim);
- its own Lease in ``kube-node-lease`` only;
- ServiceAccount tokens only when bound to a pod that runs on it (the TokenRequest handler runs
  this plugin's ``validate`` with the TokenRequest as the object).

Refusals are 403s worded as upstream's ``admission.NewForbidden`` (``nodes "node-2" is forbidden:
node "node-1" is not allowed to modify node "node-2"``). Every check runs in ``validate``, on the
object as it will be stored. Evictions, token requests and mirror pods need another object (the
pod, the Node); the plugin reads it from the store through ``objects``, as upstream reads its pod
and node listers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from control.apiserver import errors
from control.apiserver.admission import CREATE, DELETE, UPDATE, AdmissionRequest, forbidden
from control.apiserver.node_authorizer import (
    CONFIG_MAP,
    NODE_LEASE_NAMESPACE,
    PERSISTENT_VOLUME_CLAIM,
    SECRET,
    SERVICE_ACCOUNT,
    node_identity,
    pod_references,
)

if TYPE_CHECKING:
    from control.apiserver.resource_store import ResourceStore

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
NODE_RESTRICTION_LABEL_NAMESPACE = "node-restriction.kubernetes.io"

# k8s.io/kubelet/pkg/apis: the kubernetes.io labels a kubelet may set on its own Node.
KUBELET_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
    }
)
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


class NodeRestriction:
    """The admission plugin. ``objects`` is where pods and Nodes are looked up (evictions,
    token requests, mirror pods); without it those requests from nodes fail with a 500."""

    def __init__(self, *, objects: ResourceStore | None = None) -> None:
        self._objects = objects

    async def validate(self, request: AdmissionRequest) -> None:
        node = node_identity(request.user)
        if node is None:
            return
        if not node:
            raise forbidden(request, f'could not determine node from user "{request.user.name}"')
        group, plural = request.rt.group, request.rt.plural
        if group == "":
            if plural == "pods":
                await self._pod(node, request)
            elif plural == "nodes":
                _node(node, request)
            elif plural == "serviceaccounts":
                await self._service_account(node, request)
        elif group == "coordination.k8s.io" and plural == "leases":
            _lease(node, request)

    # ------------------------------------------------------------- pods
    async def _pod(self, node: str, request: AdmissionRequest) -> None:
        if request.subresource == "":
            if request.operation == CREATE:
                await self._mirror_pod(node, request)
            elif request.operation == DELETE:
                if _node_name(request.old) != node:
                    raise forbidden(
                        request, f'node "{node}" can only delete pods with spec.nodeName set to itself'
                    )
            else:
                raise forbidden(
                    request,
                    f'unexpected operation "{request.operation}", node "{node}" can only create and delete '
                    "mirror pods",
                )
        elif request.subresource == "status":
            _pod_status(node, request)
        elif request.subresource == "eviction":
            await self._eviction(node, request)
        else:
            raise forbidden(
                request,
                f"unexpected pod subresource \"{request.subresource}\", only 'status' and 'eviction' are allowed",
            )

    async def _mirror_pod(self, node: str, request: AdmissionRequest) -> None:
        pod = request.obj or {}
        metadata = pod.get("metadata") or {}
        if MIRROR_POD_ANNOTATION not in (metadata.get("annotations") or {}):
            raise forbidden(
                request,
                f'pod does not have "{MIRROR_POD_ANNOTATION}" annotation, node "{node}" can only create '
                "mirror pods",
            )
        if _node_name(pod) != node:
            raise forbidden(request, f'node "{node}" can only create pods with spec.nodeName set to itself')
        owners = metadata.get("ownerReferences") or []
        if len(owners) > 1:
            raise forbidden(
                request, f'node "{node}" can only create pods with a single owner reference set to itself'
            )
        if not owners:
            raise forbidden(
                request, f'node "{node}" can only create pods with an owner reference set to itself'
            )
        owner = owners[0]
        if owner.get("apiVersion") != "v1" or owner.get("kind") != "Node" or owner.get("name") != node:
            raise forbidden(
                request, f'node "{node}" can only create pods with an owner reference set to itself'
            )
        if not owner.get("controller"):
            raise forbidden(
                request, f'node "{node}" can only create pods with a controller owner reference set to itself'
            )
        if owner.get("blockOwnerDeletion"):
            raise forbidden(request, f'node "{node}" must not set blockOwnerDeletion on an owner reference')
        stored = await self._get(request, plural="nodes", namespace="", name=node)
        stored_uid = (stored.get("metadata") or {}).get("uid", "")
        if owner.get("uid") != stored_uid:
            raise forbidden(
                request, f"node {node} UID mismatch: expected {owner.get('uid', '')} got {stored_uid}"
            )
        kinds = {kind for kind, _ in pod_references(pod)}
        for kind, what in (
            (SERVICE_ACCOUNT, "can not create pods that reference a service account"),
            (SECRET, "can not create pods that reference secrets"),
            (CONFIG_MAP, "can not create pods that reference configmaps"),
        ):
            if kind in kinds:
                raise forbidden(request, f'node "{node}" {what}')
        for volume in (pod.get("spec") or {}).get("volumes") or ():
            for source in ((volume or {}).get("projected") or {}).get("sources") or ():
                if (source or {}).get("clusterTrustBundle"):
                    raise forbidden(
                        request, f'node "{node}" can not create pods that reference clustertrustbundles'
                    )
        if PERSISTENT_VOLUME_CLAIM in kinds:
            raise forbidden(
                request, f'node "{node}" can not create pods that reference persistentvolumeclaims'
            )

    async def _eviction(self, node: str, request: AdmissionRequest) -> None:
        if request.operation != CREATE:
            raise forbidden(request, f"unexpected operation {request.operation}")
        name = request.name or ((request.obj or {}).get("metadata") or {}).get("name", "")
        if not name:
            raise forbidden(request, "could not determine pod from request data")
        pod = await self._get(request, plural="pods", namespace=request.namespace, name=name)
        if _node_name(pod) != node:
            raise forbidden(request, f"node {node} can only evict pods with spec.nodeName set to itself")

    # ------------------------------------------------------------- tokens
    async def _service_account(self, node: str, request: AdmissionRequest) -> None:
        if request.operation != CREATE or request.subresource != "token":
            return
        spec = (request.obj or {}).get("spec")
        ref = spec.get("boundObjectRef") if isinstance(spec, Mapping) else None
        if not isinstance(ref, Mapping):
            ref = {}
        if ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
            raise forbidden(request, "node requested token not bound to a pod")
        if not ref.get("uid"):
            raise forbidden(request, "node requested token with a pod binding without a uid")
        pod = await self._get(request, plural="pods", namespace=request.namespace, name=ref["name"])
        if ref["uid"] != (pod.get("metadata") or {}).get("uid"):
            raise forbidden(
                request,
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                "The object might have been deleted and then recreated",
            )
        if _node_name(pod) != node:
            raise forbidden(request, "node requested token bound to a pod scheduled on a different node")

    async def _get(
        self, request: AdmissionRequest, *, plural: str, namespace: str, name: str
    ) -> dict[str, Any]:
        """The stored core/v1 object (a NotFound if there is none, as upstream)."""
        if self._objects is None:
            raise errors.internal(
                f"NodeRestriction cannot look up {plural}: the API server built it without the object store"
            )
        rt = self._objects.registry.lookup(group="", version="v1", plural=plural)
        if rt is None:
            raise errors.internal(f"NodeRestriction cannot look up {plural}: the kind is not served")
        return await self._objects.get(rt, namespace=namespace, name=name)


def _pod_status(node: str, request: AdmissionRequest) -> None:
    if request.operation != UPDATE:
        raise forbidden(request, f'unexpected operation "{request.operation}"')
    old, new = request.old or {}, request.obj or {}
    if _node_name(old) != node:
        raise forbidden(
            request, f'node "{node}" can only update pod status for pods with spec.nodeName set to itself'
        )
    if _labels(old) != _labels(new):
        raise forbidden(request, f'node "{node}" cannot update labels through pod status')
    if _claim_statuses(old) != _claim_statuses(new):
        raise forbidden(request, f'node "{node}" cannot update resource claim statues')


# ------------------------------------------------------------- nodes and leases
def _node(node: str, request: AdmissionRequest) -> None:
    if request.name != node:
        raise forbidden(request, f'node "{node}" is not allowed to modify node "{request.name}"')
    new = request.obj or {}
    if request.operation == CREATE:
        if (new.get("spec") or {}).get("configSource") is not None:
            raise forbidden(
                request, f'node "{node}" is not allowed to create pods with a non-nil configSource'
            )
        refused = forbidden_labels(_modified_labels(_labels(new), {}))
        if refused:
            raise forbidden(
                request, f'node "{node}" is not allowed to set the following labels: {", ".join(refused)}'
            )
    elif request.operation == UPDATE:
        old = request.old or {}
        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        config_source = new_spec.get("configSource")
        if config_source is not None and config_source != old_spec.get("configSource"):
            raise forbidden(
                request, f'node "{node}" is not allowed to update configSource to a new non-nil configSource'
            )
        if (new_spec.get("taints") or []) != (old_spec.get("taints") or []):
            raise forbidden(request, f'node "{node}" is not allowed to modify taints')
        refused = forbidden_labels(_modified_labels(_labels(new), _labels(old)))
        if refused:
            raise forbidden(request, f"is not allowed to modify labels: {', '.join(refused)}")


def forbidden_labels(keys: Iterable[str]) -> list[str]:
    """Of the label keys a node adds, changes or removes, those it may not touch (sorted):
    ``node-restriction.kubernetes.io/`` ones, and kubernetes.io / k8s.io ones that are not the
    kubelet's own."""
    refused: list[str] = []
    for key in keys:
        namespace = _label_namespace(key)
        restricted = namespace == NODE_RESTRICTION_LABEL_NAMESPACE or namespace.endswith(
            "." + NODE_RESTRICTION_LABEL_NAMESPACE
        )
        if restricted or (_is_kubernetes_label(namespace) and not _is_kubelet_label(key, namespace)):
            refused.append(key)
    return sorted(refused)


def _modified_labels(new: Mapping[str, str], old: Mapping[str, str]) -> set[str]:
    return {key for key in new.keys() | old.keys() if new.get(key) != old.get(key)}


def _label_namespace(key: str) -> str:
    namespace, slash, _ = key.partition("/")
    return namespace if slash else ""


def _is_kubernetes_label(namespace: str) -> bool:
    return namespace in ("kubernetes.io", "k8s.io") or namespace.endswith((".kubernetes.io", ".k8s.io"))


def _is_kubelet_label(key: str, namespace: str) -> bool:
    if key in KUBELET_LABELS:
        return True
    return any(
        namespace == allowed or namespace.endswith("." + allowed) for allowed in KUBELET_LABEL_NAMESPACES
    )


def _lease(node: str, request: AdmissionRequest) -> None:
    if request.namespace != NODE_LEASE_NAMESPACE:
        raise forbidden(request, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
    name = (
        ((request.obj or {}).get("metadata") or {}).get("name")
        if request.operation == CREATE
        else request.name
    )
    if name != node:
        raise forbidden(request, "can only access node lease with the same name as the requesting node")


# ------------------------------------------------------------- helpers
def _node_name(obj: Mapping[str, Any] | None) -> str:
    return ((obj or {}).get("spec") or {}).get("nodeName") or ""


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _claim_statuses(pod: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    statuses = (pod.get("status") or {}).get("resourceClaimStatuses") or ()
    return [((status or {}).get("name"), (status or {}).get("resourceClaimName")) for status in statuses]
