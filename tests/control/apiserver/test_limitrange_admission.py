"""The LimitRanger admission plugin through the real API server: Container defaults and the
limit-ranger annotation, min/max/ratio refusals for containers, pods and claims in upstream's
words, and the pure checks on their own."""

from __future__ import annotations

from typing import Any

import pytest

from control.apiserver.limitrange_admission import aggregate, validate_claim, validate_pod
from control.client import errors
from control.client.config import load_kubeconfig
from control.client.rest import Resource, RESTClient
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)

LIMIT_RANGES = Resource(group="", version="v1", plural="limitranges", kind="LimitRange")
QUOTAS = Resource(group="", version="v1", plural="resourcequotas", kind="ResourceQuota")
PODS = Resource(group="", version="v1", plural="pods", kind="Pod")
CLAIMS = Resource(group="", version="v1", plural="persistentvolumeclaims", kind="PersistentVolumeClaim")


@pytest.fixture
async def client(apiserver) -> Any:  # noqa: F811
    async with RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig")) as client:
        yield client


async def limit_range(client: RESTClient, *items: dict[str, Any], name: str = "limits") -> dict[str, Any]:
    return await client.create(
        LIMIT_RANGES, {"metadata": {"name": name}, "spec": {"limits": list(items)}}, namespace="default"
    )


def pod(name: str, *containers: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": list(containers) or [{"name": "app", "image": "busybox"}]}
    if init:
        spec["initContainers"] = list(init)
    return {"metadata": {"name": name}, "spec": spec}


def container(name: str, *, requests: dict | None = None, limits: dict | None = None) -> dict[str, Any]:
    resources = {key: value for key, value in (("requests", requests), ("limits", limits)) if value}
    return {"name": name, "image": "busybox", "resources": resources}


async def test_container_defaults_fill_what_containers_leave_out(client: RESTClient) -> None:
    created = await limit_range(
        client,
        {
            "type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "100m"},
        },
    )
    # defaulting: defaultRequest memory falls back to the default limit
    assert created["spec"]["limits"][0]["defaultRequest"] == {"cpu": "100m", "memory": "256Mi"}
    admitted = await client.create(
        PODS,
        pod(
            "web",
            container("app"),
            container("side", limits={"cpu": "1"}),
            init=(container("setup", requests={"memory": "64Mi"}),),
        ),
        namespace="default",
    )
    app, side = admitted["spec"]["containers"]
    assert app["resources"] == {
        "limits": {"cpu": "500m", "memory": "256Mi"},
        "requests": {"cpu": "100m", "memory": "256Mi"},
    }
    # a limit without a request had its request defaulted to it before admission (pod defaulting)
    assert side["resources"] == {
        "limits": {"cpu": "1", "memory": "256Mi"},
        "requests": {"cpu": "1", "memory": "256Mi"},
    }
    assert admitted["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app; "
        "memory request for container side; memory limit for container side; "
        "cpu request for init container setup; cpu, memory limit for init container setup"
    )
    assert admitted["status"]["qosClass"] == "Burstable"


async def test_the_qos_class_follows_the_defaulted_resources(client: RESTClient) -> None:
    await limit_range(client, {"type": "Container", "default": {"cpu": "200m", "memory": "64Mi"}})
    admitted = await client.create(PODS, pod("plain"), namespace="default")
    # default request = default limit for both: Guaranteed, not the BestEffort the bare pod had
    assert admitted["status"]["qosClass"] == "Guaranteed"


async def test_a_pod_with_everything_set_is_not_annotated(client: RESTClient) -> None:
    await limit_range(client, {"type": "Container", "default": {"cpu": "1"}})
    admitted = await client.create(
        PODS, pod("full", container("app", requests={"cpu": "1"}, limits={"cpu": "1"})), namespace="default"
    )
    assert "kubernetes.io/limit-ranger" not in (admitted["metadata"].get("annotations") or {})


async def test_container_bounds_refuse_with_upstreams_words(client: RESTClient) -> None:
    await limit_range(client, {"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "100m"}})
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(PODS, pod("big", container("app", limits={"cpu": "2"})), namespace="default")
    assert refused.value.code == 403
    assert refused.value.message == (
        'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
    )
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(
            PODS,
            pod("tiny", container("app", requests={"cpu": "50m"}, limits={"cpu": "50m"})),
            namespace="default",
        )
    assert (
        refused.value.message
        == 'pods "tiny" is forbidden: minimum cpu usage per Container is 100m, but request is 50m'
    )
    admitted = await client.create(PODS, pod("ok"), namespace="default")
    assert admitted["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "1"},
        "requests": {"cpu": "1"},  # max defaults the default limit, which defaults the request before min
    }


async def test_pod_bounds_and_ratios_aggregate_several_violations(client: RESTClient) -> None:
    await limit_range(
        client,
        {"type": "Pod", "max": {"memory": "1Gi"}},
        {"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
    )
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(
            PODS,
            pod(
                "greedy",
                container(
                    "a",
                    requests={"cpu": "100m", "memory": "512Mi"},
                    limits={"cpu": "500m", "memory": "768Mi"},
                ),
                container(
                    "b", requests={"cpu": "1", "memory": "256Mi"}, limits={"cpu": "1", "memory": "512Mi"}
                ),
            ),
            namespace="default",
        )
    assert refused.value.message == (
        'pods "greedy" is forbidden: [maximum memory usage per Pod is 1Gi, but limit is 1280Mi, '
        "cpu max limit to request ratio per Container is 2, but provided ratio is 5.000000]"
    )


async def test_claims_are_bounded_by_their_storage_request(client: RESTClient) -> None:
    await limit_range(
        client, {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "5Gi"}}
    )
    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
    }
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(CLAIMS, claim, namespace="default")
    assert refused.value.message == (
        'persistentvolumeclaims "data" is forbidden: maximum storage usage per PersistentVolumeClaim is 5Gi, '
        "but request is 10Gi"
    )
    claim["spec"]["resources"]["requests"]["storage"] = "2Gi"
    await client.create(CLAIMS, claim, namespace="default")


async def test_limit_range_defaults_are_what_the_quota_charges(client: RESTClient) -> None:
    await limit_range(client, {"type": "Container", "default": {"cpu": "300m"}})
    created = await client.create(
        QUOTAS, {"metadata": {"name": "cpu"}, "spec": {"hard": {"limits.cpu": "1"}}}, namespace="default"
    )
    created["status"] = {"hard": {"limits.cpu": "1"}, "used": {"limits.cpu": "0"}}
    await client.replace(QUOTAS, created, subresource="status")
    # without the limit range the quota would refuse "must specify limits.cpu"
    await client.create(PODS, pod("one"), namespace="default")
    used = (await client.get(QUOTAS, "cpu", namespace="default"))["status"]["used"]
    assert used == {"limits.cpu": "300m"}


def test_the_checks_report_missing_values() -> None:
    limits = {"spec": {"limits": [{"type": "Container", "min": {"memory": "1Mi"}, "max": {"cpu": "1"}}]}}
    assert validate_pod(limits, pod("p")) == [
        "minimum memory usage per Container is 1Mi.  No request is specified",
        "maximum cpu usage per Container is 1.  No limit is specified",
    ]
    ratio = {"spec": {"limits": [{"type": "Pod", "maxLimitRequestRatio": {"cpu": "3"}}]}}
    assert validate_pod(ratio, pod("p", container("a", limits={"cpu": "1"}))) == [
        "cpu max limit to request ratio per Pod is 3, but no request is specified or request is 0"
    ]
    claims = {"spec": {"limits": [{"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}}]}}
    assert validate_claim(claims, {"spec": {}}) == [
        "maximum storage usage per PersistentVolumeClaim is 1Gi.  No request is specified"
    ]
    assert validate_claim({"spec": {}}, {"spec": {}}) == []


def test_aggregate_deduplicates_and_brackets_several() -> None:
    assert aggregate(["a"]) == "a"
    assert aggregate(["a", "b", "a"]) == "[a, b]"
