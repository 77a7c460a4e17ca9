"""Container environments: $(VAR) expansion, service variables, the downward API, and the
order and precedence of env and envFrom, against upstream's expected results."""

from __future__ import annotations

import base64
import re

import pytest

from control.kubelet.env import (
    EnvError,
    build_env,
    expand,
    expand_command,
    field_value,
    format_map,
    go_quote,
    mapping_for,
    resource_value,
    service_env,
)

CONTEXT = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}

# Upstream's expansion cases (third_party/forked/golang/expansion).
EXPANSIONS = [
    ("$(VAR_A)", "A"),
    ("$(VAR_A)-$(VAR_A)", "A-A"),
    ("___$(VAR_B)___", "___B___"),
    ("$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
    ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
    ("$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"),
    ("f000-$$VAR_A", "f000-$VAR_A"),
    ("foo\\$(VAR_C)bar", "foo\\Cbar"),
    ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
    ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
    ("$(VAR_REF)", "$(VAR_A)"),
    ("foo$(VAR_EMPTY)bar", "foobar"),
    ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
    ("$?_boo_$!", "$?_boo_$!"),
    ("$VAR_A", "$VAR_A"),
    ("$(VAR_DNE)", "$(VAR_DNE)"),
    ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
    ("$$$$$$$(VAR_A)", "$$$A"),
    ("$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),
    ("${VAR_A}", "${VAR_A}"),
    ("$(VAR_B)_______$(A", "B_______$(A"),
    ("$(VAR_C)_______$(", "C_______$("),
    ("$(VAR_A)foobarzab$", "Afoobarzab$"),
    ("--$($($($($--", "--$($($($($--"),
    ("$(foo$$var)", "$(foo$$var)"),
    ("$()", "$()"),
    ("\n", "\n"),
    ("$é-$(VAR_A)", "$é-A"),
]


@pytest.mark.parametrize(("text", "expected"), EXPANSIONS)
def test_expansion_follows_upstream(text: str, expected: str) -> None:
    assert expand(text, mapping_for(CONTEXT)) == expected


def test_mapping_looks_in_each_context_in_turn() -> None:
    lookup = mapping_for({"A": "first"}, {"A": "second", "B": "b"})
    assert (lookup("A"), lookup("B"), lookup("C")) == ("first", "b", "$(C)")
    assert expand_command(["echo", "$(A)", "$$(A)"], {"A": "x"}) == ["echo", "x", "$(A)"]


def service(name: str, namespace: str, ip: str, *ports: dict) -> dict:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": ip, "ports": list(ports)},
    }


def test_service_variables() -> None:
    services = [
        service("kubernetes", "default", "127.96.0.1", {"name": "https", "port": 443, "protocol": "TCP"}),
        service(
            "my-db",
            "apps",
            "127.96.0.20",
            {"port": 5432},
            {"name": "metrics", "port": 9187, "protocol": "TCP"},
        ),
        service("headless", "apps", "None", {"port": 80}),
        service("elsewhere", "other", "127.96.0.30", {"port": 80}),
    ]
    env = service_env(services, namespace="apps", enable_service_links=True)
    assert env["KUBERNETES_SERVICE_HOST"] == "127.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://127.96.0.1:443"
    assert env["MY_DB_SERVICE_HOST"] == "127.96.0.20"
    assert env["MY_DB_SERVICE_PORT"] == "5432"
    assert env["MY_DB_SERVICE_PORT_METRICS"] == "9187"
    assert env["MY_DB_PORT_9187_TCP"] == "tcp://127.96.0.20:9187"
    assert env["MY_DB_PORT_5432_TCP_PROTO"] == "tcp"
    assert env["MY_DB_PORT_5432_TCP_ADDR"] == "127.96.0.20"
    assert not any(key.startswith(("HEADLESS_", "ELSEWHERE_")) for key in env)
    without_links = service_env(services, namespace="apps", enable_service_links=False)
    assert set(without_links) == {key for key in env if key.startswith("KUBERNETES_")}, (
        "the master service always"
    )
    assert "_1ST_SERVICE_HOST" in service_env(
        [service("1st", "apps", "127.96.0.5", {"port": 1})], namespace="apps", enable_service_links=True
    )


POD = {
    "metadata": {
        "name": "web-0",
        "namespace": "apps",
        "uid": "uid-1",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"note": 'say "hi"\n'},
    },
    "spec": {"nodeName": "node-1", "serviceAccountName": "runner", "containers": []},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metadata.name", "web-0"),
        ("metadata.namespace", "apps"),
        ("metadata.uid", "uid-1"),
        ("metadata.labels['tier']", "front"),
        ("metadata.labels['missing']", ""),
        ("metadata.annotations['note']", 'say "hi"\n'),
        ("spec.nodeName", "node-1"),
        ("spec.serviceAccountName", "runner"),
        ("status.podIP", "127.244.1.5"),
        ("status.podIPs", "127.244.1.5"),
        ("status.hostIP", "127.100.0.1"),
        ("status.hostIPs", "127.100.0.1"),
    ],
)
def test_field_values(path: str, value: str) -> None:
    assert field_value(POD, path, pod_ips=["127.244.1.5"], host_ips=["127.100.0.1"]) == value


def test_label_and_annotation_maps_are_formatted_for_volumes_only() -> None:
    assert (
        field_value(POD, "metadata.labels", pod_ips=[], host_ips=[], allow_maps=True)
        == 'app="web"\ntier="front"'
    )
    assert format_map({"note": 'say "hi"\n'}) == 'note="say \\"hi\\"\\n"'
    assert go_quote("tab\there é \x01") == '"tab\\there é \\x01"'
    with pytest.raises(EnvError, match=re.escape("unsupported fieldPath: metadata.labels")):
        field_value(POD, "metadata.labels", pod_ips=[], host_ips=[])
    with pytest.raises(EnvError, match=re.escape("unsupported fieldPath: spec.nope")):
        field_value(POD, "spec.nope", pod_ips=[], host_ips=[])


@pytest.mark.parametrize(
    ("resources", "resource", "divisor", "value"),
    [
        ({"limits": {"cpu": "500m"}}, "limits.cpu", None, "1"),
        ({"limits": {"cpu": "500m"}}, "limits.cpu", "1m", "500"),
        ({"limits": {"cpu": "1250m"}}, "limits.cpu", "100m", "13"),
        ({"limits": {"memory": "64Mi"}}, "limits.memory", "1Mi", "64"),
        ({"limits": {"memory": "1Gi"}}, "limits.memory", None, str(1 << 30)),
        ({"requests": {"memory": "100M"}}, "requests.memory", "1Mi", "96"),
        ({}, "limits.cpu", None, "2"),  # unset limits are the node's allocatable
        ({}, "limits.memory", "1Gi", "4"),
        ({}, "requests.cpu", None, "0"),
        ({"limits": {"ephemeral-storage": "1Gi"}}, "limits.ephemeral-storage", "1Mi", "1024"),
    ],
)
def test_resource_values(resources: dict, resource: str, divisor: str | None, value: str) -> None:
    container = {"name": "app", "resources": resources}
    allocatable = {"cpu": "2", "memory": "4Gi"}
    assert resource_value(container, resource, divisor=divisor, node_allocatable=allocatable) == value


def test_unknown_resource_is_an_error() -> None:
    with pytest.raises(EnvError, match=re.escape("Unsupported container resource : limits.gpu")):
        resource_value({}, "limits.gpu", divisor=None, node_allocatable={})


def lookup(objects: dict):
    return lambda namespace, name: objects.get(name)


def test_build_env_order_precedence_and_sources() -> None:
    container = {
        "name": "app",
        "envFrom": [
            {"configMapRef": {"name": "base"}},
            {"secretRef": {"name": "keys"}, "prefix": "SECRET_"},
            {"configMapRef": {"name": "absent", "optional": True}},
        ],
        "env": [
            {"name": "MODE", "value": "override-$(MODE)"},
            {"name": "FROM_KEY", "valueFrom": {"configMapKeyRef": {"name": "base", "key": "MODE"}}},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "pass"}}},
            {
                "name": "OPTIONAL",
                "valueFrom": {"configMapKeyRef": {"name": "base", "key": "nope", "optional": True}},
            },
            {"name": "SVC", "value": "$(KUBERNETES_SERVICE_HOST):$(LATER)"},
            {"name": "LATER", "value": "late"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": "mine"},
            {"name": "EMPTY"},
        ],
    }
    config_maps = {"base": {"data": {"MODE": "fast", "SHARED": "cm"}}}
    secrets = {"keys": {"data": {"pass": base64.b64encode(b"s3cret").decode()}}}
    env = build_env(
        pod=POD,
        container=container,
        pod_ips=["127.244.1.5"],
        host_ips=["127.100.0.1"],
        node_allocatable={},
        services=[service("kubernetes", "default", "127.96.0.1", {"name": "https", "port": 443})],
        config_map=lookup(config_maps),
        secret=lookup(secrets),
    )
    assert env["MODE"] == "override-fast", "env sees envFrom values, and wins over them"
    assert env["SHARED"] == "cm"
    assert env["SECRET_pass"] == "s3cret" and env["PASS"] == "s3cret"
    assert env["FROM_KEY"] == "fast"
    assert "OPTIONAL" not in env
    assert env["SVC"] == "127.96.0.1:$(LATER)", "only variables defined earlier expand"
    assert env["KUBERNETES_SERVICE_PORT"] == "mine", "declared variables win over service variables"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.96.0.1"
    assert env["EMPTY"] == ""


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ({"configMapKeyRef": {"name": "absent", "key": "k"}}, 'configmap "absent" not found'),
        ({"secretKeyRef": {"name": "absent", "key": "k"}}, 'secret "absent" not found'),
        (
            {"configMapKeyRef": {"name": "base", "key": "nope"}},
            "couldn't find key nope in ConfigMap apps/base",
        ),
        ({"fieldRef": {"fieldPath": "status.phase"}}, "unsupported fieldPath: status.phase"),
    ],
)
def test_build_env_errors_name_what_is_missing(variable: dict, message: str) -> None:
    container = {"name": "app", "env": [{"name": "X", "valueFrom": variable}]}
    with pytest.raises(EnvError, match=re.escape(message)):
        build_env(
            pod=POD,
            container=container,
            pod_ips=[],
            host_ips=[],
            node_allocatable={},
            services=[],
            config_map=lookup({"base": {"data": {}}}),
            secret=lookup({}),
        )
