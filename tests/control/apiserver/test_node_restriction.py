"""NodeRestriction, one admission request at a time: what a node may write about its own Node, its
pods, its Lease and its pods' tokens, with upstream's refusals; everyone else passes untouched.
(The same checks over HTTPS, behind the Node authorizer, are in test_node_authorizer.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from control.apiserver import errors
from control.apiserver.admission import CREATE, DELETE, UPDATE, AdmissionRequest
from control.apiserver.authn import UserInfo
from control.apiserver.node_restriction import NodeRestriction, forbidden_labels
from control.resources.builtin import builtin_registry
from control.resources.registry import ResourceType

REGISTRY = builtin_registry()
NODE_1 = UserInfo(name="system:node:node-1", groups=("system:nodes", "system:authenticated"))
ADMIN = UserInfo(name="alice", groups=("system:authenticated",))
NODE_UID = "11111111-2222-3333-4444-555555555555"


def kind(plural: str, group: str = "") -> ResourceType:
    for rt in REGISTRY:
        if rt.plural == plural and rt.group == group:
            return rt
    raise LookupError(plural)


class FakeObjects:
    """The two things NodeRestriction reads from a ResourceStore: ``registry`` and ``get``."""

    registry = REGISTRY

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {
            (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]): obj
            for obj in objects
        }

    async def get(self, rt: ResourceType, *, namespace: str, name: str) -> dict[str, Any]:
        found = self.objects.get((rt.kind, namespace, name))
        if found is None:
            raise errors.not_found(rt, name)
        return found


def pod(
    name: str, *, node: str, uid: str = "", labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "ns", "uid": uid or f"uid-{name}"}
    if labels is not None:
        metadata["labels"] = labels
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **spec},
        "status": {"phase": "Running"},
    }


def node(name: str, *, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


PLUGIN = NodeRestriction(
    objects=FakeObjects(  # type: ignore[arg-type]
        pod("mine", node="node-1"),
        pod("theirs", node="node-2"),
        {**node("node-1"), "metadata": {"name": "node-1", "uid": NODE_UID}},
    )
)


def request(
    operation: str,
    rt: ResourceType,
    *,
    name: str,
    obj: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    subresource: str = "",
    namespace: str = "ns",
    user: UserInfo = NODE_1,
) -> AdmissionRequest:
    return AdmissionRequest(
        operation=operation,
        rt=rt,
        namespace=namespace if rt.namespaced else "",
        name=name,
        subresource=subresource,
        user=user,
        obj=obj,
        old=old,
    )


async def refused(admitting: AdmissionRequest, plugin: NodeRestriction = PLUGIN) -> str:
    with pytest.raises(errors.StatusError) as caught:
        await plugin.validate(admitting)
    assert caught.value.code == 403, caught.value.message
    assert caught.value.reason == "Forbidden"
    return caught.value.message


async def admitted(admitting: AdmissionRequest) -> None:
    await PLUGIN.validate(admitting)


PODS, NODES, SERVICE_ACCOUNTS = kind("pods"), kind("nodes"), kind("serviceaccounts")
LEASES = kind("leases", "coordination.k8s.io")


# --- who is restricted ---------------------------------------------------------------------------


async def test_other_users_pass_untouched() -> None:
    for user in (ADMIN, UserInfo(name="system:node:node-1", groups=("system:authenticated",))):
        await PLUGIN.validate(
            request(UPDATE, NODES, name="node-2", obj=node("node-2"), old=node("node-2"), user=user)
        )
        await PLUGIN.validate(
            request(DELETE, PODS, name="theirs", old=pod("theirs", node="node-2"), user=user)
        )


async def test_a_node_user_without_a_name_is_refused() -> None:
    nameless = UserInfo(name="system:node:", groups=("system:nodes",))
    message = await refused(
        request(UPDATE, NODES, name="node-1", obj=node("node-1"), old=node("node-1"), user=nameless)
    )
    assert message == 'nodes "node-1" is forbidden: could not determine node from user "system:node:"'


async def test_other_kinds_are_not_restricted() -> None:
    await admitted(request(CREATE, kind("events"), name="e", obj={"metadata": {"name": "e"}}))
    await admitted(request(UPDATE, SERVICE_ACCOUNTS, name="sa", obj={}, old={}))


# --- its Node ------------------------------------------------------------------------------------


async def test_a_node_modifies_only_its_own_node() -> None:
    await admitted(
        request(CREATE, NODES, name="node-1", obj=node("node-1", labels={"kubernetes.io/os": "linux"}))
    )
    await admitted(
        request(UPDATE, NODES, name="node-1", obj=node("node-1"), old=node("node-1"), subresource="status")
    )
    for operation in (CREATE, UPDATE, DELETE):
        message = await refused(
            request(operation, NODES, name="node-2", obj=node("node-2"), old=node("node-2"))
        )
        assert message == 'nodes "node-2" is forbidden: node "node-1" is not allowed to modify node "node-2"'


async def test_a_node_registers_without_restricted_labels() -> None:
    labels = {
        "node-restriction.kubernetes.io/pool": "a",
        "node-role.kubernetes.io/control-plane": "",
        "kubernetes.io/hostname": "node-1",
        "node.kubernetes.io/instance-type": "lab",
        "example.com/team": "x",
    }
    message = await refused(request(CREATE, NODES, name="node-1", obj=node("node-1", labels=labels)))
    assert message == (
        'nodes "node-1" is forbidden: node "node-1" is not allowed to set the following labels: '
        "node-restriction.kubernetes.io/pool, node-role.kubernetes.io/control-plane"
    )
    message = await refused(
        request(CREATE, NODES, name="node-1", obj=node("node-1", configSource={"configMap": {}}))
    )
    assert (
        message
        == 'nodes "node-1" is forbidden: node "node-1" is not allowed to create pods with a non-nil configSource'
    )


async def test_a_node_keeps_its_restricted_labels_and_taints() -> None:
    old = node(
        "node-1",
        labels={"node-restriction.kubernetes.io/pool": "a", "kubernetes.io/arch": "amd64"},
        taints=[{"key": "dedicated", "effect": "NoSchedule"}],
    )
    kubelet_change = {
        **old,
        "metadata": {
            "name": "node-1",
            "labels": {**old["metadata"]["labels"], "kubernetes.io/arch": "arm64"},
        },
    }
    await admitted(request(UPDATE, NODES, name="node-1", obj=kubelet_change, old=old))

    removed = {**old, "metadata": {"name": "node-1", "labels": {"kubernetes.io/arch": "amd64"}}}
    message = await refused(request(UPDATE, NODES, name="node-1", obj=removed, old=old))
    assert (
        message
        == 'nodes "node-1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool'
    )

    untainted = {**old, "spec": {"taints": []}}
    message = await refused(request(UPDATE, NODES, name="node-1", obj=untainted, old=old))
    assert message == 'nodes "node-1" is forbidden: node "node-1" is not allowed to modify taints'

    sourced = {**old, "spec": {**old["spec"], "configSource": {"configMap": {"name": "x"}}}}
    message = await refused(request(UPDATE, NODES, name="node-1", obj=sourced, old=old))
    assert message == (
        'nodes "node-1" is forbidden: node "node-1" is not allowed to update configSource to a new non-nil configSource'
    )


@pytest.mark.parametrize(
    ("key", "refused_"),
    [
        ("node-restriction.kubernetes.io/x", True),
        ("team.node-restriction.kubernetes.io/x", True),
        ("kubernetes.io/hostname", False),
        ("topology.kubernetes.io/zone", False),
        ("beta.kubernetes.io/arch", False),
        ("kubelet.kubernetes.io/x", False),
        ("x.node.kubernetes.io/y", False),
        ("node-role.kubernetes.io/worker", True),
        ("kubernetes.io/role", True),
        ("k8s.io/x", True),
        ("sub.k8s.io/x", True),
        ("example.com/x", False),
        ("plain", False),
    ],
)
def test_forbidden_labels_as_upstream(key: str, refused_: bool) -> None:
    assert forbidden_labels([key]) == ([key] if refused_ else [])


# --- its pods ------------------------------------------------------------------------------------


async def test_pod_status_only_for_pods_bound_to_the_node() -> None:
    mine, theirs = pod("mine", node="node-1", labels={"app": "a"}), pod("theirs", node="node-2")
    await admitted(request(UPDATE, PODS, name="mine", obj=mine, old=mine, subresource="status"))
    message = await refused(
        request(UPDATE, PODS, name="theirs", obj=theirs, old=theirs, subresource="status")
    )
    assert message == (
        'pods "theirs" is forbidden: node "node-1" can only update pod status for pods with spec.nodeName set to itself'
    )
    relabelled = {**mine, "metadata": {**mine["metadata"], "labels": {"app": "b"}}}
    message = await refused(
        request(UPDATE, PODS, name="mine", obj=relabelled, old=mine, subresource="status")
    )
    assert message == 'pods "mine" is forbidden: node "node-1" cannot update labels through pod status'
    claimed = {**mine, "status": {"resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "x"}]}}
    message = await refused(request(UPDATE, PODS, name="mine", obj=claimed, old=mine, subresource="status"))
    assert message == 'pods "mine" is forbidden: node "node-1" cannot update resource claim statues'
    message = await refused(request(DELETE, PODS, name="mine", old=mine, subresource="status"))
    assert message == 'pods "mine" is forbidden: unexpected operation "DELETE"'


async def test_a_node_deletes_only_pods_bound_to_it_and_updates_none() -> None:
    await admitted(request(DELETE, PODS, name="mine", old=pod("mine", node="node-1")))
    message = await refused(request(DELETE, PODS, name="theirs", old=pod("theirs", node="node-2")))
    assert (
        message
        == 'pods "theirs" is forbidden: node "node-1" can only delete pods with spec.nodeName set to itself'
    )
    mine = pod("mine", node="node-1")
    message = await refused(request(UPDATE, PODS, name="mine", obj=mine, old=mine))
    assert message == (
        'pods "mine" is forbidden: unexpected operation "UPDATE", node "node-1" can only create and delete mirror pods'
    )
    message = await refused(request(CREATE, PODS, name="mine", obj=mine, subresource="exec"))
    assert (
        message
        == "pods \"mine\" is forbidden: unexpected pod subresource \"exec\", only 'status' and 'eviction' are allowed"
    )


def mirror_pod(**changes: Any) -> dict[str, Any]:
    body = pod("static-web-node-1", node="node-1")
    body["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": NODE_UID, "controller": True}
    ]
    for path, value in changes.items():
        section, _, key = path.partition("__")
        body[section][key] = value
    return body


async def test_a_node_creates_only_its_own_mirror_pods() -> None:
    await admitted(request(CREATE, PODS, name="static-web-node-1", obj=mirror_pod()))
    owner = mirror_pod()["metadata"]["ownerReferences"][0]
    cases = [
        (
            pod("plain", node="node-1"),
            'pod does not have "kubernetes.io/config.mirror" annotation, node "node-1" can only create mirror pods',
        ),
        (
            mirror_pod(spec__nodeName="node-2"),
            'node "node-1" can only create pods with spec.nodeName set to itself',
        ),
        (
            mirror_pod(metadata__ownerReferences=[]),
            'node "node-1" can only create pods with an owner reference set to itself',
        ),
        (
            mirror_pod(metadata__ownerReferences=[owner, owner]),
            'node "node-1" can only create pods with a single owner reference set to itself',
        ),
        (
            mirror_pod(metadata__ownerReferences=[{**owner, "name": "node-2"}]),
            'node "node-1" can only create pods with an owner reference set to itself',
        ),
        (
            mirror_pod(metadata__ownerReferences=[{**owner, "controller": False}]),
            'node "node-1" can only create pods with a controller owner reference set to itself',
        ),
        (
            mirror_pod(metadata__ownerReferences=[{**owner, "blockOwnerDeletion": True}]),
            'node "node-1" must not set blockOwnerDeletion on an owner reference',
        ),
        (
            mirror_pod(metadata__ownerReferences=[{**owner, "uid": "old"}]),
            f"node node-1 UID mismatch: expected old got {NODE_UID}",
        ),
        (
            mirror_pod(spec__serviceAccountName="default"),
            'node "node-1" can not create pods that reference a service account',
        ),
        (
            mirror_pod(spec__imagePullSecrets=[{"name": "pull"}]),
            'node "node-1" can not create pods that reference secrets',
        ),
        (
            mirror_pod(spec__volumes=[{"name": "m", "configMap": {"name": "c"}}]),
            'node "node-1" can not create pods that reference configmaps',
        ),
        (
            mirror_pod(
                spec__volumes=[
                    {"name": "b", "projected": {"sources": [{"clusterTrustBundle": {"name": "x"}}]}}
                ]
            ),
            'node "node-1" can not create pods that reference clustertrustbundles',
        ),
        (
            mirror_pod(spec__volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]),
            'node "node-1" can not create pods that reference persistentvolumeclaims',
        ),
    ]
    for body, reason in cases:
        message = await refused(request(CREATE, PODS, name=body["metadata"]["name"], obj=body))
        assert message == f'pods "{body["metadata"]["name"]}" is forbidden: {reason}'


async def test_a_node_evicts_only_pods_bound_to_it() -> None:
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "mine", "namespace": "ns"},
    }
    await admitted(request(CREATE, PODS, name="mine", obj=eviction, subresource="eviction"))
    await admitted(
        request(CREATE, PODS, name="", obj=eviction, subresource="eviction")
    )  # the name from the body
    message = await refused(request(CREATE, PODS, name="theirs", obj=eviction, subresource="eviction"))
    assert (
        message
        == 'pods "theirs" is forbidden: node node-1 can only evict pods with spec.nodeName set to itself'
    )
    message = await refused(request(CREATE, PODS, name="", obj={"metadata": {}}, subresource="eviction"))
    assert message == "pods is forbidden: could not determine pod from request data"
    message = await refused(request(DELETE, PODS, name="mine", old=eviction, subresource="eviction"))
    assert message == 'pods "mine" is forbidden: unexpected operation DELETE'
    with pytest.raises(errors.StatusError) as caught:
        await PLUGIN.validate(request(CREATE, PODS, name="gone", obj=eviction, subresource="eviction"))
    assert caught.value.code == 404


# --- its Lease -----------------------------------------------------------------------------------


async def test_a_node_writes_only_its_own_lease() -> None:
    lease = {"metadata": {"name": "node-1"}, "spec": {}}
    await admitted(request(CREATE, LEASES, name="node-1", obj=lease, namespace="kube-node-lease"))
    await admitted(request(UPDATE, LEASES, name="node-1", obj=lease, old=lease, namespace="kube-node-lease"))
    other = {"metadata": {"name": "node-2"}, "spec": {}}
    same_name = "can only access node lease with the same name as the requesting node"
    message = await refused(request(CREATE, LEASES, name="node-2", obj=other, namespace="kube-node-lease"))
    assert message == f'leases.coordination.k8s.io "node-2" is forbidden: {same_name}'
    message = await refused(request(DELETE, LEASES, name="node-2", old=other, namespace="kube-node-lease"))
    assert message == f'leases.coordination.k8s.io "node-2" is forbidden: {same_name}'
    message = await refused(request(CREATE, LEASES, name="node-1", obj=lease, namespace="default"))
    assert message == (
        'leases.coordination.k8s.io "node-1" is forbidden: can only access leases in the "kube-node-lease" system namespace'
    )


# --- its pods' tokens ----------------------------------------------------------------------------


def token_request(**bound: str) -> dict[str, Any]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": ["https://kubernetes.default.svc.cluster.local"],
            "boundObjectRef": bound or None,
        },
    }


async def test_a_node_requests_tokens_only_bound_to_its_pods() -> None:
    def asking(body: dict[str, Any]) -> AdmissionRequest:
        return request(CREATE, SERVICE_ACCOUNTS, name="runner", obj=body, subresource="token")

    await admitted(asking(token_request(apiVersion="v1", kind="Pod", name="mine", uid="uid-mine")))
    cases = [
        (token_request(), "node requested token not bound to a pod"),
        ({"spec": "garbled"}, "node requested token not bound to a pod"),
        ({"spec": {"boundObjectRef": "pod/mine"}}, "node requested token not bound to a pod"),
        (
            token_request(apiVersion="v1", kind="Secret", name="mine", uid="uid-mine"),
            "node requested token not bound to a pod",
        ),
        (
            token_request(apiVersion="v1", kind="Pod", name="", uid="uid-mine"),
            "node requested token not bound to a pod",
        ),
        (
            token_request(apiVersion="v1", kind="Pod", name="mine"),
            "node requested token with a pod binding without a uid",
        ),
        (
            token_request(apiVersion="v1", kind="Pod", name="mine", uid="stale"),
            "the UID in the bound object reference (stale) does not match the UID in record. "
            "The object might have been deleted and then recreated",
        ),
        (
            token_request(apiVersion="v1", kind="Pod", name="theirs", uid="uid-theirs"),
            "node requested token bound to a pod scheduled on a different node",
        ),
    ]
    for body, reason in cases:
        assert await refused(asking(body)) == f'serviceaccounts "runner" is forbidden: {reason}'
    with pytest.raises(errors.StatusError) as caught:
        await PLUGIN.validate(asking(token_request(apiVersion="v1", kind="Pod", name="gone", uid="u")))
    assert caught.value.code == 404


async def test_without_the_object_store_lookups_fail_loudly() -> None:
    body = token_request(apiVersion="v1", kind="Pod", name="mine", uid="uid-mine")
    with pytest.raises(errors.StatusError) as caught:
        await NodeRestriction().validate(
            request(CREATE, SERVICE_ACCOUNTS, name="runner", obj=body, subresource="token")
        )
    assert caught.value.code == 500
    assert "without the object store" in caught.value.message
