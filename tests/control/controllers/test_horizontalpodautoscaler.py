"""The HorizontalPodAutoscaler controller against the real API server (in this loop, over HTTPS).

kubelab serves no metrics API, so a metric-driven sync takes upstream's failure path against the
real server (``pods.metrics.k8s.io`` is not found); the bounds, a target at zero and a missing
target need no metrics. The sync period is shortened so the tests wait for conditions, not 15 s.
The replica arithmetic is tested on plain values in ``test_replica_calculator.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from control.client.rest import RESTClient
from control.controllers.horizontalpodautoscaler import (
    COMPONENT,
    HORIZONTAL_POD_AUTOSCALERS,
    HorizontalController,
    milli_quantity,
    set_condition,
)
from control.controllers.kinds import DEPLOYMENTS, EVENTS, REPLICA_SETS
from control.controllers.manager import ControllerContext
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running

NS = "default"
NO_METRICS_API = "the server could not find the requested resource (get pods.metrics.k8s.io)"
CONDITION_MESSAGE = (
    "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get "
    f"metrics for resource cpu: unable to fetch metrics from resource metrics API: {NO_METRICS_API}"
)


def hpa_controller(ctx: ControllerContext) -> HorizontalController:
    return HorizontalController(
        client=ctx.client, informers=ctx.informers, recorder=ctx.recorder(COMPONENT), sync_period=0.1
    )


async def create_deployment(client: RESTClient, name: str, *, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return await client.create(
        DEPLOYMENTS,
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}
                        ]
                    },
                },
            },
        },
        namespace=NS,
    )


async def create_hpa(
    client: RESTClient, name: str, *, target: str, min_replicas: int = 1, max_replicas: int = 5
) -> dict[str, Any]:
    return await client.create(
        HORIZONTAL_POD_AUTOSCALERS,
        {
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ],
            },
        },
        namespace=NS,
    )


def conditions(hpa: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {
        c["type"]: (c["status"], c["reason"], c["message"])
        for c in (hpa.get("status") or {}).get("conditions") or ()
    }


async def wait_condition(cluster: Cluster, name: str, type: str, reason: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        hpa = await cluster.client.get(HORIZONTAL_POD_AUTOSCALERS, name, namespace=NS)
        return hpa if conditions(hpa).get(type, ("", "", ""))[1] == reason else None

    return await cluster.wait_for(check, what=f"HPA {name} condition {type} {reason}")


async def events_of(cluster: Cluster, name: str) -> dict[str, dict[str, Any]]:
    listed = await cluster.client.list(EVENTS, namespace=NS)
    return {
        event["reason"]: event
        for event in listed["items"]
        if event["involvedObject"].get("kind") == "HorizontalPodAutoscaler"
        and event["involvedObject"]["name"] == name
    }


async def wait_events(cluster: Cluster, name: str, *reasons: str) -> dict[str, dict[str, Any]]:
    async def check() -> dict[str, dict[str, Any]] | None:
        seen = await events_of(cluster, name)
        return seen if all(reason in seen for reason in reasons) else None

    return await cluster.wait_for(check, what=f"events {reasons} on HPA {name}")


async def test_without_a_metrics_api_the_hpa_reports_upstreams_conditions_and_events(apiserver):  # noqa: F811
    async with running(apiserver, hpa_controller) as cluster:
        await create_deployment(cluster.client, "web", replicas=2)
        await create_hpa(cluster.client, "web", target="web", min_replicas=1, max_replicas=5)
        hpa = await wait_condition(cluster, "web", "ScalingActive", "FailedGetResourceMetric")
        assert conditions(hpa) == {
            "AbleToScale": (
                "True",
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale",
            ),
            "ScalingActive": ("False", "FailedGetResourceMetric", CONDITION_MESSAGE),
        }
        status = hpa["status"]
        assert status["currentReplicas"] == 2
        assert status["desiredReplicas"] == 0
        assert "lastScaleTime" not in status
        assert "observedGeneration" not in status
        assert status["currentMetrics"] == [{"type": ""}]
        events = await wait_events(cluster, "web", "FailedGetResourceMetric", "FailedComputeMetricsReplicas")
        assert events["FailedGetResourceMetric"]["type"] == "Warning"
        assert events["FailedGetResourceMetric"]["message"] == CONDITION_MESSAGE.removeprefix(
            "the HPA was unable to compute the replica count: "
        )
        assert events["FailedComputeMetricsReplicas"]["message"] == (
            "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: "
            + CONDITION_MESSAGE.removeprefix("the HPA was unable to compute the replica count: ")
        )
        assert events["FailedComputeMetricsReplicas"]["source"] == {"component": "horizontal-pod-autoscaler"}
        deployment = await cluster.client.get(DEPLOYMENTS, "web", namespace=NS)
        assert deployment["spec"]["replicas"] == 2  # never rescaled on a failure


async def test_below_min_replicas_scales_the_deployment_up_to_the_minimum(apiserver):  # noqa: F811
    async with running(apiserver, hpa_controller) as cluster:
        await create_deployment(cluster.client, "low", replicas=1)
        await create_hpa(cluster.client, "low", target="low", min_replicas=3, max_replicas=5)

        async def scaled() -> bool:
            deployment = await cluster.client.get(DEPLOYMENTS, "low", namespace=NS)
            return deployment["spec"]["replicas"] == 3

        await cluster.wait_for(scaled, what="the deployment at 3 replicas")
        events = await wait_events(cluster, "low", "SuccessfulRescale")
        assert events["SuccessfulRescale"]["type"] == "Normal"
        assert events["SuccessfulRescale"]["message"] == (
            "New size: 3; reason: Current number of replicas below Spec.MinReplicas"
        )
        hpa = await cluster.client.get(HORIZONTAL_POD_AUTOSCALERS, "low", namespace=NS)
        assert hpa["status"]["lastScaleTime"]
        assert hpa["status"]["desiredReplicas"] == 3


async def test_above_max_replicas_scales_the_deployment_down_to_the_maximum(apiserver):  # noqa: F811
    async with running(apiserver, hpa_controller) as cluster:
        await create_deployment(cluster.client, "high", replicas=7)
        await create_hpa(cluster.client, "high", target="high", min_replicas=1, max_replicas=4)
        events = await wait_events(cluster, "high", "SuccessfulRescale")
        assert events["SuccessfulRescale"]["message"] == (
            "New size: 4; reason: Current number of replicas above Spec.MaxReplicas"
        )
        deployment = await cluster.client.get(DEPLOYMENTS, "high", namespace=NS)
        assert deployment["spec"]["replicas"] == 4


async def test_any_kind_with_a_scale_subresource_can_be_the_target(apiserver):  # noqa: F811
    async with running(apiserver, hpa_controller) as cluster:
        labels = {"app": "rs"}
        await cluster.client.create(
            REPLICA_SETS,
            {
                "metadata": {"name": "rs"},
                "spec": {
                    "replicas": 6,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "a", "image": "x"}]},
                    },
                },
            },
            namespace=NS,
        )
        await cluster.client.create(
            HORIZONTAL_POD_AUTOSCALERS,
            {
                "metadata": {"name": "rs"},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs"},
                    "maxReplicas": 2,
                },
            },
            namespace=NS,
        )

        async def scaled() -> bool:
            return (await cluster.client.get(REPLICA_SETS, "rs", namespace=NS))["spec"]["replicas"] == 2

        await cluster.wait_for(scaled, what="the ReplicaSet at 2 replicas")


async def test_a_target_at_zero_replicas_disables_scaling(apiserver):  # noqa: F811
    async with running(apiserver, hpa_controller) as cluster:
        await create_deployment(cluster.client, "idle", replicas=0)
        await create_hpa(cluster.client, "idle", target="idle", min_replicas=2, max_replicas=5)
        hpa = await wait_condition(cluster, "idle", "ScalingActive", "ScalingDisabled")
        assert conditions(hpa)["ScalingActive"] == (
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        )
        assert hpa["status"]["currentReplicas"] == 0
        assert hpa["status"]["desiredReplicas"] == 0
        deployment = await cluster.client.get(DEPLOYMENTS, "idle", namespace=NS)
        assert deployment["spec"]["replicas"] == 0
        assert "SuccessfulRescale" not in await events_of(cluster, "idle")


async def test_a_missing_target_gives_failed_get_scale(apiserver):  # noqa: F811
    async with running(apiserver, hpa_controller) as cluster:
        await create_hpa(cluster.client, "orphan", target="absent")
        hpa = await wait_condition(cluster, "orphan", "AbleToScale", "FailedGetScale")
        assert conditions(hpa)["AbleToScale"] == (
            "False",
            "FailedGetScale",
            'the HPA controller was unable to get the target\'s current scale: deployments.apps "absent" not found',
        )
        events = await wait_events(cluster, "orphan", "FailedGetScale")
        assert events["FailedGetScale"]["type"] == "Warning"
        assert events["FailedGetScale"]["message"] == 'deployments.apps "absent" not found'


async def test_an_unknown_target_kind_gives_failed_get_scale(apiserver):  # noqa: F811
    async with running(apiserver, hpa_controller) as cluster:
        await cluster.client.create(
            HORIZONTAL_POD_AUTOSCALERS,
            {
                "metadata": {"name": "odd"},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Widget", "name": "w"},
                    "maxReplicas": 3,
                },
            },
            namespace=NS,
        )
        hpa = await wait_condition(cluster, "odd", "AbleToScale", "FailedGetScale")
        assert conditions(hpa)["AbleToScale"][2] == (
            'the HPA controller was unable to get the target\'s current scale: no matches for kind "Widget" in group "apps"'
        )


async def test_kubectl_autoscale_raises_a_deployment_to_min_and_describe_shows_the_conditions(apiserver):  # noqa: F811
    async with running(apiserver, hpa_controller) as cluster:
        await create_deployment(cluster.client, "web", replicas=1)
        code, out, err = await apiserver.kubectl(
            "autoscale", "deployment", "web", "--min=2", "--max=5", "--cpu-percent=50"
        )
        assert code == 0, err
        assert "autoscaled" in out

        async def scaled() -> bool:
            deployment = await cluster.client.get(DEPLOYMENTS, "web", namespace=NS)
            return deployment["spec"]["replicas"] == 2

        await cluster.wait_for(scaled, what="the deployment at 2 replicas")
        await wait_condition(cluster, "web", "ScalingActive", "FailedGetResourceMetric")
        code, out, err = await apiserver.kubectl("describe", "hpa", "web")
        assert code == 0, err
        lines = [" ".join(line.split()) for line in out.splitlines()]
        assert (
            "AbleToScale True SucceededGetScale the HPA controller was able to get the target's current scale"
            in lines
        )
        assert f"ScalingActive False FailedGetResourceMetric {CONDITION_MESSAGE}" in lines
        assert "Deployment pods: 2 current / 2 desired" in lines
        assert any(
            line.startswith("Normal SuccessfulRescale")
            and line.endswith(
                "horizontal-pod-autoscaler New size: 2; reason: Current number of replicas below Spec.MinReplicas"
            )
            for line in lines
        )


def test_set_condition_moves_the_transition_time_only_when_the_status_flips():
    status: dict[str, Any] = {}
    first = datetime(2026, 1, 1, tzinfo=UTC)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    set_condition(status, type="AbleToScale", state="True", reason="A", message="a", now=first)
    set_condition(status, type="AbleToScale", state="True", reason="B", message="b", now=later)
    assert status["conditions"] == [
        {
            "type": "AbleToScale",
            "status": "True",
            "reason": "B",
            "message": "b",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]
    set_condition(status, type="AbleToScale", state="False", reason="C", message="c", now=later)
    assert status["conditions"][0]["lastTransitionTime"] == "2026-01-02T00:00:00Z"


def test_milli_quantities_print_as_resource_quantity_does():
    assert milli_quantity(250) == "250m"
    assert milli_quantity(2000) == "2"
    assert milli_quantity(0) == "0"
    assert milli_quantity(3_000_000) == "3k"
    assert milli_quantity(128 * 1024 * 1024 * 1000, binary=True) == "128Mi"
    assert milli_quantity(1500 * 1000, binary=True) == "1500"
