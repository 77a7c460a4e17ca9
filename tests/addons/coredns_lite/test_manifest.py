"""The manifest: least-privilege RBAC, a Corefile that parses, 2 replicas, kube-dns at 127.96.0.10,
and every object accepted by a real API server."""

from __future__ import annotations

from pathlib import Path

import yaml

from addons.coredns_lite.answers import PodMode
from addons.coredns_lite.setup import Address, parse_corefile
from control.client import Discovery, RESTClient, load_kubeconfig
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)

MANIFEST = Path(__file__).resolve().parents[3] / "addons" / "coredns_lite" / "manifest.yaml"


def objects() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc}


def test_rbac_is_list_and_watch_of_what_dns_reads() -> None:
    docs = objects()
    rules = {
        (group, resource): sorted(rule["verbs"])
        for rule in docs["ClusterRole"]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    # Pods only with `pods verified`; the Corefile says `pods insecure` (checked below).
    assert rules == {
        ("", "services"): ["list", "watch"],
        ("", "namespaces"): ["list", "watch"],
        ("discovery.k8s.io", "endpointslices"): ["list", "watch"],
    }
    assert docs["ClusterRole"]["metadata"]["name"] == "system:coredns"  # upstream's name
    binding = docs["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == docs["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]


def test_the_corefile_parses_and_binds_the_pod_ip() -> None:
    config = parse_corefile(objects()["ConfigMap"]["data"]["Corefile"], environ={"POD_IP": "127.244.1.9"})
    assert config.bind == ("127.244.1.9",) and config.port == 53
    assert config.health == Address("127.244.1.9", 8080) and config.ready == Address("127.244.1.9", 8181)
    assert config.prometheus == Address("127.244.1.9", 9153)
    assert config.kubernetes is not None and config.kubernetes.pods is PodMode.INSECURE
    assert config.forward is not None and config.cache is not None and config.reload is not None


def test_deployment_and_service() -> None:
    docs = objects()
    deployment = docs["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "coredns" and pod["dnsPolicy"] == "Default"
    (container,) = pod["containers"]
    assert container["image"] == "kubelab"
    assert container["command"] == ["python", "-m", "addons.coredns_lite", "--conf", "/etc/coredns/Corefile"]
    env = {item["name"]: item for item in container["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert container["volumeMounts"][0]["mountPath"] == "/etc/coredns"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    service = docs["Service"]
    assert (service["metadata"]["namespace"], service["metadata"]["name"]) == ("kube-system", "kube-dns")
    assert service["spec"]["clusterIP"] == "127.96.0.10"
    assert sorted((p["port"], p["protocol"]) for p in service["spec"]["ports"]) == [
        (53, "TCP"),
        (53, "UDP"),
        (9153, "TCP"),
    ]
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]


async def test_a_real_api_server_accepts_every_object(apiserver) -> None:  # noqa: F811
    async with RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig")) as client:
        discovery = Discovery(client)
        for doc in yaml.safe_load_all(MANIFEST.read_text()):
            resource = await discovery.resource_for(api_version=doc["apiVersion"], kind=doc["kind"])
            created = await client.create(resource, doc)
            assert created["metadata"]["uid"]
        service = await client.get(
            await discovery.resource_for(api_version="v1", kind="Service"),
            "kube-dns",
            namespace="kube-system",
        )
        assert service["spec"]["clusterIP"] == "127.96.0.10"
