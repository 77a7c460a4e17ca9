"""A pod's resolv.conf and hosts file under every dnsPolicy, dnsConfig and the limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.kubelet.dns import (
    HostFile,
    hosts_file,
    parse_resolv_conf,
    pod_hostname,
    pod_resolver_config,
    resolver_env,
)

HOST_RESOLV = (
    "# generated\nnameserver 1.1.1.1\nnameserver 8.8.8.8\nsearch corp.example. lab.example\noptions rotate\n"
)
HOST_HOSTS = "127.0.0.1 localhost\n"


def pod(**spec: object) -> dict:
    return {"metadata": {"name": "web-7d9", "namespace": "shop"}, "spec": dict(spec)}


def resolver(pod_obj: dict, *, cluster_dns: list[str] | None = None) -> tuple[str, list[str]]:
    config, warnings = pod_resolver_config(
        pod_obj,
        cluster_dns=["127.96.0.10"] if cluster_dns is None else cluster_dns,
        cluster_domain="cluster.local",
        host_resolv_conf=HOST_RESOLV,
    )
    return config.render(), warnings


def test_cluster_first_uses_the_cluster_dns_and_search_path() -> None:
    text, warnings = resolver(pod())
    assert text == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n"
        "nameserver 127.96.0.10\n"
        "options ndots:5\n"
    )
    assert warnings == []


def test_host_network_and_default_use_the_hosts_file() -> None:
    host = "search corp.example lab.example\nnameserver 1.1.1.1\nnameserver 8.8.8.8\noptions rotate\n"
    assert resolver(pod(dnsPolicy="Default"))[0] == host
    assert resolver(pod(dnsPolicy="ClusterFirst", hostNetwork=True))[0] == host
    assert "nameserver 127.96.0.10" in resolver(pod(dnsPolicy="ClusterFirstWithHostNet", hostNetwork=True))[0]
    assert resolver(pod(), cluster_dns=[])[0] == host, "no cluster DNS: the host's settings"


def test_none_takes_dns_config_only_and_dns_config_merges() -> None:
    config = {
        "nameservers": ["127.0.0.53"],
        "searches": ["a.example"],
        "options": [{"name": "ndots", "value": "2"}],
    }
    assert resolver(pod(dnsPolicy="None", dnsConfig=config))[0] == (
        "search a.example\nnameserver 127.0.0.53\noptions ndots:2\n"
    )
    merged, _ = resolver(
        pod(
            dnsConfig={
                "nameservers": ["127.96.0.10", "10.9.9.9"],
                "searches": ["cluster.local", "x.test"],
                "options": [{"name": "ndots", "value": "1"}, {"name": "edns0"}],
            }
        )
    )
    lines = merged.splitlines()
    assert lines[0].split()[-1] == "x.test" and lines[0].count("cluster.local") == 3
    assert lines[1:3] == ["nameserver 127.96.0.10", "nameserver 10.9.9.9"]
    assert lines[3] == "options ndots:1 edns0"


def test_limits_drop_extras_and_warn() -> None:
    config = {
        "nameservers": ["127.0.0.2", "127.0.0.3", "127.0.0.4"],
        "searches": [f"d{i}.example" for i in range(40)] + ["x" * 300],
    }
    text, warnings = resolver(pod(dnsConfig=config))
    lines = text.splitlines()
    assert len(lines[0].split()) - 1 == 32
    assert [line for line in lines if line.startswith("nameserver")] == [
        "nameserver 127.96.0.10",
        "nameserver 127.0.0.2",
        "nameserver 127.0.0.3",
    ]
    assert warnings[0].startswith("Nameserver limits were exceeded, some nameservers have been omitted")
    assert warnings[1].startswith("Search Line limits were exceeded, some search paths have been omitted")


def test_parse_resolv_conf_keeps_the_last_search_and_options() -> None:
    parsed = parse_resolv_conf(
        "search a\nsearch b c.\nnameserver 1.2.3.4\n# nameserver 9.9.9.9\noptions x\noptions y z\n"
    )
    assert (parsed.searches, parsed.nameservers, parsed.options) == (["b", "c"], ["1.2.3.4"], ["y", "z"])
    assert resolver_env(parsed) == {"LOCALDOMAIN": "b c", "RES_OPTIONS": "y z"}


def test_hosts_file_and_hostname() -> None:
    managed = hosts_file(
        pod(
            hostname="db-0",
            subdomain="db",
            hostAliases=[{"ip": "127.0.0.9", "hostnames": ["a.local", "b.local"]}],
        ),
        pod_ips=["127.244.1.7"],
        cluster_domain="cluster.local",
        host_hosts=HOST_HOSTS,
    )
    assert managed.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "127.244.1.7\tdb-0.db.shop.svc.cluster.local\tdb-0\n" in managed
    assert managed.endswith("\n# Entries added by HostAliases.\n127.0.0.9\ta.local\tb.local\n")
    assert "127.244.1.7\tweb-7d9\n" in hosts_file(
        pod(), pod_ips=["127.244.1.7"], cluster_domain="cluster.local", host_hosts=""
    )
    host_network = hosts_file(
        pod(hostNetwork=True), pod_ips=["127.100.0.1"], cluster_domain="cluster.local", host_hosts=HOST_HOSTS
    )
    assert host_network == "# Kubernetes-managed hosts file (host network).\n" + HOST_HOSTS
    long_name = {"metadata": {"name": "a" * 62 + "-b" + "c" * 10, "namespace": "x"}, "spec": {}}
    assert pod_hostname(long_name, cluster_domain="cluster.local") == ("a" * 62, "")


def test_host_file_is_read_again_only_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "resolv.conf"
    host = HostFile(path)
    assert host.text() == "", "a missing file reads as empty"
    path.write_text(HOST_RESOLV)
    reads: list[Path] = []
    original = Path.read_text

    def counting(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counting)
    assert host.text() == HOST_RESOLV and host.text() == HOST_RESOLV
    assert reads == [path], "an unchanged file is not read twice"
    path.write_text("nameserver 9.9.9.9\n")
    assert host.text() == "nameserver 9.9.9.9\n"
    path.unlink()
    assert host.text() == ""
