"""Table columns and cells as kube-apiserver prints them for ``kubectl get``.

Pod, service, node and ingress cases are ported from k8s.io/kubernetes
pkg/printers/internalversion/printers_test.go (TestPrintPod,
TestPrintPodWithRestartableInitContainer, TestPrintServiceLoadBalancer,
TestPrintNodeStatus/InternalIP, TestPrintIngress, TestPrintIngressClass), adjusted for
the server's ``Wide: true``; AGE cases come from k8s.io/apimachinery
pkg/util/duration/duration_test.go. Other kinds follow the printers.go functions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control.resources.printers import column_definitions, human_duration, parse_time, row_cells
from control.resources.registry import PrinterColumn, ResourceType

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    stamp = NOW - timedelta(**delta)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{stamp.microsecond:06d}Z"


def _rt(group: str, kind: str, *, namespaced: bool = True, **extra: Any) -> ResourceType:
    return ResourceType(
        group=group,
        version="v1",
        kind=kind,
        plural=kind.lower() + "s",
        singular=kind.lower(),
        namespaced=namespaced,
        **extra,
    )


POD = _rt("", "Pod")


def cells(rt: ResourceType, obj: dict[str, Any]) -> list[Any]:
    return row_cells(rt, obj, now=NOW)


# --- AGE: duration.HumanDuration -------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "text"),
    [
        (timedelta(seconds=1), "1s"),
        (timedelta(seconds=70), "70s"),
        (timedelta(seconds=190), "3m10s"),
        (timedelta(minutes=70), "70m"),
        (timedelta(hours=47), "47h"),
        (timedelta(hours=49), "2d1h"),
        (timedelta(hours=8 * 24 + 2), "8d"),
        (timedelta(hours=367 * 24), "367d"),
        (timedelta(hours=365 * 2 * 24 + 25), "2y1d"),
        (timedelta(hours=365 * 8 * 24 + 2), "8y"),
        # TestHumanDurationBoundaries
        (timedelta(seconds=-2), "<invalid>"),
        (timedelta(seconds=-2, microseconds=1), "0s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=1) - timedelta(milliseconds=1), "0s"),
        (timedelta(minutes=2) - timedelta(milliseconds=1), "119s"),
        (timedelta(minutes=2), "2m"),
        (timedelta(minutes=2, seconds=1), "2m1s"),
        (timedelta(minutes=10) - timedelta(milliseconds=1), "9m59s"),
        (timedelta(minutes=10), "10m"),
        (timedelta(minutes=10, seconds=1), "10m"),
        (timedelta(hours=3) - timedelta(milliseconds=1), "179m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=3, minutes=1), "3h1m"),
        (timedelta(hours=8) - timedelta(milliseconds=1), "7h59m"),
        (timedelta(hours=8), "8h"),
        (timedelta(hours=8, minutes=59), "8h"),
        (timedelta(days=2) - timedelta(milliseconds=1), "47h"),
        (timedelta(days=2), "2d"),
        (timedelta(days=2, hours=1), "2d1h"),
        (timedelta(days=8) - timedelta(milliseconds=1), "7d23h"),
        (timedelta(days=8), "8d"),
        (timedelta(days=8, hours=23), "8d"),
        (timedelta(days=2 * 365) - timedelta(milliseconds=1), "729d"),
        (timedelta(days=2 * 365), "2y"),
        (timedelta(days=2 * 365, hours=23, minutes=59), "2y"),
        (timedelta(days=2 * 365 + 1) - timedelta(milliseconds=1), "2y"),
        (timedelta(days=2 * 365 + 1), "2y1d"),
        (timedelta(days=3 * 365), "3y"),
        (timedelta(days=7 * 365), "7y"),
        (timedelta(days=8 * 365) - timedelta(milliseconds=1), "7y364d"),
        (timedelta(days=8 * 365), "8y"),
        (timedelta(days=8 * 365 + 364), "8y"),
        (timedelta(days=9 * 365), "9y"),
    ],
)
def test_human_duration(elapsed: timedelta, text: str) -> None:
    assert human_duration(elapsed) == text


@pytest.mark.parametrize(
    ("created", "age"),
    [
        (ago(seconds=5), "5s"),
        (ago(minutes=3, seconds=20), "3m20s"),
        (ago(days=2, hours=3), "2d3h"),
        ("2024-06-01T14:00:00+02:00", "0s"),  # offsets are honoured
        ("2024-06-01T11:59:59.999999999Z", "0s"),  # nanoseconds are accepted
        ("2024-06-01T12:00:10Z", "<invalid>"),  # more than a second in the future
        (None, "<unknown>"),
        ("not a time", "<unknown>"),
        ("0001-01-01T00:00:00Z", "<unknown>"),  # Go's zero time
    ],
)
def test_age_cell(created: str | None, age: str) -> None:
    obj = {"metadata": {"name": "x", "creationTimestamp": created}, "status": {"phase": "Running"}}
    assert cells(_rt("", "Namespace", namespaced=False), obj)[2] == age


def test_parse_time() -> None:
    assert parse_time("2024-06-01T12:00:00Z") == NOW
    assert parse_time("2024-06-01T10:00:00-02:00") == NOW
    assert parse_time("2024-06-01 12:00:00Z") is None
    assert parse_time("2024-13-01T12:00:00Z") is None
    assert parse_time(None) is None


def test_naive_now_is_taken_as_utc() -> None:
    obj = {"metadata": {"name": "x", "creationTimestamp": ago(seconds=30)}}
    rt = _rt("", "Namespace", namespaced=False)
    assert row_cells(rt, obj, now=NOW.replace(tzinfo=None))[2] == "30s"


# --- pods ------------------------------------------------------------------------------------


def test_pod_columns() -> None:
    columns = column_definitions(POD)
    assert [(c["name"], c["type"], c["format"], c["priority"]) for c in columns] == [
        ("Name", "string", "name", 0),
        ("Ready", "string", "", 0),
        ("Status", "string", "", 0),
        ("Restarts", "string", "", 0),
        ("Age", "string", "", 0),
        ("IP", "string", "", 1),
        ("Node", "string", "", 1),
        ("Nominated Node", "string", "", 1),
        ("Readiness Gates", "string", "", 1),
    ]
    assert columns[1]["description"] == "The aggregate readiness state of this pod for accepting traffic."
    assert columns[0]["description"].startswith("Name must be unique within a namespace.")
    assert columns[5]["description"] == (
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."
    )
    columns[0]["name"] = "changed"
    assert column_definitions(POD)[0]["name"] == "Name"  # callers get copies


def _pod(
    *,
    containers: int = 1,
    init: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    reason: str = "",
    statuses: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    deleted: bool = False,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if reason:
        status["reason"] = reason
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    meta: dict[str, Any] = {"name": "p"}
    if deleted:
        meta["deletionTimestamp"] = ago(seconds=10)
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": f"c{i}"} for i in range(containers)], "initContainers": init or []},
        "status": status,
    }


RUNNING: dict[str, Any] = {"running": {}}
WAITING: dict[str, Any] = {"waiting": {}}


def restarted(seconds: float) -> dict[str, Any]:
    return {"terminated": {"finishedAt": ago(seconds=seconds)}}


ALWAYS = {"restartPolicy": "Always"}

POD_CASES = [
    # TestPrintPod
    (
        "test1",
        _pod(
            containers=2,
            phase="podPhase",
            statuses=[{"ready": True, "restartCount": 3, "state": RUNNING}, {"restartCount": 3}],
        ),
        ("1/2", "podPhase", "6"),
    ),
    (
        "container error overwrites pod phase",
        _pod(
            containers=2,
            phase="podPhase",
            statuses=[
                {"ready": True, "restartCount": 3, "state": RUNNING},
                {"restartCount": 3, "state": {"waiting": {"reason": "ContainerWaitingReason"}}},
            ],
        ),
        ("1/2", "ContainerWaitingReason", "6"),
    ),
    (
        "first container overwrites the rest",
        _pod(
            containers=2,
            phase="podPhase",
            statuses=[
                {"restartCount": 3, "state": {"waiting": {"reason": "ContainerWaitingReason"}}},
                {"restartCount": 3, "state": {"terminated": {"reason": "ContainerTerminatedReason"}}},
            ],
        ),
        ("0/2", "ContainerWaitingReason", "6"),
    ),
    (
        "ready is not enough for reporting running",
        _pod(
            containers=2,
            phase="podPhase",
            statuses=[
                {"ready": True, "restartCount": 3, "state": RUNNING},
                {"ready": True, "restartCount": 3},
            ],
        ),
        ("1/2", "podPhase", "6"),
    ),
    (
        "pod reason wins over phase",
        _pod(
            containers=2,
            phase="podPhase",
            reason="podReason",
            statuses=[
                {"ready": True, "restartCount": 3, "state": RUNNING},
                {"ready": True, "restartCount": 3},
            ],
        ),
        ("1/2", "podReason", "6"),
    ),
    (
        "completed and running container without ready condition",
        _pod(
            containers=2,
            statuses=[
                {
                    "ready": True,
                    "restartCount": 3,
                    "state": {"terminated": {"reason": "Completed", "exitCode": 0}},
                },
                {"ready": True, "restartCount": 3, "state": RUNNING},
            ],
        ),
        ("1/2", "NotReady", "6"),
    ),
    (
        "completed and running container with ready condition",
        _pod(
            containers=2,
            statuses=[
                {
                    "ready": True,
                    "restartCount": 3,
                    "state": {"terminated": {"reason": "Completed", "exitCode": 0}},
                },
                {"ready": True, "restartCount": 3, "state": RUNNING},
            ],
            conditions=[{"type": "Ready", "status": "True"}],
        ),
        ("1/2", "Running", "6"),
    ),
    (
        "init container restarting",
        _pod(
            init=[{"name": ""}],
            phase="podPhase",
            init_statuses=[{"restartCount": 3, "state": RUNNING, "lastState": restarted(10)}],
            statuses=[{"state": WAITING}],
        ),
        ("0/1", "Init:0/1", "3 (10s ago)"),
    ),
    (
        "two init containers, first restarting",
        _pod(
            init=[{"name": "a"}, {"name": "b"}],
            phase="podPhase",
            init_statuses=[
                {"name": "a", "restartCount": 3, "state": RUNNING, "lastState": restarted(10)},
                {"name": "b", "state": WAITING},
            ],
            statuses=[{"state": WAITING}],
        ),
        ("0/1", "Init:0/2", "3 (10s ago)"),
    ),
    (
        "first init completed, second restarting",
        _pod(
            init=[{"name": "a"}, {"name": "b"}],
            phase="podPhase",
            init_statuses=[
                {"name": "a", "state": {"terminated": {}}},
                {"name": "b", "restartCount": 3, "state": RUNNING, "lastState": restarted(10)},
            ],
            statuses=[{"state": WAITING}],
        ),
        ("0/1", "Init:1/2", "3 (10s ago)"),
    ),
    (
        "first init completed with restarts, second restarting",
        _pod(
            init=[{"name": "a"}, {"name": "b"}],
            phase="podPhase",
            init_statuses=[
                {"name": "a", "restartCount": 2, "state": {"terminated": {}}, "lastState": restarted(120)},
                {"name": "b", "restartCount": 3, "state": RUNNING, "lastState": restarted(10)},
            ],
            statuses=[{"state": WAITING}],
        ),
        ("0/1", "Init:1/2", "5 (10s ago)"),
    ),
    (
        "init completed with restarts, container restarting",
        _pod(
            init=[{"name": "a"}],
            init_statuses=[
                {"name": "a", "restartCount": 2, "state": {"terminated": {}}, "lastState": restarted(120)}
            ],
            statuses=[{"restartCount": 4, "state": RUNNING, "lastState": restarted(20)}],
        ),
        ("0/1", "Running", "4 (20s ago)"),
    ),
    (
        "restarted 5d ago",
        _pod(
            statuses=[{"ready": True, "restartCount": 3, "state": RUNNING, "lastState": restarted(5 * 86400)}]
        ),
        ("1/1", "Running", "3 (5d ago)"),
    ),
    (
        "latest restart of two containers",
        _pod(
            containers=2,
            statuses=[
                {"ready": True, "restartCount": 6, "state": RUNNING, "lastState": restarted(5 * 86400)},
                {"ready": True, "restartCount": 3, "state": RUNNING, "lastState": restarted(20 * 86400)},
            ],
        ),
        ("2/2", "Running", "9 (5d ago)"),
    ),
    (
        "scheduling gated",
        _pod(
            containers=2,
            phase="podPhase",
            conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
        ),
        ("0/2", "SchedulingGated", "0"),
    ),
    (
        "succeeded",
        _pod(phase="Succeeded", statuses=[{"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]),
        ("0/1", "Completed", "0"),
    ),
    (
        "failed",
        _pod(phase="Failed", statuses=[{"state": {"terminated": {"reason": "Error", "exitCode": 1}}}]),
        ("0/1", "Error", "0"),
    ),
    (
        "succeeded and deleted stays Completed",
        _pod(phase="Succeeded", deleted=True, statuses=[{"state": {"terminated": {"reason": "Completed"}}}]),
        ("0/1", "Completed", "0"),
    ),
    ("running and deleted", _pod(deleted=True, statuses=[{"state": RUNNING}]), ("0/1", "Terminating", "0")),
    ("pending and deleted", _pod(phase="Pending", deleted=True), ("0/1", "Terminating", "0")),
    # TestPrintPodWithRestartableInitContainer
    (
        "restartable init running but not started",
        _pod(
            init=[{"name": "r1", **ALWAYS}, {"name": "r2", **ALWAYS}],
            phase="Pending",
            init_statuses=[
                {
                    "name": "r1",
                    "restartCount": 3,
                    "state": RUNNING,
                    "started": False,
                    "lastState": restarted(10),
                },
                {"name": "r2", "state": WAITING, "started": False},
            ],
            statuses=[{"state": WAITING}],
            conditions=[{"type": "Initialized", "status": "False"}],
        ),
        ("0/3", "Init:0/2", "3 (10s ago)"),
    ),
    (
        "first restartable init started, second not",
        _pod(
            init=[{"name": "r1", **ALWAYS}, {"name": "r2", **ALWAYS}],
            phase="Pending",
            init_statuses=[
                {
                    "name": "r1",
                    "restartCount": 3,
                    "state": RUNNING,
                    "started": True,
                    "lastState": restarted(10),
                },
                {"name": "r2", "state": RUNNING, "started": False},
            ],
            statuses=[{"state": WAITING}],
            conditions=[{"type": "Initialized", "status": "False"}],
        ),
        ("0/3", "Init:1/2", "3 (10s ago)"),
    ),
    (
        "restartable inits started, container running",
        _pod(
            init=[{"name": "r1", **ALWAYS}, {"name": "r2", **ALWAYS}],
            init_statuses=[
                {
                    "name": "r1",
                    "restartCount": 3,
                    "state": RUNNING,
                    "started": True,
                    "lastState": restarted(10),
                },
                {"name": "r2", "ready": True, "state": RUNNING, "started": True},
            ],
            statuses=[{"ready": True, "state": RUNNING}],
            conditions=[{"type": "Initialized", "status": "True"}],
        ),
        ("2/3", "Running", "3 (10s ago)"),
    ),
    # the remaining branches of printPod
    (
        "init container crash looping",
        _pod(
            init=[{"name": "a"}],
            phase="Pending",
            init_statuses=[
                {"name": "a", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ],
        ),
        ("0/1", "Init:CrashLoopBackOff", "4"),
    ),
    (
        "init container PodInitializing counts as progress",
        _pod(
            init=[{"name": "a"}, {"name": "b"}],
            phase="Pending",
            init_statuses=[
                {"name": "a", "state": {"terminated": {"exitCode": 0}}},
                {"name": "b", "state": {"waiting": {"reason": "PodInitializing"}}},
            ],
        ),
        ("0/1", "Init:1/2", "0"),
    ),
    (
        "init container failed with exit code",
        _pod(
            init=[{"name": "a"}],
            phase="Pending",
            init_statuses=[{"name": "a", "state": {"terminated": {"exitCode": 3}}}],
        ),
        ("0/1", "Init:ExitCode:3", "0"),
    ),
    (
        "init container killed by signal",
        _pod(
            init=[{"name": "a"}],
            phase="Pending",
            init_statuses=[{"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}],
        ),
        ("0/1", "Init:Signal:9", "0"),
    ),
    (
        "init container failed with reason",
        _pod(
            init=[{"name": "a"}],
            phase="Pending",
            init_statuses=[{"name": "a", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
        ),
        ("0/1", "Init:Error", "0"),
    ),
    (
        "container exit code",
        _pod(statuses=[{"state": {"terminated": {"exitCode": 2}}}]),
        ("0/1", "ExitCode:2", "0"),
    ),
    (
        "container signal",
        _pod(statuses=[{"state": {"terminated": {"signal": 15}}}]),
        ("0/1", "Signal:15", "0"),
    ),
    (
        "crash loop",
        _pod(
            statuses=[
                {
                    "restartCount": 7,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": restarted(200),
                }
            ]
        ),
        ("0/1", "CrashLoopBackOff", "7 (3m20s ago)"),
    ),
    (
        "node lost",
        _pod(reason="NodeLost", phase="Running", deleted=True, statuses=[{"state": RUNNING}]),
        ("0/1", "Unknown", "0"),
    ),
    ("no status at all", {"metadata": {"name": "p"}}, ("0/0", "", "0")),
]


@pytest.mark.parametrize(("case", "pod", "expected"), POD_CASES, ids=[c[0] for c in POD_CASES])
def test_pod_status(case: str, pod: dict[str, Any], expected: tuple[str, str, str]) -> None:
    row = cells(POD, pod)
    assert tuple(row[1:4]) == expected


def test_pod_wide_cells() -> None:
    pod = {
        "metadata": {"name": "web", "creationTimestamp": ago(hours=1)},
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "c"}],
            "readinessGates": [{"conditionType": "example.com/a"}, {"conditionType": "example.com/b"}],
        },
        "status": {
            "phase": "Pending",
            "podIPs": [{"ip": "127.244.1.5"}, {"ip": "::1"}],
            "nominatedNodeName": "node-2",
            "conditions": [
                {"type": "example.com/a", "status": "True"},
                {"type": "example.com/b", "status": "False"},
            ],
        },
    }
    assert cells(POD, pod) == ["web", "0/1", "Pending", "0", "60m", "127.244.1.5", "node-1", "node-2", "1/2"]
    bare = cells(
        POD, {"metadata": {"name": "x"}, "spec": {"containers": [{}]}, "status": {"podIP": "127.0.0.1"}}
    )
    assert bare[5:] == ["127.0.0.1", "<none>", "<none>", "<none>"]


# --- services -------------------------------------------------------------------------------

SERVICE = _rt("", "Service")


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        # TestPrintServiceLoadBalancer (cells are wide on the server, so nothing is clipped)
        (
            {"clusterIPs": ["1.2.3.4"], "type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
            {"loadBalancer": {"ingress": [{"ip": "2.3.4.5"}, {"ip": "3.4.5.6"}]}},
            ["LoadBalancer", "1.2.3.4", "2.3.4.5,3.4.5.6", "80/TCP", "<none>"],
        ),
        (
            {
                "clusterIPs": ["1.3.4.5"],
                "type": "LoadBalancer",
                "ports": [
                    {"port": 80, "protocol": "TCP"},
                    {"port": 8090, "protocol": "UDP"},
                    {"port": 8000, "protocol": "TCP"},
                    {"port": 7777, "protocol": "SCTP"},
                ],
            },
            {},
            ["LoadBalancer", "1.3.4.5", "<pending>", "80/TCP,8090/UDP,8000/TCP,7777/SCTP", "<none>"],
        ),
        (
            {
                "clusterIPs": ["1.5.6.7"],
                "type": "LoadBalancer",
                "ports": [{"port": 80, "protocol": "TCP"}],
                "selector": {"foo": "bar"},
            },
            {
                "loadBalancer": {
                    "ingress": [
                        {"ip": "2.3.4.5"},
                        {"ip": "3.4.5.6"},
                        {"ip": "5.6.7.8", "hostname": "host5678"},
                    ]
                }
            },
            ["LoadBalancer", "1.5.6.7", "2.3.4.5,3.4.5.6,5.6.7.8", "80/TCP", "foo=bar"],
        ),
        (
            {
                "type": "LoadBalancer",
                "clusterIP": "127.96.0.5",
                "externalIPs": ["127.1.1.1"],
                "ports": [{"port": 443, "nodePort": 30443, "protocol": "TCP"}],
            },
            {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}},
            ["LoadBalancer", "127.96.0.5", "lb.example.com,127.1.1.1", "443:30443/TCP", "<none>"],
        ),
        # the brief's examples: ports with node ports, <none> external IPs, externalName
        (
            {
                "type": "NodePort",
                "clusterIP": "127.96.0.7",
                "ports": [
                    {"port": 80, "protocol": "TCP"},
                    {"port": 443, "nodePort": 30443, "protocol": "TCP"},
                ],
                "selector": {"b": "2", "a": "1"},
            },
            {},
            ["NodePort", "127.96.0.7", "<none>", "80/TCP,443:30443/TCP", "a=1,b=2"],
        ),
        (
            {
                "type": "ClusterIP",
                "clusterIP": "127.96.0.1",
                "externalIPs": ["127.2.2.2", "127.3.3.3"],
                "ports": [],
            },
            {},
            ["ClusterIP", "127.96.0.1", "127.2.2.2,127.3.3.3", "<none>", "<none>"],
        ),
        (
            {"type": "ExternalName", "externalName": "db.example.com"},
            {},
            ["ExternalName", "<none>", "db.example.com", "<none>", "<none>"],
        ),
        ({"type": "ClusterIP", "clusterIP": "None"}, {}, ["ClusterIP", "None", "<none>", "<none>", "<none>"]),
        ({}, {}, ["", "<none>", "<unknown>", "<none>", "<none>"]),
    ],
)
def test_service(spec: dict[str, Any], status: dict[str, Any], expected: list[str]) -> None:
    row = cells(SERVICE, {"metadata": {"name": "svc"}, "spec": spec, "status": status})
    assert row[0] == "svc" and row[5] == "<unknown>"
    assert row[1:5] + row[6:] == expected


def test_service_columns() -> None:
    assert [(c["name"], c["priority"]) for c in column_definitions(SERVICE)] == [
        ("Name", 0),
        ("Type", 0),
        ("Cluster-IP", 0),
        ("External-IP", 0),
        ("Port(s)", 0),
        ("Age", 0),
        ("Selector", 1),
    ]


ENDPOINTS = _rt("", "Endpoints")


@pytest.mark.parametrize(
    ("subsets", "text"),
    [
        ([], "<none>"),
        ([{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80}]}], "127.0.0.1:80"),
        ([{"addresses": [{"ip": "::1"}], "ports": [{"port": 80}]}], "[::1]:80"),
        ([{"addresses": [{"ip": "127.0.0.1"}, {"ip": "127.0.0.2"}]}], "127.0.0.1,127.0.0.2"),
        (
            [
                {
                    "addresses": [{"ip": f"127.0.0.{i}"} for i in range(1, 4)],
                    "ports": [{"port": 80}, {"port": 443}],
                }
            ],
            "127.0.0.1:80,127.0.0.2:80,127.0.0.3:80 + 3 more...",
        ),
        ([{"notReadyAddresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80}]}], ""),
    ],
)
def test_endpoints(subsets: list[dict[str, Any]], text: str) -> None:
    assert cells(ENDPOINTS, {"metadata": {"name": "e"}, "subsets": subsets})[1] == text


def test_endpoint_slice() -> None:
    rt = _rt("discovery.k8s.io", "EndpointSlice")
    obj = {
        "metadata": {"name": "s", "creationTimestamp": ago(seconds=9)},
        "addressType": "IPv4",
        "ports": [{"port": 80}, {"name": "named"}, {}, {"port": 9}],
        "endpoints": [{"addresses": ["127.0.0.1", "127.0.0.2"]}, {"addresses": ["127.0.0.3"]}],
    }
    assert cells(rt, obj) == ["s", "IPv4", "80,named,* + 1 more...", "127.0.0.1,127.0.0.2,127.0.0.3", "9s"]
    assert cells(rt, {"metadata": {"name": "e"}, "addressType": "IPv6"})[2:4] == ["<unset>", "<unset>"]


INGRESS = _rt("networking.k8s.io", "Ingress")


def test_ingress() -> None:
    obj = {
        "metadata": {"name": "test1", "creationTimestamp": ago(days=10 * 365)},
        "spec": {"ingressClassName": "foo", "defaultBackend": {"service": {"name": "default-backend"}}},
        "status": {"loadBalancer": {"ingress": [{"ip": "2.3.4.5", "hostname": "localhost.localdomain"}]}},
    }
    assert cells(INGRESS, obj) == ["test1", "foo", "*", "2.3.4.5", "80", "10y"]
    hosts = {
        "metadata": {"name": "h"},
        "spec": {
            "rules": [{"host": f"h{i}.example.com"} for i in range(5)] + [{}],
            "tls": [{"hosts": ["x"]}],
        },
    }
    assert cells(INGRESS, hosts)[1:5] == [
        "<none>",
        "h0.example.com,h1.example.com,h2.example.com + 3 more...",
        "",
        "80, 443",
    ]


@pytest.mark.parametrize(
    ("parameters", "text"),
    [
        ({"kind": "customgroup", "name": "example"}, "customgroup/example"),
        (
            {"apiGroup": "example.com", "kind": "customgroup", "name": "example"},
            "customgroup.example.com/example",
        ),
        (None, "<none>"),
    ],
)
def test_ingress_class(parameters: dict[str, str] | None, text: str) -> None:
    spec: dict[str, Any] = {"controller": "example.com/controller"}
    if parameters is not None:
        spec["parameters"] = parameters
    obj = {"metadata": {"name": "test1", "creationTimestamp": ago(days=11 * 365)}, "spec": spec}
    assert cells(_rt("networking.k8s.io", "IngressClass", namespaced=False), obj) == [
        "test1",
        "example.com/controller",
        text,
        "11y",
    ]


def test_network_policy() -> None:
    rt = _rt("networking.k8s.io", "NetworkPolicy")
    assert cells(rt, {"metadata": {"name": "n"}, "spec": {}})[1] == "<none>"
    assert (
        cells(rt, {"metadata": {"name": "n"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}}}})[1]
        == "app=web"
    )


# --- nodes -----------------------------------------------------------------------------------

NODE = _rt("", "Node", namespaced=False)


@pytest.mark.parametrize(
    ("conditions", "unschedulable", "status"),
    [
        ([{"type": "Ready", "status": "True"}], False, "Ready"),
        ([{"type": "Ready", "status": "True"}], True, "Ready,SchedulingDisabled"),
        ([{"type": "Ready", "status": "False"}], False, "NotReady"),
        ([{"type": "Ready", "status": "Unknown"}], True, "NotReady,SchedulingDisabled"),
        ([], False, "Unknown"),
        ([], True, "Unknown,SchedulingDisabled"),
        ([{"type": "Ready", "status": "False"}, {"type": "Ready", "status": "True"}], False, "Ready"),
        ([{"type": "MemoryPressure", "status": "True"}], False, "Unknown"),
    ],
)
def test_node_status(conditions: list[dict[str, str]], unschedulable: bool, status: str) -> None:
    node = {
        "metadata": {"name": "n"},
        "spec": {"unschedulable": unschedulable},
        "status": {"conditions": conditions},
    }
    assert cells(NODE, node)[1] == status


@pytest.mark.parametrize(
    ("labels", "roles"),
    [
        ({}, "<none>"),
        (
            {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "x"},
            "control-plane,worker",
        ),
        ({"node-role.kubernetes.io/": "", "kubernetes.io/role": "master"}, "master"),
        ({"kubernetes.io/role": ""}, "<none>"),
        ({"kubernetes.io/role": "worker", "node-role.kubernetes.io/worker": ""}, "worker"),
    ],
)
def test_node_roles(labels: dict[str, str], roles: str) -> None:
    assert cells(NODE, {"metadata": {"name": "n", "labels": labels}})[2] == roles


@pytest.mark.parametrize(
    ("addresses", "internal", "external"),
    [
        ([{"type": "InternalIP", "address": "1.1.1.1"}], "1.1.1.1", "<none>"),
        ([{"type": "ExternalIP", "address": "1.1.1.1"}], "<none>", "1.1.1.1"),
        (
            [
                {"type": "InternalIP", "address": "2.2.2.2"},
                {"type": "ExternalIP", "address": "3.3.3.3"},
                {"type": "InternalIP", "address": "4.4.4.4"},
            ],
            "2.2.2.2",
            "3.3.3.3",
        ),
    ],
)
def test_node_addresses(addresses: list[dict[str, str]], internal: str, external: str) -> None:
    row = cells(NODE, {"metadata": {"name": "foo"}, "status": {"addresses": addresses}})
    assert row == [
        "foo",
        "Unknown",
        "<none>",
        "<unknown>",
        "",
        internal,
        external,
        "<unknown>",
        "<unknown>",
        "<unknown>",
    ]


def test_node_system_info() -> None:
    node = {
        "metadata": {"name": "n1", "creationTimestamp": ago(days=3)},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {
                "kubeletVersion": "v1.33.0",
                "osImage": "Debian GNU/Linux 13",
                "kernelVersion": "6.1.0",
                "containerRuntimeVersion": "kubelab://0.1.0",
            },
        },
    }
    assert cells(NODE, node)[3:] == [
        "3d",
        "v1.33.0",
        "<none>",
        "<none>",
        "Debian GNU/Linux 13",
        "6.1.0",
        "kubelab://0.1.0",
    ]


# --- workloads ---------------------------------------------------------------------------------

TEMPLATE = {"spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "log", "image": "busybox"}]}}


def test_deployment() -> None:
    rt = _rt("apps", "Deployment")
    obj = {
        "metadata": {"name": "d", "creationTimestamp": ago(minutes=5)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 1},
    }
    assert cells(rt, obj) == ["d", "2/3", 3, 1, "5m", "web,log", "nginx,busybox", "app=web"]
    assert [c["name"] for c in column_definitions(rt)] == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    bad = {
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}},
    }
    assert cells(rt, bad)[1:] == ["0/0", 0, 0, "<unknown>", "", "", "<invalid>"]
    assert cells(rt, {"metadata": {"name": "d"}})[-1] == ""  # a nil selector selects nothing: ""


def test_replication_controller_prints_like_a_replica_set_with_a_label_map_selector() -> None:
    rt = _rt("", "ReplicationController")
    assert [c["name"] for c in column_definitions(rt)] == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert [c["priority"] for c in column_definitions(rt)] == [0, 0, 0, 0, 0, 1, 1, 1]
    rc = {
        "metadata": {"name": "rc"},
        "spec": {"replicas": 3, "selector": {"tier": "front", "app": "web"}, "template": TEMPLATE},
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    assert cells(rt, rc) == ["rc", 3, 2, 1, "<unknown>", "web,log", "nginx,busybox", "app=web,tier=front"]
    # A template-less controller (a nil pointer upstream) prints no containers; no selector is <none>.
    assert cells(rt, {"metadata": {"name": "rc"}})[1:] == [0, 0, 0, "<unknown>", "", "", "<none>"]


def test_replica_set_and_daemon_set() -> None:
    rs = {
        "metadata": {"name": "rs"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    assert cells(_rt("apps", "ReplicaSet"), rs) == [
        "rs",
        2,
        2,
        1,
        "<unknown>",
        "web,log",
        "nginx,busybox",
        "app=web",
    ]
    ds = {
        "metadata": {"name": "test1", "creationTimestamp": ago(seconds=0)},
        "spec": {"template": {"spec": {"containers": [{}, {}], "nodeSelector": {"disk": "ssd"}}}},
        "status": {
            "currentNumberScheduled": 2,
            "desiredNumberScheduled": 3,
            "numberReady": 1,
            "updatedNumberScheduled": 2,
            "numberAvailable": 0,
        },
    }
    assert cells(_rt("apps", "DaemonSet"), ds) == [
        "test1",
        3,
        2,
        1,
        2,
        0,
        "disk=ssd",
        "0s",
        ",",
        ",",
        "<none>",
    ]


def test_stateful_set_and_controller_revision() -> None:
    sts = {
        "metadata": {"name": "db"},
        "spec": {"replicas": 3, "template": TEMPLATE},
        "status": {"readyReplicas": 1},
    }
    assert cells(_rt("apps", "StatefulSet"), sts) == ["db", "1/3", "<unknown>", "web,log", "nginx,busybox"]
    revision = {
        "metadata": {
            "name": "db-7c9",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": "x"},
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": True},
            ],
        },
        "revision": 4,
    }
    rt = _rt("apps", "ControllerRevision")
    assert cells(rt, revision) == ["db-7c9", "statefulset.apps/db", 4, "<unknown>"]
    core_owner = {
        "metadata": {
            "name": "r",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n", "controller": True}],
        }
    }
    assert cells(rt, core_owner)[1] == "node/n"
    assert cells(rt, {"metadata": {"name": "r"}})[1:3] == ["<none>", 0]


JOB = _rt("batch", "Job")


@pytest.mark.parametrize(
    ("spec", "status", "meta", "expected"),
    [
        ({"completions": 2}, {"succeeded": 1}, {}, ["Running", "1/2", ""]),
        ({}, {}, {}, ["Running", "0/1", ""]),
        ({"parallelism": 3}, {"succeeded": 1}, {}, ["Running", "1/1 of 3", ""]),
        (
            {"completions": 1},
            {
                "succeeded": 1,
                "startTime": ago(minutes=10),
                "completionTime": ago(minutes=7),
                "conditions": [{"type": "Complete", "status": "True"}],
            },
            {},
            ["Complete", "1/1", "3m"],
        ),
        ({}, {"startTime": ago(seconds=45)}, {}, ["Running", "0/1", "45s"]),
        ({}, {"conditions": [{"type": "Failed", "status": "True"}]}, {}, ["Failed", "0/1", ""]),
        ({}, {"conditions": [{"type": "Suspended", "status": "True"}]}, {}, ["Suspended", "0/1", ""]),
        (
            {},
            {"conditions": [{"type": "Suspended", "status": "True"}]},
            {"deletionTimestamp": ago(seconds=1)},
            ["Terminating", "0/1", ""],
        ),
        ({}, {"conditions": [{"type": "FailureTarget", "status": "True"}]}, {}, ["FailureTarget", "0/1", ""]),
        (
            {},
            {"conditions": [{"type": "Complete", "status": "False"}, {"type": "Complete", "status": "True"}]},
            {},
            ["Running", "0/1", ""],
        ),
    ],
)
def test_job(spec: dict[str, Any], status: dict[str, Any], meta: dict[str, Any], expected: list[str]) -> None:
    obj = {"metadata": {"name": "job1", **meta}, "spec": {**spec, "template": TEMPLATE}, "status": status}
    row = cells(JOB, obj)
    assert row[1:4] == expected
    assert row[5:] == ["web,log", "nginx,busybox", "<none>"]


def test_job_columns_have_status_in_1_33() -> None:
    assert [c["name"] for c in column_definitions(JOB)] == [
        "Name",
        "Status",
        "Completions",
        "Duration",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]


def test_cron_job() -> None:
    rt = _rt("batch", "CronJob")
    obj = {
        "metadata": {"name": "backup", "creationTimestamp": ago(hours=5)},
        "spec": {
            "schedule": "*/5 * * * *",
            "timeZone": "Etc/UTC",
            "suspend": False,
            "jobTemplate": {"spec": {"template": TEMPLATE, "selector": {"matchLabels": {"job": "x"}}}},
        },
        "status": {"active": [{"name": "a"}, {"name": "b"}], "lastScheduleTime": ago(seconds=90)},
    }
    assert cells(rt, obj) == [
        "backup",
        "*/5 * * * *",
        "Etc/UTC",
        "False",
        2,
        "90s",
        "5h",
        "web,log",
        "nginx,busybox",
        "job=x",
    ]
    bare = cells(rt, {"metadata": {"name": "c"}, "spec": {"schedule": "@daily"}})
    assert bare[1:6] == ["@daily", "<none>", "<unset>", 0, "<none>"]
    assert cells(rt, {"metadata": {"name": "c"}, "spec": {"suspend": True}})[3] == "True"


def test_pod_disruption_budget() -> None:
    rt = _rt("policy", "PodDisruptionBudget")
    obj = {"metadata": {"name": "pdb"}, "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}}
    assert cells(rt, obj) == ["pdb", "2", "N/A", 1, "<unknown>"]
    obj = {"metadata": {"name": "pdb"}, "spec": {"maxUnavailable": "25%"}}
    assert cells(rt, obj)[1:4] == ["N/A", "25%", 0]


def test_horizontal_pod_autoscaler() -> None:
    rt = _rt("autoscaling", "HorizontalPodAutoscaler")
    obj = {
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                },
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"averageValue": "10"}}},
                {"type": "External", "external": {"target": {"value": "5"}}},
            ],
        },
        "status": {
            "currentReplicas": 3,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 55}}}
            ],
        },
    }
    assert cells(rt, obj) == [
        "web",
        "Deployment/web",
        "cpu: 55%/80%, <unknown>/10 + 1 more...",
        "1",
        10,
        3,
        "<unknown>",
    ]
    bare = {
        "metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "h"}, "maxReplicas": 2},
    }
    assert cells(rt, bare)[2:4] == ["<none>", "<unset>"]


# --- configuration, access, cluster objects ------------------------------------------------------


def test_simple_kinds() -> None:
    assert cells(
        _rt("", "Namespace", namespaced=False), {"metadata": {"name": "ns"}, "status": {"phase": "Active"}}
    ) == [
        "ns",
        "Active",
        "<unknown>",
    ]
    assert (
        cells(
            _rt("", "ConfigMap"),
            {"metadata": {"name": "cm"}, "data": {"a": "1"}, "binaryData": {"b": "AA=="}},
        )[1]
        == 2
    )
    assert cells(_rt("", "Secret"), {"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "MQ=="}})[
        1:3
    ] == ["Opaque", 1]
    assert cells(_rt("", "ServiceAccount"), {"metadata": {"name": "sa"}, "secrets": [{"name": "t"}]})[1] == 1
    assert (
        cells(
            _rt("coordination.k8s.io", "Lease"), {"metadata": {"name": "l"}, "spec": {"holderIdentity": "n1"}}
        )[1]
        == "n1"
    )
    assert cells(_rt("coordination.k8s.io", "Lease"), {"metadata": {"name": "l"}, "spec": {}})[1] == ""
    pc = {"metadata": {"name": "high"}, "value": 1000, "globalDefault": True, "preemptionPolicy": "Never"}
    assert cells(_rt("scheduling.k8s.io", "PriorityClass", namespaced=False), pc) == [
        "high",
        1000,
        True,
        "<unknown>",
        "Never",
    ]


def test_storage_class() -> None:
    rt = _rt("storage.k8s.io", "StorageClass", namespaced=False)
    default = {
        "metadata": {"name": "local", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubelab.io/hostpath",
    }
    assert cells(rt, default) == [
        "local (default)",
        "kubelab.io/hostpath",
        "Delete",
        "Immediate",
        False,
        "<unknown>",
    ]
    explicit = {
        "metadata": {
            "name": "fast",
            "annotations": {"storageclass.beta.kubernetes.io/is-default-class": "false"},
        },
        "provisioner": "p",
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }
    assert cells(rt, explicit)[:5] == ["fast", "p", "Retain", "WaitForFirstConsumer", True]


def test_role_bindings() -> None:
    binding = {
        "metadata": {"name": "rb", "creationTimestamp": ago(seconds=3)},
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "User", "name": "bob"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"},
            {"kind": "Other", "name": "x"},
        ],
    }
    expected = ["rb", "ClusterRole/view", "3s", "alice, bob", "devs", "kube-system/default"]
    assert cells(_rt("rbac.authorization.k8s.io", "RoleBinding"), binding) == expected
    crb = _rt("rbac.authorization.k8s.io", "ClusterRoleBinding", namespaced=False)
    assert cells(crb, binding) == expected
    assert column_definitions(crb)[3]["description"] == "Users in the clusterRoleBinding"


@pytest.mark.parametrize(
    ("spec", "conditions", "service", "available"),
    [
        ({}, [], "Local", "Unknown"),
        (
            {"service": {"namespace": "kube-system", "name": "metrics-server"}},
            [{"type": "Available", "status": "True"}],
            "kube-system/metrics-server",
            "True",
        ),
        (
            {"service": {"namespace": "m", "name": "s"}},
            [{"type": "Available", "status": "False", "reason": "FailedDiscoveryCheck"}],
            "m/s",
            "False (FailedDiscoveryCheck)",
        ),
        ({}, [{"type": "Available", "status": "False"}], "Local", "False"),
    ],
)
def test_api_service(
    spec: dict[str, Any], conditions: list[dict[str, str]], service: str, available: str
) -> None:
    rt = _rt("apiregistration.k8s.io", "APIService", namespaced=False)
    obj = {"metadata": {"name": "v1beta1.metrics.k8s.io"}, "spec": spec, "status": {"conditions": conditions}}
    assert cells(rt, obj) == ["v1beta1.metrics.k8s.io", service, available, "<unknown>"]
    assert [c["name"] for c in column_definitions(rt)] == ["Name", "Service", "Available", "Age"]


# --- events --------------------------------------------------------------------------------------


def test_event_columns() -> None:
    columns = column_definitions(_rt("", "Event"))
    assert [(c["name"], c["priority"]) for c in columns] == [
        ("Last Seen", 0),
        ("Type", 0),
        ("Reason", 0),
        ("Object", 0),
        ("Subobject", 1),
        ("Source", 1),
        ("Message", 0),
        ("First Seen", 1),
        ("Count", 1),
        ("Name", 1),
    ]
    assert columns[9]["format"] == "name"
    assert columns == column_definitions(_rt("events.k8s.io", "Event"))


def test_core_event() -> None:
    event = {
        "metadata": {"name": "web.17a"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
        "reason": "BackOff",
        "type": "Warning",
        "message": "  Back-off restarting failed container \n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(minutes=30),
        "lastTimestamp": ago(seconds=20),
        "count": 12,
    }
    assert cells(_rt("", "Event"), event) == [
        "20s",
        "Warning",
        "BackOff",
        "pod/web",
        "spec.containers{web}",
        "kubelet, node-1",
        "Back-off restarting failed container",
        "30m",
        12,
        "web.17a",
    ]


def test_core_event_from_the_new_api() -> None:
    event = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Node"},
        "eventTime": ago(seconds=50),
        "series": {"count": 4, "lastObservedTime": ago(seconds=5)},
        "reportingComponent": "scheduler",
        "reportingInstance": "sched-1",
    }
    row = cells(_rt("", "Event"), event)
    assert row[0] == "5s" and row[3] == "node" and row[5] == "scheduler, sched-1"
    assert row[7:9] == ["50s", 4]
    singleton = cells(_rt("", "Event"), {"metadata": {"name": "s"}, "involvedObject": {}})
    assert singleton[0] == singleton[7] == "<unknown>" and singleton[8] == 1


def test_events_k8s_io_event() -> None:
    event = {
        "metadata": {"name": "web.17b"},
        "regarding": {"kind": "Pod", "name": "web"},
        "reason": "Scheduled",
        "type": "Normal",
        "note": "Successfully assigned default/web to node-1",
        "eventTime": ago(minutes=2),
        "reportingController": "default-scheduler",
        "reportingInstance": "default-scheduler-kubelab",
        "deprecatedSource": {},
    }
    assert cells(_rt("events.k8s.io", "Event"), event) == [
        "2m",
        "Normal",
        "Scheduled",
        "pod/web",
        "",
        "default-scheduler, default-scheduler-kubelab",
        "Successfully assigned default/web to node-1",
        "2m",
        1,
        "web.17b",
    ]
    legacy = {
        "metadata": {"name": "x"},
        "deprecatedFirstTimestamp": ago(hours=1),
        "deprecatedLastTimestamp": ago(minutes=1),
        "deprecatedCount": 3,
        "deprecatedSource": {"component": "kubelet"},
    }
    row = cells(_rt("events.k8s.io", "Event"), legacy)
    assert (row[0], row[5], row[7], row[8]) == ("60s", "kubelet", "60m", 3)


# --- the default convertor --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("", "Binding"),
    ],
)
def test_kinds_without_printer_get_name_and_created_at(group: str, kind: str) -> None:
    rt = _rt(group, kind)
    assert column_definitions(rt) == [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": column_definitions(POD)[0]["description"],
            "priority": 0,
        },
        {
            "name": "Created At",
            "type": "date",
            "format": "",
            "description": column_definitions(POD)[4]["description"],
            "priority": 0,
        },
    ]
    obj = {"metadata": {"name": "r", "creationTimestamp": "2024-05-31T14:30:15.5+02:00"}}
    assert cells(rt, obj) == ["r", "2024-05-31T12:30:15Z"]
    assert cells(rt, {"metadata": {"name": "r"}}) == ["r", "0001-01-01T00:00:00Z"]


# --- custom resources ----------------------------------------------------------------------------

WIDGET_COLUMNS = (
    PrinterColumn(name="Replicas", type="integer", json_path=".spec.replicas"),
    PrinterColumn(name="Ratio", type="number", json_path=".spec.ratio", description="How much."),
    PrinterColumn(name="Enabled", type="boolean", json_path=".spec.enabled", priority=1),
    PrinterColumn(name="Image", type="string", json_path=".spec.containers[0].image"),
    PrinterColumn(name="Hosts", type="string", json_path=".spec.rules[*].host"),
    PrinterColumn(name="Owner", type="string", json_path=".metadata.annotations['example.com/owner']"),
    PrinterColumn(name="Config", type="string", json_path=".spec.config"),
    PrinterColumn(name="Started", type="date", json_path=".status.startTime", format="date-time"),
    PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
)
WIDGET = _rt("example.com", "Widget", schema={"type": "object"}, printer_columns=WIDGET_COLUMNS)


def test_custom_resource_columns() -> None:
    columns = column_definitions(WIDGET)
    assert [(c["name"], c["type"], c["format"], c["priority"]) for c in columns] == [
        ("Name", "string", "name", 0),
        ("Replicas", "integer", "", 0),
        ("Ratio", "number", "", 0),
        ("Enabled", "boolean", "", 1),
        ("Image", "string", "", 0),
        ("Hosts", "string", "", 0),
        ("Owner", "string", "", 0),
        ("Config", "string", "", 0),
        ("Started", "date", "date-time", 0),
        ("Age", "date", "", 0),
    ]
    assert (
        columns[1]["description"] == "Custom resource definition column (in JSONPath format): .spec.replicas"
    )
    assert columns[2]["description"] == "How much."


def test_custom_resource_cells() -> None:
    obj = {
        "metadata": {
            "name": "w1",
            "creationTimestamp": ago(hours=2),
            "annotations": {"example.com/owner": "team-a"},
        },
        "spec": {
            "replicas": 3,
            "ratio": 2,
            "enabled": True,
            "containers": [{"image": "nginx"}, {"image": "redis"}],
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}],
            "config": {"b": [1, 2.5], "a": "<x>"},
        },
        "status": {"startTime": ago(seconds=30)},
    }
    assert cells(WIDGET, obj) == [
        "w1",
        3,
        2.0,
        True,
        "nginx",
        "a.example.com",
        "team-a",
        '{"a":"\\u003cx\\u003e","b":[1,2.5]}',
        "30s",
        "120m",
    ]


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        ({}, {}, [None, None, None, None, None, None, None, None]),
        (
            {"replicas": 2.9, "ratio": 0.5, "enabled": "yes", "containers": [], "config": None},
            {"startTime": "yesterday"},
            [2, 0.5, None, None, None, None, "<no value>", "<invalid>"],
        ),
        (
            {"replicas": "3", "ratio": True, "enabled": False, "config": 1234567.0},
            {"startTime": ""},
            [None, None, False, None, None, None, "1.234567e+06", "<unknown>"],
        ),
        ({"config": 0.0001}, {"startTime": 5}, [None, None, None, None, None, None, "0.0001", None]),
        ({"config": 1e-05}, {}, [None, None, None, None, None, None, "1e-05", None]),
        ({"config": 123456.5}, {}, [None, None, None, None, None, None, "123456.5", None]),
        (
            {"config": False, "rules": [{"x": 1}, {"host": "h"}]},
            {},
            [None, None, None, None, "h", None, "false", None],
        ),
    ],
)
def test_custom_resource_cell_types(
    spec: dict[str, Any], status: dict[str, Any], expected: list[Any]
) -> None:
    row = cells(WIDGET, {"metadata": {"name": "w"}, "spec": spec, "status": status})
    assert [row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8]] == expected
    assert row[9] is None  # no creationTimestamp: the JSONPath finds nothing


def test_custom_resource_without_columns_gets_age() -> None:
    rt = _rt("example.com", "Gadget", schema={"type": "object"})
    columns = column_definitions(rt)
    assert [(c["name"], c["type"]) for c in columns] == [("Name", "string"), ("Age", "date")]
    assert columns[1]["description"] == column_definitions(POD)[4]["description"]
    assert cells(rt, {"metadata": {"name": "g", "creationTimestamp": ago(days=3)}}) == ["g", "3d"]


def test_custom_resource_columns_stop_at_an_unparsable_path() -> None:
    rt = _rt(
        "example.com",
        "Thing",
        schema={"type": "object"},
        printer_columns=(
            PrinterColumn(name="A", type="string", json_path=".spec.a"),
            PrinterColumn(name="B", type="string", json_path=".spec[?(@.x)]"),
            PrinterColumn(name="C", type="string", json_path=".spec.c"),
        ),
    )
    assert [c["name"] for c in column_definitions(rt)] == ["Name", "A"]
    assert cells(rt, {"metadata": {"name": "t"}, "spec": {"a": "x", "c": "y"}}) == ["t", "x"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (".spec.items[-1]", "c"),
        (".spec.items[3]", None),
        (".spec.items[*]", "a"),
        (".spec.map.*", 1),
        (".spec.dotted\\.key", "d"),
        ('.spec["dotted.key"]', "d"),
        ("$.spec.items[0]", "a"),
        (".spec.items.x", None),
        (".spec.map[0]", None),
    ],
)
def test_custom_resource_json_paths(path: str, value: Any) -> None:
    rt = _rt(
        "example.com",
        "Path",
        schema={"type": "object"},
        printer_columns=(
            PrinterColumn(name="V", type="integer" if value == 1 else "string", json_path=path),
        ),
    )
    obj = {"metadata": {"name": "p"}, "spec": {"items": ["a", "b", "c"], "map": {"k": 1}, "dotted.key": "d"}}
    assert cells(rt, obj) == ["p", value]


# --- every printer gives one cell per column ----------------------------------------------------

PRINTED_KINDS = [
    ("", "Pod"),
    ("", "Service"),
    ("", "Endpoints"),
    ("", "Node"),
    ("", "Namespace"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "ServiceAccount"),
    ("", "Event"),
    ("events.k8s.io", "Event"),
    ("apps", "Deployment"),
    ("", "ReplicationController"),
    ("apps", "ReplicaSet"),
    ("apps", "DaemonSet"),
    ("apps", "StatefulSet"),
    ("apps", "ControllerRevision"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("policy", "PodDisruptionBudget"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("coordination.k8s.io", "Lease"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io", "Role"),
    ("apiregistration.k8s.io", "APIService"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "StorageClass"),
]


@pytest.mark.parametrize(("group", "kind"), PRINTED_KINDS)
@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"metadata": None, "spec": "garbage", "status": [1, 2]},
        {"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"containers": "x", "ports": [None, 3]}},
    ],
)
def test_every_printer_fills_every_column_and_tolerates_bad_shapes(
    group: str, kind: str, obj: dict[str, Any]
) -> None:
    rt = _rt(group, kind)
    columns = column_definitions(rt)
    row = row_cells(rt, obj, now=NOW)
    assert len(row) == len(columns)
    assert all(cell is None or isinstance(cell, str | int | float | bool) for cell in row)
    assert all(isinstance(c["description"], str) and c["description"] for c in columns)
