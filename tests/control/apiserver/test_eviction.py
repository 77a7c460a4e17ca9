"""``pods/<name>/eviction`` edge cases (the budget arithmetic is in tests/control/controllers/
test_disruption.py, with the controller that computes it)."""

from __future__ import annotations

from typing import Any

from tests.control.apiserver.conftest import RunningServer

PODS = "/api/v1/namespaces/default/pods"
PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"


def pod(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]},
    }


def eviction(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}, **extra}


async def set_running(server: RunningServer, name: str) -> None:
    status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    code, _ = await server.request(
        "PATCH", f"{PODS}/{name}/status", body=status, content_type="application/merge-patch+json"
    )
    assert code == 200


async def test_pending_pods_are_evicted_without_a_budget_check(apiserver: RunningServer) -> None:
    await apiserver.request("POST", PODS, body=pod("p"))
    await apiserver.request(
        "POST", PDBS, body={"metadata": {"name": "all"}, "spec": {"selector": {}, "minAvailable": 5}}
    )
    code, body = await apiserver.request("POST", f"{PODS}/p/eviction", body=eviction("p"))
    assert (code, body["status"]) == (201, "Success")
    code, gone = await apiserver.request("GET", f"{PODS}/p")
    assert code == 404 or gone["metadata"].get("deletionTimestamp")


async def test_bad_evictions(apiserver: RunningServer) -> None:
    await apiserver.request("POST", PODS, body=pod("q"))
    await set_running(apiserver, "q")
    code, body = await apiserver.request("POST", f"{PODS}/q/eviction", body=eviction("other"))
    assert (code, body["message"]) == (400, "name in URL does not match name in Eviction object")
    code, body = await apiserver.request("POST", f"{PODS}/missing/eviction", body=eviction("missing"))
    assert (code, body["message"]) == (404, 'pods "missing" not found')
    for name in ("one", "two"):
        await apiserver.request(
            "POST",
            PDBS,
            body={"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": "web"}}}},
        )
    code, body = await apiserver.request("POST", f"{PODS}/q/eviction", body=eviction("q"))
    assert code == 500
    assert (
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        in (body["message"])
    )
    # a budget the controller has not processed yet refuses (429) rather than guessing
    await apiserver.request("DELETE", f"{PDBS}/two")
    code, body = await apiserver.request("POST", f"{PODS}/q/eviction", body=eviction("q"))
    assert code == 429
    assert (
        body["details"]["causes"][0]["message"]
        == "The disruption budget one is still being processed by the server."
    )
    code, still = await apiserver.request("GET", f"{PODS}/q")
    assert code == 200 and not still["metadata"].get("deletionTimestamp")


async def test_a_dry_run_eviction_changes_nothing(apiserver: RunningServer) -> None:
    await apiserver.request("POST", PODS, body=pod("r"))
    await set_running(apiserver, "r")
    code, _ = await apiserver.request(
        "POST", f"{PODS}/r/eviction", body=eviction("r"), params={"dryRun": "All"}
    )
    assert code == 201
    code, still = await apiserver.request("GET", f"{PODS}/r")
    assert code == 200 and not still["metadata"].get("deletionTimestamp")


async def test_discovery_offers_eviction_as_kubectl_drain_expects(apiserver: RunningServer) -> None:
    _, resources = await apiserver.request("GET", "/api/v1")
    found = {r["name"]: r for r in resources["resources"]}["pods/eviction"]
    assert (found["group"], found["version"], found["kind"], found["verbs"]) == (
        "policy",
        "v1",
        "Eviction",
        ["create"],
    )
