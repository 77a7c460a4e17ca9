"""Value validation of custom resources: each OpenAPI keyword with upstream's wording."""

from __future__ import annotations

from typing import Any

import pytest

from control.resources.crd_validation import validate_custom_resource

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "string", "enum": ["small", "large"]},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
                "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "multipleOf": 0.5},
                "name": {"type": "string", "minLength": 3, "maxLength": 5, "pattern": "^[a-z]+$"},
                "tags": {"type": "array", "maxItems": 3, "minItems": 1, "items": {"type": "string"}},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["port"],
                    "items": {
                        "type": "object",
                        "properties": {"port": {"type": "integer", "maximum": 65535}},
                    },
                },
                "labels": {
                    "type": "object",
                    "maxProperties": 2,
                    "additionalProperties": {"type": "string", "maxLength": 3},
                },
                "started": {"type": "string", "format": "date-time"},
                "address": {"type": "string", "format": "ipv4"},
                "mode": {"anyOf": [{"type": "string", "enum": ["a"]}, {"type": "string", "pattern": "^x"}]},
                "flag": {"type": "boolean", "enum": [True]},
            },
        }
    },
}


def messages(spec: dict[str, Any] | None, **top: Any) -> list[str]:
    obj: dict[str, Any] = {"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"}, **top}
    if spec is not None:
        obj["spec"] = spec
    return [error.message() for error in validate_custom_resource(SCHEMA, obj)]


def test_a_valid_object_has_no_errors() -> None:
    spec = {
        "size": "small",
        "replicas": 10,
        "ratio": 1.5,
        "name": "abc",
        "tags": ["a"],
        "ports": [{"port": 80}, {"port": 443}],
        "labels": {"a": "b"},
        "started": "2026-01-02T03:04:05Z",
        "address": "10.0.0.1",
        "mode": "xyz",
        "flag": True,
    }
    assert messages(spec) == []


def test_required_fields_at_the_top_and_nested() -> None:
    assert messages(None) == ["spec: Required value"]
    assert messages({}) == ["spec.size: Required value"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("size", "huge", 'spec.size: Unsupported value: "huge": supported values: "small", "large"'),
        ("flag", False, 'spec.flag: Unsupported value: false: supported values: "true"'),
        (
            "replicas",
            -1,
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
        ),
        (
            "replicas",
            11,
            "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
        ),
        ("ratio", 0, "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"),
        ("ratio", 0.7, "spec.ratio: Invalid value: 0.7: spec.ratio in body should be a multiple of 0.5"),
        ("name", "abcdef", "spec.name: Too long: may not be more than 5 bytes"),
        ("name", "ab", 'spec.name: Invalid value: "ab": spec.name in body should be at least 3 chars long'),
        ("name", "ABC", "spec.name: Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'"),
        ("tags", ["a", "b", "c", "d"], "spec.tags: Too many: 4: must have at most 3 items"),
        (
            "tags",
            [],
            "spec.tags: Invalid value: []interface {}{}: spec.tags in body should have at least 1 items",
        ),
        ("labels", {"a": "1", "b": "2", "c": "3"}, "spec.labels: Too many: 3: must have at most 2 items"),
        ("labels", {"a": "long"}, "spec.labels.a: Too long: may not be more than 3 bytes"),
        (
            "started",
            "yesterday",
            'spec.started: Invalid value: "yesterday": spec.started in body must be of type date-time: "yesterday"',
        ),
        (
            "address",
            "10.0.0.300",
            'spec.address: Invalid value: "10.0.0.300": spec.address in body must be of type ipv4: "10.0.0.300"',
        ),
        (
            "ports",
            [{"port": 70000}],
            "spec.ports[0].port: Invalid value: 70000: spec.ports[0].port in body "
            "should be less than or equal to 65535",
        ),
        (
            "ports",
            [{"port": 80}, {"port": 80}],
            'spec.ports[1]: Duplicate value: map[string]interface {}{"port":80}',
        ),
    ],
)
def test_each_keyword_with_upstream_wording(field: str, value: Any, expected: str) -> None:
    assert messages({"size": "small", field: value}) == [expected]


def test_any_of_reports_the_composite_and_the_closest_alternative() -> None:
    found = messages({"size": "small", "mode": "b"})
    assert found[0] == 'spec.mode: Invalid value: "": "spec.mode" must validate at least one schema (anyOf)'
    assert len(found) == 2


def test_metadata_and_type_meta_are_left_to_their_own_validation() -> None:
    schema = {
        "type": "object",
        "required": ["metadata", "kind"],
        "properties": {"metadata": {"type": "object"}},
    }
    assert validate_custom_resource(schema, {"metadata": {"name": "x"}}) == []
