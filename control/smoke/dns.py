"""`kubelab smoke dns`: does the cluster DNS answer what the Kubernetes DNS specification
says, for objects made just now?

It speaks only the public API (:mod:`control.client`) and DNS, so it runs against any
cluster with a cluster DNS, not only a lab: the DNS server is the ``kube-system/kube-dns``
Service's clusterIP, queried over UDP from where the smoke test runs (a lab's host, or a
node of a real cluster). In a fresh namespace it creates a ClusterIP Service, a headless
Service over a 2-replica StatefulSet, an ExternalName Service and a client pod, then
checks A, SRV, PTR, CNAME, the StatefulSet pods' hostnames, NXDOMAIN, search-path
resolution of short names from inside the client pod (``kubectl exec`` running Python's
resolver, i.e. the pod's libc and its resolv.conf), and one external name forwarded
upstream. By default that name is ``example.com``, and its check is skipped, and said so,
when this machine cannot resolve it either; a cluster whose upstream answers a name of its
own (a lab forwarding to a private resolver) names it and the address it must resolve to
(``external_name``/``external_answer``), and then the check is judged, never skipped. The
namespace is deleted at the end whatever happened.

The workload images are ``busybox`` and ``python`` (the lab's process runtime maps them to
host programs; a real cluster pulls them). Answers are polled until they match or the
deadline passes, since endpoints follow pods a moment later.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord

from control.client import ClientConfig, Resource, RESTClient
from control.client.errors import NotFoundError, RequestError

NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
SERVICES = Resource("", "v1", "services", "Service")
PODS = Resource("", "v1", "pods", "Pod")
STATEFULSETS = Resource("apps", "v1", "statefulsets", "StatefulSet")

DNS_NAMESPACE = "kube-system"
DNS_SERVICE = "kube-dns"
EXTERNAL_NAME = "example.com"
QUERY_TIMEOUT = 2.0
IN_POD_TIMEOUT = 20.0


class SmokeError(Exception):
    """The smoke test could not run (no cluster DNS, objects not ready in time)."""


class SkipCheck(Exception):
    """A check that cannot be judged from here; the table shows it as skipped with the reason."""


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    name: str
    status: str  # "pass", "FAIL" or "skip"
    seconds: float
    detail: str


@dataclass(frozen=True, kw_only=True)
class SmokeReport:
    server: str  # the DNS server queried
    namespace: str  # where the objects were made (deleted afterwards)
    results: list[CheckResult]

    @property
    def passed(self) -> bool:
        return all(result.status != "FAIL" for result in self.results)

    def table(self) -> str:
        header = ("check", "result", "latency", "detail")
        rows = [
            (result.name, result.status, f"{result.seconds * 1000:.1f} ms", result.detail)
            for result in self.results
        ]
        widths = [max(len(row[column]) for row in [header, *rows]) for column in range(3)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
            for row in [header, *rows]
        ]
        counts = {
            status: sum(result.status == status for result in self.results)
            for status in ("pass", "FAIL", "skip")
        }
        summary = (
            f"{counts['pass']} passed, {counts['FAIL']} failed, {counts['skip']} skipped "
            f"(DNS server {self.server}, namespace {self.namespace}, deleted)"
        )
        return "\n".join([*lines, "", summary])


@dataclass(frozen=True, kw_only=True)
class _Answer:
    rcode: str
    records: list[tuple[str, str]]  # (type, rdata) of the answer section

    def values(self, rtype: str) -> list[str]:
        return sorted(value for kind, value in self.records if kind == rtype)


def query(*, server: str, name: str, qtype: str, port: int = 53, timeout: float = QUERY_TIMEOUT) -> _Answer:
    """One query over UDP (retried once on timeout); TimeoutError when nothing answers."""
    request = DNSRecord.question(name, qtype)
    family = socket.AF_INET6 if ipaddress.ip_address(server).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout / 2)
        for attempt in range(2):
            sock.sendto(request.pack(), (server, port))
            try:
                while True:
                    reply = DNSRecord.parse(sock.recv(65535))
                    if reply.header.id == request.header.id:
                        break
                break
            except TimeoutError:
                if attempt:
                    raise
    records = [(QTYPE.get(rr.rtype), str(rr.rdata)) for rr in reply.rr]
    return _Answer(rcode=RCODE.get(reply.header.rcode), records=records)


def _srv_targets(answer: _Answer) -> list[tuple[int, str]]:
    """(port, target) of each SRV record (rdata text is ``priority weight port target``)."""
    return sorted((int(value.split()[2]), value.split()[3]) for value in answer.values("SRV"))


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer + "."


@dataclass(kw_only=True)
class _Context:
    client: RESTClient
    server: str
    namespace: str
    zone: str
    kubeconfig: str | None
    deadline_seconds: float
    external_name: str = EXTERNAL_NAME
    external_answer: str | None = None  # the address external_name must resolve to, if known
    port: int = 53

    def fqdn(self, name: str) -> str:
        return f"{name}.{self.namespace}.svc.{self.zone}."


def _objects(namespace: str) -> list[tuple[Resource, dict[str, Any]]]:
    """The smoke test's objects: ClusterIP `web`, headless `db` over StatefulSet `db`,
    ExternalName `ext` and the client pod."""
    meta = {"namespace": namespace}
    sleeper = {"terminationGracePeriodSeconds": 1}
    return [
        (
            SERVICES,
            {
                "metadata": {**meta, "name": "web"},
                "spec": {
                    "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                },
            },
        ),
        (
            SERVICES,
            {
                "metadata": {**meta, "name": "db"},
                "spec": {
                    "clusterIP": "None",
                    "selector": {"app": "db"},
                    "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
                },
            },
        ),
        (
            SERVICES,
            {
                "metadata": {**meta, "name": "ext"},
                "spec": {"type": "ExternalName", "externalName": EXTERNAL_NAME},
            },
        ),
        (
            STATEFULSETS,
            {
                "metadata": {**meta, "name": "db"},
                "spec": {
                    "serviceName": "db",
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "db"}},
                    "template": {
                        "metadata": {"labels": {"app": "db"}},
                        "spec": {
                            **sleeper,
                            "containers": [
                                {"name": "db", "image": "busybox:1.36", "command": ["sleep", "3600"]}
                            ],
                        },
                    },
                },
            },
        ),
        (
            PODS,
            {
                "metadata": {**meta, "name": "client"},
                "spec": {
                    **sleeper,
                    "containers": [
                        {
                            "name": "client",
                            "image": "python:3-slim",
                            "command": ["python3", "-c", "import time; time.sleep(3600)"],
                        }
                    ],
                },
            },
        ),
    ]


async def _ready_pods(ctx: _Context) -> dict[str, str]:
    """Name -> IP of the namespace's Ready pods."""
    pods = await ctx.client.list(PODS, namespace=ctx.namespace)
    ready = {}
    for pod in pods.get("items") or ():
        status = pod.get("status") or {}
        conditions = {
            condition.get("type"): condition.get("status") for condition in status.get("conditions") or ()
        }
        if conditions.get("Ready") == "True" and status.get("podIP"):
            ready[pod["metadata"]["name"]] = status["podIP"]
    return ready


async def _wait_for_pods(ctx: _Context, names: set[str]) -> dict[str, str]:
    started = time.monotonic()
    while True:
        ready = await _ready_pods(ctx)
        if names <= ready.keys():
            return ready
        if time.monotonic() - started > ctx.deadline_seconds:
            missing = ", ".join(sorted(names - ready.keys()))
            raise SmokeError(
                f"pods {missing} in namespace {ctx.namespace} were not Ready within {ctx.deadline_seconds:g}s "
                f"(kubectl -n {ctx.namespace} describe pods)"
            )
        await asyncio.sleep(0.25)


Check = Callable[[], Awaitable[tuple[bool, str]]]


async def _until(check: Check, *, within: float) -> tuple[bool, str, float]:
    """Run ``check`` until it passes or ``within`` seconds pass: the last outcome and how
    long that last attempt took (the latency the table shows)."""
    deadline = time.monotonic() + within
    while True:
        started = time.monotonic()
        passed, detail = await check()
        took = time.monotonic() - started
        if passed or time.monotonic() >= deadline:
            return passed, detail, took
        await asyncio.sleep(0.1)


def _dns_check(ctx: _Context, *, name: str, qtype: str, expect: Callable[[_Answer], bool]) -> Check:
    async def check() -> tuple[bool, str]:
        try:
            answer = await asyncio.to_thread(query, server=ctx.server, name=name, qtype=qtype, port=ctx.port)
        except TimeoutError:
            return False, f"{qtype} {name}: no answer from {ctx.server} within {QUERY_TIMEOUT:g}s"
        shown = ", ".join(value for _, value in answer.records) or "no records"
        return expect(answer), f"{qtype} {name} -> {answer.rcode} {shown}"

    return check


def _in_pod_check(ctx: _Context, *, short_name: str, expect: str) -> Check:
    """Resolve ``short_name`` with the client pod's own resolver (its resolv.conf search path)."""
    script = f"import socket; print(socket.gethostbyname({short_name!r}))"

    async def check() -> tuple[bool, str]:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            return False, "kubectl is not on PATH (it runs the in-pod lookup)"
        argv = [kubectl, *(["--kubeconfig", ctx.kubeconfig] if ctx.kubeconfig else [])]
        argv += ["-n", ctx.namespace, "exec", "client", "--", "python3", "-c", script]
        try:
            done = await asyncio.to_thread(
                subprocess.run, argv, capture_output=True, text=True, timeout=IN_POD_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            return False, f"kubectl exec did not finish within {IN_POD_TIMEOUT:g}s"
        got = done.stdout.strip() or " ".join(done.stderr.strip().splitlines()[-1:]) or "nothing"
        return done.returncode == 0 and got == expect, f"in pod: {short_name} -> {got}"

    return check


def _external_check(ctx: _Context) -> Check:
    """An external name through the cluster DNS (so forwarded upstream). With an expected
    answer, it must be among the A records; without one, any address passes, and the check is
    skipped when this machine cannot resolve the name either (no upstream reachable from here,
    so the cluster's forwarder cannot be judged)."""
    name = ctx.external_name.rstrip(".") + "."

    async def check() -> tuple[bool, str]:
        try:
            answer = await asyncio.to_thread(query, server=ctx.server, name=name, qtype="A", port=ctx.port)
        except TimeoutError:
            answer = None
        got = "no answer" if answer is None else ", ".join(answer.values("A")) or answer.rcode
        if ctx.external_answer is not None:
            passed = answer is not None and ctx.external_answer in answer.values("A")
            return passed, f"A {name} -> {got} (forwarded upstream; expected {ctx.external_answer})"
        if answer is not None and answer.rcode == "NOERROR" and answer.values("A"):
            return True, f"A {name} -> {got} (forwarded upstream)"
        try:
            await asyncio.wait_for(
                asyncio.to_thread(socket.gethostbyname, ctx.external_name.rstrip(".")), timeout=QUERY_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            raise SkipCheck(
                f"no upstream DNS reachable from here: this machine cannot resolve {name} either "
                "(name one the cluster's upstream answers with --external-name/--external-answer)"
            ) from exc
        return False, f"A {name} -> {got}, although this machine resolves it"

    return check


async def _run_check(name: str, check: Check, *, within: float) -> CheckResult:
    started = time.monotonic()
    try:
        passed, detail, took = await _until(check, within=within)
    except SkipCheck as skip:
        return CheckResult(name=name, status="skip", seconds=time.monotonic() - started, detail=str(skip))
    return CheckResult(name=name, status="pass" if passed else "FAIL", seconds=took, detail=detail)


async def _checks(ctx: _Context, *, pod_ips: dict[str, str]) -> list[CheckResult]:
    web_ip = (await ctx.client.get(SERVICES, "web", namespace=ctx.namespace))["spec"]["clusterIP"]
    db_ips = sorted(pod_ips[f"db-{index}"] for index in range(2))
    db_targets = sorted((5432, f"db-{index}.{ctx.fqdn('db')}") for index in range(2))
    within = ctx.deadline_seconds
    plan: list[tuple[str, Check]] = [
        (
            "A ClusterIP Service",
            _dns_check(ctx, name=ctx.fqdn("web"), qtype="A", expect=lambda a: a.values("A") == [web_ip]),
        ),
        (
            "SRV named port",
            _dns_check(
                ctx,
                name=f"_http._tcp.{ctx.fqdn('web')}",
                qtype="SRV",
                expect=lambda a: _srv_targets(a) == [(80, ctx.fqdn("web"))],
            ),
        ),
        (
            "PTR ClusterIP",
            _dns_check(
                ctx,
                name=reverse_name(web_ip),
                qtype="PTR",
                expect=lambda a: a.values("PTR") == [ctx.fqdn("web")],
            ),
        ),
        (
            "A headless Service",
            _dns_check(ctx, name=ctx.fqdn("db"), qtype="A", expect=lambda a: a.values("A") == db_ips),
        ),
        (
            "A pod hostname",
            _dns_check(
                ctx,
                name=f"db-0.{ctx.fqdn('db')}",
                qtype="A",
                expect=lambda a: a.values("A") == [pod_ips["db-0"]],
            ),
        ),
        (
            "SRV headless",
            _dns_check(
                ctx,
                name=f"_pg._tcp.{ctx.fqdn('db')}",
                qtype="SRV",
                expect=lambda a: _srv_targets(a) == db_targets,
            ),
        ),
        (
            "PTR endpoint",
            _dns_check(
                ctx,
                name=reverse_name(pod_ips["db-1"]),
                qtype="PTR",
                expect=lambda a: a.values("PTR") == [f"db-1.{ctx.fqdn('db')}"],
            ),
        ),
        (
            "CNAME ExternalName",
            _dns_check(
                ctx,
                name=ctx.fqdn("ext"),
                qtype="CNAME",
                expect=lambda a: a.values("CNAME") == [EXTERNAL_NAME + "."],
            ),
        ),
        (
            "NXDOMAIN",
            _dns_check(ctx, name=ctx.fqdn("missing"), qtype="A", expect=lambda a: a.rcode == "NXDOMAIN"),
        ),
        ("search path (in pod)", _in_pod_check(ctx, short_name="web", expect=web_ip)),
        (
            "search path, pod hostname (in pod)",
            _in_pod_check(ctx, short_name="db-0.db", expect=pod_ips["db-0"]),
        ),
        ("external name (forwarded)", _external_check(ctx)),
    ]
    return [await _run_check(name, check, within=within) for name, check in plan]


async def dns_server(client: RESTClient) -> str:
    """The cluster DNS address: the kube-system/kube-dns Service's clusterIP."""
    try:
        service = await client.get(SERVICES, DNS_SERVICE, namespace=DNS_NAMESPACE)
    except NotFoundError as exc:
        raise SmokeError(
            f"this cluster has no {DNS_NAMESPACE}/{DNS_SERVICE} Service: deploy a cluster DNS first "
            "(`kubelab up` deploys coredns_lite unless --no-addons)"
        ) from exc
    address = (service.get("spec") or {}).get("clusterIP") or ""
    if not address or address == "None":
        raise SmokeError(f"the {DNS_NAMESPACE}/{DNS_SERVICE} Service has no clusterIP to query")
    return address


async def run_dns_smoke(
    config: ClientConfig,
    *,
    kubeconfig: str | None,
    zone: str = "cluster.local",
    wait: float = 60.0,
    external_name: str = EXTERNAL_NAME,
    external_answer: str | None = None,
) -> SmokeReport:
    """Create the objects, run every check, delete the namespace; the results in order.

    ``wait`` bounds the wait for the pods and each check's polling. ``external_name`` is the
    name outside the cluster that must be forwarded upstream, ``external_answer`` (an IP) what
    it must resolve to, when known. SmokeError when the test cannot run at all; RequestError
    when the API refuses an object.
    """
    if external_answer is not None:
        try:
            external_answer = str(ipaddress.IPv4Address(external_answer))
        except ValueError as exc:
            raise SmokeError(
                f"the expected external answer {external_answer!r} is not an IPv4 address"
            ) from exc
    async with RESTClient(config) as client:
        server = await dns_server(client)
        namespace = f"dns-smoke-{secrets.token_hex(3)}"
        ctx = _Context(
            client=client,
            server=server,
            namespace=namespace,
            zone=zone,
            kubeconfig=kubeconfig,
            deadline_seconds=wait,
            external_name=external_name,
            external_answer=external_answer,
        )
        await client.create(
            NAMESPACES, {"metadata": {"name": namespace, "labels": {"kubelab.dev/smoke": "dns"}}}
        )
        try:
            for resource, body in _objects(namespace):
                await client.create(resource, body, namespace=namespace)
            pod_ips = await _wait_for_pods(ctx, {"db-0", "db-1", "client"})
            results = await _checks(ctx, pod_ips=pod_ips)
            return SmokeReport(server=server, namespace=namespace, results=results)
        finally:
            try:
                await client.delete(NAMESPACES, namespace)
            except RequestError:
                pass  # the namespace is named and labelled kubelab.dev/smoke=dns for manual clean-up
