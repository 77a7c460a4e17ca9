"""Server-side apply: the API (create, merge, ownership, conflicts, force, removal) and real
``kubectl apply --server-side``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson

from control.apiserver.apply import field_path_text, fields_of, from_fields_v1, to_fields_v1
from control.lab import write_kubeconfig
from control.resources.builtin import builtin_registry
from control.resources.schema import schema_for
from tests.control.apiserver.conftest import RunningServer

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
APPLY = "application/apply-patch+yaml"


def deployment(
    replicas: int | None = 2, image: str = "nginx:1.25", labels: dict | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    metadata: dict[str, Any] = {"name": "web"}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


async def apply(
    server: RunningServer, body: dict, *, manager: str = "ci", force: bool = False
) -> tuple[int, Any]:
    params = {"fieldManager": manager}
    if force:
        params["force"] = "true"
    return await server.request(
        "PATCH", f"{DEPLOYMENTS}/web", raw=orjson.dumps(body), content_type=APPLY, params=params
    )


def managers(obj: dict) -> dict[str, set[str]]:
    return {
        f"{e['manager']}/{e['operation']}": {field_path_text(p) for p in from_fields_v1(e["fieldsV1"])}
        for e in obj["metadata"].get("managedFields") or []
    }


def test_field_sets_round_trip_through_fields_v1() -> None:
    rt = builtin_registry().lookup(group="apps", version="v1", plural="deployments")
    assert rt is not None
    paths = fields_of(deployment(labels={"team": "a"}), schema_for(rt), has_status=True)
    tree = to_fields_v1(paths)
    assert tree["f:metadata"]["f:labels"] == {".": {}, "f:team": {}}
    containers = tree["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers == {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}
    assert from_fields_v1(tree) == paths


async def test_apply_creates_then_merges_and_owns_what_it_set(apiserver: RunningServer) -> None:
    code, created = await apply(apiserver, deployment())
    assert code == 201
    assert managers(created)["ci/Apply"] >= {
        ".spec.replicas",
        '.spec.template.spec.containers[name="web"].image',
    }
    # a second manager applies another field: both are kept, each owned by its manager
    code, merged = await apply(
        apiserver,
        {**deployment(replicas=None), "metadata": {"name": "web", "labels": {"tier": "front"}}},
        manager="other",
    )
    assert code == 200
    assert merged["spec"]["replicas"] == 2 and merged["metadata"]["labels"] == {"tier": "front"}
    owners = managers(merged)
    assert ".metadata.labels.tier" in owners["other/Apply"] and ".spec.replicas" in owners["ci/Apply"]
    # the same value from two managers is shared: no conflict
    code, _ = await apply(apiserver, deployment(), manager="other")
    assert code == 200


async def test_conflicts_force_and_removal(apiserver: RunningServer) -> None:
    await apply(apiserver, deployment(replicas=2))
    code, conflict = await apply(apiserver, deployment(replicas=5), manager="intruder")
    assert code == 409 and conflict["reason"] == "Conflict"
    # an applier is named without a version (upstream's manager identity of an Apply has none)
    assert conflict["message"] == 'Apply failed with 1 conflict: conflict with "ci": .spec.replicas'
    assert conflict["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "ci"', "field": ".spec.replicas"}
    ]
    code, forced = await apply(apiserver, deployment(replicas=5), manager="intruder", force=True)
    assert code == 200 and forced["spec"]["replicas"] == 5
    assert ".spec.replicas" not in managers(forced)["ci/Apply"]
    # a field the manager stops applying is removed (no one else owns it)
    await apply(apiserver, deployment(replicas=None, labels={"keep": "me", "drop": "me"}), manager="labeller")
    code, trimmed = await apply(
        apiserver, deployment(replicas=None, labels={"keep": "me"}), manager="labeller"
    )
    assert code == 200 and trimmed["metadata"]["labels"] == {"keep": "me"}


async def test_updates_take_ownership_so_the_next_apply_conflicts(apiserver: RunningServer) -> None:
    await apply(apiserver, deployment(replicas=2))
    code, patched = await apiserver.request(
        "PATCH",
        f"{DEPLOYMENTS}/web",
        body={"spec": {"replicas": 7}},
        content_type="application/merge-patch+json",
        params={"fieldManager": "kubectl-patch"},
    )
    assert code == 200 and managers(patched)["kubectl-patch/Update"] == {".spec.replicas"}
    code, conflict = await apply(apiserver, deployment(replicas=2))
    assert (code, conflict["message"]) == (
        409,
        'Apply failed with 1 conflict: conflict with "kubectl-patch" using apps/v1: .spec.replicas',
    )


async def test_several_conflicts_are_grouped_by_manager(apiserver: RunningServer) -> None:
    """As upstream: ``conflicts with <manager>:`` and a ``- <field>`` line each, managers sorted."""
    await apply(apiserver, deployment(replicas=2, labels={"team": "a"}), manager="zeta")
    await apiserver.request(
        "PATCH",
        f"{DEPLOYMENTS}/web",
        body={"spec": {"replicas": 3}},
        content_type="application/merge-patch+json",
        params={"fieldManager": "alpha"},
    )
    code, conflict = await apply(apiserver, deployment(replicas=4, labels={"team": "b"}), manager="intruder")
    assert code == 409
    assert conflict["message"] == (
        "Apply failed with 2 conflicts: "
        'conflicts with "alpha" using apps/v1:\n- .spec.replicas\n'
        'conflicts with "zeta":\n- .metadata.labels.team'
    )
    assert {cause["message"] for cause in conflict["details"]["causes"]} == {
        'conflict with "alpha" using apps/v1',
        'conflict with "zeta"',
    }


async def test_scaling_takes_ownership_of_the_replicas(apiserver: RunningServer) -> None:
    """As upstream's ScaleHandler: a write through /scale (``kubectl scale``, an autoscaler) is
    recorded on the object as an Update entry with ``subresource: scale``."""
    await apply(apiserver, deployment(replicas=2))
    code, _ = await apiserver.request(
        "PATCH",
        f"{DEPLOYMENTS}/web/scale",
        body={"spec": {"replicas": 5}},
        content_type="application/merge-patch+json",
        headers={"User-Agent": "kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0"},
    )
    assert code == 200
    _, scaled = await apiserver.request("GET", f"{DEPLOYMENTS}/web")
    (entry,) = [e for e in scaled["metadata"]["managedFields"] if e["operation"] == "Update"]
    assert (entry["manager"], entry["apiVersion"], entry["subresource"]) == ("kubectl", "apps/v1", "scale")
    assert entry["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert ".spec.replicas" not in managers(scaled)["ci/Apply"]
    code, conflict = await apply(apiserver, deployment(replicas=2))
    assert code == 409
    assert [cause["field"] for cause in conflict["details"]["causes"]] == [".spec.replicas"]
    # scaling again through the same manager keeps one entry, and a no-op scale changes no owner
    for replicas in (6, 6):
        await apiserver.request(
            "PUT",
            f"{DEPLOYMENTS}/web/scale",
            body={"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"},
                  "spec": {"replicas": replicas}},
            params={"fieldManager": "hpa"},
        )  # fmt: skip
    _, rescaled = await apiserver.request("GET", f"{DEPLOYMENTS}/web")
    owners = managers(rescaled)
    assert owners.get("hpa/Update") == {".spec.replicas"} and "kubectl/Update" not in owners


async def test_bad_apply_requests(apiserver: RunningServer) -> None:
    code, body = await apiserver.request(
        "PATCH", f"{DEPLOYMENTS}/web", raw=orjson.dumps(deployment()), content_type=APPLY
    )
    assert (code, body["message"]) == (
        422,
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    )
    code, body = await apply(apiserver, {"kind": "Deployment", "metadata": {"name": "web"}})
    assert code == 400 and "apiVersion must be set" in body["message"]
    code, body = await apply(apiserver, {**deployment(), "metadata": {"name": "other"}})
    assert code == 400 and "does not match the name on the URL" in body["message"]


async def kubectl(
    server: RunningServer, tmp_path: Path, *args: str, stdin: bytes | None = None
) -> tuple[int, str, str]:
    kubeconfig = tmp_path / "kubeconfig"
    if not kubeconfig.exists():
        write_kubeconfig(
            path=kubeconfig,
            server_url=server.url,
            ca_file=server.ca_file,
            cert_file=server.cert_file,
            key_file=server.key_file,
        )
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    process = await asyncio.create_subprocess_exec(
        "/usr/bin/kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_kubectl_apply_server_side(apiserver: RunningServer, tmp_path: Path) -> None:
    manifest = orjson.dumps(deployment(replicas=2))
    code, out, err = await kubectl(apiserver, tmp_path, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert code == 0, err
    assert out.strip() == "deployment.apps/web serverside-applied"
    code, _, err = await kubectl(apiserver, tmp_path, "scale", "deployment/web", "--replicas=4")
    assert code == 0, err
    code, _, err = await kubectl(
        apiserver, tmp_path, "patch", "deployment", "web", "--type=merge", "-p", '{"spec":{"replicas":6}}'
    )
    assert code == 0, err
    code, out, err = await kubectl(apiserver, tmp_path, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert code != 0
    assert 'conflict with "kubectl-patch" using apps/v1: .spec.replicas' in err
    code, out, err = await kubectl(
        apiserver, tmp_path, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=manifest
    )
    assert code == 0, err
    code, out, _ = await kubectl(
        apiserver, tmp_path, "get", "deployment", "web", "-o", "json", "--show-managed-fields"
    )
    live = orjson.loads(out)
    assert live["spec"]["replicas"] == 2
    assert {entry["manager"] for entry in live["metadata"]["managedFields"]} >= {"kubectl"}
