"""Local APIServices: one per served group/version, kept as kube-aggregator's autoregister,
crdRegistration and local availability controllers keep them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from control.apiserver.apiservice_registration import (
    AUTOMANAGED_LABEL,
    BUILTIN_PRIORITIES,
    api_service_name,
    builtin_api_services,
    custom_api_services,
    local_available_condition,
)
from control.apiserver.custom_resources import resource_types
from control.resources.builtin import builtin_registry
from tests.control.apiserver.conftest import RunningServer, running_apiserver
from tests.control.apiserver.test_custom_resources import until

APISERVICES = "/apis/apiregistration.k8s.io/v1/apiservices"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def crd(group: str, *versions: tuple[str, bool]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": name,
                    "served": served,
                    "storage": index == 0,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
                for index, (name, served) in enumerate(versions)
            ],
        },
    }


async def get(server: RunningServer, name: str) -> dict[str, Any] | None:
    status, body = await server.request("GET", f"{APISERVICES}/{name}")
    return body if status == 200 else None


def available(obj: dict[str, Any] | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(
        c.get("type") == "Available"
        and c.get("status") == "True"
        and c.get("reason") == "Local"
        and c.get("message") == "Local APIServices are always available"
        for c in conditions
    )


async def available_apiservice(server: RunningServer, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await get(server, name)
        return obj if available(obj) else None

    return await until(check)


# --- the pure parts ------------------------------------------------------------------------------


def test_names_follow_the_apiservice_rule() -> None:
    assert api_service_name("", "v1") == "v1."
    assert api_service_name("apps", "v1") == "v1.apps"
    assert api_service_name("stable.example.com", "v1beta1") == "v1beta1.stable.example.com"


def test_builtins_are_wanted_on_start_with_upstreams_priorities() -> None:
    wanted = builtin_api_services(builtin_registry())
    for group, version in builtin_registry().group_versions():
        assert api_service_name(group, version) in wanted, (group, version)
    assert all(w.managed == "onstart" for w in wanted.values())
    assert wanted["v1."].spec == {
        "group": "",
        "version": "v1",
        "groupPriorityMinimum": 18000,
        "versionPriority": 1,
    }
    assert BUILTIN_PRIORITIES[("apps", "v1")] == (17800, 15)
    assert BUILTIN_PRIORITIES[("rbac.authorization.k8s.io", "v1")] == (17000, 15)
    assert BUILTIN_PRIORITIES[("apiextensions.k8s.io", "v1")] == (16700, 15)
    assert BUILTIN_PRIORITIES[("autoscaling", "v2")] == (17500, 30)


def test_a_builtin_missing_from_the_table_gets_no_apiservice() -> None:
    registry = builtin_registry()
    for rt in resource_types(
        crd("apps", ("v1", True))
    ):  # a CRD in a built-in group/version is the built-in's
        registry.add(rt)
    builtin = builtin_api_services(registry)
    assert custom_api_services(registry, builtin=builtin) == {}
    unknown = builtin_registry()
    deployments = next(rt for rt in unknown if rt.group == "apps")
    unknown.add(dataclasses.replace(deployments, group="unlisted.example.com"))
    assert "v1.unlisted.example.com" not in builtin_api_services(unknown)


def test_crd_versions_are_wanted_continuously_only_while_served() -> None:
    registry = builtin_registry()
    for rt in resource_types(crd("stable.example.com", ("v1", True), ("v2", False))):
        registry.add(rt)
    wanted = custom_api_services(registry, builtin=builtin_api_services(registry))
    assert list(wanted) == ["v1.stable.example.com"]
    assert wanted["v1.stable.example.com"].managed == "true"
    assert wanted["v1.stable.example.com"].spec["groupPriorityMinimum"] == 1000
    assert wanted["v1.stable.example.com"].spec["versionPriority"] == 100


def test_the_local_condition_keeps_its_transition_time_while_true() -> None:
    fresh = local_available_condition({}, now="2026-01-02T00:00:00Z")
    assert fresh == {
        "type": "Available",
        "status": "True",
        "lastTransitionTime": "2026-01-02T00:00:00Z",
        "reason": "Local",
        "message": "Local APIServices are always available",
    }
    was_true = {
        "status": {
            "conditions": [{**fresh, "reason": "Passed", "lastTransitionTime": "2025-01-01T00:00:00Z"}]
        }
    }
    assert local_available_condition(was_true, now="2026-01-02T00:00:00Z")["lastTransitionTime"] == (
        "2025-01-01T00:00:00Z"
    )
    was_false = {
        "status": {"conditions": [{**fresh, "status": "False", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}
    }
    assert local_available_condition(was_false, now="2026-01-02T00:00:00Z")["lastTransitionTime"] == (
        "2026-01-02T00:00:00Z"
    )


# --- against a running API server -----------------------------------------------------------------


async def test_every_served_group_version_has_a_local_available_apiservice(apiserver: RunningServer) -> None:
    for group, version in builtin_registry().group_versions():
        obj = await available_apiservice(apiserver, api_service_name(group, version))
        assert obj["metadata"]["labels"][AUTOMANAGED_LABEL] == "onstart"
        assert "service" not in obj["spec"] or obj["spec"]["service"] is None
    expected = {
        "v1.": (18000, 1),
        "v1.apps": (17800, 15),
        "v1.rbac.authorization.k8s.io": (17000, 15),
        "v1.apiextensions.k8s.io": (16700, 15),
    }
    for name, (group_priority, version_priority) in expected.items():
        spec = (await get(apiserver, name) or {})["spec"]
        assert (spec["groupPriorityMinimum"], spec["versionPriority"]) == (
            group_priority,
            version_priority,
        ), name
    assert (await get(apiserver, "v1."))["spec"]["group"] == ""


async def test_the_table_lists_them_as_kubectl_shows_them(apiserver: RunningServer) -> None:
    await available_apiservice(apiserver, "v1.apps")
    status, table = await apiserver.request("GET", APISERVICES, headers={"Accept": TABLE})
    assert status == 200
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Service", "Available", "Age"]
    rows = {row["cells"][0]: row["cells"][1:3] for row in table["rows"]}
    assert rows["v1.apps"] == ["Local", "True"]


async def test_a_crd_version_gets_its_apiservice_and_loses_it_with_the_crd(apiserver: RunningServer) -> None:
    status, _ = await apiserver.request(
        "POST", CRDS, body=crd("stable.example.com", ("v1", True), ("v2", False))
    )
    assert status == 201
    obj = await available_apiservice(apiserver, "v1.stable.example.com")
    assert obj["metadata"]["labels"][AUTOMANAGED_LABEL] == "true"
    assert obj["spec"] == {
        "group": "stable.example.com",
        "version": "v1",
        "groupPriorityMinimum": 1000,
        "versionPriority": 100,
    }
    assert await get(apiserver, "v2.stable.example.com") is None  # not served, no APIService

    status, _ = await apiserver.request("DELETE", f"{CRDS}/widgets.stable.example.com")
    assert status == 200

    async def gone() -> bool:
        return await get(apiserver, "v1.stable.example.com") is None

    await until(gone)


async def test_an_edited_crd_apiservice_is_put_back(apiserver: RunningServer) -> None:
    await apiserver.request("POST", CRDS, body=crd("edit.example.com", ("v1", True)))
    await available_apiservice(apiserver, "v1.edit.example.com")
    status, _ = await apiserver.request(
        "PATCH",
        f"{APISERVICES}/v1.edit.example.com",
        body={"spec": {"versionPriority": 5}},
        content_type="application/merge-patch+json",
    )
    assert status == 200

    async def restored() -> bool:
        obj = await get(apiserver, "v1.edit.example.com")
        return obj is not None and obj["spec"]["versionPriority"] == 100

    await until(restored)


async def test_a_deleted_crd_apiservice_is_created_again(apiserver: RunningServer) -> None:
    await apiserver.request("POST", CRDS, body=crd("again.example.com", ("v1", True)))
    first = await available_apiservice(apiserver, "v1.again.example.com")
    status, _ = await apiserver.request("DELETE", f"{APISERVICES}/v1.again.example.com")
    assert status == 200

    async def recreated() -> dict[str, Any] | None:
        obj = await get(apiserver, "v1.again.example.com")
        return obj if obj is not None and obj["metadata"]["uid"] != first["metadata"]["uid"] else None

    await until(recreated)


async def test_an_edited_builtin_is_put_back_on_the_next_start(tmp_path: Path) -> None:
    async with running_apiserver(tmp_path) as server:
        await available_apiservice(server, "v1.apps")
        status, _ = await server.request(
            "PATCH",
            f"{APISERVICES}/v1.apps",
            body={"spec": {"groupPriorityMinimum": 5}},
            content_type="application/merge-patch+json",
        )
        assert status == 200
    async with running_apiserver(tmp_path) as server:

        async def restored() -> bool:
            obj = await get(server, "v1.apps")
            return obj is not None and obj["spec"]["groupPriorityMinimum"] == 17800

        await until(restored)


async def test_remote_and_unlabelled_apiservices_are_left_alone(apiserver: RunningServer) -> None:
    remote = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        # automanaged and not wanted: autoregister alone would delete it; spec.service keeps it
        "metadata": {"name": "v1beta1.metrics.example.com", "labels": {AUTOMANAGED_LABEL: "true"}},
        "spec": {
            "group": "metrics.example.com",
            "version": "v1beta1",
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
            "insecureSkipTLSVerify": True,
            "service": {"namespace": "kube-system", "name": "metrics", "port": 443},
        },
    }
    status, _ = await apiserver.request("POST", APISERVICES, body=remote)
    assert status == 201
    await apiserver.request("POST", CRDS, body=crd("mine.example.com", ("v1", True)))
    await available_apiservice(apiserver, "v1.mine.example.com")
    status, _ = await apiserver.request(
        "PATCH",
        f"{APISERVICES}/v1.mine.example.com",
        body={"metadata": {"labels": {AUTOMANAGED_LABEL: None}}, "spec": {"versionPriority": 7}},
        content_type="application/merge-patch+json",
    )
    assert status == 200
    # A later change the controller must process: once its APIService is there, the earlier ones were seen.
    await apiserver.request("POST", CRDS, body=crd("barrier.example.com", ("v1", True)))
    await available_apiservice(apiserver, "v1.barrier.example.com")

    kept = await get(apiserver, "v1beta1.metrics.example.com")
    assert kept is not None and kept["spec"]["service"]["name"] == "metrics"
    assert not available(kept)  # never marked Local
    unlabelled = await get(apiserver, "v1.mine.example.com")
    assert unlabelled is not None and unlabelled["spec"]["versionPriority"] == 7
