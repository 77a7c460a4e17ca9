"""The add-on deployment `kubelab up` does (control.lab's add-on section): the manifest
with the lab's ServiceAccount credentials, create-or-replace through a real API server
(twice, as a resumed lab does), and the wait for Deployments with its failure message."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from control import lab
from control.cli import _build_parser
from tests.control.apiserver.conftest import running_apiserver


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[lab.Layout, lab.Settings, lab.LabPKI]:
    layout = lab.Layout.resolve(tmp_path / "lab")
    settings = lab.Settings(nodes=1)
    return layout, settings, lab.prepare(layout, settings)


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


def test_default_addons_need_root(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from control import cli

    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    assert cli._default_addons() == ["coredns_lite"]
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    assert cli._default_addons() == []
    assert "binds port 53" in capsys.readouterr().err


def test_addon_objects_give_service_accounts_a_kubeconfig_secret_mounted_into_their_workloads(
    prepared: tuple[lab.Layout, lab.Settings, lab.LabPKI],
) -> None:
    layout, settings, pki = prepared
    objects = lab.addon_objects(layout, settings, pki, name="coredns_lite")
    kinds = [body["kind"] for body in objects]
    assert kinds == [
        "ServiceAccount",
        "Secret",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
    ]
    secret = objects[1]
    assert (secret["metadata"]["namespace"], secret["metadata"]["name"]) == (
        "kube-system",
        "coredns-kubeconfig",
    )
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == settings.server_url
    cert = x509.load_pem_x509_certificate(
        base64.b64decode(kubeconfig["users"][0]["user"]["client-certificate-data"])
    )
    assert (
        cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        == "system:serviceaccount:kube-system:coredns"
    )
    groups = {attribute.value for attribute in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)}
    assert groups == {"system:serviceaccounts", "system:serviceaccounts:kube-system"}

    pod_spec = objects[5]["spec"]["template"]["spec"]
    assert {
        "name": "kubelab-serviceaccount-kubeconfig",
        "secret": {"secretName": "coredns-kubeconfig"},
    } in pod_spec["volumes"]
    container = pod_spec["containers"][0]
    assert {"name": "KUBECONFIG", "value": f"{lab.ADDON_KUBECONFIG_DIR}/kubeconfig"} in container["env"]
    assert any(mount["mountPath"] == lab.ADDON_KUBECONFIG_DIR for mount in container["volumeMounts"])
    # the manifest's own settings are kept
    assert container["command"][:3] == ["python", "-m", "addons.coredns_lite"]
    assert objects[6]["spec"]["clusterIP"] == "127.96.0.10"


async def test_apply_creates_then_replaces_so_a_resumed_lab_reapplies(tmp_path: Path) -> None:
    async with running_apiserver(tmp_path) as server:
        layout = lab.Layout.resolve(server.data_dir)
        settings = lab.load_settings(layout)
        assert settings is not None
        pki = lab.prepare(layout, settings)
        first = await lab.apply_objects(layout, lab.addon_objects(layout, settings, pki, name="coredns_lite"))
        assert [applied.action for applied in first] == ["created"] * 7
        assert str(first[-1]) == "service kube-system/kube-dns created"
        second = await lab.apply_objects(
            layout, lab.addon_objects(layout, settings, pki, name="coredns_lite")
        )
        assert [applied.action for applied in second] == ["configured"] * 7
        status, service = await server.request("GET", "/api/v1/namespaces/kube-system/services/kube-dns")
        assert status == 200 and service["spec"]["clusterIP"] == "127.96.0.10"

        bad = {"apiVersion": "v1", "kind": "NoSuchKind", "metadata": {"name": "x"}}
        with pytest.raises(lab.AddonError, match="cannot apply NoSuchKind x"):
            await lab.apply_objects(layout, [bad])


async def test_wait_for_deployments_names_what_is_missing_on_timeout(tmp_path: Path) -> None:
    # No controllers run here, so the Deployment never gets pods.
    async with running_apiserver(tmp_path) as server:
        layout = lab.Layout.resolve(server.data_dir)
        settings = lab.load_settings(layout)
        assert settings is not None
        objects = lab.addon_objects(layout, settings, lab.prepare(layout, settings), name="coredns_lite")
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
