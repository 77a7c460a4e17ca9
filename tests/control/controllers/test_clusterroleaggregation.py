"""The ClusterRole aggregation controller against the real API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from control.controllers import clusterroleaggregation
from control.controllers.clusterroleaggregation import CLUSTER_ROLES, ClusterRoleAggregationController
from control.resources.rbac_aggregation import aggregated_rules, same_rules
from control.resources.selectors import SelectorError
from tests.control.apiserver.conftest import apiserver, running_apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running

R1 = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}
R2 = {"verbs": ["list"], "apiGroups": [""], "resources": ["services"]}
R3 = {"verbs": ["watch"], "apiGroups": ["apps"], "resources": ["deployments"]}
R4 = {"verbs": ["get"], "nonResourceURLs": ["/metrics"]}


@pytest.fixture
async def cluster(apiserver):  # noqa: F811
    async with running(apiserver, clusterroleaggregation.new_controller) as cluster:
        yield cluster


def cluster_role(
    name: str,
    *rules: dict[str, Any],
    labels: dict[str, str] | None = None,
    selectors: list[dict] | None = None,
) -> dict[str, Any]:
    role: dict[str, Any] = {"metadata": {"name": name, "labels": labels or {}}, "rules": list(rules)}
    if selectors is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return role


def clean(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in rule.items() if v} for rule in rules]


async def rules_become(cluster: Cluster, name: str, expected: list[dict[str, Any]]) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        role = await cluster.client.get(CLUSTER_ROLES, name)
        return role if clean(role.get("rules") or []) == expected else None

    return await cluster.wait_for(check, what=f"ClusterRole {name} to hold {expected}")


async def test_an_aggregated_role_follows_the_roles_it_selects(cluster):
    client = cluster.client
    await client.create(CLUSTER_ROLES, cluster_role("b-role", R2, labels={"agg": "yes"}))
    await client.create(CLUSTER_ROLES, cluster_role("a-role", R1, R2, labels={"agg": "yes"}))
    await client.create(CLUSTER_ROLES, cluster_role("unrelated", R3))
    await client.create(CLUSTER_ROLES, cluster_role("combined", selectors=[{"matchLabels": {"agg": "yes"}}]))
    # roles by name, each rule once
    await rules_become(cluster, "combined", [R1, R2])

    await client.create(CLUSTER_ROLES, cluster_role("c-role", R3, labels={"agg": "yes"}))
    await rules_become(cluster, "combined", [R1, R2, R3])

    a_role = await client.get(CLUSTER_ROLES, "a-role")
    a_role["metadata"]["labels"] = {}
    await client.replace(CLUSTER_ROLES, a_role)
    await rules_become(cluster, "combined", [R2, R3])

    await client.delete(CLUSTER_ROLES, "c-role")
    await rules_become(cluster, "combined", [R2])

    # rules written by hand into an aggregated role are replaced by the aggregation
    combined = await client.get(CLUSTER_ROLES, "combined")
    combined["rules"] = [R4]
    await client.replace(CLUSTER_ROLES, combined)
    await rules_become(cluster, "combined", [R2])


async def test_selectors_in_order_and_the_role_itself_excluded(cluster):
    client = cluster.client
    await client.create(CLUSTER_ROLES, cluster_role("z-first", R3, labels={"one": "1"}))
    await client.create(CLUSTER_ROLES, cluster_role("a-second", R1, labels={"two": "2"}))
    await client.create(
        CLUSTER_ROLES,
        cluster_role(
            "both",
            R4,
            labels={"one": "1"},  # matches its own selector: never aggregated into itself
            selectors=[
                {"matchLabels": {"one": "1"}},
                {"matchExpressions": [{"key": "two", "operator": "Exists"}]},
            ],
        ),
    )
    await rules_become(cluster, "both", [R3, R1])


async def test_a_settled_role_is_not_rewritten(cluster):
    client = cluster.client
    await client.create(CLUSTER_ROLES, cluster_role("source", R1, labels={"agg": "x"}))
    await client.create(CLUSTER_ROLES, cluster_role("sink", selectors=[{"matchLabels": {"agg": "x"}}]))
    settled = await rules_become(cluster, "sink", [R1])
    controller: ClusterRoleAggregationController = cluster.controllers[0]
    await controller.reconcile("sink")
    await controller.reconcile("no-such-role")  # gone: nothing to do
    await controller.reconcile("source")  # not aggregated: nothing to do
    again = await client.get(CLUSTER_ROLES, "sink")
    assert again["metadata"]["resourceVersion"] == settled["metadata"]["resourceVersion"]


async def test_the_bootstrap_view_edit_admin_chain_grows(tmp_path: Path):
    crontabs = {
        "verbs": ["get", "list", "watch"],
        "apiGroups": ["stable.example.com"],
        "resources": ["crontabs"],
    }
    async with (
        running_apiserver(tmp_path, authorization_modes=("RBAC",)) as server,
        running(server, clusterroleaggregation.new_controller) as cluster,
    ):
        await cluster.client.create(
            CLUSTER_ROLES,
            cluster_role(
                "crontab-viewer", crontabs, labels={"rbac.authorization.k8s.io/aggregate-to-view": "true"}
            ),
        )
        for name in ("view", "edit", "admin"):

            async def holds(role_name: str = name) -> bool:
                role = await cluster.client.get(CLUSTER_ROLES, role_name)
                return crontabs in clean(role["rules"])

            await cluster.wait_for(holds, what=f"{name} to hold the crontab rule")


def test_aggregated_rules_dedupe_semantically():
    roles = [
        cluster_role("b", {**R1, "resourceNames": []}, labels={"k": "v"}),
        cluster_role("a", R1, R2, labels={"k": "v"}),
    ]
    rules = aggregated_rules(name="agg", selectors=[{"matchLabels": {"k": "v"}}], cluster_roles=roles)
    assert rules == [R1, R2]  # "a" first; "b"'s rule equals R1 once empty lists are ignored
    assert same_rules([{**R1, "resourceNames": []}], [R1])
    assert not same_rules([R1, R2], [R2, R1])  # order matters: written only when it changes
    assert aggregated_rules(name="agg", selectors=[], cluster_roles=roles) == []


def test_an_invalid_selector_is_refused():
    with pytest.raises(SelectorError):
        aggregated_rules(
            name="agg",
            selectors=[{"matchExpressions": [{"key": "k", "operator": "Near"}]}],
            cluster_roles=[cluster_role("a", R1)],
        )
