"""The add-on deployment `kubelab up` does (control.lab's add-on section): the manifest as
written with its least-privilege RBAC, create-or-replace through a real API server
(twice, as a resumed lab does), and the wait for Deployments with its failure message."""

from __future__ import annotations

from pathlib import Path

import pytest

from control import lab
from control.cli import _build_parser
from tests.control.apiserver.conftest import running_apiserver


def test_the_dns_addon_is_available_and_unknown_addons_are_refused() -> None:
    assert "coredns_lite" in lab.available_addons()
    assert lab.validate_addons(["coredns_lite"]) == ["coredns_lite"]
    with pytest.raises(ValueError, match=r"unknown add-on nope: choose from .*coredns_lite"):
        lab.validate_addons(["coredns_lite", "nope"])


def test_up_flags_choose_the_addons(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _build_parser()
    assert parser.parse_args(["up"]).addons is None  # decided by `up`: the defaults as root, none otherwise
    assert parser.parse_args(["up", "--no-addons"]).addons == []
    assert parser.parse_args(["up", "--addons", "coredns_lite,coredns_lite"]).addons == ["coredns_lite"]
    for bad in (["up", "--addons", "nope"], ["up", "--no-addons", "--addons", "coredns_lite"]):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(bad)
        assert exited.value.code == 2
    assert "unknown add-on nope" in capsys.readouterr().err


def test_default_addons_need_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from control import cli

    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    assert cli._default_addons() == ["coredns_lite"]
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    assert cli._default_addons() == []
    assert "binds port 53" in capsys.readouterr().err


def test_addon_objects_are_the_manifest_as_written_with_no_extra_credentials() -> None:
    objects = lab.addon_objects("coredns_lite")
    kinds = [body["kind"] for body in objects]
    assert kinds == [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
    ]
    pod_spec = objects[4]["spec"]["template"]["spec"]
    # The pods get their token the upstream way (the kube-api-access volume ServiceAccount
    # admission adds): nothing in the manifest mounts or names a credential.
    assert pod_spec["serviceAccountName"] == "coredns"
    assert [volume["name"] for volume in pod_spec["volumes"]] == ["config-volume"]
    container = pod_spec["containers"][0]
    assert "KUBECONFIG" not in {variable["name"] for variable in container["env"]}
    assert container["command"][:3] == ["python", "-m", "addons.coredns_lite"]
    assert objects[5]["spec"]["clusterIP"] == "127.96.0.10"


def test_an_unreadable_manifest_is_an_addon_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.yaml").write_text("kind: [unclosed\n")
    monkeypatch.setattr(lab, "ADDONS_DIR", tmp_path)
    with pytest.raises(lab.AddonError, match=r"cannot read the broken add-on's manifest"):
        lab.addon_objects("broken")
    with pytest.raises(lab.AddonError, match=r"cannot read the missing add-on's manifest"):
        lab.addon_objects("missing")


async def test_apply_creates_then_replaces_so_a_resumed_lab_reapplies(tmp_path: Path) -> None:
    async with running_apiserver(tmp_path) as server:
        layout = lab.Layout.resolve(server.data_dir)
        first = await lab.apply_objects(layout, lab.addon_objects("coredns_lite"))
        assert [applied.action for applied in first] == ["created"] * 6
        assert str(first[-1]) == "service kube-system/kube-dns created"
        second = await lab.apply_objects(layout, lab.addon_objects("coredns_lite"))
        assert [applied.action for applied in second] == ["configured"] * 6
        status, service = await server.request("GET", "/api/v1/namespaces/kube-system/services/kube-dns")
        assert status == 200 and service["spec"]["clusterIP"] == "127.96.0.10"

        bad = {"apiVersion": "v1", "kind": "NoSuchKind", "metadata": {"name": "x"}}
        with pytest.raises(lab.AddonError, match="cannot apply NoSuchKind x"):
            await lab.apply_objects(layout, [bad])


async def test_wait_for_deployments_names_what_is_missing_on_timeout(tmp_path: Path) -> None:
    # No controllers run here, so the Deployment never gets pods.
    async with running_apiserver(tmp_path) as server:
        layout = lab.Layout.resolve(server.data_dir)
        objects = lab.addon_objects("coredns_lite")
        await lab.apply_objects(layout, objects)
        with pytest.raises(
            lab.AddonError,
            match=r"deployment kube-system/coredns was not available within 0\.3s: "
            r"it has no pods; see .*controllers\.log",
        ):
            await lab.wait_for_deployments(layout, objects, within=0.3)
        assert await lab.wait_for_deployments(layout, [], within=0.3) == pytest.approx(0, abs=0.1)


@pytest.mark.parametrize(
    ("status", "available"),
    [
        ({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}, True),
        ({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}, False),
        ({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}, False),
        ({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 2}, False),
        ({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}, False),
        ({}, False),
    ],
)
def test_a_deployment_is_available_when_its_current_generation_is_fully_rolled_out(
    status: dict[str, int], available: bool
) -> None:
    deployment = {"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": status}
    assert lab._deployment_available(deployment) is available


def test_pods_not_ready_are_described_with_their_reason_and_logs(tmp_path: Path) -> None:
    layout = lab.Layout.resolve(tmp_path)
    pods = [
        {
            "metadata": {"name": "coredns-a"},
            "spec": {"nodeName": "node-1"},
            "status": {
                "phase": "Running",
                "containerStatuses": [{"ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
            },
        },
        {"metadata": {"name": "coredns-b"}, "spec": {}, "status": {"phase": "Pending"}},
    ]
    text = lab._describe_pods(pods, namespace="kube-system", layout=layout)
    assert (
        "pod coredns-a Running CrashLoopBackOff on node-1, see `kubectl -n kube-system logs coredns-a`"
        in text
    )
    assert str(layout.log_file("node-1")) in text
    assert "pod coredns-b Pending (not scheduled)" in text


def _pod(node: str, *, ready: str, changed: str, deleting: bool = False) -> dict:
    metadata = {"name": f"pod-on-{node}", **({"deletionTimestamp": changed} if deleting else {})}
    condition = {"type": "Ready", "status": ready, "lastTransitionTime": changed}
    return {"metadata": metadata, "spec": {"nodeName": node}, "status": {"conditions": [condition]}}


@pytest.mark.parametrize(
    ("pod", "fresh"),
    [
        (_pod("node-1", ready="True", changed="2026-11-25T17:00:05Z"), True),
        (_pod("node-1", ready="True", changed="2026-11-25T17:00:00Z"), True),  # the same second counts
        (_pod("node-1", ready="True", changed="2026-11-25T16:59:59Z"), False),  # the last run's status
        (_pod("node-1", ready="False", changed="2026-11-25T17:00:05Z"), False),
        (_pod("node-1", ready="True", changed="garbage"), False),
        (_pod("node-2", ready="True", changed="2026-11-25T16:00:00Z"), True),  # its node agent kept running
        (_pod("node-1", ready="True", changed="2026-11-25T16:00:00Z", deleting=True), True),
    ],
)
def test_pods_on_restarted_nodes_count_only_when_ready_since_this_run(pod: dict, fresh: bool) -> None:
    since = lab._epoch_seconds("2026-11-25T17:00:00Z")
    assert since is not None
    assert lab._pods_fresh([pod], restarted_nodes=frozenset({"node-1"}), since=since) is fresh
