"""The Node authorizer: the graph it keeps from the pods in a real store (which node reaches which
Secret, ConfigMap, PVC and ServiceAccount), its decisions and upstream's reasons, the name a
``metadata.name`` field selector puts in the attributes, and the whole path over HTTPS — an API
server with ``Node,RBAC`` and kubelets' client certificates from the lab CA."""

from __future__ import annotations

import asyncio
import inspect
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from control.apiserver.authn import UserInfo
from control.apiserver.authorization import Attributes, Decision
from control.apiserver.node_authorizer import NODE_RULES, NodeAuthorizer, node_identity, pod_references
from control.apiserver.rbac_rules import rules_allow
from control.apiserver.requestinfo import parse_request
from control.pki import PKIFiles, ensure_client_certificate, load_or_create_ca
from control.resources.builtin import builtin_registry
from control.store import Store
from tests.control.apiserver.conftest import RunningServer, running_apiserver

NODE_1 = UserInfo(name="system:node:node-1", groups=("system:nodes", "system:authenticated"))
NODE_2 = UserInfo(name="system:node:node-2", groups=("system:nodes", "system:authenticated"))
PODS_PREFIX = "/registry/core/pods/"


async def eventually(check: Callable[[], Awaitable[bool]] | Callable[[], bool]) -> None:
    """Wait (up to 5 s) until ``check`` holds: the authorizer follows the store asynchronously."""
    deadline = asyncio.get_running_loop().time() + 5.0
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def pod(name: str, *, node: str = "", namespace: str = "ns", **spec: Any) -> dict[str, Any]:
    body = {"containers": [{"name": "c", "image": "busybox"}], **spec}
    if node:
        body["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def attributes(user: UserInfo, verb: str, resource: str, name: str = "", **fields: Any) -> Attributes:
    return Attributes(
        user=user, verb=verb, resource=resource, name=name, namespace=fields.pop("namespace", "ns"), **fields
    )


# --- references --------------------------------------------------------------------------------


def test_pod_references_every_place_a_spec_names_an_object() -> None:
    spec = pod(
        "web",
        serviceAccountName="runner",
        imagePullSecrets=[{"name": "pull"}],
        initContainers=[{"name": "i", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
        containers=[
            {
                "name": "c",
                "envFrom": [{"configMapRef": {"name": "settings"}}],
                "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "password", "key": "k"}}},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "k"}}},
                    {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "D", "value": "plain"},
                ],
            }
        ],
        ephemeralContainers=[
            {"name": "e", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "debug"}}}]}
        ],
        volumes=[
            {"name": "s", "secret": {"secretName": "tls"}},
            {"name": "m", "configMap": {"name": "site"}},
            {
                "name": "p",
                "projected": {
                    "sources": [
                        {"secret": {"name": "projected-secret"}},
                        {"configMap": {"name": "kube-root-ca.crt"}},
                        {"serviceAccountToken": {"path": "token"}},
                    ]
                },
            },
            {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
            {"name": "csi", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi-secret"}}},
            {"name": "rbd", "rbd": {"secretRef": {"name": "ceph"}}},
            {"name": "e", "emptyDir": {}},
        ],
    )
    assert pod_references(spec) == {
        ("serviceaccount", "runner"),
        ("secret", "pull"),
        ("secret", "init-env"),
        ("configmap", "settings"),
        ("secret", "password"),
        ("configmap", "flags"),
        ("secret", "debug"),
        ("secret", "tls"),
        ("configmap", "site"),
        ("secret", "projected-secret"),
        ("configmap", "kube-root-ca.crt"),
        ("persistentvolumeclaim", "data"),
        ("persistentvolumeclaim", "web-scratch"),
        ("secret", "csi-secret"),
        ("secret", "ceph"),
    }


def test_pod_references_tolerate_malformed_specs() -> None:
    broken = {
        "metadata": "x",
        "spec": {
            "serviceAccountName": ["not", "a", "name"],
            "imagePullSecrets": "pull",
            "volumes": [
                None,
                "v",
                {"secret": {"secretName": 7}},
                {"projected": {"sources": ["s"]}},
                {"ephemeral": {}},
            ],
            "containers": [None, {"env": [{"valueFrom": "x"}], "envFrom": {"secretRef": {"name": "x"}}}],
            "initContainers": "c",
        },
    }
    assert pod_references(broken) == frozenset()
    assert pod_references({}) == frozenset()
    assert pod_references({"spec": None}) == frozenset()


async def test_a_malformed_stored_pod_does_not_stop_the_graph(
    authorizer: NodeAuthorizer, store: Store
) -> None:
    await store.create(
        PODS_PREFIX + "ns/odd", orjson.dumps({"metadata": {}, "spec": {"nodeName": 3, "volumes": "x"}})
    )
    await put(store, pod("web", node="node-1", serviceAccountName="after"))
    after = attributes(NODE_1, "create", "serviceaccounts", "after", subresource="token")
    await eventually(lambda: decision(authorizer, after)[0] is Decision.ALLOW)


def test_node_identity_needs_the_prefix_and_the_group() -> None:
    assert node_identity(NODE_1) == "node-1"
    assert node_identity(UserInfo(name="system:node:node-1", groups=("system:authenticated",))) is None
    assert node_identity(UserInfo(name="alice", groups=("system:nodes",))) is None
    assert node_identity(UserInfo(name="system:node:", groups=("system:nodes",))) == ""


# --- the graph, following a real store ------------------------------------------------------------


@pytest.fixture
async def authorizer(store: Store) -> AsyncIterator[NodeAuthorizer]:
    await store.create(
        PODS_PREFIX + "ns/before", orjson.dumps(pod("before", node="node-1", serviceAccountName="early"))
    )
    following = NodeAuthorizer(store=store, registry=builtin_registry())
    following.start()
    await asyncio.wait_for(following.synced.wait(), timeout=5)
    try:
        yield following
    finally:
        await following.stop()


async def put(store: Store, body: dict[str, Any]) -> None:
    key = PODS_PREFIX + f"{body['metadata']['namespace']}/{body['metadata']['name']}"
    current = await store.get(key)
    if current is None:
        await store.create(key, orjson.dumps(body))
    else:
        await store.update(key, orjson.dumps(body), expected_revision=current.mod_revision)


def decision(authorizer: NodeAuthorizer, attrs: Attributes) -> tuple[Decision, str]:
    return authorizer.authorize(attrs)


async def test_pods_listed_before_start_are_in_the_graph(authorizer: NodeAuthorizer) -> None:
    token = attributes(NODE_1, "create", "serviceaccounts", "early", subresource="token")
    assert decision(authorizer, token) == (Decision.ALLOW, "")


async def test_a_node_reads_what_its_pods_reference_and_nothing_else(
    authorizer: NodeAuthorizer, store: Store
) -> None:
    await put(store, pod("web", node="node-1", volumes=[{"name": "s", "secret": {"secretName": "tls"}}]))
    await put(
        store, pod("db", node="node-2", volumes=[{"name": "s", "secret": {"secretName": "db-password"}}])
    )
    await put(store, pod("pending", volumes=[{"name": "s", "secret": {"secretName": "unscheduled"}}]))
    own = attributes(NODE_1, "get", "secrets", "tls")
    await eventually(lambda: decision(authorizer, own)[0] is Decision.ALLOW)

    denied = "no relationship found between node 'node-1' and this object"
    assert decision(authorizer, attributes(NODE_1, "get", "secrets", "db-password")) == (
        Decision.NO_OPINION,
        denied,
    )
    assert decision(authorizer, attributes(NODE_2, "get", "secrets", "db-password")) == (Decision.ALLOW, "")
    assert decision(authorizer, attributes(NODE_1, "get", "secrets", "unscheduled")) == (
        Decision.NO_OPINION,
        denied,
    )
    # Same name, another namespace: another object.
    assert (
        decision(authorizer, attributes(NODE_1, "get", "secrets", "tls", namespace="other"))[0]
        is Decision.NO_OPINION
    )
    # A ConfigMap of that name is not the Secret.
    assert decision(authorizer, attributes(NODE_1, "get", "configmaps", "tls"))[0] is Decision.NO_OPINION


async def test_the_graph_follows_binding_moves_and_deletion(authorizer: NodeAuthorizer, store: Store) -> None:
    volumes = [{"name": "m", "configMap": {"name": "shared"}}]
    await put(store, pod("a", node="node-1", volumes=volumes))
    await put(store, pod("b", node="node-1", volumes=volumes))
    shared = attributes(NODE_1, "get", "configmaps", "shared")
    await eventually(lambda: decision(authorizer, shared)[0] is Decision.ALLOW)

    await store.delete(PODS_PREFIX + "ns/a")
    await put(store, pod("marker", node="node-1", volumes=[{"name": "m", "configMap": {"name": "marker"}}]))
    await eventually(
        lambda: decision(authorizer, attributes(NODE_1, "get", "configmaps", "marker"))[0] is Decision.ALLOW
    )
    assert decision(authorizer, shared)[0] is Decision.ALLOW  # pod b still uses it

    await put(store, pod("b", node="node-2", volumes=volumes))  # recreated elsewhere
    await eventually(lambda: decision(authorizer, shared)[0] is Decision.NO_OPINION)
    assert decision(authorizer, attributes(NODE_2, "get", "configmaps", "shared"))[0] is Decision.ALLOW

    await store.delete(PODS_PREFIX + "ns/b")
    await eventually(
        lambda: (
            decision(authorizer, attributes(NODE_2, "get", "configmaps", "shared"))[0] is Decision.NO_OPINION
        )
    )


async def test_status_updates_leave_the_graph_as_it_was(authorizer: NodeAuthorizer, store: Store) -> None:
    body = pod("web", node="node-1", volumes=[{"name": "s", "secret": {"secretName": "tls"}}])
    await put(store, body)
    own = attributes(NODE_1, "get", "secrets", "tls")
    await eventually(lambda: decision(authorizer, own)[0] is Decision.ALLOW)
    for phase in ("Pending", "Running", "Succeeded"):
        await put(store, {**body, "status": {"phase": phase}})
    await put(store, pod("marker", node="node-1", serviceAccountName="marker"))
    marker = attributes(NODE_1, "create", "serviceaccounts", "marker", subresource="token")
    await eventually(lambda: decision(authorizer, marker)[0] is Decision.ALLOW)
    assert decision(authorizer, own)[0] is Decision.ALLOW


# --- decisions -------------------------------------------------------------------------------------


async def test_secret_and_configmap_reads_only_by_name(authorizer: NodeAuthorizer, store: Store) -> None:
    await put(store, pod("web", node="node-1", volumes=[{"name": "s", "secret": {"secretName": "tls"}}]))
    await eventually(
        lambda: decision(authorizer, attributes(NODE_1, "get", "secrets", "tls"))[0] is Decision.ALLOW
    )
    for verb in ("list", "watch"):
        assert decision(authorizer, attributes(NODE_1, verb, "secrets", "tls")) == (Decision.ALLOW, "")
        assert decision(authorizer, attributes(NODE_1, verb, "secrets")) == (
            Decision.NO_OPINION,
            "No Object name found",
        )
    cases = [
        (attributes(NODE_1, "update", "secrets", "tls"), "can only read resources of this type"),
        (attributes(NODE_1, "delete", "configmaps", "tls"), "can only read resources of this type"),
        (attributes(NODE_1, "get", "secrets", "tls", subresource="status"), "cannot read subresource"),
        (attributes(NODE_1, "list", "secrets", namespace=""), "can only read namespaced object of this type"),
    ]
    for attrs, reason in cases:
        assert decision(authorizer, attrs) == (Decision.NO_OPINION, reason)


async def test_tokens_only_for_service_accounts_of_the_nodes_pods(
    authorizer: NodeAuthorizer, store: Store
) -> None:
    await put(store, pod("web", node="node-1", serviceAccountName="runner"))
    token = attributes(NODE_1, "create", "serviceaccounts", "runner", subresource="token")
    await eventually(lambda: decision(authorizer, token)[0] is Decision.ALLOW)
    assert decision(
        authorizer, attributes(NODE_2, "create", "serviceaccounts", "runner", subresource="token")
    ) == (
        Decision.NO_OPINION,
        "no relationship found between node 'node-2' and this object",
    )
    assert decision(authorizer, attributes(NODE_1, "get", "serviceaccounts", "runner")) == (
        Decision.NO_OPINION,
        "can only create tokens for individual service accounts",
    )
    assert decision(authorizer, attributes(NODE_1, "create", "serviceaccounts", "runner")) == (
        Decision.NO_OPINION,
        "can only create token subresource of serviceaccount",
    )


async def test_persistent_volume_claims_by_get_and_status(authorizer: NodeAuthorizer, store: Store) -> None:
    await put(
        store,
        pod("web", node="node-1", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]),
    )
    claim = attributes(NODE_1, "get", "persistentvolumeclaims", "data")
    await eventually(lambda: decision(authorizer, claim)[0] is Decision.ALLOW)
    assert decision(
        authorizer, attributes(NODE_1, "patch", "persistentvolumeclaims", "data", subresource="status")
    )[0] is (Decision.ALLOW)
    assert decision(
        authorizer, attributes(NODE_1, "get", "persistentvolumeclaims", "data", subresource="status")
    ) == (
        Decision.NO_OPINION,
        "can only get/update/patch this type",
    )
    assert decision(authorizer, attributes(NODE_1, "list", "persistentvolumeclaims")) == (
        Decision.NO_OPINION,
        "can only get individual resources of this type",
    )


def test_leases_only_the_nodes_own_in_kube_node_lease(authorizer: NodeAuthorizer) -> None:
    def lease(verb: str, name: str = "node-1", namespace: str = "kube-node-lease") -> Attributes:
        return attributes(NODE_1, verb, "leases", name, namespace=namespace, api_group="coordination.k8s.io")

    for verb in ("get", "update", "patch", "delete"):
        assert decision(authorizer, lease(verb)) == (Decision.ALLOW, "")
    assert decision(authorizer, lease("create", name="")) == (
        Decision.ALLOW,
        "",
    )  # NodeRestriction checks the name
    assert decision(authorizer, lease("get", name="node-2")) == (
        Decision.NO_OPINION,
        "can only access node lease with the same name as the requesting node",
    )
    assert decision(authorizer, lease("get", namespace="default")) == (
        Decision.NO_OPINION,
        'can only access leases in the "kube-node-lease" system namespace',
    )
    assert decision(authorizer, lease("list", name="")) == (
        Decision.NO_OPINION,
        "can only get, create, update, patch, or delete a node lease",
    )


def test_everything_else_is_the_node_rules(authorizer: NodeAuthorizer) -> None:
    allowed = [
        attributes(NODE_1, "list", "pods", namespace=""),
        attributes(NODE_1, "patch", "pods", "web", subresource="status"),
        attributes(NODE_1, "delete", "pods", "web"),
        attributes(NODE_1, "create", "nodes", namespace=""),
        attributes(NODE_1, "patch", "nodes", "node-1", subresource="status", namespace=""),
        attributes(NODE_1, "watch", "services", namespace=""),
        attributes(NODE_1, "create", "events"),
        attributes(NODE_1, "create", "tokenreviews", namespace="", api_group="authentication.k8s.io"),
    ]
    refused = [
        attributes(NODE_1, "create", "deployments", api_group="apps"),
        attributes(NODE_1, "delete", "nodes", "node-1", namespace=""),
        attributes(NODE_1, "update", "pods", "web"),
        attributes(NODE_1, "get", "pods", "web", subresource="exec"),
        attributes(NODE_1, "list", "endpoints"),
        attributes(
            NODE_1, "get", "clusterroles", "admin", namespace="", api_group="rbac.authorization.k8s.io"
        ),
        Attributes(user=NODE_1, verb="get", resource_request=False, path="/metrics"),
    ]
    for attrs in allowed:
        assert decision(authorizer, attrs) == (Decision.ALLOW, ""), attrs
    for attrs in refused:
        assert decision(authorizer, attrs) == (Decision.NO_OPINION, ""), attrs


def test_other_users_get_no_opinion(authorizer: NodeAuthorizer) -> None:
    for user in (
        UserInfo(name="alice", groups=("system:authenticated",)),
        UserInfo(name="system:node:node-1", groups=("system:authenticated",)),  # not in system:nodes
        UserInfo(name="system:kube-scheduler", groups=("system:nodes",)),
    ):
        assert decision(authorizer, attributes(user, "list", "pods")) == (Decision.NO_OPINION, "")
        assert authorizer.rules_for(user, "ns").resource_rules == ()
    nameless = UserInfo(name="system:node:", groups=("system:nodes",))
    assert decision(authorizer, attributes(nameless, "list", "pods")) == (
        Decision.NO_OPINION,
        'unknown node for user "system:node:"',
    )


def test_rules_for_a_node_are_the_node_rules(authorizer: NodeAuthorizer) -> None:
    rules = authorizer.rules_for(NODE_1, "ns")
    assert rules.resource_rules == NODE_RULES
    assert rules.non_resource_rules == ()
    assert all(set(rule) == {"verbs", "apiGroups", "resources"} for rule in rules.resource_rules)


def test_node_rules_are_upstreams_for_the_served_resources() -> None:
    served = {(rt.group, rt.plural) for rt in builtin_registry()}
    for rule in NODE_RULES:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource.partition("/")[0]) in served, (group, resource)
    assert rules_allow(attributes(NODE_1, "create", "serviceaccounts", "x", subresource="token"), NODE_RULES)
    assert not rules_allow(attributes(NODE_1, "get", "serviceaccounts", "x"), NODE_RULES)


def test_a_registry_without_pods_is_refused(store: Store) -> None:
    registry = builtin_registry()
    registry.remove(group="", version="v1", plural="pods")
    with pytest.raises(ValueError, match="pods"):
        NodeAuthorizer(store=store, registry=registry)


# --- the name a field selector pins --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"fieldSelector": "metadata.name=tls"}, "tls"),
        ({"fieldSelector": "metadata.name==tls"}, "tls"),
        ({"fieldSelector": "metadata.name=tls,type=Opaque"}, "tls"),
        ({"fieldSelector": "metadata.name!=tls"}, ""),
        ({"fieldSelector": "metadata.namespace=tls"}, ""),
        ({"fieldSelector": "metadata.name=.."}, ""),
        ({"fieldSelector": "metadata.name"}, ""),  # does not parse
        ({"fieldSelector": ""}, ""),
        ({}, ""),
    ],
)
def test_list_and_watch_name_from_the_field_selector(query: dict[str, str], expected: str) -> None:
    for verb_query in ({}, {"watch": "true"}):
        info = parse_request(
            method="GET", path="/api/v1/namespaces/ns/secrets", query={**query, **verb_query}
        )
        assert Attributes.from_request(user=NODE_1, info=info, query={**query, **verb_query}).name == expected


def test_the_field_selector_never_renames_other_requests() -> None:
    query = {"fieldSelector": "metadata.name=other"}
    get = parse_request(method="GET", path="/api/v1/namespaces/ns/secrets/tls", query=query)
    assert Attributes.from_request(user=NODE_1, info=get, query=query).name == "tls"
    delete = parse_request(method="DELETE", path="/api/v1/namespaces/ns/secrets", query=query)
    assert Attributes.from_request(user=NODE_1, info=delete, query=query).name == ""
    listing = parse_request(method="GET", path="/api/v1/namespaces/ns/secrets", query=query)
    assert Attributes.from_request(user=NODE_1, info=listing).name == ""


# --- over HTTPS: an API server with Node,RBAC -------------------------------------------------------


class Kubelet:
    """An HTTPS session with a node's client certificate."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def request(self, method: str, path: str, *, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Content-Type": kwargs.pop("content_type", "application/json")}
        data = orjson.dumps(body) if body is not None else None
        async with self.session.request(
            method, self.url + path, data=data, headers=headers, **kwargs
        ) as response:
            payload = await response.read()
            return response.status, orjson.loads(payload) if payload else None


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, Kubelet, Kubelet]]:
    lab_pki = PKIFiles(tmp_path / "lab" / "pki")  # where running_apiserver prepares the lab's PKI
    async with running_apiserver(
        tmp_path,
        authorization_modes=("Node", "RBAC"),
        service_account_signing_key_file=lab_pki.service_account_key,
        service_account_key_files=(lab_pki.service_account_public_key,),
    ) as api:
        pki = PKIFiles(api.data_dir / "pki")
        ca, _ = load_or_create_ca(cert_file=pki.ca_cert, key_file=pki.ca_key)
        sessions = []
        for node in ("node-1", "node-2"):
            cert, key = tmp_path / f"{node}.crt", tmp_path / f"{node}.key"
            ensure_client_certificate(
                ca=ca, cert_file=cert, key_file=key, user=f"system:node:{node}", groups=("system:nodes",)
            )
            context = ssl.create_default_context(cafile=str(pki.ca_cert))
            context.load_cert_chain(str(cert), str(key))
            sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)))
        try:
            await populate(api)
            yield api, Kubelet(sessions[0], api.url), Kubelet(sessions[1], api.url)
        finally:
            for session in sessions:
                await session.close()


NS = "/api/v1/namespaces/node-test"


async def populate(api: RunningServer) -> None:
    """Namespace node-test: Secrets tls (used on node-1) and db-password (node-2), ConfigMap site
    (node-1), pods web (node-1, as ServiceAccount runner) and db (node-2, runner and other)."""
    objects = [
        ("/api/v1/namespaces", {"metadata": {"name": "node-test"}}),
        *((f"{NS}/serviceaccounts", {"metadata": {"name": name}}) for name in ("default", "runner", "other")),
        *(
            (f"{NS}/secrets", {"metadata": {"name": name}, "stringData": {"k": "v"}})
            for name in ("tls", "db-password")
        ),
        (f"{NS}/configmaps", {"metadata": {"name": "site"}, "data": {"k": "v"}}),
        (
            f"{NS}/pods",
            pod(
                "web",
                node="node-1",
                namespace="node-test",
                serviceAccountName="runner",
                automountServiceAccountToken=False,
                containers=[
                    {"name": "c", "image": "busybox", "envFrom": [{"configMapRef": {"name": "site"}}]}
                ],
                volumes=[{"name": "s", "secret": {"secretName": "tls"}}],
            ),
        ),
        (
            f"{NS}/pods",
            pod(
                "db",
                node="node-2",
                namespace="node-test",
                serviceAccountName="other",
                automountServiceAccountToken=False,
                volumes=[{"name": "s", "secret": {"secretName": "db-password"}}],
            ),
        ),
        (
            f"{NS}/pods",
            pod(
                "db-runner",
                node="node-2",
                namespace="node-test",
                serviceAccountName="runner",
                automountServiceAccountToken=False,
            ),
        ),
    ]
    for path, body in objects:
        code, answer = await api.request("POST", path, body=body)
        assert code in (201, 409), answer


async def until_status(kubelet: Kubelet, path: str, expected: int) -> tuple[int, Any]:
    """The node's answer once the authorizer has caught up with the pods just created."""
    answer: tuple[int, Any] = (0, None)

    async def settled() -> bool:
        nonlocal answer
        answer = await kubelet.request("GET", path)
        return answer[0] == expected

    await eventually(settled)
    return answer


async def test_a_node_reads_its_pods_secret_and_configmap_but_not_another_nodes(
    cluster: tuple[RunningServer, Kubelet, Kubelet],
) -> None:
    _, node1, node2 = cluster
    code, secret = await until_status(node1, f"{NS}/secrets/tls", 200)
    assert secret["metadata"]["name"] == "tls"
    assert (await node1.request("GET", f"{NS}/configmaps/site"))[0] == 200
    await until_status(node2, f"{NS}/secrets/db-password", 200)

    code, status = await node1.request("GET", f"{NS}/secrets/db-password")
    assert code == 403
    assert status["reason"] == "Forbidden"
    assert status["message"].startswith(
        'secrets "db-password" is forbidden: User "system:node:node-1" cannot get resource "secrets" in API '
        'group "" in the namespace "node-test": no relationship found between node \'node-1\' and this object'
    )
    assert status["details"] == {"name": "db-password", "kind": "secrets"}


async def test_a_node_may_not_list_secrets(cluster: tuple[RunningServer, Kubelet, Kubelet]) -> None:
    _, node1, _ = cluster
    await until_status(node1, f"{NS}/secrets/tls", 200)
    code, status = await node1.request("GET", f"{NS}/secrets")
    assert code == 403
    assert status["message"].startswith(
        'secrets is forbidden: User "system:node:node-1" cannot list resource "secrets" in API group "" in the '
        'namespace "node-test": No Object name found'
    )
    code, status = await node1.request("GET", "/api/v1/secrets")
    assert code == 403
    assert "can only read namespaced object of this type" in status["message"]


async def test_a_node_watches_a_single_secret_by_field_selector(
    cluster: tuple[RunningServer, Kubelet, Kubelet],
) -> None:
    _, node1, _ = cluster
    await until_status(node1, f"{NS}/secrets/tls", 200)
    code, listing = await node1.request("GET", f"{NS}/secrets", params={"fieldSelector": "metadata.name=tls"})
    assert code == 200
    assert [item["metadata"]["name"] for item in listing["items"]] == ["tls"]
    async with node1.session.get(
        node1.url + f"{NS}/secrets", params={"fieldSelector": "metadata.name=tls", "watch": "true"}
    ) as response:
        assert response.status == 200
        event = orjson.loads(await asyncio.wait_for(response.content.readline(), timeout=5))
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "tls")
    code, status = await node1.request(
        "GET", f"{NS}/secrets", params={"fieldSelector": "metadata.name=db-password", "watch": "true"}
    )
    assert code == 403
    assert "no relationship found between node 'node-1' and this object" in status["message"]


async def test_pod_status_only_for_the_nodes_own_pods(
    cluster: tuple[RunningServer, Kubelet, Kubelet],
) -> None:
    _, node1, _ = cluster
    patch = {"status": {"phase": "Running"}}
    merge = "application/merge-patch+json"
    code, updated = await node1.request("PATCH", f"{NS}/pods/web/status", body=patch, content_type=merge)
    assert code == 200, updated
    assert updated["status"]["phase"] == "Running"
    code, status = await node1.request("PATCH", f"{NS}/pods/db/status", body=patch, content_type=merge)
    assert code == 403
    assert status["message"] == (
        'pods "db" is forbidden: node "node-1" can only update pod status for pods with spec.nodeName set to itself'
    )
    code, status = await node1.request("DELETE", f"{NS}/pods/db")
    assert code == 403
    assert (
        status["message"]
        == 'pods "db" is forbidden: node "node-1" can only delete pods with spec.nodeName set to itself'
    )
    assert (await node1.request("DELETE", f"{NS}/pods/web"))[0] == 200


async def test_a_node_updates_its_own_node_only(cluster: tuple[RunningServer, Kubelet, Kubelet]) -> None:
    api, node1, _ = cluster
    own = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1", "labels": {"kubernetes.io/os": "linux"}},
    }
    code, created = await node1.request("POST", "/api/v1/nodes", body=own)
    assert code == 201, created
    code, status = await node1.request("POST", "/api/v1/nodes", body={"metadata": {"name": "node-3"}})
    assert code == 403
    assert (
        status["message"]
        == 'nodes "node-3" is forbidden: node "node-1" is not allowed to modify node "node-3"'
    )
    assert (await api.request("POST", "/api/v1/nodes", body={"metadata": {"name": "node-2"}}))[0] == 201

    merge = "application/merge-patch+json"
    code, patched = await node1.request(
        "PATCH",
        "/api/v1/nodes/node-1",
        body={"metadata": {"labels": {"kubernetes.io/hostname": "node-1"}}},
        content_type=merge,
    )
    assert code == 200, patched
    code, status = await node1.request(
        "PATCH", "/api/v1/nodes/node-2", body={"metadata": {"labels": {"a": "b"}}}, content_type=merge
    )
    assert code == 403
    assert (
        status["message"]
        == 'nodes "node-2" is forbidden: node "node-1" is not allowed to modify node "node-2"'
    )
    code, status = await node1.request(
        "PATCH",
        "/api/v1/nodes/node-1",
        body={"metadata": {"labels": {"node-restriction.kubernetes.io/pool": "secure"}}},
        content_type=merge,
    )
    assert code == 403
    assert status["message"] == (
        'nodes "node-1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool'
    )
    code, status = await node1.request(
        "PATCH", "/api/v1/nodes/node-2/status", body={"status": {"phase": "Running"}}, content_type=merge
    )
    assert code == 403
    assert (await node1.request("GET", "/api/v1/nodes/node-2"))[
        0
    ] == 200  # reading Nodes is allowed (NodeRules)


async def test_a_node_renews_its_own_lease_only(cluster: tuple[RunningServer, Kubelet, Kubelet]) -> None:
    _, node1, _ = cluster
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    code, lease = await node1.request(
        "POST", leases, body={"metadata": {"name": "node-1"}, "spec": {"holderIdentity": "node-1"}}
    )
    assert code == 201, lease
    code, status = await node1.request("POST", leases, body={"metadata": {"name": "node-2"}, "spec": {}})
    assert code == 403
    assert status["message"] == (
        'leases.coordination.k8s.io "node-2" is forbidden: can only access node lease with the same name as the '
        "requesting node"
    )
    code, status = await node1.request("GET", f"{leases}/node-2")
    assert code == 403
    assert "can only access node lease with the same name as the requesting node" in status["message"]


async def test_a_node_requests_tokens_bound_to_its_own_pods_only(
    cluster: tuple[RunningServer, Kubelet, Kubelet],
) -> None:
    api, node1, _ = cluster
    pods = {}
    for name in ("web", "db", "db-runner"):
        code, body = await api.request("GET", f"{NS}/pods/{name}")
        assert code == 200
        pods[name] = body["metadata"]["uid"]

    def token_request(pod_name: str) -> dict[str, Any]:
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [],
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod_name,
                    "uid": pods[pod_name],
                },
            },
        }

    async def settled() -> bool:
        code, _ = await node1.request("POST", f"{NS}/serviceaccounts/runner/token", body=token_request("web"))
        return code == 201

    await eventually(settled)
    code, status = await node1.request(
        "POST", f"{NS}/serviceaccounts/runner/token", body=token_request("db-runner")
    )
    assert code == 403
    assert status["message"] == (
        'serviceaccounts "runner" is forbidden: node requested token bound to a pod scheduled on a different node'
    )
    code, status = await node1.request("POST", f"{NS}/serviceaccounts/other/token", body=token_request("db"))
    assert code == 403
    assert "no relationship found between node 'node-1' and this object" in status["message"]
