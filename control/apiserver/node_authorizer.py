"""The Node authorizer: what a kubelet (``system:node:<name>`` in ``system:nodes``) may read and
write, as upstream's plugin/pkg/auth/authorizer/node.

A kubelet needs the Secrets, ConfigMaps, PersistentVolumeClaims and ServiceAccount tokens of the
pods it runs — and nothing of anybody else's. RBAC cannot say that (a role grants a resource, not
"the ones my pods use"), so this authorizer keeps a graph, in memory, of which node reaches which
object: it follows the pods in the store (list, then watch) and, for every pod bound to a node,
records the objects its spec names (volumes and projected sources, ``env[].valueFrom``,
``envFrom``, ``imagePullSecrets``, ``serviceAccountName``). A request by a node for one of those
kinds is allowed only along that graph:

- Secrets and ConfigMaps: ``get``, and ``list``/``watch`` of a single object (the name a
  ``metadata.name`` field selector pins, which :meth:`Attributes.from_request` puts in the
  attributes as upstream's RequestInfo does), of an object one of the node's pods references;
- PersistentVolumeClaims: ``get`` (and status updates) of a claim one of its pods mounts;
- PersistentVolumes: ``get`` of the volume bound to such a claim (upstream's pvc -> pv edge: the
  graph also follows the volumes in the store and records each one's ``claimRef``);
- ServiceAccounts: only ``create`` of the ``token`` subresource, for an account one of its pods
  runs as (NodeRestriction then checks the token is bound to a pod on the node);
- Leases: only the node's own, in ``kube-node-lease``.

Everything else is decided by :data:`NODE_RULES` (upstream's bootstrap ``NodeRules()``, limited to
what kubelab serves); the ``system:node`` ClusterRole carries the same rules. Writes the rules let
through broadly (a node updating Nodes and pod statuses, creating and deleting pods) are narrowed
to the node's own objects by the NodeRestriction admission plugin, as upstream.

The graph is a reference count per (kind, namespace, name) and node, so ``authorize`` is two dict
look-ups; it never touches the store. Denials are NoOpinion with upstream's reasons (the next
authorizer, RBAC, may still allow), e.g. ``no relationship found between node 'node-1' and this
object``. Upstream's AuthorizeNodeWithSelectors (pods and nodes listed only through a field
selector naming the node) is not applied: attributes carry no field selector beyond the
``metadata.name`` one, so pods and nodes are decided by the rules, as before that feature.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from control.apiserver.authn import UserInfo
from control.apiserver.authorization import Attributes, Decision, SubjectRules
from control.apiserver.rbac_rules import rules_allow
from control.apiserver.store_follower import follow_prefix
from control.resources.registry import Registry
from control.store import Event, EventType, KeyValue, Store

NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
NODE_LEASE_NAMESPACE = "kube-node-lease"

# Upstream's bootstrappolicy NodeRules(), for the resources kubelab serves (no VolumeAttachments
# or CSI objects).
NODE_RULES: tuple[dict[str, Any], ...] = (
    # Needed to check API access. These creates are non-mutating.
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"]},
    {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["subjectaccessreviews", "localsubjectaccessreviews"],
    },
    # Needed to build the service lister, to populate env vars for services.
    {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["services"]},
    # Nodes register their Node object and report status (NodeRestriction: only their own).
    {"verbs": ["create", "get", "list", "watch"], "apiGroups": [""], "resources": ["nodes"]},
    {"verbs": ["update", "patch"], "apiGroups": [""], "resources": ["nodes/status"]},
    {"verbs": ["update", "patch"], "apiGroups": [""], "resources": ["nodes"]},
    {"verbs": ["create", "update", "patch"], "apiGroups": [""], "resources": ["events"]},
    {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]},
    # Mirror pods, pod status, evictions (NodeRestriction: only pods bound to the node).
    {"verbs": ["create", "delete"], "apiGroups": [""], "resources": ["pods"]},
    {"verbs": ["update", "patch"], "apiGroups": [""], "resources": ["pods/status"]},
    {"verbs": ["create"], "apiGroups": [""], "resources": ["pods/eviction"]},
    # Secret and ConfigMap volumes and env (the Node authorizer: only those its pods reference).
    {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["secrets", "configmaps"]},
    {"verbs": ["get"], "apiGroups": [""], "resources": ["endpoints"]},
    # Persistent volumes (the Node authorizer: only those its pods' claims reach).
    {"verbs": ["get"], "apiGroups": [""], "resources": ["persistentvolumeclaims", "persistentvolumes"]},
    {"verbs": ["update", "patch"], "apiGroups": [""], "resources": ["persistentvolumeclaims/status"]},
    # The node's heartbeat Lease.
    {
        "verbs": ["get", "create", "update", "patch", "delete"],
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
    },
    # Tokens for the ServiceAccounts its pods run as, bound to those pods.
    {"verbs": ["create"], "apiGroups": [""], "resources": ["serviceaccounts/token"]},
    # The kubelet's own client certificates (bootstrap and rotation).
    {
        "verbs": ["create", "get", "list", "watch"],
        "apiGroups": ["certificates.k8s.io"],
        "resources": ["certificatesigningrequests"],
    },
    # A pod's RuntimeClass: its handler and overhead.
    {"verbs": ["get", "list", "watch"], "apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"]},
)

SECRET = "secret"
CONFIG_MAP = "configmap"
PERSISTENT_VOLUME_CLAIM = "persistentvolumeclaim"
SERVICE_ACCOUNT = "serviceaccount"

# Volume sources that name a Secret, and where (podutil.VisitPodSecretNames).
_SECRET_REF_VOLUMES = ("cephfs", "cinder", "flexVolume", "rbd", "scaleIO", "iscsi", "storageos")

Ref = tuple[str, str]  # (kind, name) within the pod's namespace


def node_identity(user: UserInfo) -> str | None:
    """The node a user is (upstream's NodeIdentity): the name after ``system:node:`` for a member of
    ``system:nodes`` ("" when nothing follows the prefix); None for everyone else."""
    if not user.name.startswith(NODE_USER_PREFIX) or NODES_GROUP not in user.groups:
        return None
    return user.name[len(NODE_USER_PREFIX) :]


def pod_references(pod: Mapping[str, Any]) -> frozenset[Ref]:
    """The objects a pod's spec names, as the graph records them. Shapes that are not what the
    API defines are skipped, never raised on: the graph must survive any stored pod."""
    spec = _field(pod, "spec")
    pod_name = _field(pod, "metadata", "name")
    refs: set[Ref] = set()

    def add(kind: str, name: Any) -> None:
        if name and isinstance(name, str):
            refs.add((kind, name))

    add(SERVICE_ACCOUNT, _field(spec, "serviceAccountName"))
    for secret in _items(spec, "imagePullSecrets"):
        add(SECRET, _field(secret, "name"))
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _items(spec, key):
            for source in _items(container, "envFrom"):
                add(SECRET, _field(source, "secretRef", "name"))
                add(CONFIG_MAP, _field(source, "configMapRef", "name"))
            for env in _items(container, "env"):
                add(SECRET, _field(env, "valueFrom", "secretKeyRef", "name"))
                add(CONFIG_MAP, _field(env, "valueFrom", "configMapKeyRef", "name"))
    for volume in _items(spec, "volumes"):
        add(SECRET, _field(volume, "secret", "secretName"))
        add(SECRET, _field(volume, "azureFile", "secretName"))
        add(SECRET, _field(volume, "csi", "nodePublishSecretRef", "name"))
        for source_type in _SECRET_REF_VOLUMES:
            add(SECRET, _field(volume, source_type, "secretRef", "name"))
        add(CONFIG_MAP, _field(volume, "configMap", "name"))
        for source in _items(_field(volume, "projected"), "sources"):
            add(SECRET, _field(source, "secret", "name"))
            add(CONFIG_MAP, _field(source, "configMap", "name"))
        add(PERSISTENT_VOLUME_CLAIM, _field(volume, "persistentVolumeClaim", "claimName"))
        name = _field(volume, "name")
        if _field(volume, "ephemeral") and isinstance(pod_name, str) and isinstance(name, str):
            add(PERSISTENT_VOLUME_CLAIM, f"{pod_name}-{name}")  # the generic ephemeral volume's claim
    return frozenset(refs)


def _field(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None where a level is missing or not an object."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _items(obj: Any, key: str) -> list[Any]:
    """The list at ``obj[key]``, or an empty one."""
    value = _field(obj, key)
    return value if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class _PodEntry:
    node: str
    refs: frozenset[Ref]


class NodeAuthorizer:
    """The ``Node`` authorization mode. ``start`` follows the pods; ``synced`` is set after the
    first listing, so the API server answers no request with an empty graph."""

    def __init__(self, *, store: Store, registry: Registry) -> None:
        pods = registry.lookup(group="", version="v1", plural="pods")
        if pods is None:
            raise ValueError("the Node authorizer needs the core/v1 pods kind in the registry")
        volumes = registry.lookup(group="", version="v1", plural="persistentvolumes")
        self._store = store
        self._prefix = pods.storage_prefix
        self._volume_prefix = volumes.storage_prefix if volumes is not None else None
        # volume name -> (namespace, claim name) of its claimRef
        self._volume_claims: dict[str, tuple[str, str]] = {}
        self._listed: set[str] = set()
        # (namespace, pod name) -> the pod's node and references
        self._pods: dict[tuple[str, str], _PodEntry] = {}
        # (kind, namespace, name) -> node -> how many of the node's pods reference the object
        self._reach: dict[tuple[str, str, str], Counter[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="node-authorizer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        following = [
            follow_prefix(
                self._store,
                self._prefix,
                on_list=self._relisted,
                on_event=self._changed,
                what="node authorizer",
            )
        ]
        if self._volume_prefix is not None:
            following.append(
                follow_prefix(
                    self._store,
                    self._volume_prefix,
                    on_list=self._volumes_relisted,
                    on_event=self._volume_changed,
                    what="node authorizer (volumes)",
                )
            )
        await asyncio.gather(*following)

    def _mark_listed(self, what: str) -> None:
        self._listed.add(what)
        if len(self._listed) == (2 if self._volume_prefix is not None else 1):
            self.synced.set()

    async def _relisted(self, items: list[KeyValue]) -> None:
        self._pods = {}
        self._reach = {}
        for kv in items:
            self._put(self._pod_key(kv.key), orjson.loads(kv.value))
        self._mark_listed("pods")

    async def _volumes_relisted(self, items: list[KeyValue]) -> None:
        self._volume_claims = {}
        for kv in items:
            self._put_volume(kv.key, orjson.loads(kv.value))
        self._mark_listed("volumes")

    async def _volume_changed(self, event: Event) -> None:
        if event.type is EventType.DELETE:
            self._volume_claims.pop(event.kv.key.rpartition("/")[2], None)
        else:
            self._put_volume(event.kv.key, orjson.loads(event.kv.value))

    def _put_volume(self, store_key: str, volume: Mapping[str, Any]) -> None:
        name = store_key.rpartition("/")[2]
        namespace, claim = (
            _field(volume, "spec", "claimRef", "namespace"),
            _field(volume, "spec", "claimRef", "name"),
        )
        if isinstance(namespace, str) and isinstance(claim, str) and claim:
            self._volume_claims[name] = (namespace, claim)
        else:
            self._volume_claims.pop(name, None)

    async def _changed(self, event: Event) -> None:
        key = self._pod_key(event.kv.key)
        if event.type is EventType.DELETE:
            self._remove(key)
        else:
            self._put(key, orjson.loads(event.kv.value))

    def _pod_key(self, store_key: str) -> tuple[str, str]:
        namespace, _, name = store_key[len(self._prefix) :].partition("/")
        return namespace, name

    # ------------------------------------------------------------- the graph
    def _put(self, key: tuple[str, str], pod: Mapping[str, Any]) -> None:
        node = _field(pod, "spec", "nodeName")
        entry = _PodEntry(node=node, refs=pod_references(pod)) if node and isinstance(node, str) else None
        if self._pods.get(key) == entry:
            return  # status updates, mostly: nothing the graph records changed
        self._remove(key)
        if entry is None:
            return
        self._pods[key] = entry
        namespace = key[0]
        for kind, name in entry.refs:
            self._reach.setdefault((kind, namespace, name), Counter())[node] += 1

    def _remove(self, key: tuple[str, str]) -> None:
        entry = self._pods.pop(key, None)
        if entry is None:
            return
        namespace = key[0]
        for kind, name in entry.refs:
            vertex = (kind, namespace, name)
            nodes = self._reach[vertex]
            nodes[entry.node] -= 1
            if nodes[entry.node] <= 0:
                del nodes[entry.node]
                if not nodes:
                    del self._reach[vertex]

    def reaches(self, node: str, *, kind: str, namespace: str, name: str) -> bool:
        """Does a pod bound to ``node`` reference this object?"""
        nodes = self._reach.get((kind, namespace, name))
        return nodes is not None and node in nodes

    def reaches_volume(self, node: str, name: str) -> bool:
        """Is the PersistentVolume ``name`` bound to a claim a pod of ``node`` mounts?"""
        claim = self._volume_claims.get(name)
        return claim is not None and self.reaches(
            node, kind=PERSISTENT_VOLUME_CLAIM, namespace=claim[0], name=claim[1]
        )

    # ------------------------------------------------------------- authorization
    def authorize(self, attributes: Attributes) -> tuple[Decision, str]:
        node = node_identity(attributes.user)
        if node is None:
            return Decision.NO_OPINION, ""
        if not node:
            return Decision.NO_OPINION, f'unknown node for user "{attributes.user.name}"'
        if attributes.resource_request:
            group, resource = attributes.api_group, attributes.resource
            if group == "":
                if resource == "secrets":
                    return self._read_namespaced_object(node, SECRET, attributes)
                if resource == "configmaps":
                    return self._read_namespaced_object(node, CONFIG_MAP, attributes)
                if resource == "persistentvolumeclaims":
                    if attributes.subresource == "status":
                        return self._status_update(node, PERSISTENT_VOLUME_CLAIM, attributes)
                    return self._get(node, PERSISTENT_VOLUME_CLAIM, attributes)
                if resource == "persistentvolumes":
                    return self._get_volume(node, attributes)
                if resource == "serviceaccounts":
                    return self._create_token(node, attributes)
            elif group == "coordination.k8s.io" and resource == "leases":
                return self._lease(node, attributes)
        if rules_allow(attributes, NODE_RULES):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""

    def _read_namespaced_object(self, node: str, kind: str, attributes: Attributes) -> tuple[Decision, str]:
        if attributes.verb not in ("get", "list", "watch"):
            return Decision.NO_OPINION, "can only read resources of this type"
        if attributes.subresource:
            return Decision.NO_OPINION, "cannot read subresource"
        if not attributes.namespace:
            return Decision.NO_OPINION, "can only read namespaced object of this type"
        return self._related(node, kind, attributes)

    def _get(self, node: str, kind: str, attributes: Attributes) -> tuple[Decision, str]:
        if attributes.verb != "get":
            return Decision.NO_OPINION, "can only get individual resources of this type"
        if attributes.subresource:
            return Decision.NO_OPINION, "cannot get subresource"
        return self._related(node, kind, attributes)

    def _get_volume(self, node: str, attributes: Attributes) -> tuple[Decision, str]:
        if attributes.verb != "get":
            return Decision.NO_OPINION, "can only get individual resources of this type"
        if attributes.subresource:
            return Decision.NO_OPINION, "cannot get subresource"
        if not attributes.name:
            return Decision.NO_OPINION, "No Object name found"
        if self.reaches_volume(node, attributes.name):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, f"no relationship found between node '{node}' and this object"

    def _status_update(self, node: str, kind: str, attributes: Attributes) -> tuple[Decision, str]:
        if attributes.verb not in ("update", "patch"):
            return Decision.NO_OPINION, "can only get/update/patch this type"
        return self._related(node, kind, attributes)

    def _create_token(self, node: str, attributes: Attributes) -> tuple[Decision, str]:
        if attributes.verb != "create" or not attributes.name:
            return Decision.NO_OPINION, "can only create tokens for individual service accounts"
        if attributes.subresource != "token":
            return Decision.NO_OPINION, "can only create token subresource of serviceaccount"
        return self._related(node, SERVICE_ACCOUNT, attributes)

    def _related(self, node: str, kind: str, attributes: Attributes) -> tuple[Decision, str]:
        if not attributes.name:
            return Decision.NO_OPINION, "No Object name found"
        if self.reaches(node, kind=kind, namespace=attributes.namespace, name=attributes.name):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, f"no relationship found between node '{node}' and this object"

    def _lease(self, node: str, attributes: Attributes) -> tuple[Decision, str]:
        verb = attributes.verb
        if verb not in ("get", "create", "update", "patch", "delete"):
            return Decision.NO_OPINION, "can only get, create, update, patch, or delete a node lease"
        if attributes.namespace != NODE_LEASE_NAMESPACE:
            return (
                Decision.NO_OPINION,
                f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace',
            )
        # A create names no object in its path: NodeRestriction checks the Lease's own name.
        if verb != "create" and attributes.name != node:
            return Decision.NO_OPINION, "can only access node lease with the same name as the requesting node"
        return Decision.ALLOW, ""

    def rules_for(self, user: UserInfo, namespace: str) -> SubjectRules:
        if node_identity(user) is None:
            return SubjectRules()
        return SubjectRules(resource_rules=NODE_RULES)
