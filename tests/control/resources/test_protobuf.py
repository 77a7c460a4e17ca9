"""Tests for control.resources.protobuf: protobuf request bodies into JSON-shaped objects.

Bodies are built two ways, both apart from the decoder:

* with Google's ``protobuf`` runtime (upb), from a descriptor pool made of the vendored
  table's messages, filled by *proto* field names (``uID``, ``volumeSource``). The
  expected dicts are written by hand as kubectl's JSON would hold them, so a wrong JSON
  name, a lost pointer zero or a mis-rendered Time fails here;
* with a small hand-written wire encoder for the envelope (``runtime.Unknown``, whose
  field numbers are copied from apimachinery's generated.proto) and for malformed input.

The table itself is checked against upstream facts that do not come from it: field
numbers copied from k8s.io/api's generated.proto, and the vendored OpenAPI definitions
(every JSON name the decoder produces must be a property there, and every kind, filled
with every field, must decode to an object the API server's own schema check accepts).
"""

from __future__ import annotations

import base64
import functools
import gzip
import importlib.util
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

from control.apiserver import negotiation
from control.apiserver.errors import StatusError
from control.resources import protobuf
from control.resources.protobuf import MAGIC, ProtobufDecodeError, decode_object
from control.resources.schema import check_fields, definitions

ROOT = Path(__file__).resolve().parents[3]
META = "k8s.io.apimachinery.pkg.apis.meta.v1."
CORE = "k8s.io.api.core.v1."


@functools.cache
def table() -> dict[str, Any]:
    return orjson.loads(gzip.decompress(protobuf.VENDORED_TABLE.read_bytes()))


# ---------------------------------------------------------------------------------------
# Encoders


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    """``k8s\\x00`` + runtime.Unknown{typeMeta{apiVersion=1, kind=2}=1, raw=2, contentEncoding=3,
    contentType=4}, written the way client-go writes it (empty strings included)."""
    type_meta = length_delimited(1, api_version.encode()) + length_delimited(2, kind.encode())
    unknown = length_delimited(1, type_meta) + length_delimited(2, raw)
    return MAGIC + unknown + length_delimited(3, b"") + length_delimited(4, b"")


_FIELD = descriptor_pb2.FieldDescriptorProto
_SCALAR_TYPES = {
    "string": _FIELD.TYPE_STRING,
    "bytes": _FIELD.TYPE_BYTES,
    "int32": _FIELD.TYPE_INT32,
    "int64": _FIELD.TYPE_INT64,
    "bool": _FIELD.TYPE_BOOL,
}


@functools.cache
def pool() -> descriptor_pool.DescriptorPool:
    """A protobuf descriptor pool of every message in the table, one file per package."""
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for name, description in table()["messages"].items():
        package, short = name.rsplit(".", 1)
        file = files.setdefault(
            package,
            descriptor_pb2.FileDescriptorProto(name=f"{package}.proto", package=package, syntax="proto2"),
        )
        message = file.message_type.add(name=short)
        for number, proto_name, _json, type_name, flags in description["fields"]:
            field = message.field.add(name=proto_name, number=number, label=_FIELD.LABEL_OPTIONAL)
            if "r" in flags or "m" in flags:
                field.label = _FIELD.LABEL_REPEATED
            target = field
            if "m" in flags:
                entry = message.nested_type.add(name=f"{proto_name[0].upper()}{proto_name[1:]}Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=_FIELD.TYPE_STRING, label=_FIELD.LABEL_OPTIONAL)
                target = entry.field.add(name="value", number=2, label=_FIELD.LABEL_OPTIONAL)
                field.type, field.type_name = _FIELD.TYPE_MESSAGE, f".{name}.{entry.name}"
            if type_name in _SCALAR_TYPES:
                target.type = _SCALAR_TYPES[type_name]
                continue
            target.type, target.type_name = _FIELD.TYPE_MESSAGE, f".{type_name}"
            dependency = f"{type_name.rsplit('.', 1)[0]}.proto"
            if dependency != file.name and dependency not in file.dependency:
                file.dependency.append(dependency)
    built = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(package: str) -> None:
        if package not in added:
            added.add(package)
            for dependency in files[package].dependency:
                add(dependency.removesuffix(".proto"))
            built.Add(files[package])

    for package in files:
        add(package)
    return built


def encode(message: str, fields: dict[str, Any]) -> bytes:
    """Serialize ``fields`` (proto field names; bytes as base64) as ``message`` with upb."""
    cls = message_factory.GetMessageClass(pool().FindMessageTypeByName(message))
    instance = cls()
    json_format.ParseDict(fields, instance)
    return instance.SerializeToString()


def body(api_version: str, kind: str, message: str, fields: dict[str, Any]) -> bytes:
    return envelope(api_version, kind, encode(message, fields))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------------------------
# The kinds kubectl's typed clients send


def test_config_map_with_binary_data_and_pointer_false() -> None:
    raw = body(
        "v1",
        "ConfigMap",
        CORE + "ConfigMap",
        {
            # client-go writes every value field, empty or not; creationTimestamp is an empty Time
            "metadata": {"name": "settings", "namespace": "", "creationTimestamp": {}, "labels": {"a": "b"}},
            "data": {"mode": "blue", "empty": ""},
            "binaryData": {"blob": b64(b"\x00\xff\xfe")},
            "immutable": False,
        },
    )
    assert decode_object(raw) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "creationTimestamp": None, "labels": {"a": "b"}},
        "data": {"mode": "blue", "empty": ""},
        "binaryData": {"blob": "AP/+"},
        "immutable": False,  # *bool: an explicit false survives
    }


def test_secret_data_is_base64_and_empty_type_is_left_out() -> None:
    raw = body(
        "v1",
        "Secret",
        CORE + "Secret",
        {
            "metadata": {"name": "creds"},
            "data": {"tls.key": b64(b"\x01\x02binary"), "empty": ""},
            "stringData": {"password": "hunter2"},
            "type": "",
        },
    )
    assert decode_object(raw) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "creationTimestamp": None},
        "data": {"tls.key": b64(b"\x01\x02binary"), "empty": ""},
        "stringData": {"password": "hunter2"},
    }


def test_namespace_value_structs_become_empty_objects() -> None:
    raw = body(
        "v1", "Namespace", CORE + "Namespace", {"metadata": {"name": "team-a"}, "spec": {}, "status": {}}
    )
    assert decode_object(raw) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-a", "creationTimestamp": None},
        "spec": {},
        "status": {},
    }


def test_service_ports_with_int_and_named_target_ports() -> None:
    raw = body(
        "v1",
        "Service",
        CORE + "Service",
        {
            "metadata": {"name": "web"},
            "spec": {
                "ports": [
                    {
                        "name": "http",
                        "protocol": "TCP",
                        "port": 80,
                        "targetPort": {"type": 0, "intVal": 8080},
                    },
                    {
                        "name": "admin",
                        "port": 81,
                        "targetPort": {"type": 1, "strVal": "admin"},
                        "nodePort": 0,
                    },
                ],
                "selector": {"app": "web"},
                "type": "ClusterIP",
                "clusterIPs": ["127.96.0.20"],
                "allocateLoadBalancerNodePorts": False,
            },
        },
    )
    spec = decode_object(raw)["spec"]
    assert spec["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
        {"name": "admin", "port": 81, "targetPort": "admin"},  # nodePort 0 is omitempty
    ]
    assert spec["selector"] == {"app": "web"}
    assert spec["clusterIPs"] == ["127.96.0.20"]
    assert spec["allocateLoadBalancerNodePorts"] is False


def test_deployment_with_selector_template_resources_and_inlined_structs() -> None:
    raw = body(
        "apps/v1",
        "Deployment",
        "k8s.io.api.apps.v1.Deployment",
        {
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 0,
                "selector": {
                    "matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.25",
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "resources": {
                                    "limits": {"cpu": {"string": "500m"}, "memory": {"string": "128Mi"}},
                                    "requests": {"cpu": {"string": "0.1"}},
                                },
                                "env": [
                                    {
                                        "name": "MODE",
                                        "valueFrom": {
                                            "configMapKeyRef": {
                                                "localObjectReference": {"name": "settings"},
                                                "key": "mode",
                                            }
                                        },
                                    }
                                ],
                                "readinessProbe": {
                                    "handler": {
                                        "httpGet": {"path": "/", "port": {"type": 1, "strVal": "http"}}
                                    },
                                    "periodSeconds": 5,
                                },
                                "stdin": False,
                            }
                        ],
                        "volumes": [
                            {
                                "name": "scratch",
                                "volumeSource": {"emptyDir": {"sizeLimit": {"string": "1Gi"}}},
                            }
                        ],
                        "securityContext": {"runAsUser": 0, "supplementalGroups": [1000, 2000]},
                        "terminationGracePeriodSeconds": 30,
                    },
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": {"type": 1, "strVal": "25%"}, "maxUnavailable": {}},
                },
                "revisionHistoryLimit": 10,
            },
        },
    )
    deployment = decode_object(raw)
    assert deployment["apiVersion"] == "apps/v1" and deployment["kind"] == "Deployment"
    spec = deployment["spec"]
    assert spec["replicas"] == 0  # *int32: zero survives
    assert spec["selector"] == {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
    }
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
    }
    pod = spec["template"]["spec"]
    assert pod["volumes"] == [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}]  # volumeSource inlined
    assert pod["securityContext"] == {"runAsUser": 0, "supplementalGroups": [1000, 2000]}
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["containers"] == [
        {
            "name": "web",
            "image": "nginx:1.25",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "0.1"}},
            "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
        }
    ]
    assert spec["template"]["metadata"] == {"labels": {"app": "web"}, "creationTimestamp": None}
    assert deployment["status"] == {}


def test_replication_controller_with_a_label_map_selector() -> None:
    raw = body(
        "v1",
        "ReplicationController",
        CORE + "ReplicationController",
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 0,
                "selector": {"app": "web", "tier": "front"},
                "template": {
                    "metadata": {"labels": {"app": "web", "tier": "front"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
                },
            },
        },
    )
    rc = decode_object(raw)
    assert rc["apiVersion"] == "v1" and rc["kind"] == "ReplicationController"
    assert rc["spec"]["replicas"] == 0  # *int32: zero survives
    assert rc["spec"]["selector"] == {"app": "web", "tier": "front"}  # a map, not a LabelSelector
    assert rc["spec"]["template"]["spec"]["containers"] == [
        {"name": "web", "image": "nginx:1.25", "resources": {}}
    ]
    assert rc["status"] == {"replicas": 0}  # status.replicas has no omitempty


def test_job_with_pointer_zero_and_repeated_int32() -> None:
    raw = body(
        "batch/v1",
        "Job",
        "k8s.io.api.batch.v1.Job",
        {
            "metadata": {"name": "once"},
            "spec": {
                "backoffLimit": 0,
                "completions": 1,
                "podFailurePolicy": {
                    "rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42, -1]}}]
                },
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "once", "image": "busybox", "command": ["sh", "-c", "echo hi"]}
                        ],
                    }
                },
            },
        },
    )
    spec = decode_object(raw)["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["completions"] == 1
    assert spec["podFailurePolicy"]["rules"][0]["onExitCodes"] == {"operator": "In", "values": [42, -1]}
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["template"]["spec"]["containers"][0]["command"] == ["sh", "-c", "echo hi"]


def test_role_and_role_binding() -> None:
    role = decode_object(
        body(
            "rbac.authorization.k8s.io/v1",
            "Role",
            "k8s.io.api.rbac.v1.Role",
            {
                "metadata": {"name": "reader", "namespace": "shop"},
                "rules": [
                    {
                        "verbs": ["get", "list"],
                        "apiGroups": ["", "apps"],
                        "resources": ["pods", "deployments"],
                    },
                    {
                        "verbs": ["get"],
                        "apiGroups": [""],
                        "resources": ["secrets"],
                        "resourceNames": ["creds"],
                    },
                ],
            },
        )
    )
    assert role["rules"] == [
        {"verbs": ["get", "list"], "apiGroups": ["", "apps"], "resources": ["pods", "deployments"]},
        {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["creds"]},
    ]
    binding = decode_object(
        body(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            "k8s.io.api.rbac.v1.RoleBinding",
            {
                "metadata": {"name": "readers", "namespace": "shop"},
                "subjects": [
                    {
                        "kind": "User",
                        "apiGroup": "rbac.authorization.k8s.io",
                        "name": "alice",
                        "namespace": "",
                    },
                    {"kind": "ServiceAccount", "apiGroup": "", "name": "default", "namespace": "shop"},
                ],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            },
        )
    )
    assert binding == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "readers", "namespace": "shop", "creationTimestamp": None},
        "subjects": [
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "shop"},
        ],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
    }


def test_token_request_renames_uid() -> None:
    raw = body(
        "authentication.k8s.io/v1",
        "TokenRequest",
        "k8s.io.api.authentication.v1.TokenRequest",
        {
            "metadata": {"name": "builder"},
            "spec": {
                "audiences": ["https://kubernetes.default.svc"],
                "expirationSeconds": 3600,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uID": "1234"},
            },
            "status": {"token": "", "expirationTimestamp": {}},
        },
    )
    token = decode_object(raw)
    assert token["spec"] == {
        "audiences": ["https://kubernetes.default.svc"],
        "expirationSeconds": 3600,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "1234"},
    }
    assert token["status"] == {"token": "", "expirationTimestamp": None}  # neither is omitempty


@pytest.mark.parametrize("api_version", ["v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1"])
def test_delete_options_of_every_group_version(api_version: str) -> None:
    raw = body(
        api_version,
        "DeleteOptions",
        META + "DeleteOptions",
        {
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "u-1", "resourceVersion": "42"},
            "orphanDependents": False,
            "propagationPolicy": "Foreground",
            "dryRun": ["All"],
        },
    )
    assert decode_object(raw) == {
        "apiVersion": api_version,
        "kind": "DeleteOptions",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u-1", "resourceVersion": "42"},
        "orphanDependents": False,
        "propagationPolicy": "Foreground",
        "dryRun": ["All"],
    }


def test_empty_delete_options_stay_empty() -> None:
    assert decode_object(envelope("v1", "DeleteOptions", b"")) == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
    }


# ---------------------------------------------------------------------------------------
# Types with their own JSON form, and Go's JSON rules for absent fields


def test_times_render_as_rfc3339_and_zero_as_null() -> None:
    meta = decode_object(
        body(
            "v1",
            "ConfigMap",
            CORE + "ConfigMap",
            {
                "metadata": {
                    "name": "t",
                    "creationTimestamp": {"seconds": 1700000000, "nanos": 999},  # Time drops nanos
                    "deletionTimestamp": {"seconds": -62135596800},  # Go's zero time
                    "deletionGracePeriodSeconds": 0,
                }
            },
        )
    )["metadata"]
    assert meta == {
        "name": "t",
        "creationTimestamp": "2023-11-14T22:13:20Z",
        "deletionTimestamp": None,
        "deletionGracePeriodSeconds": 0,
    }
    lease = decode_object(
        body(
            "coordination.k8s.io/v1",
            "Lease",
            "k8s.io.api.coordination.v1.Lease",
            {
                "metadata": {"name": "node-1"},
                "spec": {
                    "holderIdentity": "node-1",
                    "renewTime": {"seconds": 1700000000, "nanos": 123456789},
                    "acquireTime": {"seconds": 0},
                },
            },
        )
    )
    assert lease["spec"] == {
        "holderIdentity": "node-1",
        "renewTime": "2023-11-14T22:13:20.123456Z",  # MicroTime truncates to microseconds
        "acquireTime": "1970-01-01T00:00:00.000000Z",
    }


def test_event_time_value_field_is_null_when_absent() -> None:
    event = decode_object(body("events.k8s.io/v1", "Event", "k8s.io.api.events.v1.Event", {"metadata": {}}))
    assert event["eventTime"] is None
    assert event["deprecatedLastTimestamp"] is None
    assert "series" not in event  # a nil pointer with omitempty


def test_managed_fields_carry_their_json() -> None:
    raw = body(
        "v1",
        "ConfigMap",
        CORE + "ConfigMap",
        {
            "metadata": {
                "name": "m",
                "managedFields": [
                    {
                        "manager": "kubectl",
                        "operation": "Update",
                        "apiVersion": "v1",
                        "time": {"seconds": 1700000000},
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"Raw": b64(b'{"f:data":{"f:mode":{}}}')},
                    }
                ],
            }
        },
    )
    assert decode_object(raw)["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2023-11-14T22:13:20Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:mode": {}}},
        }
    ]


def test_raw_extension_is_embedded_json() -> None:
    raw = body(
        "apps/v1",
        "ControllerRevision",
        "k8s.io.api.apps.v1.ControllerRevision",
        {"metadata": {"name": "web-1"}, "data": {"raw": b64(b'{"spec":{"replicas":2}}')}, "revision": 1},
    )
    assert decode_object(raw)["data"] == {"spec": {"replicas": 2}}
    empty = body("apps/v1", "ControllerRevision", "k8s.io.api.apps.v1.ControllerRevision", {"revision": 2})
    assert decode_object(empty)["data"] is None


def test_slice_wrappers_become_bare_arrays() -> None:
    raw = body(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        "k8s.io.api.authorization.v1.SubjectAccessReview",
        {
            "spec": {
                "user": "alice",
                "groups": ["devs"],
                "extra": {"scopes": {"items": ["a", "b"]}, "none": {}},
                "resourceAttributes": {"verb": "get", "resource": "pods"},
            }
        },
    )
    spec = decode_object(raw)["spec"]
    assert spec["extra"] == {"scopes": ["a", "b"], "none": None}
    assert spec["resourceAttributes"] == {"verb": "get", "resource": "pods"}


def test_absent_fields_follow_go_json_rules() -> None:
    """A field missing on the wire is what Go's JSON makes of its zero value: omitempty
    fields vanish, others are null (slices, maps, pointers) or zero (value scalars)."""
    role = decode_object(body("rbac.authorization.k8s.io/v1", "Role", "k8s.io.api.rbac.v1.Role", {}))
    assert role == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"creationTimestamp": None},
        "rules": None,
    }
    rule = decode_object(
        body("rbac.authorization.k8s.io/v1", "Role", "k8s.io.api.rbac.v1.Role", {"rules": [{}]})
    )["rules"][0]
    assert rule == {"verbs": None}
    pod_spec = decode_object(
        body("v1", "Pod", CORE + "Pod", {"spec": {"containers": [{}], "volumes": [{"name": "v"}]}})
    )["spec"]
    assert pod_spec["containers"] == [{"name": "", "resources": {}}]
    assert pod_spec["volumes"] == [{"name": "v"}]  # the absent inlined VolumeSource adds nothing
    csr = decode_object(
        body(
            "certificates.k8s.io/v1",
            "CertificateSigningRequest",
            "k8s.io.api.certificates.v1.CertificateSigningRequest",
            {},
        )
    )
    assert csr["spec"] == {"request": None, "signerName": ""}  # a nil []byte is null


def test_negative_and_packed_varints() -> None:
    security = encode(CORE + "PodSecurityContext", {"runAsUser": -1})
    packed = tag(4, 2) + varint(3) + varint(5) + varint(6) + varint(7)  # supplementalGroups, packed
    unpacked = tag(4, 0) + varint(8)
    pod_spec = length_delimited(14, security + packed + unpacked)  # PodSpec.securityContext = 14
    pod = decode_object(envelope("v1", "Pod", length_delimited(2, pod_spec)))  # Pod.spec = 2
    assert pod["spec"]["securityContext"] == {"runAsUser": -1, "supplementalGroups": [5, 6, 7, 8]}


def test_unknown_fields_are_skipped_with_every_wire_type() -> None:
    known = encode(CORE + "ConfigMap", {"metadata": {"name": "u"}, "data": {"a": "b"}})
    unknown = (
        tag(99, 0)
        + varint(300)
        + tag(98, 1)
        + bytes(8)
        + tag(97, 2)
        + varint(3)
        + b"abc"
        + tag(96, 5)
        + bytes(4)
    )
    raw = MAGIC + length_delimited(
        1, length_delimited(1, b"v1") + length_delimited(2, b"ConfigMap") + tag(7, 0) + varint(1)
    )
    raw += tag(9, 0) + varint(5) + length_delimited(2, unknown + known + unknown)
    assert decode_object(raw) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "u", "creationTimestamp": None},
        "data": {"a": "b"},
    }


def test_later_scalar_values_win_and_a_zero_clears_an_omitempty_field() -> None:
    raw = length_delimited(1, length_delimited(1, b"first") + length_delimited(1, b"second"))
    raw += length_delimited(3, b"kubernetes.io/tls") + length_delimited(3, b"")  # Secret.type
    assert decode_object(envelope("v1", "Secret", raw)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "second", "creationTimestamp": None},
    }


def test_accepts_bytearray_and_memoryview() -> None:
    raw = body("v1", "Namespace", CORE + "Namespace", {"metadata": {"name": "x"}})
    assert decode_object(bytearray(raw)) == decode_object(raw) == decode_object(memoryview(raw))


# ---------------------------------------------------------------------------------------
# Malformed input


def _configmap_body(raw: bytes) -> bytes:
    return envelope("v1", "ConfigMap", raw)


MALFORMED = {
    "empty": (b"", "does not start with the magic prefix"),
    "json": (b'{"kind": "ConfigMap"}', "does not start with the magic prefix"),
    "magic only": (MAGIC, "empty after the magic prefix"),
    "truncated envelope varint": (MAGIC + b"\x0a", "truncated varint at byte 5"),
    "envelope length past the end": (MAGIC + b"\x0a\x05\x0a\x02v1", "runs past the end"),
    "envelope field of the wrong wire type": (MAGIC + b"\x08\x01", "runtime.Unknown field 1 has wire type 0"),
    "no kind": (MAGIC + length_delimited(1, length_delimited(1, b"v1")), "does not name its kind"),
    "no apiVersion": (
        MAGIC + length_delimited(1, length_delimited(2, b"ConfigMap")),
        "does not name its apiVersion",
    ),
    "unknown kind": (
        envelope("v1", "Bogus", b""),
        'no protobuf message is known for apiVersion "v1", kind "Bogus"',
    ),
    "custom resource": (envelope("stable.example.com/v1", "CronTab", b""), "no protobuf message is known"),
    "wrong wire type": (_configmap_body(b"\x10\x01"), "ConfigMap.data (field 2) has wire type 0, expected 2"),
    "overlong varint": (_configmap_body(b"\x20" + b"\xff" * 10 + b"\x01"), "varint longer than 10 bytes"),
    "truncated varint": (_configmap_body(b"\x20\x80"), "ConfigMap.immutable: truncated varint"),
    "truncated tag": (_configmap_body(b"\x80"), "truncated varint"),
    "truncated string": (
        _configmap_body(b"\x0a\x0a\x0a\x02ab"),
        "ConfigMap.metadata: truncated length-delimited",
    ),
    "nested length past its message": (
        _configmap_body(length_delimited(1, b"\x0a\x05ab")),
        "ObjectMeta.name: truncated length-delimited",
    ),
    "field number zero": (_configmap_body(b"\x00\x01"), "illegal field number 0"),
    "group wire type": (_configmap_body(b"\x2b"), "unsupported wire type 3"),
    "wire type 7": (_configmap_body(b"\x2f"), "unsupported wire type 7"),
    "truncated fixed64": (_configmap_body(b"\x29\x01\x02"), "truncated fixed-width field 5"),
    "map entry value of the wrong wire type": (
        _configmap_body(length_delimited(2, b"\x0a\x01k\x10\x01")),
        "ConfigMap.data: map entry field 2 has wire type 0",
    ),
    "map entry truncated": (_configmap_body(length_delimited(2, b"\x0a\x05k")), "ConfigMap.data: length 5"),
    "IntOrString of type 2": (
        envelope("v1", "Service", length_delimited(2, length_delimited(1, length_delimited(4, b"\x08\x02")))),
        "IntOrString has type 2",
    ),
    "time out of range": (
        _configmap_body(length_delimited(1, length_delimited(8, tag(1, 0) + varint(10**12)))),
        "outside the years 1 to 9999",
    ),
    "FieldsV1 that is not JSON": (
        _configmap_body(
            length_delimited(1, length_delimited(17, length_delimited(7, length_delimited(1, b"{no"))))
        ),
        "FieldsV1 does not hold JSON",
    ),
    "RawExtension that is not JSON": (
        envelope("apps/v1", "ControllerRevision", length_delimited(2, length_delimited(1, b"\x00\x01"))),
        "RawExtension does not hold JSON",
    ),
}


@pytest.mark.parametrize(("raw", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_bodies_are_clear_decode_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ProtobufDecodeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_object(raw)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(ProtobufDecodeError, ValueError)


def _valid_bodies() -> Iterator[bytes]:
    yield body(
        "v1",
        "ConfigMap",
        CORE + "ConfigMap",
        {"metadata": {"name": "a", "labels": {"x": "y"}}, "data": {"k": "v"}},
    )
    yield body(
        "v1",
        "Service",
        CORE + "Service",
        {
            "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "targetPort": {"type": 1, "strVal": "http"}}]},
        },
    )
    yield body(
        "coordination.k8s.io/v1",
        "Lease",
        "k8s.io.api.coordination.v1.Lease",
        {"spec": {"renewTime": {"seconds": 1700000000, "nanos": 5}, "leaseDurationSeconds": 40}},
    )


def test_mutated_bodies_decode_or_raise_only_decode_errors() -> None:
    rng = random.Random(1234)
    for valid in _valid_bodies():
        for _ in range(700):
            mutated = bytearray(valid)
            for _ in range(rng.randint(1, 4)):
                position = rng.randrange(len(MAGIC), len(mutated))
                mutated[position] = rng.randrange(256)
            if rng.random() < 0.3:
                mutated = mutated[: rng.randrange(len(MAGIC), len(mutated))]
            try:
                result = decode_object(bytes(mutated))
            except ProtobufDecodeError:
                continue
            assert isinstance(result, dict) and "kind" in result
        for cut in range(len(MAGIC), len(valid)):
            try:
                decode_object(valid[:cut])
            except ProtobufDecodeError:
                pass


# ---------------------------------------------------------------------------------------
# The API server's body decoding


def test_decode_body_reads_protobuf() -> None:
    raw = body("v1", "ConfigMap", CORE + "ConfigMap", {"metadata": {"name": "c"}, "data": {"a": "b"}})
    decoded = negotiation.decode_body(raw, content_type="application/vnd.kubernetes.protobuf")
    assert decoded["data"] == {"a": "b"} and decoded["kind"] == "ConfigMap"


def test_decode_body_answers_malformed_protobuf_with_400() -> None:
    with pytest.raises(StatusError) as caught:
        negotiation.decode_body(b"k8s\x00\x0a", content_type="application/vnd.kubernetes.protobuf")
    status = caught.value.status()
    assert caught.value.code == 400 and status["reason"] == "BadRequest"
    assert "protobuf" in status["message"] and "truncated varint" in status["message"]


# ---------------------------------------------------------------------------------------
# The table against upstream facts that do not come from it


# Copied from k8s.io/api and k8s.io/apimachinery v0.33.0 generated.proto.
UPSTREAM_FIELD_NUMBERS = {
    META + "ObjectMeta": {"name": 1, "generateName": 2, "namespace": 3, "labels": 11, "annotations": 12},
    META + "DeleteOptions": {
        "gracePeriodSeconds": 1,
        "preconditions": 2,
        "propagationPolicy": 4,
        "dryRun": 5,
    },
    CORE + "ConfigMap": {"metadata": 1, "data": 2, "binaryData": 3, "immutable": 4},
    CORE + "Secret": {"metadata": 1, "data": 2, "type": 3, "stringData": 4, "immutable": 5},
    CORE + "ServicePort": {
        "name": 1,
        "protocol": 2,
        "port": 3,
        "targetPort": 4,
        "nodePort": 5,
        "appProtocol": 6,
    },
    CORE + "Container": {
        "name": 1,
        "image": 2,
        "command": 3,
        "ports": 6,
        "env": 7,
        "resources": 8,
        "envFrom": 19,
    },
    "k8s.io.api.apps.v1.DeploymentSpec": {"replicas": 1, "selector": 2, "template": 3, "strategy": 4},
    "k8s.io.api.authentication.v1.TokenRequestSpec": {
        "audiences": 1,
        "boundObjectRef": 3,
        "expirationSeconds": 4,
    },
    "k8s.io.api.authentication.v1.BoundObjectReference": {"kind": 1, "apiVersion": 2, "name": 3, "uID": 4},
    "k8s.io.api.rbac.v1.PolicyRule": {"verbs": 1, "apiGroups": 2, "resources": 3, "resourceNames": 4},
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": {"type": 1, "intVal": 2, "strVal": 3},
    "k8s.io.apimachinery.pkg.api.resource.Quantity": {"string": 1},
    META + "Time": {"seconds": 1, "nanos": 2},
}


@pytest.mark.parametrize("message", UPSTREAM_FIELD_NUMBERS)
def test_field_numbers_match_upstream(message: str) -> None:
    numbers = {entry[1]: entry[0] for entry in table()["messages"][message]["fields"]}
    assert {name: numbers.get(name) for name in UPSTREAM_FIELD_NUMBERS[message]} == UPSTREAM_FIELD_NUMBERS[
        message
    ]


def _definition(message: str) -> str:
    return "io.k8s." + message.removeprefix("k8s.io.")


def _json_names(json_name: str, type_name: str) -> list[str]:
    """The JSON names one field contributes: its own, or those of the struct it inlines."""
    if json_name:
        return [json_name]
    return [n for entry in table()["messages"][type_name]["fields"] for n in _json_names(entry[2], entry[3])]


def test_every_json_name_is_an_openapi_property() -> None:
    messages = table()["messages"]
    defs = definitions()
    inlined = {
        entry[3] for description in messages.values() for entry in description["fields"] if not entry[2]
    }
    checked = 0
    for name, description in messages.items():
        if "special" in description:
            continue
        if _definition(name) not in defs:
            assert name in inlined, f"{name} has no OpenAPI definition and is not inlined anywhere"
            continue
        properties = set(defs.raw(_definition(name)).get("properties", {}))
        for _number, proto_name, json_name, type_name, _flags in description["fields"]:
            names = _json_names(json_name, type_name)
            missing = [n for n in names if n not in properties]
            assert not missing, (
                f"{name}.{proto_name} decodes to {missing}, not properties of {_definition(name)}"
            )
            checked += 1
    assert checked > 2000


def test_every_kind_is_an_openapi_kind() -> None:
    defs = definitions()
    for api_version, kinds in table()["kinds"].items():
        group, _, version = api_version.rpartition("/")
        for kind, message in kinds.items():
            gvks = defs.raw(_definition(message))["x-kubernetes-group-version-kind"]
            assert {"group": group, "version": version, "kind": kind} in gvks
    assert table()["kinds"]["v1"]["ConfigMap"] == CORE + "ConfigMap"
    assert table()["kinds"]["apps/v1"]["DeleteOptions"] == META + "DeleteOptions"


# Wire bytes of a sample value for each type with its own JSON form.
SPECIAL_SAMPLES = {
    "time": tag(1, 0) + varint(1700000000),
    "microtime": tag(1, 0) + varint(1700000000) + tag(2, 0) + varint(5000),
    "intorstring": tag(1, 0) + varint(1) + length_delimited(3, b"http"),
    "quantity": length_delimited(1, b"250m"),
    "fieldsv1": length_delimited(1, b'{"f:metadata":{}}'),
    "rawextension": length_delimited(1, b'{"a":1}'),
    "list": length_delimited(1, b"x"),
}


def populated(message: str) -> bytes:
    """``message`` with every field set: one element per list, one entry per map."""
    description = table()["messages"][message]
    if "special" in description:
        return SPECIAL_SAMPLES[description["special"]]
    out = bytearray()
    for number, _proto_name, _json, type_name, flags in description["fields"]:
        if type_name == "bool":
            value = tag(2 if "m" in flags else number, 0) + varint(1)
        elif type_name in ("int32", "int64"):
            value = tag(2 if "m" in flags else number, 0) + varint(7)
        elif type_name in ("string", "bytes"):
            value = length_delimited(2 if "m" in flags else number, b"x")
        else:
            value = length_delimited(2 if "m" in flags else number, populated(type_name))
        out += length_delimited(number, length_delimited(1, b"key") + value) if "m" in flags else value
    return bytes(out)


def test_every_kind_filled_with_every_field_passes_the_schema_check() -> None:
    """The strongest link to the JSON API: what the decoder makes of each kind, with every
    field present, is an object kube-apiserver's JSON decoding (as schema.check_fields
    reproduces it from the OpenAPI definitions) finds no unknown field or wrong type in."""
    defs = definitions()
    checked = set()
    for api_version, kinds in table()["kinds"].items():
        for kind, message in kinds.items():
            if message in checked:
                continue
            checked.add(message)
            obj = decode_object(envelope(api_version, kind, populated(message)))
            report = check_fields(obj, defs.node(_definition(message)))
            assert report.ok, f"{api_version} {kind}: unknown {report.unknown_fields}, {report.type_errors}"
    assert len(checked) > 150


def test_the_table_says_where_it_came_from() -> None:
    sources = table()["sources"]
    assert sources["k8s.io/api"]["ref"] == sources["k8s.io/apimachinery"]["ref"] == "v0.33.0"
    assert all(len(source["commit"]) == 40 for source in sources.values())
    assert "kubernetes-v1.33-protobuf.json.gz" in (protobuf.VENDORED_TABLE.parent / "README.md").read_text()


# ---------------------------------------------------------------------------------------
# The generator (scripts/vendor_protobuf.py) on the idioms it must understand


@pytest.fixture(scope="module")
def vendor() -> Any:
    spec = importlib.util.spec_from_file_location("vendor_protobuf", ROOT / "scripts" / "vendor_protobuf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vendor_protobuf"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["vendor_protobuf"]


PROTO = """\
/* licence */
syntax = "proto2";
package k8s.io.api.demo.v1;
import "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto";
option go_package = "k8s.io/api/demo/v1";

// Widget is a demo.
message Widget {
  optional string name = 1;
  optional int32 replicas = 2;
  optional string uID = 3;
  optional Source source = 4;
  map<string, string> labels = 5;
  repeated string names = 6;
}

message Source {
  optional string path = 1;
}

// +protobuf.nullable=true
message Values {
  repeated string items = 1;
}
"""

GO = """\
package v1

import (
\tmetav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type Widget struct {
\tmetav1.TypeMeta `json:",inline"`
\tName string `json:"name,omitempty" protobuf:"bytes,1,opt,name=name"`
\tReplicas *int32 `json:"replicas,omitempty" protobuf:"varint,2,opt,name=replicas"`
\tUID string `json:"uid" protobuf:"bytes,3,opt,name=uID"`
\tSource `json:",inline" protobuf:"bytes,4,opt,name=source"`
\tLabels map[string]string `json:"labels,omitempty" protobuf:"bytes,5,rep,name=labels"`
\tNames []string `json:"names" protobuf:"bytes,6,rep,name=names"`
}

type Source struct {
\tPath string `json:"path,omitempty" protobuf:"bytes,1,opt,name=path"`
}

type Values []string
"""

DEMO = "k8s.io.api.demo.v1."


def _demo_messages(vendor: Any, proto: str = PROTO) -> dict[str, Any]:
    messages = {m.full_name: m for m in vendor.parse_proto(proto, go_dir="demo/v1", source="demo.proto")}
    vendor.resolve_types(messages)
    return messages


def test_generator_parses_proto_messages_and_fields(vendor: Any) -> None:
    messages = _demo_messages(vendor)
    widget = messages[DEMO + "Widget"]
    assert widget.comments == ["Widget is a demo."]
    assert [(f.number, f.name, f.type, f.label) for f in widget.fields] == [
        (1, "name", "string", "optional"),
        (2, "replicas", "int32", "optional"),
        (3, "uID", "string", "optional"),
        (4, "source", DEMO + "Source", "optional"),
        (5, "labels", "string", "map"),
        (6, "names", "string", "repeated"),
    ]
    assert "+protobuf.nullable=true" in messages[DEMO + "Values"].comments


def test_generator_reads_json_names_pointers_and_inlining_from_go(vendor: Any) -> None:
    widget = vendor.parse_go_package([("demo/v1/types.go", GO)]).structs["Widget"]
    assert widget[1].json_name == "name" and widget[1].omitempty and not widget[1].pointer
    assert widget[2].pointer and widget[2].omitempty
    assert widget[3].json_name == "uid" and not widget[3].omitempty
    assert widget[4].json_name == ""  # embedded without a JSON name: inlined


def test_generator_describes_messages_as_the_decoder_reads_them(vendor: Any) -> None:
    messages = _demo_messages(vendor)
    go = vendor.GoSources(lambda directory: [(f"{directory}/types.go", GO)])
    assert vendor.describe_message(messages[DEMO + "Widget"], go) == {
        "fields": [
            [1, "name", "name", "string", "o"],
            [2, "replicas", "replicas", "int32", "po"],
            [3, "uID", "uid", "string", ""],
            [4, "source", "", DEMO + "Source", ""],
            [5, "labels", "labels", "string", "mo"],
            [6, "names", "names", "string", "r"],
        ]
    }
    assert vendor.describe_message(messages[DEMO + "Values"], go) == {
        "fields": [[1, "items", "items", "string", "rpo"]],
        "special": "list",
    }
    table = {name: vendor.describe_message(message, go) for name, message in messages.items()}
    assert vendor.json_names(table, DEMO + "Widget") == ["name", "replicas", "uid", "path", "labels", "names"]


def test_generator_refuses_what_the_decoder_cannot_honour(vendor: Any) -> None:
    with pytest.raises(vendor.VendorError, match="unexpected line"):
        vendor.parse_proto("package a;\nmessage A {\n  oneof x {\n}\n", go_dir="a", source="a.proto")
    messages = _demo_messages(vendor)
    custom = vendor.GoSources(lambda directory: [("t.go", GO + "func (w *Widget) MarshalJSON() {}\n")])
    with pytest.raises(vendor.VendorError, match="Widget has its own MarshalJSON"):
        vendor.describe_message(messages[DEMO + "Widget"], custom)
    missing = vendor.GoSources(
        lambda directory: [("t.go", GO.replace('protobuf:"bytes,3,opt,name=uID"', ""))]
    )
    with pytest.raises(vendor.VendorError, match=r"Widget\.uID: no Go field 3"):
        vendor.describe_message(messages[DEMO + "Widget"], missing)
    clashing = _demo_messages(vendor, PROTO.replace("optional string name = 1;", "optional string path = 1;"))
    go = vendor.GoSources(lambda directory: [("t.go", GO.replace('json:"name,', 'json:"path,'))])
    with pytest.raises(vendor.VendorError, match=r"collide on \['path'\]"):
        vendor.check_inline_names({name: vendor.describe_message(m, go) for name, m in clashing.items()})
    cyclic = _demo_messages(
        vendor, "package a;\nmessage A {\n  optional B b = 1;\n}\nmessage B {\n  repeated A a = 1;\n}\n"
    )
    with pytest.raises(vendor.VendorError, match=r"refer to themselves: a\.A -> a\.B -> a\.A"):
        vendor.reachable(["a.A"], cyclic)
    with pytest.raises(vendor.VendorError, match="map<string, int32>"):
        _demo_messages(vendor, "package a;\nmessage A {\n  map<string, int32> m = 1;\n}\n")
    with pytest.raises(vendor.VendorError, match="unknown type double"):
        _demo_messages(vendor, "package a;\nmessage A {\n  optional double d = 1;\n}\n")
