"""Issue 4's acceptance on the shared 3-node lab: the cluster DNS add-on that `kubelab up`
deploys answers real `dig` and `kdig` at 127.96.0.10 for objects made with kubectl, follows
changes (a deleted Service turns NXDOMAIN, a scaled headless StatefulSet's A set follows),
pods resolve short names through their resolv.conf, and `kubelab smoke dns` passes.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from control.smoke.dns import query
from tests.e2e.conftest import Lab

NS = "dns-e2e"
DNS = "127.96.0.10"
ZONE = "cluster.local"
WAIT_SECONDS = 60.0
_T = TypeVar("_T")

OBJECTS = f"""\
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NS}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: plain, namespace: {NS}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 81, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: db, namespace: {NS}}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{name: pg, port: 5432, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ext, namespace: {NS}}}
spec: {{type: ExternalName, externalName: example.com}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {NS}}}
spec:
  serviceName: db
  replicas: 2
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{{name: db, image: busybox, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {NS}}}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{{name: client, image: busybox, command: [sleep, "3600"]}}]
"""


def fqdn(name: str) -> str:
    return f"{name}.{NS}.svc.{ZONE}."


def eventually(probe: Callable[[], _T], accept: Callable[[_T], bool], *, within: float = WAIT_SECONDS) -> _T:
    """Call ``probe`` until ``accept`` takes its result; fail with the last result otherwise."""
    deadline = time.monotonic() + within
    while True:
        result = probe()
        if accept(result):
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"still {result!r} after {within:g}s", pytrace=False)
        time.sleep(0.05)


def dig(*args: str, tool: str = "dig") -> str:
    """`dig`/`kdig` at the cluster DNS; the whole printed answer."""
    timing = ["+time=2", "+tries=1"] if tool == "dig" else ["+timeout=2", "+retry=0"]
    done = subprocess.run(
        [tool, f"@{DNS}", *timing, *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return done.stdout


def short(*args: str, tool: str = "dig") -> list[str]:
    return sorted(line for line in dig("+short", *args, tool=tool).splitlines() if line)


def status(output: str) -> str:
    match = re.search(r"status: (\w+)", output)
    assert match, output
    return match.group(1)


def authority_soa(output: str) -> bool:
    section = output.partition("AUTHORITY SECTION:")[2]
    return bool(re.search(rf"^{ZONE}\.\s+\d+\s+IN\s+SOA\s+ns\.dns\.{ZONE}\.", section, re.MULTILINE))


def pod_ips(lab: Lab) -> dict[str, str]:
    out = lab.kubectl(
        "-n",
        NS,
        "get",
        "pods",
        "-l",
        "app=db",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.status.podIP} {end}",
    ).stdout
    pairs = (item.partition("=") for item in out.split())
    return {name: ip for name, _, ip in pairs if ip}


@pytest.fixture(scope="module")
def objects(lab: Lab) -> Iterator[dict[str, str]]:
    """The namespace's objects, ready; yields the Service and pod addresses."""
    lab.kubectl("apply", "-f", "-", input=OBJECTS)
    lab.kubectl("-n", NS, "rollout", "status", "statefulset/db", f"--timeout={WAIT_SECONDS:g}s", timeout=90)
    lab.kubectl(
        "-n", NS, "wait", "--for=condition=Ready", "pod/client", f"--timeout={WAIT_SECONDS:g}s", timeout=90
    )
    addresses = {"web": lab.kubectl("-n", NS, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout}
    addresses.update(pod_ips(lab))
    yield addresses
    lab.kubectl("delete", "namespace", NS, "--wait=false")


def test_up_deploys_the_dns_addon(lab: Lab) -> None:
    assert "add-on coredns_lite available" in lab.up_output
    ready = lab.kubectl(
        "-n", "kube-system", "get", "deployment", "coredns", "-o", "jsonpath={.status.availableReplicas}"
    ).stdout
    assert ready == "2"
    assert (
        lab.kubectl("-n", "kube-system", "get", "svc", "kube-dns", "-o", "jsonpath={.spec.clusterIP}").stdout
        == DNS
    )


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_a_record_of_a_clusterip_service(lab: Lab, objects: dict[str, str], tool: str) -> None:
    assert short(fqdn("web"), "A", tool=tool) == [objects["web"]]
    assert short(f"kubernetes.default.svc.{ZONE}", "A", tool=tool) == ["127.96.0.1"]


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_srv_for_named_ports_only(lab: Lab, objects: dict[str, str], tool: str) -> None:
    assert short(f"_http._tcp.{fqdn('web')}", "SRV", tool=tool) == [f"0 100 80 {fqdn('web')}"]
    assert short(f"_81._tcp.{fqdn('plain')}", "SRV", tool=tool) == []  # an unnamed port has no SRV


def test_ptr_of_a_cluster_ip_and_of_an_endpoint(lab: Lab, objects: dict[str, str]) -> None:
    assert short("-x", objects["web"]) == [fqdn("web")]
    assert short("-x", objects["db-1"], tool="kdig") == [f"db-1.{fqdn('db')}"]


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_cname_of_an_external_name_service(lab: Lab, objects: dict[str, str], tool: str) -> None:
    assert short(fqdn("ext"), "CNAME", tool=tool) == ["example.com."]


def test_headless_service_a_set_hostnames_and_srv(lab: Lab, objects: dict[str, str]) -> None:
    assert short(fqdn("db"), "A") == sorted([objects["db-0"], objects["db-1"]])
    assert short(f"db-0.{fqdn('db')}", "A", tool="kdig") == [objects["db-0"]]
    assert short(f"_pg._tcp.{fqdn('db')}", "SRV") == sorted(
        f"0 50 5432 db-{index}.{fqdn('db')}" for index in range(2)
    )


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_nxdomain_and_nodata_carry_the_zone_soa(lab: Lab, objects: dict[str, str], tool: str) -> None:
    missing = dig(fqdn("missing"), "A", tool=tool)
    assert status(missing) == "NXDOMAIN"
    assert authority_soa(missing), missing
    nodata = dig(fqdn("web"), "AAAA", tool=tool)
    assert status(nodata) == "NOERROR"
    assert "ANSWER SECTION" not in nodata
    assert authority_soa(nodata), nodata
    assert status(dig(f"web.no-such-namespace.svc.{ZONE}.", "A", tool=tool)) == "NXDOMAIN"


def test_pods_resolve_short_names_through_their_resolv_conf(lab: Lab, objects: dict[str, str]) -> None:
    resolv = lab.kubectl("-n", NS, "exec", "client", "--", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {DNS}" in resolv.splitlines()
    assert f"search {NS}.svc.{ZONE} svc.{ZONE} {ZONE}" in resolv
    assert "options ndots:5" in resolv
    for name, address in (
        ("web", objects["web"]),
        ("db-0.db", objects["db-0"]),
        ("kubernetes.default", "127.96.0.1"),
    ):
        out = lab.kubectl("-n", NS, "exec", "client", "--", "getent", "hosts", name).stdout.split()
        assert out[0] == address, (name, out)
    failed = lab.kubectl("-n", NS, "exec", "client", "--", "getent", "hosts", "no-such-service", check=False)
    assert failed.returncode != 0


def test_a_deleted_service_answers_nxdomain_at_once(lab: Lab, objects: dict[str, str]) -> None:
    lab.kubectl("-n", NS, "create", "service", "clusterip", "gone", "--tcp=80:80")
    name = fqdn("gone")
    eventually(lambda: query(server=DNS, name=name, qtype="A").rcode, lambda rcode: rcode == "NOERROR")
    lab.kubectl("-n", NS, "delete", "service", "gone", "--wait=false")
    acknowledged = time.monotonic()
    eventually(
        lambda: query(server=DNS, name=name, qtype="A").rcode, lambda rcode: rcode == "NXDOMAIN", within=2.0
    )
    # the target: 100 ms from the API's acknowledgement (kubectl exits after it)
    assert time.monotonic() - acknowledged < 0.1


def test_scaling_a_headless_statefulset_changes_its_a_set(lab: Lab, objects: dict[str, str]) -> None:
    def a_set() -> list[str]:
        return query(server=DNS, name=fqdn("db"), qtype="A").values("A")

    lab.kubectl("-n", NS, "scale", "statefulset", "db", "--replicas=3")
    lab.kubectl("-n", NS, "rollout", "status", "statefulset/db", f"--timeout={WAIT_SECONDS:g}s", timeout=90)
    three = eventually(a_set, lambda found: found == sorted(pod_ips(lab).values()) and len(found) == 3)
    assert (
        eventually(lambda: query(server=DNS, name=f"db-2.{fqdn('db')}", qtype="A").values("A"), bool)[0]
        in three
    )
    lab.kubectl("-n", NS, "scale", "statefulset", "db", "--replicas=2")
    eventually(a_set, lambda found: found == sorted([objects["db-0"], objects["db-1"]]))
    assert query(server=DNS, name=f"db-2.{fqdn('db')}", qtype="A").rcode == "NXDOMAIN"


def test_smoke_dns_passes(lab: Lab) -> None:
    result = lab.kubelab("smoke", "dns", "--kubeconfig", str(lab.kubeconfig))
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout
    for check in (
        "A ClusterIP Service",
        "SRV headless",
        "PTR endpoint",
        "CNAME ExternalName",
        "search path (in pod)",
    ):
        assert re.search(rf"^{re.escape(check)}\s+pass\s", result.stdout, re.MULTILINE), result.stdout
