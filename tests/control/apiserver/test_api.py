"""The API server's HTTP semantics, over real HTTPS against an in-process server.

kubectl and the Python client are exercised in tests/e2e; these tests pin the details
clients depend on (Status bodies, resourceVersion rules, status/scale subresources,
finalizers, allocation) and the bad-input answers.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from multidict import MultiDict

from control.apiserver import resource_store, server
from control.healthz import check_response, health_response
from tests.control.apiserver.conftest import RunningServer

CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"


def configmap(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deployment(name: str, replicas: int = 1) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            },
        },
    }


# ---------------------------------------------------------------- non-resource endpoints
async def test_health_and_version_are_public_everything_else_needs_a_certificate(apiserver: RunningServer):
    for path in ("/healthz", "/livez", "/readyz", "/readyz/ping"):
        async with apiserver.anonymous.get(apiserver.url + path) as response:
            assert response.status == 200 and await response.text() == "ok"
    async with apiserver.anonymous.get(apiserver.url + "/version") as response:
        assert (await response.json())["gitVersion"].startswith("v1.33.")
    async with apiserver.anonymous.get(apiserver.url + "/api/v1/namespaces") as response:
        assert response.status == 401
        assert await response.json() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }


async def test_health_endpoints_are_verbose_when_asked(apiserver: RunningServer):
    """`kubectl get --raw '/readyz?verbose'`, as k8s.io/apiserver's healthz handler answers it."""
    checks = "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]poststarthook/bootstrap-controller ok\n"
    for endpoint, only_readyz in (("healthz", ""), ("livez", ""), ("readyz", "[+]shutdown ok\n")):
        async with apiserver.anonymous.get(f"{apiserver.url}/{endpoint}?verbose") as response:
            assert response.status == 200
            assert await response.text() == f"{checks}{only_readyz}{endpoint} check passed\n"
    async with apiserver.anonymous.get(
        apiserver.url + "/readyz", params=[("verbose", ""), ("exclude", "etcd"), ("exclude", "nope")]
    ) as response:
        assert await response.text() == (
            "[+]ping ok\n[+]log ok\n[+]etcd excluded: ok\n[+]poststarthook/bootstrap-controller ok\n"
            '[+]shutdown ok\nwarn: some health checks cannot be excluded: no matches for "nope"\n'
            "readyz check passed\n"
        )
    async with apiserver.anonymous.get(apiserver.url + "/readyz?exclude=etcd") as response:
        assert (response.status, await response.text()) == (200, "ok")
    for path, expected in (
        ("/livez/poststarthook/bootstrap-controller", (200, "ok")),
        ("/readyz/shutdown", (200, "ok")),
        ("/livez/shutdown", (404, "404 page not found\n")),
    ):
        async with apiserver.anonymous.get(apiserver.url + path) as response:
            assert (response.status, await response.text()) == expected, path


def test_health_tells_check_by_check_until_bootstrap_is_done_and_readyz_fails_on_shutdown():
    booting = server.health_checks(
        bootstrapped=lambda: False, shutting_down=lambda: False, store_failure=lambda: None
    )
    for endpoint in ("livez", "readyz"):
        failing = health_response(booting, endpoint=endpoint, query=MultiDict())
        assert failing.status == 500
        assert failing.text.startswith(
            "[+]ping ok\n[+]log ok\n[+]etcd ok\n[-]poststarthook/bootstrap-controller failed: reason withheld\n"
        )
    excluded = MultiDict([("exclude", "poststarthook/bootstrap-controller")])
    assert health_response(booting, endpoint="readyz", query=excluded).text == "ok"
    stopping = server.health_checks(
        bootstrapped=lambda: True, shutting_down=lambda: True, store_failure=lambda: None
    )
    assert health_response(stopping, endpoint="livez", query=MultiDict()).status == 200
    answer = health_response(stopping, endpoint="readyz", query=MultiDict())
    assert (answer.status, answer.text.splitlines()[-2:]) == (
        500,
        ["[-]shutdown failed: reason withheld", "readyz check failed"],
    )


def test_the_etcd_check_fails_while_the_store_cannot_be_reached():
    failure: list[str] = ["StoreUnavailableError: connection refused"]
    checks = server.health_checks(
        bootstrapped=lambda: True,
        shutting_down=lambda: False,
        store_failure=lambda: failure[0] if failure else None,
    )
    answer = check_response(checks, endpoint="healthz", name="etcd")
    assert (answer.status, answer.text) == (
        500,
        "internal server error: StoreUnavailableError: connection refused\n",
    )
    failure.clear()
    assert health_response(checks, endpoint="readyz", query=MultiDict()).text == "ok"


async def test_discovery_documents(apiserver: RunningServer):
    status, api = await apiserver.request("GET", "/api")
    assert status == 200 and api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    _, groups = await apiserver.request("GET", "/apis")
    names = {g["name"]: g for g in groups["groups"]}
    assert names["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert {
        "batch",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "apiregistration.k8s.io",
        "events.k8s.io",
    } <= set(names)
    _, core = await apiserver.request("GET", "/api/v1")
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["shortNames"] == ["po"] and by_name["pods"]["namespaced"] is True
    assert "all" in by_name["pods"]["categories"]
    assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["pods/binding"]["verbs"] == ["create"]
    assert by_name["namespaces"]["namespaced"] is False
    _, apps = await apiserver.request("GET", "/apis/apps/v1")
    scale = {r["name"]: r for r in apps["resources"]}["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    status, _ = await apiserver.request("GET", "/apis/nope.example/v1")
    assert status == 404


async def test_openapi_v3_points_kubectl_at_server_side_field_validation(apiserver: RunningServer):
    _, index = await apiserver.request("GET", "/openapi/v3")
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    _, document = await apiserver.request("GET", url)
    patch_op = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch_op["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    params = [p.get("name") for p in patch_op.get("parameters", [])] + [
        p.get("name")
        for p in document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"].get(
            "parameters", []
        )
    ]
    assert "fieldValidation" in params


# ---------------------------------------------------------------- create / get / update
async def test_create_sets_identity_and_versions(apiserver: RunningServer):
    status, created = await apiserver.request("POST", CM, body=configmap("a", k="v"))
    assert status == 201
    meta = created["metadata"]
    assert meta["namespace"] == "default" and len(meta["uid"]) == 36
    assert meta["creationTimestamp"].endswith("Z") and int(meta["resourceVersion"]) > 0
    status, got = await apiserver.request("GET", f"{CM}/a")
    assert status == 200 and got == created
    status, dup = await apiserver.request("POST", CM, body=configmap("a"))
    assert (status, dup["reason"], dup["message"]) == (409, "AlreadyExists", 'configmaps "a" already exists')
    assert dup["details"] == {"name": "a", "kind": "configmaps"}


async def test_generate_name(apiserver: RunningServer):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    _, first = await apiserver.request("POST", CM, body=body)
    _, second = await apiserver.request("POST", CM, body=body)
    assert first["metadata"]["name"].startswith("gen-") and len(first["metadata"]["name"]) == 9
    assert first["metadata"]["name"] != second["metadata"]["name"]


async def test_a_generated_name_that_is_taken_is_generated_again(
    apiserver: RunningServer, monkeypatch: pytest.MonkeyPatch
):
    """As upstream's RetryGenerateName: up to 8 names, then AlreadyExists."""
    await apiserver.request("POST", CM, body=configmap("gen-taken"))
    names = iter(["gen-taken", "gen-taken", "gen-fresh"])
    monkeypatch.setattr(resource_store, "_generated_name", lambda prefix: next(names))
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}

    status, created = await apiserver.request("POST", CM, body=body)
    assert (status, created["metadata"]["name"]) == (201, "gen-fresh")
    status, got = await apiserver.request("GET", f"{CM}/gen-fresh")
    assert status == 200 and got["metadata"]["generateName"] == "gen-"

    monkeypatch.setattr(resource_store, "_generated_name", lambda prefix: "gen-taken")
    status, refused = await apiserver.request("POST", CM, body=body)
    assert (status, refused["reason"]) == (409, "AlreadyExists")


async def test_a_dry_run_create_is_refused_where_the_real_one_would_be(
    apiserver: RunningServer, monkeypatch: pytest.MonkeyPatch
):
    """As upstream's DryRunnableStorage: `kubectl create --dry-run=server` of a taken name is a 409."""
    dry = {"dryRun": "All"}
    status, fresh = await apiserver.request("POST", CM, body=configmap("dry", k="v"), params=dry)
    assert (status, fresh["metadata"]["name"]) == (201, "dry")
    assert "resourceVersion" not in fresh["metadata"]  # nothing stored: upstream omits the field
    status, _ = await apiserver.request("GET", f"{CM}/dry")
    assert status == 404  # nothing was written
    await apiserver.request("POST", CM, body=configmap("dry", k="v"))
    status, dup = await apiserver.request("POST", CM, body=configmap("dry", k="w"), params=dry)
    assert (status, dup["reason"]) == (409, "AlreadyExists")
    assert dup["message"] == 'configmaps "dry" already exists'
    status, kept = await apiserver.request("GET", f"{CM}/dry")
    assert status == 200 and kept["data"] == {"k": "v"}

    names = iter(["dry", "gen-fresh"])
    monkeypatch.setattr(resource_store, "_generated_name", lambda prefix: next(names))
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    status, generated = await apiserver.request("POST", CM, body=body, params=dry)
    assert (status, generated["metadata"]["name"]) == (201, "gen-fresh")
    monkeypatch.setattr(resource_store, "_generated_name", lambda prefix: "dry")
    status, refused = await apiserver.request("POST", CM, body=body, params=dry)
    assert (status, refused["reason"]) == (409, "AlreadyExists")


async def test_not_found_and_missing_namespace(apiserver: RunningServer):
    status, body = await apiserver.request("GET", f"{DEPLOY}/nope")
    assert (status, body["reason"], body["message"]) == (404, "NotFound", 'deployments.apps "nope" not found')
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}
    status, body = await apiserver.request("POST", "/api/v1/namespaces/ghost/configmaps", body=configmap("x"))
    assert (status, body["message"]) == (404, 'namespaces "ghost" not found')


async def test_optimistic_concurrency(apiserver: RunningServer):
    _, created = await apiserver.request("POST", CM, body=configmap("occ", k="1"))
    first = {**created, "data": {"k": "2"}}
    status, updated = await apiserver.request("PUT", f"{CM}/occ", body=first)
    assert status == 200 and int(updated["metadata"]["resourceVersion"]) > int(
        created["metadata"]["resourceVersion"]
    )
    stale = {**created, "data": {"k": "3"}}
    status, body = await apiserver.request("PUT", f"{CM}/occ", body=stale)
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "occ": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    # No resourceVersion: an unconditional update.
    unconditional = configmap("occ", k="4")
    status, body = await apiserver.request("PUT", f"{CM}/occ", body=unconditional)
    assert status == 200 and body["data"] == {"k": "4"}
    # A no-op update does not write.
    status, again = await apiserver.request("PUT", f"{CM}/occ", body=body)
    assert again["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]


async def test_fifty_concurrent_stale_writers(apiserver: RunningServer):
    """Every write either succeeds or gets 409; the final state is exactly the successes."""
    _, created = await apiserver.request("POST", CM, body=configmap("race"))
    base = created

    async def writer(index: int) -> tuple[int, int]:
        body = {**base, "data": {**(base.get("data") or {}), f"w{index}": "x"}}
        status, _ = await apiserver.request("PUT", f"{CM}/race", body=body)
        return index, status

    results = await asyncio.gather(*(writer(i) for i in range(50)))
    statuses = {status for _, status in results}
    assert statuses <= {200, 409}
    winners = [index for index, status in results if status == 200]
    assert len(winners) == 1  # all 50 carried the same resourceVersion
    _, final = await apiserver.request("GET", f"{CM}/race")
    assert final["data"] == {f"w{winners[0]}": "x"}

    # Writers that re-read and retry on 409 all land eventually.
    async def retrying(index: int) -> None:
        while True:
            _, current = await apiserver.request("GET", f"{CM}/race")
            current["data"][f"r{index}"] = "y"
            status, _ = await apiserver.request("PUT", f"{CM}/race", body=current)
            if status == 200:
                return
            assert status == 409

    await asyncio.gather(*(retrying(i) for i in range(50)))
    _, final = await apiserver.request("GET", f"{CM}/race")
    assert {k for k in final["data"] if k.startswith("r")} == {f"r{i}" for i in range(50)}


async def test_generation_and_the_status_subresource(apiserver: RunningServer):
    _, created = await apiserver.request("POST", DEPLOY, body=deployment("gen"))
    assert created["metadata"]["generation"] == 1 and created["status"] == {}
    # metadata-only change: generation stays
    _, labelled = await apiserver.request(
        "PATCH",
        f"{DEPLOY}/gen",
        body={"metadata": {"labels": {"x": "y"}}},
        content_type="application/merge-patch+json",
    )
    assert labelled["metadata"]["generation"] == 1
    # status through the main endpoint is ignored
    _, ignored = await apiserver.request(
        "PATCH",
        f"{DEPLOY}/gen",
        body={"status": {"replicas": 9}},
        content_type="application/merge-patch+json",
    )
    assert (
        ignored["status"] == {}
        and ignored["metadata"]["resourceVersion"] == labelled["metadata"]["resourceVersion"]
    )
    # spec change bumps generation
    _, scaled = await apiserver.request(
        "PATCH", f"{DEPLOY}/gen", body={"spec": {"replicas": 3}}, content_type="application/merge-patch+json"
    )
    assert scaled["metadata"]["generation"] == 2
    # status subresource changes only status
    status_body = {**scaled, "spec": {**scaled["spec"], "replicas": 7}, "status": {"replicas": 3}}
    status, after = await apiserver.request("PUT", f"{DEPLOY}/gen/status", body=status_body)
    assert status == 200 and after["status"] == {"replicas": 3} and after["spec"]["replicas"] == 3
    assert after["metadata"]["generation"] == 2


async def test_a_new_hpa_has_the_status_fields_upstream_never_omits(apiserver: RunningServer):
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
        },
        "status": {"desiredReplicas": 5, "currentReplicas": 5},  # create cannot set status
    }
    path = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
    status, created = await apiserver.request("POST", path, body=hpa)
    assert status == 201 and created["status"] == {"currentMetrics": None, "desiredReplicas": 0}
    _, read = await apiserver.request("GET", f"{path}/web")
    assert read["status"] == {"currentMetrics": None, "desiredReplicas": 0}


async def test_scale_subresource(apiserver: RunningServer):
    await apiserver.request("POST", DEPLOY, body=deployment("sc", replicas=2))
    status, scale = await apiserver.request("GET", f"{DEPLOY}/sc/scale")
    assert status == 200 and scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2} and scale["status"]["selector"] == "app=sc"
    status, scale = await apiserver.request(
        "PATCH",
        f"{DEPLOY}/sc/scale",
        body={"spec": {"replicas": 5}},
        content_type="application/merge-patch+json",
    )
    assert status == 200 and scale["spec"]["replicas"] == 5
    _, deploy = await apiserver.request("GET", f"{DEPLOY}/sc")
    assert deploy["spec"]["replicas"] == 5
    status, body = await apiserver.request(
        "PATCH",
        f"{DEPLOY}/sc/scale",
        body={"spec": {"replicas": -1}},
        content_type="application/merge-patch+json",
    )
    assert status == 422 and body["reason"] == "Invalid"


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("raw", "content_type", "code", "reason"),
    [
        (b"{not json", "application/json", 400, "BadRequest"),
        (b"[1,2]", "application/json", 400, "BadRequest"),
        (b"key: [unclosed", "application/yaml", 400, "BadRequest"),
        (
            b'{"kind":"Secret","apiVersion":"v1","metadata":{"name":"x"}}',
            "application/json",
            400,
            "BadRequest",
        ),
        (
            b'{"kind":"ConfigMap","apiVersion":"v2","metadata":{"name":"x"}}',
            "application/json",
            400,
            "BadRequest",
        ),
        (b'{"metadata":{"name":"x"}}', "text/plain", 415, "UnsupportedMediaType"),
        (b'{"metadata":{"name":"Bad_Name"}}', "application/json", 422, "Invalid"),
        (b'{"metadata":{"name":"x"},"data":{"k":1}}', "application/json", 400, "BadRequest"),
        (b"", "application/json", 400, "BadRequest"),
    ],
)
async def test_bad_bodies_get_clear_status_errors(apiserver: RunningServer, raw, content_type, code, reason):
    status, body = await apiserver.request("POST", CM, raw=raw, content_type=content_type)
    assert (status, body["kind"], body["reason"]) == (code, "Status", reason), body
    status, _ = await apiserver.request("GET", "/readyz")
    assert status == 200  # and the server keeps serving


async def test_invalid_object_names_the_field(apiserver: RunningServer):
    status, body = await apiserver.request("POST", CM, body=configmap("Bad_Name"))
    assert status == 422
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"'
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["details"]["causes"][0]["reason"] == "FieldValueInvalid"


async def test_unknown_fields_follow_field_validation(apiserver: RunningServer):
    body = {**configmap("uf"), "bogus": 1}
    status, strict = await apiserver.request("POST", CM, body=body, params={"fieldValidation": "Strict"})
    assert (status, strict["message"]) == (400, 'strict decoding error: unknown field "bogus"')
    async with apiserver.session.post(
        apiserver.url + CM, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 201
        assert response.headers.getall("Warning") == ['299 - "unknown field \\"bogus\\""']
        assert "bogus" not in await response.json()


async def test_oversized_bodies_are_refused(apiserver: RunningServer):
    huge = orjson.dumps(configmap("big", k="x" * (3 * 1024 * 1024 + 10)))
    status, body = await apiserver.request("POST", CM, raw=huge)
    assert status == 413 and body["reason"] == "RequestEntityTooLarge"
    just_over_object_limit = deployment("big")
    just_over_object_limit["spec"]["template"]["spec"]["containers"][0]["args"] = ["x" * 1_600_000]
    status, body = await apiserver.request("POST", DEPLOY, body=just_over_object_limit)
    assert status == 413 and body["reason"] == "RequestEntityTooLarge"


async def test_wrong_verbs_and_scopes(apiserver: RunningServer):
    status, body = await apiserver.request("GET", "/api/v1/namespaces/default/bindings")
    assert status == 405 and body["reason"] == "MethodNotAllowed"
    status, _ = await apiserver.request("POST", "/api/v1/configmaps", body=configmap("x"))
    assert status == 404
    status, _ = await apiserver.request("GET", "/api/v1/namespaces/default/nodes")
    assert status == 404
    status, body = await apiserver.request(
        "PATCH", f"{CM}/x", body={}, content_type="application/apply-patch+yaml"
    )
    assert status == 422 and "fieldManager: Required value: is required for apply patch" in body["message"]


# ---------------------------------------------------------------- delete, finalizers
async def test_finalizers_hold_deletion_until_removed(apiserver: RunningServer):
    body = configmap("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await apiserver.request("POST", CM, body=body)
    status, pending = await apiserver.request("DELETE", f"{CM}/fin")
    assert status == 200 and pending["metadata"]["deletionTimestamp"]
    status, still = await apiserver.request("GET", f"{CM}/fin")
    assert status == 200 and still["metadata"]["finalizers"] == ["example.com/hold"]
    status, final = await apiserver.request(
        "PATCH",
        f"{CM}/fin",
        body={"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    assert status == 200 and "finalizers" not in final["metadata"]  # the final state
    status, _ = await apiserver.request("GET", f"{CM}/fin")
    assert status == 404


async def test_delete_preconditions_and_success_status(apiserver: RunningServer):
    _, created = await apiserver.request("POST", DEPLOY, body=deployment("del"))
    status, body = await apiserver.request(
        "DELETE", f"{DEPLOY}/del", body={"preconditions": {"uid": "not-the-uid"}}
    )
    assert status == 409 and "Precondition failed: UID in precondition: not-the-uid" in body["message"]
    status, body = await apiserver.request(
        "DELETE", f"{DEPLOY}/del", params={"propagationPolicy": "Foreground"}
    )
    assert status == 200 and body["metadata"]["finalizers"] == ["foregroundDeletion"]
    await apiserver.request(
        "PATCH",
        f"{DEPLOY}/del",
        body={"metadata": {"finalizers": []}},
        content_type="application/merge-patch+json",
    )
    status, _ = await apiserver.request("GET", f"{DEPLOY}/del")
    assert status == 404
    await apiserver.request("POST", DEPLOY, body=deployment("del2"))
    status, body = await apiserver.request("DELETE", f"{DEPLOY}/del2")
    assert status == 200 and body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"]["name"] == "del2" and body["details"]["group"] == "apps"
    assert created["metadata"]["uid"] != body["details"]["uid"]


async def test_namespace_termination(apiserver: RunningServer):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}
    _, created = await apiserver.request("POST", "/api/v1/namespaces", body=ns)
    assert created["spec"]["finalizers"] == ["kubernetes"] and created["status"]["phase"] == "Active"
    status, terminating = await apiserver.request("DELETE", "/api/v1/namespaces/doomed")
    assert status == 200 and terminating["status"]["phase"] == "Terminating"
    status, body = await apiserver.request(
        "POST", "/api/v1/namespaces/doomed/configmaps", body=configmap("x")
    )
    assert status == 403
    assert (
        body["message"] == "unable to create new content in namespace doomed because it is being terminated"
    )
    finalize = {**terminating, "spec": {"finalizers": []}}
    status, _ = await apiserver.request("PUT", "/api/v1/namespaces/doomed/finalize", body=finalize)
    assert status == 200
    status, _ = await apiserver.request("GET", "/api/v1/namespaces/doomed")
    assert status == 404


# ---------------------------------------------------------------- services, binding
async def test_service_addresses_are_allocated_and_released(apiserver: RunningServer):
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s1"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]},
    }
    _, created = await apiserver.request("POST", "/api/v1/namespaces/default/services", body=svc)
    ip = created["spec"]["clusterIP"]
    node_port = created["spec"]["ports"][0]["nodePort"]
    assert ip.startswith("127.96.") and created["spec"]["clusterIPs"] == [ip] and 30000 <= node_port <= 32767
    taken = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s2"},
        "spec": {"clusterIP": ip, "ports": [{"port": 80}]},
    }
    status, body = await apiserver.request("POST", "/api/v1/namespaces/default/services", body=taken)
    assert status == 422 and "spec.clusterIPs" in body["message"] and "already allocated" in body["message"]
    await apiserver.request("DELETE", "/api/v1/namespaces/default/services/s1")
    status, reused = await apiserver.request("POST", "/api/v1/namespaces/default/services", body=taken)
    assert status == 201 and reused["spec"]["clusterIP"] == ip
    _, kubernetes = await apiserver.request("GET", "/api/v1/namespaces/default/services/kubernetes")
    assert kubernetes["spec"]["clusterIP"] == "127.96.0.1"
    _, endpoints = await apiserver.request("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
    assert endpoints["subsets"][0]["addresses"] == [{"ip": "127.0.0.1"}]


async def test_pod_binding(apiserver: RunningServer):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    _, created = await apiserver.request("POST", "/api/v1/namespaces/default/pods", body=pod)
    assert created["status"]["phase"] == "Pending" and created["spec"]["restartPolicy"] == "Always"
    assert created["spec"]["tolerations"] == [  # DefaultTolerationSeconds admission
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"kind": "Node", "name": "n1"},
    }
    status, _ = await apiserver.request("POST", "/api/v1/namespaces/default/pods/p/binding", body=binding)
    assert status == 201
    _, bound = await apiserver.request("GET", "/api/v1/namespaces/default/pods/p")
    assert bound["spec"]["nodeName"] == "n1"
    scheduled = [c for c in bound["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert [(c["status"], bool(c["lastTransitionTime"])) for c in scheduled] == [("True", True)]
    status, body = await apiserver.request("POST", "/api/v1/namespaces/default/pods/p/binding", body=binding)
    assert status == 409 and "already assigned" in body["message"]
    # a bound pod terminates gracefully: deletionTimestamp first, gone after grace 0
    status, pending = await apiserver.request("DELETE", "/api/v1/namespaces/default/pods/p")
    assert status == 200 and pending["metadata"]["deletionGracePeriodSeconds"] == 30
    status, _ = await apiserver.request(
        "DELETE", "/api/v1/namespaces/default/pods/p", params={"gracePeriodSeconds": "0"}
    )
    assert status == 200
    status, _ = await apiserver.request("GET", "/api/v1/namespaces/default/pods/p")
    assert status == 404


# ---------------------------------------------------------------- list
async def test_list_pagination_and_resource_versions(apiserver: RunningServer):
    for index in range(5):
        await apiserver.request("POST", CM, body=configmap(f"pg-{index}"))
    status, page = await apiserver.request("GET", CM, params={"limit": "2"})
    assert status == 200 and page["kind"] == "ConfigMapList" and page["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in page["items"]] == ["pg-0", "pg-1"]
    assert page["metadata"]["remainingItemCount"] == 3
    first_rv = page["metadata"]["resourceVersion"]
    await apiserver.request("POST", CM, body=configmap("pg-5"))  # after the snapshot
    names = [i["metadata"]["name"] for i in page["items"]]
    token = page["metadata"]["continue"]
    while token:
        _, page = await apiserver.request("GET", CM, params={"limit": "2", "continue": token})
        assert page["metadata"]["resourceVersion"] == first_rv
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == [f"pg-{i}" for i in range(5)]  # one consistent snapshot
    for item in page["items"]:
        assert item["kind"] == "ConfigMap" or "kind" not in item
    status, body = await apiserver.request("GET", CM, params={"continue": "garbage!"})
    assert status == 400
    status, body = await apiserver.request("GET", CM, params={"resourceVersion": "999999999"})
    assert status == 504 and "Too large resource version" in body["message"]
    status, _ = await apiserver.request("GET", CM, params={"resourceVersion": "abc"})
    assert status == 400


async def test_list_selectors(apiserver: RunningServer):
    for name, tier in (("s-a", "front"), ("s-b", "back"), ("s-c", None)):
        body = configmap(name)
        if tier:
            body["metadata"]["labels"] = {"tier": tier}
        await apiserver.request("POST", CM, body=body)

    async def names(**params: str) -> list[str]:
        status, listing = await apiserver.request("GET", CM, params=params)
        assert status == 200, listing
        return [i["metadata"]["name"] for i in listing["items"] if i["metadata"]["name"].startswith("s-")]

    assert await names(labelSelector="tier=front") == ["s-a"]
    assert await names(labelSelector="tier in (front, back)") == ["s-a", "s-b"]
    assert await names(labelSelector="!tier") == ["s-c"]
    assert await names(labelSelector="tier,tier!=front") == ["s-b"]
    assert await names(fieldSelector="metadata.name=s-b") == ["s-b"]
    assert await names(fieldSelector="metadata.name!=s-b", labelSelector="tier") == ["s-a"]
    assert await names(labelSelector="tier", limit="1") == ["s-a"]
    status, body = await apiserver.request("GET", CM, params={"labelSelector": "tier in front"})
    assert status == 400 and body["reason"] == "BadRequest"
    status, body = await apiserver.request("GET", CM, params={"fieldSelector": "spec.nodeName=x"})
    assert status == 400
    assert (
        body["message"]
        == '"spec.nodeName" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
    status, body = await apiserver.request("GET", "/api/v1/pods", params={"fieldSelector": "spec.nope=x"})
    assert (status, body["message"]) == (400, "field label not supported: spec.nope")


async def test_table_output(apiserver: RunningServer):
    await apiserver.request("POST", DEPLOY, body=deployment("tbl", replicas=3))
    headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    status, table = await apiserver.request("GET", DEPLOY, headers=headers)
    assert status == 200 and table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    columns = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert columns == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    row = table["rows"][0]
    assert row["cells"][:4] == ["tbl", "0/3", 0, 0]
    assert row["object"]["kind"] == "PartialObjectMetadata" and row["object"]["metadata"]["name"] == "tbl"
    status, single = await apiserver.request(
        "GET", f"{DEPLOY}/tbl", headers=headers, params={"includeObject": "Object"}
    )
    assert single["rows"][0]["object"]["kind"] == "Deployment"


# ---------------------------------------------------------------- metrics
async def test_metrics_use_upstream_names(apiserver: RunningServer):
    await apiserver.request("GET", CM)
    async with apiserver.session.get(apiserver.url + "/metrics") as response:
        text = await response.text()
    assert (
        'apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps"'
        in text
    )
    assert "apiserver_request_duration_seconds_bucket" in text
    assert "apiserver_registered_watchers" in text
