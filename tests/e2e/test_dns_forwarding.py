"""Issue 4's forwarding, proven in the shared lab against a real upstream resolver.

A real dnsmasq on a loopback address (reachable from the host and from pods, which share the
host's network) answers the test zone ``example.test``: A, AAAA and TXT for ``www``, a TXT set of
about 2.5 KB for ``big`` that it can only send whole over TCP (``--edns-packet-max=512``),
NXDOMAIN for every other name, and any name under ``probe.example.test`` for the probes below.
It logs every query it gets, with the answering process's pid: dnsmasq answers TCP in forked
children, so a log line from another pid than the main one is a query that came over TCP.

The module points the add-on's ConfigMap (``kube-system/coredns``) at it, while a thread keeps
asking a cluster name through 127.96.0.10, so the reload path is exercised under traffic and
must not drop a query. A replica has switched upstreams when a fresh name asked *at that
replica* is counted in ``coredns_forward_requests_total`` under the new upstream's label. At
the end the original Corefile is put back, and the module waits until every replica forwards
to the node's resolvers again, so the rest of the session sees the lab as ``kubelab up`` made it.

Then: forwarded answers from the host (dig, kdig) and from inside a pod (getent through the
pod's libc and resolv.conf, dig for TXT), cache hits in ``coredns_cache_hits_total`` with the
upstream asked at most once per replica, the UDP-then-TCP retry of a truncated upstream answer,
an upstream NXDOMAIN cached as a denial, ``kubelab smoke dns`` reporting the forwarded external
name, and a forwarding loop (the upstream is the cluster DNS itself) answered REFUSED or
SERVFAIL after a bounded number of forwards, not amplified.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.addons.coredns_lite.upstreams import free_port, require
from tests.e2e.conftest import Lab

DNS = "127.96.0.10"
SELF_LABEL = f"{DNS}:53"
UPSTREAM_HOST = "127.0.55.1"
NS = "dns-fwd-e2e"
RELOAD_WITHIN = 120.0  # the running Corefile's `reload` polls every 30 s, plus the kubelet's ConfigMap sync
WAIT_SECONDS = 60.0
BIG_TXT_RECORDS = 12
TRAFFIC_NAME = "kubernetes.default.svc.cluster.local."
TRAFFIC_ANSWER = "127.96.0.1"


@dataclass(frozen=True)
class Upstream:
    """The running dnsmasq: where it listens, its main pid and its query log."""

    host: str
    port: int
    pid: int
    log: Path

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    def queries(self, qtype: str, name: str) -> list[int]:
        """The pid that logged each query for (qtype, name) so far (the main pid: UDP)."""
        pattern = re.compile(rf"dnsmasq\[(\d+)\]: query\[{qtype}\] {re.escape(name)} from ")
        return [int(match.group(1)) for match in pattern.finditer(self.log.read_text())]


@dataclass
class Traffic:
    """What the background queries saw while the Corefile was being reloaded."""

    answered: int = 0
    lost: list[str] = field(default_factory=list)


def ask(
    name: str, qtype: str, *, server: str = DNS, port: int = 53, timeout: float = 2.0
) -> dns.message.Message:
    """One UDP query, no retry (dns.exception.Timeout when nothing answers)."""
    return dns.query.udp(dns.message.make_query(name, qtype), server, port=port, timeout=timeout)


def values(reply: dns.message.Message, qtype: str) -> list[str]:
    rdtype = dns.rdatatype.from_text(qtype)
    return sorted(rdata.to_text() for rrset in reply.answer if rrset.rdtype == rdtype for rdata in rrset)


def dig(*args: str, tool: str = "dig") -> str:
    timing = ["+time=5", "+tries=1"] if tool == "dig" else ["+timeout=5", "+retry=0"]
    done = subprocess.run(
        [tool, f"@{DNS}", *timing, *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def flags(output: str) -> set[str]:
    """The header flags dig printed (``qr aa rd ra``...)."""
    match = re.search(r"^;; flags: ([a-z ]*);", output, re.MULTILINE)
    assert match, output
    return set(match.group(1).split())


def dns_pod_ips(lab: Lab) -> list[str]:
    out = lab.kubectl(
        "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "--field-selector=status.phase=Running",
        "-o", "jsonpath={range .items[*]}{.status.podIP} {end}",
    ).stdout  # fmt: skip
    ips = out.split()
    assert ips, "no running cluster DNS pod"
    return ips


def counters(pod_ip: str, metric: str, **labels: str) -> dict[str, float]:
    """A counter of one replica (``coredns_<metric>_total``) by its ``to``/``type`` label."""
    with urllib.request.urlopen(f"http://{pod_ip}:9153/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != f"coredns_{metric}_total":
                continue
            if any(sample.labels.get(key) != value for key, value in labels.items()):
                continue
            key = sample.labels.get("to") or sample.labels.get("type") or ""
            found[key] = found.get(key, 0.0) + sample.value
    return found


def total(pod_ips: list[str], metric: str, **labels: str) -> float:
    return sum(sum(counters(ip, metric, **labels).values()) for ip in pod_ips)


def wait_for_upstream(lab: Lab, accept: Callable[[set[str]], bool], *, what: str) -> None:
    """Until every replica forwards a fresh name to an upstream ``accept`` takes (by label)."""
    deadline = time.monotonic() + RELOAD_WITHIN
    for pod_ip in dns_pod_ips(lab):
        while True:
            before = counters(pod_ip, "forward_requests")
            try:
                # Longer than the forwarder's own timeout (5 s): once this returns, the probe's
                # forwards are over (a looping one too) and cannot blur what the tests count.
                ask(f"p-{secrets.token_hex(6)}.probe.example.test.", "A", server=pod_ip, timeout=6.0)
            except dns.exception.Timeout:
                pass  # the counter still shows where it went
            after = counters(pod_ip, "forward_requests")
            used = {to for to, count in after.items() if count > before.get(to, 0.0)}
            if used and accept(used):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"replica {pod_ip} still forwards to {used or 'nothing'}, not {what}")
            time.sleep(0.2)


def get_corefile(lab: Lab) -> str:
    return lab.kubectl(
        "-n", "kube-system", "get", "configmap", "coredns", "-o", "jsonpath={.data.Corefile}"
    ).stdout


def set_corefile(lab: Lab, corefile: str) -> None:
    patch = orjson.dumps({"data": {"Corefile": corefile}}).decode()
    lab.kubectl("-n", "kube-system", "patch", "configmap", "coredns", "--type=merge", "-p", patch)


def forwarding_to(corefile: str, upstream: str) -> str:
    """``corefile`` forwarding everything to ``upstream``, re-read every 2 s."""
    changed, forwards = re.subn(r"(?m)^(\s*)forward \. \S+", rf"\1forward . {upstream}", corefile)
    changed, reloads = re.subn(r"(?m)^(\s*)reload\b.*$", r"\1reload 2s", changed)
    assert forwards == reloads == 1, corefile
    return changed


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    binary = require("dnsmasq")
    directory = tmp_path_factory.mktemp("dnsmasq")
    hosts = directory / "hosts"
    hosts.write_text(
        "192.0.2.10 www.example.test\n2001:db8::10 www.example.test\n192.0.2.11 cache.example.test\n"
    )
    log = directory / "queries.log"
    port = free_port(UPSTREAM_HOST)
    big = [f"--txt-record=big.example.test,record-{i:02d}-{'y' * 180}" for i in range(BIG_TXT_RECORDS)]
    process = subprocess.Popen(
        [
            binary, "--keep-in-foreground", f"--log-facility={log}", "--log-queries", "--no-resolv",
            "--no-hosts", "--no-poll", f"--addn-hosts={hosts}", f"--listen-address={UPSTREAM_HOST}",
            "--bind-interfaces", f"--port={port}", "--local=/example.test/", "--local-ttl=60",
            "--address=/probe.example.test/192.0.2.99", "--edns-packet-max=512",
            "--txt-record=www.example.test,forwarded by dnsmasq", *big, "--user=root", "--pid-file=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                ask("www.example.test.", "A", server=UPSTREAM_HOST, port=port, timeout=0.2)
            except (dns.exception.Timeout, OSError):
                assert process.poll() is None, f"dnsmasq exited {process.returncode}"
                assert time.monotonic() < deadline, "dnsmasq did not answer within 10 s"
                continue
            break
        yield Upstream(host=UPSTREAM_HOST, port=port, pid=process.pid, log=log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def forwarding(lab: Lab, upstream: Upstream) -> Iterator[Traffic]:
    """The add-on forwarding to ``upstream``; what the traffic during the reload saw."""
    original = get_corefile(lab)
    traffic = Traffic()
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            try:
                reply = ask(TRAFFIC_NAME, "A")
            except dns.exception.Timeout:
                traffic.lost.append("timeout")
            else:
                if reply.rcode() == dns.rcode.NOERROR and values(reply, "A") == [TRAFFIC_ANSWER]:
                    traffic.answered += 1
                else:
                    traffic.lost.append(f"{dns.rcode.to_text(reply.rcode())} {values(reply, 'A')}")
            stop.wait(0.02)

    thread = threading.Thread(target=keep_asking, name="dns traffic")
    thread.start()
    try:
        set_corefile(lab, forwarding_to(original, upstream.label))
        wait_for_upstream(lab, lambda used: used == {upstream.label}, what=upstream.label)
    finally:
        stop.set()
        thread.join()
    try:
        yield traffic
    finally:
        set_corefile(lab, original)
        wait_for_upstream(
            lab, lambda used: not used & {upstream.label, SELF_LABEL}, what="the node's resolvers"
        )


@pytest.fixture(scope="module")
def client_pod(lab: Lab) -> Iterator[str]:
    lab.kubectl("create", "namespace", NS)
    lab.kubectl(
        "-n", NS, "run", "client", "--image=busybox", "--restart=Never", "--",
        "sleep", "3600",
    )  # fmt: skip
    try:
        lab.kubectl(
            "-n",
            NS,
            "wait",
            "--for=condition=Ready",
            "pod/client",
            f"--timeout={WAIT_SECONDS:g}s",
            timeout=90,
        )
        yield "client"
    finally:
        lab.kubectl("delete", "namespace", NS, "--wait=false")


def in_pod(lab: Lab, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return lab.kubectl("-n", NS, "exec", "client", "--", *argv, check=check)


def test_a_configmap_change_switches_the_upstream_without_dropping_queries(forwarding: Traffic) -> None:
    assert forwarding.lost == []
    assert forwarding.answered >= 10  # the traffic ran while the replicas reloaded


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_the_host_gets_forwarded_answers_at_the_cluster_dns(forwarding: Traffic, tool: str) -> None:
    assert dig("+short", "www.example.test", "A", tool=tool).split() == ["192.0.2.10"]
    assert dig("+short", "www.example.test", "AAAA", tool=tool).split() == ["2001:db8::10"]
    assert dig("+short", "www.example.test", "TXT", tool=tool).strip() == '"forwarded by dnsmasq"'


def test_a_pod_resolves_forwarded_names_through_its_resolv_conf(
    lab: Lab, forwarding: Traffic, client_pod: str
) -> None:
    assert in_pod(lab, "cat", "/etc/resolv.conf").stdout.count(f"nameserver {DNS}") == 1
    # getent goes through the pod's libc: the search path first (ndots:5), then the name as is
    assert in_pod(lab, "getent", "ahostsv4", "www.example.test").stdout.split()[0] == "192.0.2.10"
    assert in_pod(lab, "getent", "ahostsv6", "www.example.test").stdout.split()[0] == "2001:db8::10"
    assert in_pod(lab, "dig", "+short", "www.example.test", "TXT").stdout.strip() == '"forwarded by dnsmasq"'
    missing = in_pod(lab, "getent", "hosts", f"nx-{secrets.token_hex(4)}.example.test", check=False)
    assert missing.returncode == 2  # getent: not found


def test_repeated_forwarded_queries_are_cache_hits(lab: Lab, forwarding: Traffic, upstream: Upstream) -> None:
    replicas = dns_pod_ips(lab)
    hits = total(replicas, "cache_hits", type="success")
    rounds = 10
    for _ in range(rounds):
        assert values(ask("cache.example.test.", "A"), "A") == ["192.0.2.11"]
    assert total(replicas, "cache_hits", type="success") - hits >= rounds - len(replicas)
    assert 1 <= len(upstream.queries("A", "cache.example.test")) <= len(replicas)


def test_a_truncated_upstream_answer_is_retried_over_tcp(forwarding: Traffic, upstream: Upstream) -> None:
    # +ignore: dig itself must not retry over TCP; the whole 2.5 KB set fits its 4096-byte buffer,
    # and dnsmasq sends it whole only over TCP, so only the add-on's retry can have fetched it.
    whole = dig("+ignore", "+bufsize=4096", "big.example.test", "TXT")
    assert "tc" not in flags(whole), whole
    assert f"ANSWER: {BIG_TXT_RECORDS}," in whole
    pids = upstream.queries("TXT", "big.example.test")
    assert upstream.pid in pids  # the UDP attempt, answered truncated
    assert any(pid != upstream.pid for pid in pids)  # the retry, answered by a TCP child
    # A client with a 512-byte buffer gets TC from the add-on, then the whole set over TCP.
    cut = dig("+ignore", "+noedns", "big.example.test", "TXT")
    assert "tc" in flags(cut), cut
    assert f"ANSWER: {BIG_TXT_RECORDS}," in dig("+tcp", "big.example.test", "TXT")


def test_an_upstream_nxdomain_is_cached_as_a_denial(
    lab: Lab, forwarding: Traffic, upstream: Upstream
) -> None:
    replicas = dns_pod_ips(lab)
    name = f"nx-{secrets.token_hex(4)}.example.test"
    denials = total(replicas, "cache_hits", type="denial")
    rounds = 6  # well inside the 5 s a denial without an SOA is kept
    for _ in range(rounds):
        assert ask(f"{name}.", "A").rcode() == dns.rcode.NXDOMAIN
    assert total(replicas, "cache_hits", type="denial") - denials >= rounds - len(replicas)
    assert 1 <= len(upstream.queries("A", name)) <= len(replicas)


def test_smoke_dns_reports_the_external_name_as_forwarded(lab: Lab, forwarding: Traffic) -> None:
    result = lab.kubelab(
        "smoke", "dns", "--kubeconfig", str(lab.kubeconfig),
        "--external-name", "www.example.test", "--external-answer", "192.0.2.10",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"^external name \(forwarded\)\s+pass\s+.*A www\.example\.test\. -> 192\.0\.2\.10 "
        r"\(forwarded upstream; expected 192\.0\.2\.10\)$",
        result.stdout,
        re.MULTILINE,
    ), result.stdout


def test_an_upstream_that_forwards_back_to_us_is_refused_not_amplified(lab: Lab, forwarding: Traffic) -> None:
    """Last in the module: the loop configuration stays until the module puts the original back."""
    set_corefile(lab, forwarding_to(get_corefile(lab), SELF_LABEL))
    wait_for_upstream(lab, lambda used: used == {SELF_LABEL}, what=SELF_LABEL)
    replicas = dns_pod_ips(lab)
    forwards = total(replicas, "forward_requests")
    requests = total(replicas, "dns_requests")
    started = time.monotonic()
    out = dig(f"loop-{secrets.token_hex(4)}.example.test", "A")
    took = time.monotonic() - started
    assert re.search(r"status: (REFUSED|SERVFAIL),", out), out
    assert took < 6.0  # at worst one forward attempt's timeout (2 s) per hop, never a storm
    # Each replica sends the question upstream at most once: the copy that comes back to the
    # replica that sent it is refused (same ID) or waits for the original (coalesced).
    assert total(replicas, "forward_requests") - forwards <= len(replicas)
    assert total(replicas, "dns_requests") - requests <= 2 * len(replicas) + 1
