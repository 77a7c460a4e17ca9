"""HorizontalPodAutoscalers served at autoscaling/v1 and autoscaling/v2 over real HTTPS: one object
stored as v2, converted for v1 with upstream's annotations, seen by both versions' watches, with the
same Table row; and through real clients: kubectl (apply, get, explain, api-versions) and the
official Python client's ``AutoscalingV1Api``. The conversion rules are in
tests/control/resources/test_hpa_conversion.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import yaml
from kubernetes import client, config

from tests.control.apiserver.conftest import RunningServer

V1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
V2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
METRICS = "autoscaling.alpha.kubernetes.io/metrics"

V1_MANIFEST = """\
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 5
  targetCPUUtilizationPercentage: 60
"""

V2_MANIFEST = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
  - type: Pods
    pods:
      metric: {name: requests_per_second}
      target: {type: AverageValue, averageValue: "100"}
"""


def v1_hpa(name: str, **spec: object) -> dict:
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}, **spec},
    }


async def test_a_v1_hpa_is_stored_as_v2_and_read_back_as_v1(apiserver: RunningServer) -> None:
    code, created = await apiserver.request("POST", V1, body=v1_hpa("web", maxReplicas=4))
    assert code == 201, created
    assert created["apiVersion"] == "autoscaling/v1"
    assert created["spec"]["minReplicas"] == 1  # v1's default
    # The implicit cpu metric is explicit once stored, so the answer shows it as the percentage.
    assert created["spec"]["targetCPUUtilizationPercentage"] == 80
    assert created["status"] == {"currentReplicas": 0, "desiredReplicas": 0}

    code, as_v2 = await apiserver.request("GET", f"{V2}/web")
    assert code == 200
    assert as_v2["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
        }
    ]
    assert as_v2["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert as_v2["metadata"]["uid"] == created["metadata"]["uid"]

    code, as_v1 = await apiserver.request("GET", f"{V1}/web")
    assert code == 200 and as_v1["spec"]["targetCPUUtilizationPercentage"] == 80
    assert "annotations" not in as_v1["metadata"]


async def test_a_v1_read_and_write_back_keeps_every_v2_field(apiserver: RunningServer) -> None:
    body = yaml.safe_load(V2_MANIFEST)
    body["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 60}}
    code, original = await apiserver.request("POST", V2, body=body)
    assert code == 201, original

    code, as_v1 = await apiserver.request("GET", f"{V1}/api")
    assert code == 200
    assert as_v1["spec"]["targetCPUUtilizationPercentage"] == 70
    assert json.loads(as_v1["metadata"]["annotations"][METRICS]) == [
        {"type": "Pods", "pods": {"metricName": "requests_per_second", "targetAverageValue": "100"}}
    ]
    behavior = json.loads(as_v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/behavior"])
    assert behavior["ScaleDown"]["StabilizationWindowSeconds"] == 60

    as_v1["spec"]["maxReplicas"] = 12
    code, updated = await apiserver.request("PUT", f"{V1}/api", body=as_v1)
    assert code == 200, updated
    code, as_v2 = await apiserver.request("GET", f"{V2}/api")
    assert as_v2["spec"]["maxReplicas"] == 12
    assert {m["type"] for m in as_v2["spec"]["metrics"]} == {"Resource", "Pods"}
    assert sorted(as_v2["spec"]["metrics"], key=lambda m: m["type"]) == sorted(
        original["spec"]["metrics"], key=lambda m: m["type"]
    )
    assert as_v2["spec"]["behavior"] == original["spec"]["behavior"]
    assert "annotations" not in as_v2["metadata"]


async def test_v1_writes_are_validated_as_upstream_names_them(apiserver: RunningServer) -> None:
    code, status = await apiserver.request(
        "POST", V1, body=v1_hpa("bad", maxReplicas=3, targetCPUUtilizationPercentage=0)
    )
    assert code == 422
    assert status["message"] == (
        'HorizontalPodAutoscaler.autoscaling "bad" is invalid: '
        "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"
    )
    code, status = await apiserver.request("POST", V1, body=v1_hpa("bad", minReplicas=4, maxReplicas=2))
    assert code == 422
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.maxReplicas"]


async def test_watches_of_each_version_see_the_other_versions_writes(apiserver: RunningServer) -> None:
    code, seed = await apiserver.request("POST", V2, body=yaml.safe_load(V2_MANIFEST))
    assert code == 201
    query = {"watch": "true", "resourceVersion": seed["metadata"]["resourceVersion"]}
    async with (
        apiserver.session.get(apiserver.url + V1, params=query) as v1_watch,
        apiserver.session.get(apiserver.url + V2, params=query) as v2_watch,
    ):
        code, _ = await apiserver.request("POST", V1, body=v1_hpa("web", maxReplicas=3))
        assert code == 201

        async def first(response) -> dict:
            while True:
                line = await asyncio.wait_for(response.content.readline(), 10)
                event = orjson.loads(line)
                if event["type"] != "BOOKMARK":
                    return event

        from_v1, from_v2 = await first(v1_watch), await first(v2_watch)
    assert from_v1["object"]["apiVersion"] == "autoscaling/v1"
    assert from_v1["object"]["spec"]["targetCPUUtilizationPercentage"] == 80
    assert from_v2["object"]["apiVersion"] == "autoscaling/v2"
    assert from_v2["object"]["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80


async def test_both_versions_print_the_same_row(apiserver: RunningServer) -> None:
    code, _ = await apiserver.request("POST", V2, body=yaml.safe_load(V2_MANIFEST))
    assert code == 201
    code, v1_table = await apiserver.request("GET", V1, headers={"Accept": TABLE})
    code2, v2_table = await apiserver.request("GET", V2, headers={"Accept": TABLE})
    assert code == code2 == 200
    assert v1_table["columnDefinitions"] == v2_table["columnDefinitions"]
    v1_cells, v2_cells = v1_table["rows"][0]["cells"], v2_table["rows"][0]["cells"]
    assert v1_cells[:2] == v2_cells[:2] == ["api", "Deployment/api"]
    assert v1_cells[3:6] == v2_cells[3:6] == ["2", 10, 0]
    # Upstream prints the internal object; v1 carries the Pods metric in its annotation.
    assert (
        set(v1_cells[2].split(", "))
        == set(v2_cells[2].split(", "))
        == {
            "cpu: <unknown>/70%",
            "<unknown>/100",
        }
    )


async def test_discovery_prefers_v2_and_openapi_has_v1(apiserver: RunningServer) -> None:
    code, group = await apiserver.request("GET", "/apis/autoscaling")
    assert code == 200
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"]
    assert group["preferredVersion"]["version"] == "v2"
    code, resources = await apiserver.request("GET", "/apis/autoscaling/v1")
    hpa = next(r for r in resources["resources"] if r["name"] == "horizontalpodautoscalers")
    assert hpa["shortNames"] == ["hpa"] and hpa["kind"] == "HorizontalPodAutoscaler"
    code, v3 = await apiserver.request("GET", "/openapi/v3/apis/autoscaling/v1")
    assert code == 200
    assert "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler" in v3["components"]["schemas"]
    code, v2 = await apiserver.request("GET", "/openapi/v2")
    assert code == 200
    assert v2["definitions"]["io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"][
        "x-kubernetes-group-version-kind"
    ] == [{"group": "autoscaling", "kind": "HorizontalPodAutoscaler", "version": "v1"}]


# --- real clients ---------------------------------------------------------------------------------


async def kubectl(api: RunningServer, *args: str) -> str:
    code, out, err = await api.kubectl(*args)
    assert code == 0, err
    return out


async def test_kubectl_applies_and_reads_both_versions(apiserver: RunningServer, tmp_path: Path) -> None:
    manifest = tmp_path / "hpas.yaml"
    manifest.write_text(V1_MANIFEST + "---\n" + V2_MANIFEST)
    out = await kubectl(apiserver, "apply", "-f", str(manifest))
    assert "horizontalpodautoscaler.autoscaling/web created" in out
    assert "horizontalpodautoscaler.autoscaling/api created" in out

    assert "autoscaling/v1" in (await kubectl(apiserver, "api-versions")).split()
    table = await kubectl(apiserver, "get", "hpa")
    header, *rows = table.splitlines()
    assert header.split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert rows[1].split()[:3] == ["web", "Deployment/web", "cpu:"]

    web = yaml.safe_load(await kubectl(apiserver, "get", "hpa.v2.autoscaling", "web", "-o", "yaml"))
    assert web["apiVersion"] == "autoscaling/v2"
    assert web["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
        }
    ]
    assert web["spec"]["minReplicas"] == 1

    api = yaml.safe_load(
        await kubectl(apiserver, "get", "horizontalpodautoscalers.v1.autoscaling", "api", "-o", "yaml")
    )
    assert api["apiVersion"] == "autoscaling/v1"
    assert api["spec"]["targetCPUUtilizationPercentage"] == 70
    assert json.loads(api["metadata"]["annotations"][METRICS]) == [
        {"type": "Pods", "pods": {"metricName": "requests_per_second", "targetAverageValue": "100"}}
    ]

    # Applying the v1 manifest again changes nothing (the last-applied state round-trips).
    out = await kubectl(apiserver, "apply", "-f", str(manifest))
    assert "horizontalpodautoscaler.autoscaling/web unchanged" in out

    explained = await kubectl(apiserver, "explain", "hpa", "--api-version=autoscaling/v1")
    assert "VERSION:    v1" in explained
    explained = await kubectl(apiserver, "explain", "hpa.spec", "--api-version=autoscaling/v1")
    assert "targetCPUUtilizationPercentage" in explained


async def test_the_python_client_autoscaling_v1_api(apiserver: RunningServer) -> None:
    def run() -> tuple[object, ...]:
        api_client = config.new_client_from_config(config_file=str(apiserver.data_dir / "kubeconfig"))
        try:
            v1 = client.AutoscalingV1Api(api_client)
            v2 = client.AutoscalingV2Api(api_client)
            created = v1.create_namespaced_horizontal_pod_autoscaler(
                "default",
                client.V1HorizontalPodAutoscaler(
                    metadata=client.V1ObjectMeta(name="py"),
                    spec=client.V1HorizontalPodAutoscalerSpec(
                        scale_target_ref=client.V1CrossVersionObjectReference(
                            api_version="apps/v1", kind="Deployment", name="py"
                        ),
                        max_replicas=3,
                        target_cpu_utilization_percentage=50,
                    ),
                ),
            )
            listed = v1.list_namespaced_horizontal_pod_autoscaler("default")
            patched = v1.patch_namespaced_horizontal_pod_autoscaler(
                "py", "default", {"spec": {"maxReplicas": 6}}
            )
            read_v2 = v2.read_namespaced_horizontal_pod_autoscaler("py", "default")
            status = v1.read_namespaced_horizontal_pod_autoscaler_status("py", "default")
            v1.delete_namespaced_horizontal_pod_autoscaler("py", "default")
            remaining = v2.list_namespaced_horizontal_pod_autoscaler("default")
            return (
                created.spec.min_replicas,
                [item.metadata.name for item in listed.items],
                patched.spec.max_replicas,
                read_v2.spec.metrics[0].resource.target.average_utilization,
                read_v2.spec.max_replicas,
                status.status.desired_replicas,
                remaining.items,
            )
        finally:
            api_client.close()

    assert await asyncio.to_thread(run) == (1, ["py"], 6, 50, 6, 0, [])


async def test_a_v1_put_from_scratch_keeps_the_v2_status(apiserver: RunningServer) -> None:
    code, created = await apiserver.request("POST", V2, body=yaml.safe_load(V2_MANIFEST))
    assert code == 201
    condition = {
        "type": "AbleToScale",
        "status": "True",
        "lastTransitionTime": "2026-11-26T10:00:00Z",
        "reason": "ReadyForNewScale",
    }
    current = [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "current": {"averageValue": "90m", "averageUtilization": 45}},
        }
    ]
    status_body = {
        **created,
        "status": {"currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": current},
    }
    status_body["status"]["conditions"] = [condition]
    code, with_status = await apiserver.request("PUT", f"{V2}/api/status", body=status_body)
    assert code == 200, with_status

    fresh = v1_hpa("api", minReplicas=2, maxReplicas=8, targetCPUUtilizationPercentage=70)
    fresh["metadata"]["resourceVersion"] = with_status["metadata"]["resourceVersion"]
    code, updated = await apiserver.request("PUT", f"{V1}/api", body=fresh)
    assert code == 200, updated
    assert updated["status"]["currentCPUUtilizationPercentage"] == 45

    code, as_v2 = await apiserver.request("GET", f"{V2}/api")
    assert as_v2["spec"]["maxReplicas"] == 8
    assert as_v2["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    ]
    assert as_v2["status"]["conditions"] == [condition]
    assert as_v2["status"]["currentMetrics"] == current
    assert as_v2["status"]["desiredReplicas"] == 3


async def test_a_dry_run_answers_what_the_real_write_reads_back(apiserver: RunningServer) -> None:
    def comparable(obj: dict) -> dict:
        meta = {
            k: v
            for k, v in obj["metadata"].items()
            if k not in ("uid", "creationTimestamp", "resourceVersion")
        }
        return {**obj, "metadata": meta}

    body = v1_hpa("dry", maxReplicas=4)  # no target: v1 reads back the default 80% cpu
    code, dry = await apiserver.request("POST", V1, body=body, params={"dryRun": "All"})
    assert code == 201, dry
    assert dry["spec"]["targetCPUUtilizationPercentage"] == 80 and "resourceVersion" not in dry["metadata"]
    code, real = await apiserver.request("POST", V1, body=body)
    assert code == 201, real
    assert comparable(dry) == comparable(real)
    code, dry_update = await apiserver.request(
        "PATCH",
        f"{V1}/dry",
        body={"spec": {"maxReplicas": 6}},
        content_type="application/merge-patch+json",
        params={"dryRun": "All"},
    )
    assert code == 200, dry_update
    assert (
        dry_update["spec"]["maxReplicas"] == 6 and dry_update["spec"]["targetCPUUtilizationPercentage"] == 80
    )
