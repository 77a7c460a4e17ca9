"""RBAC: the authorizer's in-memory index (over a real store, no HTTP), the escalation rules,
and both through the API server over HTTPS with users holding client certificates."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from control.apiserver.authn import UserInfo
from control.apiserver.authorization import Attributes, Decision
from control.apiserver.rbac import (
    EscalationError,
    RBACAuthorizer,
    breakdown_rule,
    compact_rules,
    compact_string,
    confirm_no_escalation,
    only_gc_fields_change,
    rule_covers,
    uncovered_rules,
)
from control.pki import ensure_client_certificate, load_or_create_ca
from control.resources.builtin import builtin_registry
from control.store.sqlite import SqliteStore
from tests.control.apiserver.conftest import RunningServer, client_ssl_context, running_apiserver

RBAC = "/apis/rbac.authorization.k8s.io/v1"
WAIT = 10.0

# --------------------------------------------------------------------------- the index, over a store


@pytest.fixture
async def rbac(store: SqliteStore) -> AsyncIterator[RBACAuthorizer]:
    authorizer = RBACAuthorizer(store=store, registry=builtin_registry())
    authorizer.start()
    try:
        await asyncio.wait_for(authorizer.synced.wait(), timeout=WAIT)
        yield authorizer
    finally:
        await authorizer.stop()


def _key(plural: str, name: str, namespace: str = "") -> str:
    rt = builtin_registry().lookup(group="rbac.authorization.k8s.io", version="v1", plural=plural)
    assert rt is not None
    return f"{rt.storage_prefix}{namespace}/{name}" if namespace else f"{rt.storage_prefix}{name}"


async def put(store: SqliteStore, plural: str, obj: dict[str, Any]) -> None:
    metadata = obj["metadata"]
    key = _key(plural, metadata["name"], metadata.get("namespace", ""))
    current = await store.get(key)
    if current is None:
        await store.create(key, orjson.dumps(obj))
    else:
        result = await store.update(key, orjson.dumps(obj), expected_revision=current.mod_revision)
        assert result.succeeded


async def remove(store: SqliteStore, plural: str, name: str, namespace: str = "") -> None:
    result = await store.delete(_key(plural, name, namespace))
    assert result.succeeded


def role(name: str, *rules: dict[str, Any], namespace: str = "") -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"metadata": metadata, "rules": list(rules)}


def binding(
    name: str, *subjects: dict[str, Any], role_name: str, kind: str = "ClusterRole", namespace: str = ""
) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name}
    return {"metadata": metadata, "roleRef": ref, "subjects": list(subjects)}


def user_subject(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def group_subject(name: str) -> dict[str, str]:
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def sa_subject(name: str, namespace: str = "") -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, **({"namespace": namespace} if namespace else {})}


ALICE = UserInfo(name="alice", groups=("devs", "system:authenticated"))
READ_PODS = {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]}


def ask(user: UserInfo = ALICE, *, verb: str = "get", resource: str = "pods", **kwargs: Any) -> Attributes:
    return Attributes(user=user, verb=verb, resource=resource, **kwargs)


def url(path: str, user: UserInfo = ALICE, *, verb: str = "get") -> Attributes:
    return Attributes(user=user, verb=verb, resource_request=False, path=path)


async def until(check: Callable[[], bool], *, what: str) -> None:
    """Wait for the authorizer's watch to deliver a change (a condition, never a fixed sleep)."""
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def allowed(rbac: RBACAuthorizer, attributes: Attributes) -> bool:
    return rbac.authorize(attributes)[0] is Decision.ALLOW


async def test_cluster_role_binding_allows_a_user_everywhere_with_upstream_reason(store, rbac):
    await put(store, "clusterroles", role("pod-reader", READ_PODS))
    await put(
        store, "clusterrolebindings", binding("read-pods", user_subject("alice"), role_name="pod-reader")
    )
    await until(lambda: allowed(rbac, ask(namespace="a")), what="the binding")
    assert rbac.authorize(ask(namespace="b", verb="list")) == (
        Decision.ALLOW,
        'RBAC: allowed by ClusterRoleBinding "read-pods" of ClusterRole "pod-reader" to User "alice"',
    )
    assert rbac.authorize(ask(namespace="a", verb="delete")) == (Decision.NO_OPINION, "")
    assert rbac.authorize(ask(namespace="a", resource="secrets")) == (Decision.NO_OPINION, "")
    assert rbac.authorize(ask(UserInfo(name="bob"), namespace="a")) == (Decision.NO_OPINION, "")


async def test_role_binding_grants_only_in_its_namespace(store, rbac):
    await put(store, "roles", role("reader", READ_PODS, namespace="team-a"))
    await put(
        store,
        "rolebindings",
        binding("r", user_subject("alice"), role_name="reader", kind="Role", namespace="team-a"),
    )
    await until(lambda: allowed(rbac, ask(namespace="team-a")), what="the role binding")
    assert rbac.authorize(ask(namespace="team-a"))[1] == (
        'RBAC: allowed by RoleBinding "r/team-a" of Role "reader" to User "alice"'
    )
    assert not allowed(rbac, ask(namespace="team-b"))
    assert not allowed(rbac, ask())  # cluster scope: role bindings never apply


async def test_role_binding_to_a_cluster_role_is_limited_to_the_namespace(store, rbac):
    await put(store, "clusterroles", role("pod-reader", READ_PODS))
    await put(
        store, "rolebindings", binding("r", group_subject("devs"), role_name="pod-reader", namespace="a")
    )
    await until(lambda: allowed(rbac, ask(namespace="a")), what="the binding")
    assert rbac.authorize(ask(namespace="a"))[1] == (
        'RBAC: allowed by RoleBinding "r/a" of ClusterRole "pod-reader" to Group "devs"'
    )
    assert not allowed(rbac, ask(namespace="b"))
    assert not allowed(rbac, ask(UserInfo(name="alice", groups=("ops",)), namespace="a"))


async def test_service_account_subjects_match_their_user_name(store, rbac):
    robot = UserInfo(name="system:serviceaccount:a:robot", groups=("system:serviceaccounts",))
    await put(store, "clusterroles", role("pod-reader", READ_PODS))
    # no namespace in a RoleBinding's subject: the binding's own namespace
    await put(store, "rolebindings", binding("r", sa_subject("robot"), role_name="pod-reader", namespace="a"))
    # no namespace in a ClusterRoleBinding's subject: applies to nobody
    await put(store, "clusterrolebindings", binding("loose", sa_subject("robot"), role_name="pod-reader"))
    await until(lambda: allowed(rbac, ask(robot, namespace="a")), what="the binding")
    assert rbac.authorize(ask(robot, namespace="a"))[1] == (
        'RBAC: allowed by RoleBinding "r/a" of ClusterRole "pod-reader" to ServiceAccount "robot/a"'
    )
    assert not allowed(rbac, ask(robot, namespace="b"))
    other = UserInfo(name="system:serviceaccount:b:robot", groups=("system:serviceaccounts",))
    assert not allowed(rbac, ask(other, namespace="a"))
    await put(
        store, "clusterrolebindings", binding("everywhere", sa_subject("robot", "b"), role_name="pod-reader")
    )
    await until(lambda: allowed(rbac, ask(other, namespace="c")), what="the cluster binding")
    assert rbac.authorize(ask(other, namespace="c"))[1] == (
        'RBAC: allowed by ClusterRoleBinding "everywhere" of ClusterRole "pod-reader" to ServiceAccount "robot/b"'
    )


async def test_resource_names_subresources_and_groups(store, rbac):
    await put(
        store,
        "clusterroles",
        role(
            "narrow",
            {
                "verbs": ["get", "update"],
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["cfg"],
            },
            {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["*/scale"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]},
        ),
    )
    await put(store, "clusterrolebindings", binding("b", user_subject("alice"), role_name="narrow"))
    await until(
        lambda: allowed(rbac, ask(resource="configmaps", name="cfg", namespace="a")), what="the binding"
    )
    assert allowed(rbac, ask(verb="update", resource="configmaps", name="cfg", namespace="a"))
    assert not allowed(rbac, ask(resource="configmaps", name="other", namespace="a"))
    assert not allowed(rbac, ask(verb="list", resource="configmaps", namespace="a"))  # a list names nothing
    assert allowed(rbac, ask(api_group="apps", resource="deployments", subresource="scale", namespace="a"))
    assert not allowed(rbac, ask(api_group="apps", resource="deployments", namespace="a"))
    assert not allowed(rbac, ask(resource="deployments", subresource="scale", namespace="a"))  # wrong group
    assert allowed(rbac, ask(resource="pods", subresource="log", namespace="a"))
    assert not allowed(rbac, ask(resource="pods", namespace="a"))


async def test_non_resource_urls(store, rbac):
    await put(
        store,
        "clusterroles",
        role("urls", {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}),
    )
    await put(store, "clusterrolebindings", binding("b", group_subject("devs"), role_name="urls"))
    await until(lambda: allowed(rbac, url("/healthz")), what="the binding")
    assert allowed(rbac, url("/apis/apps/v1"))
    assert allowed(rbac, url("/apis/"))
    assert not allowed(rbac, url("/apis"))  # "/apis/*" needs the slash
    assert not allowed(rbac, url("/healthz/etcd"))
    assert not allowed(rbac, url("/healthz", verb="post"))
    # a resource rule never grants a path, nor a URL rule a resource
    assert not allowed(rbac, ask(resource="healthz"))


async def test_a_missing_role_is_reported_with_the_denial(store, rbac):
    await put(store, "clusterrolebindings", binding("b1", user_subject("alice"), role_name="gone"))
    await put(
        store,
        "rolebindings",
        binding("b2", user_subject("alice"), role_name="absent", kind="Role", namespace="a"),
    )
    await until(lambda: "absent" in rbac.authorize(ask(namespace="a"))[1], what="both bindings")
    assert rbac.authorize(ask()) == (
        Decision.NO_OPINION,
        'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
    )
    assert rbac.authorize(ask(namespace="a")) == (
        Decision.NO_OPINION,
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, '
        'role.rbac.authorization.k8s.io "absent" not found]',
    )
    await put(store, "clusterroles", role("gone", READ_PODS))
    await until(lambda: allowed(rbac, ask()), what="the role to appear")


async def test_an_unsupported_role_kind_is_an_error(store, rbac):
    await put(
        store, "clusterrolebindings", binding("odd", user_subject("alice"), role_name="x", kind="Policy")
    )
    await until(lambda: rbac.authorize(ask())[1] != "", what="the binding")
    assert rbac.authorize(ask()) == (Decision.NO_OPINION, 'RBAC: unsupported role reference kind: "Policy"')


async def test_changes_invalidate_cached_decisions(store, rbac):
    await put(store, "clusterroles", role("pod-reader", READ_PODS))
    await put(store, "clusterrolebindings", binding("b", user_subject("alice"), role_name="pod-reader"))
    await until(lambda: allowed(rbac, ask()), what="the binding")
    # moving the binding to another subject: the old one loses, the new one gains
    await put(store, "clusterrolebindings", binding("b", user_subject("bob"), role_name="pod-reader"))
    await until(lambda: not allowed(rbac, ask()), what="alice to lose access")
    assert allowed(rbac, ask(UserInfo(name="bob")))
    # narrowing the role
    await put(
        store,
        "clusterroles",
        role("pod-reader", {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}),
    )
    await until(lambda: not allowed(rbac, ask(UserInfo(name="bob"))), what="the role to narrow")
    assert allowed(rbac, ask(UserInfo(name="bob"), verb="list"))
    await remove(store, "clusterrolebindings", "b")
    await until(lambda: not allowed(rbac, ask(UserInfo(name="bob"), verb="list")), what="the binding to go")


async def test_a_relist_rebuilds_the_index(store, rbac):
    await put(store, "clusterroles", role("pod-reader", READ_PODS))
    await put(store, "clusterrolebindings", binding("b", user_subject("alice"), role_name="pod-reader"))
    await until(lambda: allowed(rbac, ask()), what="the binding")
    await rbac.stop()
    await remove(store, "clusterrolebindings", "b")
    await put(store, "clusterrolebindings", binding("c", user_subject("carol"), role_name="pod-reader"))
    rbac.start()  # lists again, replacing what it knew
    carol = UserInfo(name="carol")
    await until(lambda: allowed(rbac, ask(carol)), what="the relist")
    assert not allowed(rbac, ask())


async def test_rules_for_reports_rules_in_review_shape(store, rbac):
    await put(
        store,
        "clusterroles",
        role(
            "mixed",
            {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"]},
            {"verbs": ["get"], "nonResourceURLs": ["/version"]},
        ),
    )
    await put(store, "roles", role("local", READ_PODS, namespace="a"))
    await put(store, "clusterrolebindings", binding("b", user_subject("alice"), role_name="mixed"))
    await put(
        store,
        "rolebindings",
        binding("r", user_subject("alice"), role_name="local", kind="Role", namespace="a"),
    )
    await put(
        store,
        "rolebindings",
        binding("x", user_subject("alice"), role_name="nope", kind="Role", namespace="a"),
    )
    await until(lambda: rbac.rules_for(ALICE, "a").evaluation_error != "", what="all three bindings")
    rules = rbac.rules_for(ALICE, "a")
    assert rules.resource_rules == (
        {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"]},
        {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]},
    )
    assert rules.non_resource_rules == ({"verbs": ["get"], "nonResourceURLs": ["/version"]},)
    assert rules.evaluation_error == 'role.rbac.authorization.k8s.io "nope" not found'
    assert not rules.incomplete
    assert len(rbac.rules_for(ALICE, "b").resource_rules) == 1


# --------------------------------------------------------------------------- covering rules


def test_breakdown_splits_every_combination():
    rule = {
        "verbs": ["get", "list"],
        "apiGroups": ["", "apps"],
        "resources": ["pods"],
        "resourceNames": ["a"],
    }
    assert breakdown_rule(rule) == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["a"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"], "resourceNames": ["a"]},
        {"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["a"]},
        {"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["list"], "resourceNames": ["a"]},
    ]
    assert breakdown_rule({"verbs": ["get"], "nonResourceURLs": ["/a", "/b"]}) == [
        {"nonResourceURLs": ["/a"], "verbs": ["get"]},
        {"nonResourceURLs": ["/b"], "verbs": ["get"]},
    ]


@pytest.mark.parametrize(
    ("owner", "sub", "covered"),
    [
        (
            {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
            {"verbs": ["get"], "apiGroups": ["x"], "resources": ["y/z"]},
            True,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["*/scale"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["rc/scale"]},
            True,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["*/scale"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["rc"]},
            False,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
            False,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
            True,
        ),
        (
            {"verbs": ["get"], "nonResourceURLs": ["/api/*"]},
            {"verbs": ["get"], "nonResourceURLs": ["/api/v1"]},
            True,
        ),
        (
            {"verbs": ["get"], "nonResourceURLs": ["/api"]},
            {"verbs": ["get"], "nonResourceURLs": ["/api/v1"]},
            False,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"], "nonResourceURLs": ["/api"]},
            False,
        ),
        (
            {"verbs": ["get"], "nonResourceURLs": ["*"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
            False,
        ),
    ],
)
def test_rule_covers(owner, sub, covered):
    assert rule_covers(owner, sub) is covered


def test_compacted_missing_rules_merge_verbs_per_resource():
    missing = uncovered_rules(
        [READ_PODS],
        [{"verbs": ["get", "delete", "patch"], "apiGroups": [""], "resources": ["pods", "secrets"]}],
    )
    assert sorted(compact_string(rule) for rule in compact_rules(missing)) == [
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete" "patch"]}',
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete" "patch"]}',
    ]


def test_escalation_message_is_upstreams():
    user = UserInfo(name="bob", groups=("g", "system:authenticated"))
    with pytest.raises(EscalationError) as caught:
        confirm_no_escalation(
            user=user,
            owner_rules=[READ_PODS],
            resolution_errors=[],
            rules=[{"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods"]}],
        )
    assert str(caught.value) == (
        'user "bob" (groups=["g" "system:authenticated"]) is attempting to grant RBAC permissions '
        'not currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}'
    )
    with pytest.raises(EscalationError) as caught:
        confirm_no_escalation(
            user=user,
            owner_rules=[],
            resolution_errors=['clusterrole.rbac.authorization.k8s.io "x" not found'],
            rules=[{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}],
        )
    assert str(caught.value).endswith(
        '\n{NonResourceURLs:["/metrics"], Verbs:["get"]}; resolution errors: '
        '[clusterrole.rbac.authorization.k8s.io "x" not found]'
    )
    confirm_no_escalation(user=user, owner_rules=[READ_PODS], resolution_errors=[], rules=[READ_PODS])


# --------------------------------------------------------------------------- over HTTPS


@asynccontextmanager
async def user_session(
    server: RunningServer, user: str, groups: tuple[str, ...] = ()
) -> AsyncIterator[aiohttp.ClientSession]:
    """A session with a client certificate for ``user`` in ``groups``, signed by the lab CA."""
    ca, _ = load_or_create_ca(cert_file=server.ca_file, key_file=server.ca_file.with_name("ca.key"))
    directory = server.data_dir / "users"
    directory.mkdir(exist_ok=True)
    cert, key = directory / f"{user}.crt", directory / f"{user}.key"
    ensure_client_certificate(ca=ca, cert_file=cert, key_file=key, user=user, groups=groups)
    context = client_ssl_context(ca_file=server.ca_file, cert_file=cert, key_file=key)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield session


async def call(
    server: RunningServer, session: aiohttp.ClientSession, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    data = orjson.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"}
    async with session.request(method, server.url + path, data=data, headers=headers) as response:
        return response.status, orjson.loads(await response.read())


async def eventually(check: Callable[[], Awaitable[bool]], *, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def admin_create(server: RunningServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, created = await server.request("POST", path, body=body)
    assert status == 201, created
    return created


@pytest.fixture
async def rbac_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_apiserver(tmp_path, authorization_modes=("RBAC",)) as server:
        for namespace in ("team-a", "team-b"):
            await admin_create(server, "/api/v1/namespaces", {"metadata": {"name": namespace}})
        yield server


async def bind(
    server: RunningServer, namespace: str, name: str, *, role_name: str, kind: str, subject: dict
) -> None:
    body = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
        "subjects": [subject],
    }
    path = f"{RBAC}/namespaces/{namespace}/rolebindings" if namespace else f"{RBAC}/clusterrolebindings"
    await admin_create(server, path, body)


async def test_a_viewer_can_read_but_not_delete(rbac_server):
    server = rbac_server
    await admin_create(
        server,
        "/api/v1/namespaces/team-a/pods",
        {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
    )
    await bind(
        server, "team-a", "bob-views", role_name="view", kind="ClusterRole", subject=user_subject("bob")
    )
    async with user_session(server, "bob", ("devs",)) as bob:

        async def can_list() -> bool:
            return (await call(server, bob, "GET", "/api/v1/namespaces/team-a/pods"))[0] == 200

        await eventually(can_list, what="bob's binding")
        status, pod = await call(server, bob, "GET", "/api/v1/namespaces/team-a/pods/web")
        assert status == 200 and pod["metadata"]["name"] == "web"
        status, refused = await call(server, bob, "DELETE", "/api/v1/namespaces/team-a/pods/web")
        assert status == 403
        assert refused["reason"] == "Forbidden"
        assert refused["message"] == (
            'pods "web" is forbidden: User "bob" cannot delete resource "pods" in API group "" '
            'in the namespace "team-a"'
        )
        assert refused["details"] == {"name": "web", "kind": "pods"}
        status, refused = await call(server, bob, "GET", "/api/v1/namespaces/team-b/pods")
        assert status == 403
        assert refused["message"] == (
            'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "team-b"'
        )
        status, refused = await call(server, bob, "GET", "/api/v1/namespaces/team-a/secrets")
        assert status == 403  # view does not show secrets
        # system:discovery and system:basic-user come with being authenticated
        assert (await call(server, bob, "GET", "/api"))[0] == 200
        assert (await call(server, bob, "GET", "/apis"))[0] == 200


async def test_a_binding_to_a_missing_role_is_explained(rbac_server):
    server = rbac_server
    await bind(server, "", "ghost", role_name="no-such-role", kind="ClusterRole", subject=user_subject("dan"))
    async with user_session(server, "dan") as dan:

        async def explained() -> bool:
            status, body = await call(server, dan, "GET", "/api/v1/nodes")
            return status == 403 and body["message"].endswith(
                ': RBAC: clusterrole.rbac.authorization.k8s.io "no-such-role" not found'
            )

        await eventually(explained, what="the missing role in the 403")


async def test_group_and_service_account_subjects_over_https(rbac_server):
    server = rbac_server
    await bind(
        server, "team-b", "ops-view", role_name="view", kind="ClusterRole", subject=group_subject("ops")
    )
    async with user_session(server, "erin", ("ops",)) as erin:

        async def can_list() -> bool:
            return (await call(server, erin, "GET", "/api/v1/namespaces/team-b/configmaps"))[0] == 200

        await eventually(can_list, what="the group binding")
        assert (await call(server, erin, "GET", "/api/v1/namespaces/team-a/configmaps"))[0] == 403
    # a certificate naming a ServiceAccount user is matched as that ServiceAccount
    await bind(server, "team-b", "sa-view", role_name="view", kind="ClusterRole", subject=sa_subject("robot"))
    async with user_session(
        server, "system:serviceaccount:team-b:robot", ("system:serviceaccounts",)
    ) as robot:

        async def robot_can_list() -> bool:
            return (await call(server, robot, "GET", "/api/v1/namespaces/team-b/pods"))[0] == 200

        await eventually(robot_can_list, what="the ServiceAccount binding")


async def test_escalation_is_refused_unless_held_or_allowed(rbac_server):
    server = rbac_server
    await bind(
        server, "team-a", "frank-admin", role_name="admin", kind="ClusterRole", subject=user_subject("frank")
    )
    nodes_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "escalated"},
        "rules": [{"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["nodes", "pods"]}],
    }
    held_role = {**nodes_role, "metadata": {"name": "held"}, "rules": [READ_PODS]}
    async with user_session(server, "frank", ("devs",)) as frank:

        async def can_create_held_role() -> bool:
            status, _ = await call(server, frank, "POST", f"{RBAC}/namespaces/team-a/roles", held_role)
            return status == 201

        await eventually(can_create_held_role, what="frank's admin binding")
        status, refused = await call(server, frank, "POST", f"{RBAC}/namespaces/team-a/roles", nodes_role)
        assert status == 403
        assert refused["message"] == (
            'roles.rbac.authorization.k8s.io "escalated" is forbidden: user "frank" '
            '(groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not currently '
            'held:\n{APIGroups:[""], Resources:["nodes"], Verbs:["get" "delete"]}'
        )
        assert refused["details"] == {
            "name": "escalated",
            "group": "rbac.authorization.k8s.io",
            "kind": "roles",
        }
        # an update that adds rules not held is refused the same way
        widened = {
            **held_role,
            "rules": [READ_PODS, {"verbs": ["get"], "apiGroups": [""], "resources": ["nodes"]}],
        }
        status, refused = await call(server, frank, "PUT", f"{RBAC}/namespaces/team-a/roles/held", widened)
        assert status == 403 and "not currently held" in refused["message"]

        # binding a role whose rules frank lacks: refused; binding one he holds: fine
        admin_binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "give-admin"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [user_subject("mallory")],
        }
        status, refused = await call(
            server, frank, "POST", f"{RBAC}/namespaces/team-a/rolebindings", admin_binding
        )
        assert status == 403
        assert refused["message"].startswith(
            'rolebindings.rbac.authorization.k8s.io "give-admin" is forbidden: user "frank" '
            '(groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        )
        view_binding = {
            **admin_binding,
            "metadata": {"name": "give-view"},
            "roleRef": {**admin_binding["roleRef"], "name": "view"},
        }
        status, created = await call(
            server, frank, "POST", f"{RBAC}/namespaces/team-a/rolebindings", view_binding
        )
        assert status == 201, created
        missing = {
            **view_binding,
            "metadata": {"name": "give-nothing"},
            "roleRef": {**admin_binding["roleRef"], "name": "nope"},
        }
        status, refused = await call(server, frank, "POST", f"{RBAC}/namespaces/team-a/rolebindings", missing)
        assert status == 404
        assert refused["message"] == 'clusterroles.rbac.authorization.k8s.io "nope" not found'

        # with `escalate` on roles and `bind` on cluster-admin, both go through
        await admin_create(
            server,
            f"{RBAC}/clusterroles",
            {
                "metadata": {"name": "delegator"},
                "rules": [
                    {
                        "verbs": ["escalate"],
                        "apiGroups": ["rbac.authorization.k8s.io"],
                        "resources": ["roles"],
                    },
                    {
                        "verbs": ["bind"],
                        "apiGroups": ["rbac.authorization.k8s.io"],
                        "resources": ["clusterroles"],
                        "resourceNames": ["cluster-admin"],
                    },
                ],
            },
        )
        await bind(
            server,
            "team-a",
            "frank-delegates",
            role_name="delegator",
            kind="ClusterRole",
            subject=user_subject("frank"),
        )

        async def can_escalate() -> bool:
            status, _ = await call(server, frank, "POST", f"{RBAC}/namespaces/team-a/roles", nodes_role)
            return status == 201

        await eventually(can_escalate, what="the escalate permission")
        status, created = await call(
            server, frank, "POST", f"{RBAC}/namespaces/team-a/rolebindings", admin_binding
        )
        assert status == 201, created
        # bind is granted for cluster-admin only, and only in team-a
        edit_binding = {
            **admin_binding,
            "metadata": {"name": "x"},
            "roleRef": {**admin_binding["roleRef"], "name": "system:node"},
        }
        status, _ = await call(server, frank, "POST", f"{RBAC}/namespaces/team-a/rolebindings", edit_binding)
        assert status == 403


async def test_the_aggregation_rule_needs_full_authority(rbac_server):
    server = rbac_server
    await admin_create(
        server,
        f"{RBAC}/clusterroles",
        {
            "metadata": {"name": "role-writer"},
            "rules": [
                {
                    "verbs": ["create", "update", "get"],
                    "apiGroups": ["rbac.authorization.k8s.io"],
                    "resources": ["clusterroles"],
                }
            ],
        },
    )
    await bind(
        server, "", "gina-writes", role_name="role-writer", kind="ClusterRole", subject=user_subject("gina")
    )
    aggregated = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "everything"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]},
        "rules": [],
    }
    async with user_session(server, "gina") as gina:

        async def refused_for_aggregation() -> bool:
            status, body = await call(server, gina, "POST", f"{RBAC}/clusterroles", aggregated)
            return status == 403 and "aggregationRule" in body["message"]

        await eventually(refused_for_aggregation, what="gina's binding")
        status, body = await call(server, gina, "POST", f"{RBAC}/clusterroles", aggregated)
        assert body["message"] == (
            'clusterroles.rbac.authorization.k8s.io "everything" is forbidden: '
            "must have cluster-admin privileges to use the aggregationRule"
        )
        plain = {**aggregated, "metadata": {"name": "writer-copy"}, "rules": aggregated["rules"]}
        del plain["aggregationRule"]
        status, created = await call(server, gina, "POST", f"{RBAC}/clusterroles", plain)
        assert status == 201, created
    # the admin (system:masters) is never checked
    status, created = await server.request("POST", f"{RBAC}/clusterroles", body=aggregated)
    assert status == 201, created


async def test_only_garbage_collection_fields_may_change_without_holding_the_rules(rbac_server):
    server = rbac_server
    await bind(
        server, "team-a", "hal-admin", role_name="admin", kind="ClusterRole", subject=user_subject("hal")
    )
    await bind(
        server,
        "team-a",
        "powerful",
        role_name="cluster-admin",
        kind="ClusterRole",
        subject=user_subject("ivy"),
    )
    path = f"{RBAC}/namespaces/team-a/rolebindings/powerful"
    async with user_session(server, "hal") as hal:

        async def can_read() -> bool:
            return (await call(server, hal, "GET", path))[0] == 200

        await eventually(can_read, what="hal's binding")
        _, current = await call(server, hal, "GET", path)
        relabelled = {**current, "metadata": {**current["metadata"], "labels": {"x": "y"}}}
        status, refused = await call(server, hal, "PUT", path, relabelled)
        assert status == 403 and "not currently held" in refused["message"]
        finalized = {**current, "metadata": {**current["metadata"], "finalizers": ["example.com/keep"]}}
        status, updated = await call(server, hal, "PUT", path, finalized)
        assert status == 200, updated
        assert updated["metadata"]["finalizers"] == ["example.com/keep"]


def test_gc_fields_are_the_only_free_changes():
    old = {"metadata": {"name": "r", "resourceVersion": "5"}, "rules": [READ_PODS]}
    owned = {
        "metadata": {"name": "r", "ownerReferences": [{"uid": "u"}], "finalizers": ["f"]},
        "rules": [READ_PODS],
    }
    assert only_gc_fields_change(owned, old)
    assert not only_gc_fields_change({**owned, "rules": []}, old)
    assert not only_gc_fields_change(
        {"metadata": {"name": "r", "labels": {"a": "b"}}, "rules": [READ_PODS]}, old
    )
