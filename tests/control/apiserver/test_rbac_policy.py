"""The bootstrap RBAC policy: what a fresh RBAC-mode API server holds, and how a restart
restores what users removed from it without undoing what they added."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from control.apiserver.node_authorizer import NODE_RULES
from control.apiserver.rbac import uncovered_rules
from control.apiserver.rbac_policy import (
    AUTOUPDATE_ANNOTATION,
    cluster_role_bindings,
    cluster_roles,
    controller_service_accounts,
)
from control.controllers.manager import CONTROLLER_MODULES, CONTROLLER_SERVICE_ACCOUNTS
from tests.control.apiserver.conftest import RunningServer, running_apiserver

RBAC = "/apis/rbac.authorization.k8s.io/v1"


async def get(server: RunningServer, path: str) -> dict[str, Any]:
    status, body = await server.request("GET", path)
    assert status == 200, body
    return body


def by_name(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects}


def without_defaults(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in rule.items() if v} for rule in rules]


# --------------------------------------------------------------------------- the policy itself


def test_every_controller_has_its_own_role_and_binding():
    assert set(CONTROLLER_MODULES) == set(CONTROLLER_SERVICE_ACCOUNTS)
    assert set(controller_service_accounts()) == set(CONTROLLER_SERVICE_ACCOUNTS.values())
    roles = by_name(cluster_roles())
    bindings = by_name(cluster_role_bindings())
    for account in controller_service_accounts():
        name = f"system:controller:{account}"
        assert roles[name]["rules"], name
        assert bindings[name]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": name,
        }
        assert bindings[name]["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": "kube-system"}
        ]


def test_controller_roles_cover_what_kubelab_controllers_do_beyond_upstream():
    roles = by_name(cluster_roles())

    def grants(role: str, verb: str, group: str, resource: str) -> bool:
        wanted = {"verbs": [verb], "apiGroups": [group], "resources": [resource]}
        return not uncovered_rules(roles[f"system:controller:{role}"]["rules"], [wanted])

    assert grants("deployment-controller", "patch", "apps", "deployments")
    assert grants("job-controller", "delete", "batch", "jobs")
    assert grants(
        "clusterrole-aggregation-controller", "escalate", "rbac.authorization.k8s.io", "clusterroles"
    )
    assert grants("node-controller", "patch", "", "nodes")
    assert grants("replicaset-controller", "create", "events.k8s.io", "events")
    assert not grants("replicaset-controller", "get", "", "secrets")


def test_names_are_unique_and_every_object_is_marked():
    roles, bindings = cluster_roles(), cluster_role_bindings()
    assert len(by_name(roles)) == len(roles)
    assert len(by_name(bindings)) == len(bindings)
    for obj in (*roles, *bindings):
        assert obj["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        assert obj["metadata"]["annotations"] == {AUTOUPDATE_ANNOTATION: "true"}
    assert {b["roleRef"]["name"] for b in bindings} <= set(by_name(roles))


def test_admin_edit_and_view_hold_their_aggregated_rules():
    roles = by_name(cluster_roles())
    view, edit, admin = roles["view"], roles["edit"], roles["admin"]
    assert view["rules"] == roles["system:aggregate-to-view"]["rules"]
    assert edit["rules"] == roles["system:aggregate-to-edit"]["rules"] + view["rules"]
    assert admin["rules"] == edit["rules"] + roles["system:aggregate-to-admin"]["rules"]
    assert view["aggregationRule"] == {
        "clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]
    }


# --------------------------------------------------------------------------- on a server


async def test_a_fresh_server_holds_the_bootstrap_policy(tmp_path: Path):
    async with running_apiserver(tmp_path, authorization_modes=("RBAC",)) as server:
        roles = by_name((await get(server, f"{RBAC}/clusterroles"))["items"])
        bindings = by_name((await get(server, f"{RBAC}/clusterrolebindings"))["items"])
    expected_roles, expected_bindings = by_name(cluster_roles()), by_name(cluster_role_bindings())
    assert set(roles) == set(expected_roles)
    assert set(bindings) == set(expected_bindings)
    assert roles["cluster-admin"]["rules"] == [
        {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
        {"verbs": ["*"], "nonResourceURLs": ["*"]},
    ]
    assert without_defaults(roles["view"]["rules"]) == expected_roles["view"]["rules"]
    assert without_defaults(roles["system:node"]["rules"]) == without_defaults([dict(r) for r in NODE_RULES])
    assert bindings["cluster-admin"]["subjects"] == [
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:masters"}
    ]
    assert [s["name"] for s in bindings["system:public-info-viewer"]["subjects"]] == [
        "system:authenticated",
        "system:unauthenticated",
    ]
    assert [s["name"] for s in bindings["system:basic-user"]["subjects"]] == ["system:authenticated"]
    assert not bindings["system:node"].get("subjects")
    assert bindings["system:kube-scheduler"]["subjects"][0]["name"] == "system:kube-scheduler"
    assert bindings["system:volume-scheduler"]["subjects"][0]["name"] == "system:kube-scheduler"


async def test_a_restart_restores_what_was_removed_and_keeps_what_was_added(tmp_path: Path):
    custom_rule = {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}
    async with running_apiserver(tmp_path, authorization_modes=("RBAC",)) as server:
        basic = await get(server, f"{RBAC}/clusterroles/system:basic-user")
        original_basic_rules = basic["rules"]
        basic["rules"] = [original_basic_rules[0], custom_rule]
        basic["metadata"]["labels"]["team"] = "ours"
        status, body = await server.request("PUT", f"{RBAC}/clusterroles/system:basic-user", body=basic)
        assert status == 200, body

        pinned = await get(server, f"{RBAC}/clusterroles/system:public-info-viewer")
        pinned["metadata"]["annotations"][AUTOUPDATE_ANNOTATION] = "false"
        pinned["rules"] = [custom_rule]
        status, body = await server.request(
            "PUT", f"{RBAC}/clusterroles/system:public-info-viewer", body=pinned
        )
        assert status == 200, body

        discovery = await get(server, f"{RBAC}/clusterrolebindings/system:discovery")
        added_subject = {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "carol"}
        discovery["subjects"] = [added_subject]
        status, body = await server.request(
            "PUT", f"{RBAC}/clusterrolebindings/system:discovery", body=discovery
        )
        assert status == 200, body

        status, _ = await server.request("DELETE", f"{RBAC}/clusterroles/cluster-admin")
        assert status == 200
        # a roleRef cannot be updated: replace the binding with one to another role
        status, _ = await server.request("DELETE", f"{RBAC}/clusterrolebindings/system:kube-dns")
        assert status == 200
        moved = by_name(cluster_role_bindings())["system:kube-dns"]
        moved = {**moved, "roleRef": {**moved["roleRef"], "name": "view"}}
        status, body = await server.request("POST", f"{RBAC}/clusterrolebindings", body=moved)
        assert status == 201, body

    async with running_apiserver(tmp_path, authorization_modes=("RBAC",)) as server:
        basic = await get(server, f"{RBAC}/clusterroles/system:basic-user")
        assert not uncovered_rules(basic["rules"], original_basic_rules)  # restored
        assert custom_rule in basic["rules"]  # kept
        assert basic["metadata"]["labels"]["team"] == "ours"
        assert basic["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"

        pinned = await get(server, f"{RBAC}/clusterroles/system:public-info-viewer")
        assert pinned["rules"] == [custom_rule]  # autoupdate "false": left alone

        discovery = await get(server, f"{RBAC}/clusterrolebindings/system:discovery")
        assert [s["name"] for s in discovery["subjects"]] == ["carol", "system:authenticated"]

        admin = await get(server, f"{RBAC}/clusterroles/cluster-admin")
        assert admin["rules"][0]["verbs"] == ["*"]

        dns = await get(server, f"{RBAC}/clusterrolebindings/system:kube-dns")
        assert dns["roleRef"]["name"] == "system:kube-dns"


async def test_a_restart_without_changes_writes_nothing(tmp_path: Path):
    async with running_apiserver(tmp_path, authorization_modes=("RBAC",)) as server:
        before = await get(server, f"{RBAC}/clusterroles")
    async with running_apiserver(tmp_path, authorization_modes=("RBAC",)) as server:
        after = await get(server, f"{RBAC}/clusterroles")
    assert {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in before["items"]} == {
        o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in after["items"]
    }
