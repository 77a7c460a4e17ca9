"""Tests for control.apiserver.patch: JSON merge patch, JSON patch, strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from control.apiserver.patch import (
    MAX_JSON_PATCH_OPERATIONS,
    PatchError,
    StrategicMergeUnsupported,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)
from control.resources.schema import Definitions, SchemaNode, compile_crd_schema, definitions

# ---------------------------------------------------------------------------------------
# Strategic merge patch: upstream's own test cases.
#
# The schema and the cases are ported from kubernetes/apimachinery
# pkg/util/strategicpatch: testdata/swagger-merge-item-v3.json (the "mergeItem" type) and
# patch_test.go (strategicMergePatchRawTestCases, customStrategicMergePatchRawTestCases,
# customStrategicMergePatchTestCaseData, replaceRawExtensionPatchTestCases). Each upstream
# case gives a two-way patch (original -> modified) and a three-way patch (current ->
# result) as kubectl computes them; the server's job, tested here, is applying them.
# Results are compared exactly, list order included.

_REF = "#/components/schemas/"
MERGE_ITEM_SCHEMAS: dict[str, Any] = {
    "mergeItem": {
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "string"},
            "other": {"type": "string"},
            "mergingList": {
                "type": "array",
                "items": {"default": {}, "allOf": [{"$ref": _REF + "mergeItem"}]},
                "x-kubernetes-patch-merge-key": "name",
                "x-kubernetes-patch-strategy": "merge",
            },
            "nonMergingList": {"type": "array", "items": {"$ref": _REF + "mergeItem"}},
            "mergingIntList": {
                "type": "array",
                "items": {"type": "integer", "format": "int32"},
                "x-kubernetes-patch-strategy": "merge",
            },
            "nonMergingIntList": {"type": "array", "items": {"type": "integer", "format": "int32"}},
            "mergeItemPtr": {
                "allOf": [{"$ref": _REF + "mergeItem"}],
                "x-kubernetes-patch-merge-key": "name",
                "x-kubernetes-patch-strategy": "merge",
            },
            "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
            "replacingItem": {
                "allOf": [{"$ref": _REF + "io.k8s.apimachinery.pkg.runtime.RawExtension"}],
                "x-kubernetes-patch-strategy": "replace",
            },
            "retainKeysMap": {
                "allOf": [{"$ref": _REF + "retainKeysMergeItem"}],
                "x-kubernetes-patch-strategy": "retainKeys",
            },
            "retainKeysMergingList": {
                "type": "array",
                "items": {"$ref": _REF + "mergeItem"},
                "x-kubernetes-patch-merge-key": "name",
                "x-kubernetes-patch-strategy": "merge,retainKeys",
            },
            "jsonItem": {"description": "Values are the chart values."},
        },
    },
    "retainKeysMergeItem": {
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "string"},
            "other": {"type": "string"},
            "simpleMap": {"items": {"type": "string"}},
            "mergingList": {
                "type": "array",
                "items": {"$ref": _REF + "mergeItem"},
                "x-kubernetes-patch-merge-key": "name",
                "x-kubernetes-patch-strategy": "merge",
            },
            "nonMergingList": {"type": "array", "items": {"$ref": _REF + "mergeItem"}},
            "mergingIntList": {
                "type": "array",
                "items": {"type": "integer", "format": "int32"},
                "x-kubernetes-patch-strategy": "merge",
            },
        },
    },
    "io.k8s.apimachinery.pkg.runtime.RawExtension": {
        "required": ["Raw"],
        "properties": {"Raw": {"type": "string", "format": "byte"}},
    },
}


@pytest.fixture(scope="module")
def merge_item() -> SchemaNode:
    return Definitions(MERGE_ITEM_SCHEMAS).node("mergeItem")


# (description, current object, patch, expected result)
UPSTREAM_CASES = [
    (
        "nested patch merge with empty list (two-way)",
        {"name": "hi"},
        {"mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]},
        {"name": "hi", "mergingList": [{"name": "hello"}]},
    ),
    (
        "nested patch merge with empty list (three-way)",
        {"name": "hi", "mergingList": [{"name": "hello2"}]},
        {
            "$setElementOrder/mergingList": [{"name": "hello"}, {"name": "doesntexist"}],
            "mergingList": [{"name": "hello"}],
        },
        {"name": "hi", "mergingList": [{"name": "hello"}, {"name": "hello2"}]},
    ),
    (
        "delete items in lists of scalars (two-way)",
        {"mergingIntList": [1, 2, 3]},
        {"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [1, 2]},
    ),
    (
        "delete items in lists of scalars (three-way)",
        {"mergingIntList": [1, 2, 3, 4]},
        {"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [1, 2, 4]},
    ),
    (
        "delete all duplicate items in lists of scalars (two-way)",
        {"mergingIntList": [1, 2, 3, 3]},
        {"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [1, 2]},
    ),
    (
        "delete all duplicate items in lists of scalars (three-way)",
        {"mergingIntList": [1, 2, 3, 3, 4]},
        {"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [1, 2, 4]},
    ),
    (
        "add and delete items in lists of scalars (two-way)",
        {"mergingIntList": [1, 2, 3]},
        {
            "$setElementOrder/mergingIntList": [1, 2, 4],
            "$deleteFromPrimitiveList/mergingIntList": [3],
            "mergingIntList": [4],
        },
        {"mergingIntList": [1, 2, 4]},
    ),
    (
        "add and delete items in lists of scalars (three-way)",
        {"mergingIntList": [1, 2, 3, 4]},
        {"$setElementOrder/mergingIntList": [1, 2, 4], "$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [1, 2, 4]},
    ),
    (
        "merge lists of maps (two-way)",
        {"mergingList": [{"name": 1}, {"name": 2, "value": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}],
        },
        {
            "mergingList": [
                {"name": 4, "value": 4},
                {"name": 1},
                {"name": 2, "value": 2},
                {"name": 3, "value": 3},
            ]
        },
    ),
    (
        "merge lists of maps (three-way)",
        {"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]},
        {
            "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}],
        },
        {
            "mergingList": [
                {"name": 4, "value": 4},
                {"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"},
                {"name": 3, "value": 3},
            ]
        },
    ),
    (
        "add field to map in merging list (two-way)",
        {"mergingList": [{"name": 1}, {"name": 2, "value": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 1, "value": 1}],
        },
        {"mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
    ),
    (
        "add field to map in merging list (three-way)",
        {"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 1, "value": 1}],
        },
        {"mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]},
    ),
    (
        "add duplicate field to map in merging list (two-way)",
        {"mergingList": [{"name": 1}, {"name": 2, "value": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 1, "value": 1}],
        },
        {"mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
    ),
    (
        "add duplicate field to map in merging list (three-way)",
        {"mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]},
        {},
        {"mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]},
    ),
    (
        "add an item that already exists in current object in merging list (two-way)",
        {"mergingList": [{"name": 1, "value": "a"}, {"name": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 3}],
        },
        {"mergingList": [{"name": 1, "value": "a"}, {"name": 2}, {"name": 3}]},
    ),
    (
        "add an item that already exists in current object in merging list (three-way)",
        {"mergingList": [{"name": 1, "value": "a", "other": "x"}, {"name": 2}, {"name": 3}]},
        {},
        {"mergingList": [{"name": 1, "value": "a", "other": "x"}, {"name": 2}, {"name": 3}]},
    ),
    (
        "delete map from merging list (two-way)",
        {"mergingList": [{"name": 1}, {"name": 2}]},
        {"$setElementOrder/mergingList": [{"name": 2}], "mergingList": [{"name": 1, "$patch": "delete"}]},
        {"mergingList": [{"name": 2}]},
    ),
    (
        "delete map from merging list (three-way)",
        {"mergingList": [{"name": 1}, {"name": 2, "other": "b"}]},
        {"$setElementOrder/mergingList": [{"name": 2}], "mergingList": [{"name": 1, "$patch": "delete"}]},
        {"mergingList": [{"name": 2, "other": "b"}]},
    ),
    (
        "delete missing map from merging list (two-way)",
        {"mergingList": [{"name": 1}, {"name": 2}]},
        {"$setElementOrder/mergingList": [{"name": 2}], "mergingList": [{"name": 1, "$patch": "delete"}]},
        {"mergingList": [{"name": 2}]},
    ),
    (
        "delete missing map from merging list (three-way)",
        {"mergingList": [{"name": 2, "other": "b"}]},
        {"$setElementOrder/mergingList": [{"name": 2}], "mergingList": [{"name": 1, "$patch": "delete"}]},
        {"mergingList": [{"name": 2, "other": "b"}]},
    ),
    (
        "add map and delete map from merging list (two-way)",
        {"mergingList": [{"name": 1}, {"name": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
            "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}],
        },
        {"mergingList": [{"name": 2}, {"name": 3}]},
    ),
    (
        "add map and delete map from merging list (three-way)",
        {"mergingList": [{"name": 1}, {"name": 2, "other": "b"}, {"name": 4, "other": "c"}]},
        {
            "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
            "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}],
        },
        {"mergingList": [{"name": 2, "other": "b"}, {"name": 4, "other": "c"}, {"name": 3}]},
    ),
    (
        "add map and delete map from merging list with conflict (two-way)",
        {"mergingList": [{"name": 1}, {"name": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
            "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}],
        },
        {"mergingList": [{"name": 2}, {"name": 3}]},
    ),
    (
        "add map and delete map from merging list with conflict (three-way)",
        {"mergingList": [{"name": 1, "other": "a"}, {"name": 4, "other": "c"}]},
        {
            "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
            "mergingList": [{"name": 2}, {"name": 3}, {"name": 1, "$patch": "delete"}],
        },
        {"mergingList": [{"name": 4, "other": "c"}, {"name": 2}, {"name": 3}]},
    ),
    (
        "delete field from map in merging list (two-way)",
        {"mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 1, "value": None}],
        },
        {"mergingList": [{"name": 1}, {"name": 2, "value": 2}]},
    ),
    (
        "delete field from map in merging list (three-way)",
        {"mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 1, "value": None}],
        },
        {"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]},
    ),
    (
        "replace non merging list nested in merging list (two-way)",
        {"mergingList": [{"name": 1, "nonMergingList": [{"name": 1}, {"name": 2, "value": 2}]}, {"name": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}],
        },
        {"mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}, {"name": 2}]},
    ),
    (
        "replace non merging list nested in merging list (three-way)",
        {
            "mergingList": [
                {"name": 1, "other": "a", "nonMergingList": [{"name": 1}, {"name": 2, "value": 2}]},
                {"name": 2, "other": "b"},
            ]
        },
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}],
        },
        {
            "mergingList": [
                {"name": 1, "other": "a", "nonMergingList": [{"name": 1, "value": 1}]},
                {"name": 2, "other": "b"},
            ]
        },
    ),
    (
        "add field to map in merging list nested in merging list (two-way)",
        {"mergingList": [{"name": 1, "mergingList": [{"name": 1}, {"name": 2, "value": 2}]}, {"name": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [
                {
                    "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                    "name": 1,
                    "mergingList": [{"name": 1, "value": 1}],
                }
            ],
        },
        {
            "mergingList": [
                {"name": 1, "mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
                {"name": 2},
            ]
        },
    ),
    (
        "add field to map in merging list nested in merging list (three-way)",
        {
            "mergingList": [
                {"name": 1, "other": "a", "mergingList": [{"name": 1}, {"name": 2, "value": 2}]},
                {"name": 2, "other": "b"},
            ]
        },
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [
                {
                    "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                    "name": 1,
                    "mergingList": [{"name": 1, "value": 1}],
                }
            ],
        },
        {
            "mergingList": [
                {"name": 1, "other": "a", "mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
                {"name": 2, "other": "b"},
            ]
        },
    ),
    (
        "add map to merging list by pointer (two-way)",
        {"mergeItemPtr": [{"name": 1}]},
        {"$setElementOrder/mergeItemPtr": [{"name": 1}, {"name": 2}], "mergeItemPtr": [{"name": 2}]},
        {"mergeItemPtr": [{"name": 1}, {"name": 2}]},
    ),
    (
        "add map to merging list by pointer (three-way)",
        {"mergeItemPtr": [{"name": 1, "other": "a"}, {"name": 3}]},
        {"$setElementOrder/mergeItemPtr": [{"name": 1}, {"name": 2}], "mergeItemPtr": [{"name": 2}]},
        {"mergeItemPtr": [{"name": 1, "other": "a"}, {"name": 2}, {"name": 3}]},
    ),
    (
        "add field to map in merging list by pointer (two-way)",
        {"mergeItemPtr": [{"name": 1, "mergeItemPtr": [{"name": 1}, {"name": 2, "value": 2}]}, {"name": 2}]},
        {
            "$setElementOrder/mergeItemPtr": [{"name": 1}, {"name": 2}],
            "mergeItemPtr": [
                {
                    "$setElementOrder/mergeItemPtr": [{"name": 1}, {"name": 2}],
                    "name": 1,
                    "mergeItemPtr": [{"name": 1, "value": 1}],
                }
            ],
        },
        {
            "mergeItemPtr": [
                {"name": 1, "mergeItemPtr": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
                {"name": 2},
            ]
        },
    ),
    (
        "add field to map in merging list by pointer (three-way)",
        {
            "mergeItemPtr": [
                {
                    "name": 1,
                    "other": "a",
                    "mergeItemPtr": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}],
                },
                {"name": 2, "other": "b"},
            ]
        },
        {
            "$setElementOrder/mergeItemPtr": [{"name": 1}, {"name": 2}],
            "mergeItemPtr": [
                {
                    "$setElementOrder/mergeItemPtr": [{"name": 1}, {"name": 2}],
                    "name": 1,
                    "mergeItemPtr": [{"name": 1, "value": 1}],
                }
            ],
        },
        {
            "mergeItemPtr": [
                {
                    "name": 1,
                    "other": "a",
                    "mergeItemPtr": [
                        {"name": 1, "value": 1, "other": "a"},
                        {"name": 2, "value": 2, "other": "b"},
                    ],
                },
                {"name": 2, "other": "b"},
            ]
        },
    ),
    (
        "merge lists of scalars (two-way)",
        {"mergingIntList": [1, 2]},
        {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3]},
        {"mergingIntList": [1, 2, 3]},
    ),
    (
        "merge lists of scalars (three-way)",
        {"mergingIntList": [1, 2, 4]},
        {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3]},
        {"mergingIntList": [1, 2, 3, 4]},
    ),
    (
        "add duplicate field to map in merging int list (two-way)",
        {"mergingIntList": [1, 2]},
        {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3]},
        {"mergingIntList": [1, 2, 3]},
    ),
    (
        "add duplicate field to map in merging int list (three-way)",
        {"mergingIntList": [1, 2, 3]},
        {},
        {"mergingIntList": [1, 2, 3]},
    ),
    (
        "add an item in a list of primitives and preserve order (two-way)",
        {"mergingIntList": [1, 2]},
        {"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]},
        {"mergingIntList": [3, 1, 2]},
    ),
    (
        "add an item in a list of primitives and preserve order (three-way)",
        {"mergingIntList": [1, 4, 2]},
        {"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]},
        {"mergingIntList": [3, 1, 4, 2]},
    ),
    (
        "delete an item in a list of primitives and preserve order (two-way)",
        {"mergingIntList": [1, 2, 3]},
        {"$setElementOrder/mergingIntList": [2, 1], "$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [2, 1]},
    ),
    (
        "delete an item in a list of primitives and preserve order (three-way)",
        {"mergingIntList": [1, 2, 3]},
        {"$setElementOrder/mergingIntList": [2, 1], "$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [2, 1]},
    ),
    (
        "delete an item in a list and preserve order (two-way)",
        {"mergingList": [{"name": 1}, {"name": 3, "value": 3}, {"name": 2, "value": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 2}, {"name": 1}],
            "mergingList": [{"name": 3, "$patch": "delete"}],
        },
        {"mergingList": [{"name": 2, "value": 2}, {"name": 1}]},
    ),
    (
        "delete an item in a list and preserve order (three-way)",
        {
            "mergingList": [
                {"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"},
                {"name": 3, "value": 3},
            ]
        },
        {
            "$setElementOrder/mergingList": [{"name": 2}, {"name": 1}],
            "mergingList": [{"name": 3, "$patch": "delete"}],
        },
        {"mergingList": [{"name": 2, "value": 2, "other": "b"}, {"name": 1, "other": "a"}]},
    ),
    (
        "add and delete an item in a list and preserve order (two-way)",
        {"mergingList": [{"name": 1}, {"name": 3, "value": 3}, {"name": 2, "value": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 1}],
            "mergingList": [{"name": 4, "value": 4}, {"name": 3, "$patch": "delete"}],
        },
        {"mergingList": [{"name": 4, "value": 4}, {"name": 2, "value": 2}, {"name": 1}]},
    ),
    (
        "add and delete an item in a list and preserve order (three-way)",
        {
            "mergingList": [
                {"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"},
                {"name": 3, "value": 3},
            ]
        },
        {
            "$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 1}],
            "mergingList": [{"name": 4, "value": 4}, {"name": 3, "$patch": "delete"}],
        },
        {
            "mergingList": [
                {"name": 4, "value": 4},
                {"name": 2, "value": 2, "other": "b"},
                {"name": 1, "other": "a"},
            ]
        },
    ),
    (
        "set elements order in a list (two-way)",
        {
            "mergingList": [
                {"name": 1},
                {"name": 3, "value": 3},
                {"name": 4, "value": 4},
                {"name": 2, "value": 2},
            ]
        },
        {"$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1}]},
        {
            "mergingList": [
                {"name": 4, "value": 4},
                {"name": 2, "value": 2},
                {"name": 3, "value": 3},
                {"name": 1},
            ]
        },
    ),
    (
        "set elements order in a list (three-way)",
        {
            "mergingList": [
                {"name": 1, "other": "a"},
                {"name": 3, "value": 3},
                {"name": 4, "value": 4},
                {"name": 2, "value": 2},
            ]
        },
        {"$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1}]},
        {
            "mergingList": [
                {"name": 4, "value": 4},
                {"name": 2, "value": 2},
                {"name": 3, "value": 3},
                {"name": 1, "other": "a"},
            ]
        },
    ),
    (
        "set elements order in a list with server-only items (two-way)",
        {
            "mergingList": [
                {"name": 1},
                {"name": 3, "value": 3},
                {"name": 4, "value": 4},
                {"name": 2, "value": 2},
            ]
        },
        {"$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1}]},
        {
            "mergingList": [
                {"name": 4, "value": 4},
                {"name": 2, "value": 2},
                {"name": 3, "value": 3},
                {"name": 1},
            ]
        },
    ),
    (
        "set elements order in a list with server-only items (three-way)",
        {
            "mergingList": [
                {"name": 1, "other": "a"},
                {"name": 3, "value": 3},
                {"name": 4, "value": 4},
                {"name": 2, "value": 2},
                {"name": 9},
            ]
        },
        {"$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1}]},
        {
            "mergingList": [
                {"name": 4, "value": 4},
                {"name": 2, "value": 2},
                {"name": 3, "value": 3},
                {"name": 1, "other": "a"},
                {"name": 9},
            ]
        },
    ),
    (
        "set elements order in a list with server-only items 2 (two-way)",
        {
            "mergingList": [
                {"name": 1},
                {"name": 2, "value": 2},
                {"name": 3, "value": 3},
                {"name": 4, "value": 4},
            ]
        },
        {"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]},
        {
            "mergingList": [
                {"name": 2, "value": 2},
                {"name": 1},
                {"name": 4, "value": 4},
                {"name": 3, "value": 3},
            ]
        },
    ),
    (
        "set elements order in a list with server-only items 2 (three-way)",
        {
            "mergingList": [
                {"name": 1, "other": "a"},
                {"name": 2, "value": 2},
                {"name": 9},
                {"name": 3, "value": 3},
                {"name": 4, "value": 4},
            ]
        },
        {"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]},
        {
            "mergingList": [
                {"name": 2, "value": 2},
                {"name": 1, "other": "a"},
                {"name": 9},
                {"name": 4, "value": 4},
                {"name": 3, "value": 3},
            ]
        },
    ),
    (
        "set elements order in a list with server-only items 3 (two-way)",
        {
            "mergingList": [
                {"name": 1},
                {"name": 2, "value": 2},
                {"name": 3, "value": 3},
                {"name": 4, "value": 4},
            ]
        },
        {"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]},
        {
            "mergingList": [
                {"name": 2, "value": 2},
                {"name": 1},
                {"name": 4, "value": 4},
                {"name": 3, "value": 3},
            ]
        },
    ),
    (
        "set elements order in a list with server-only items 3 (three-way)",
        {
            "mergingList": [
                {"name": 1, "other": "a"},
                {"name": 2, "value": 2},
                {"name": 7},
                {"name": 9},
                {"name": 8},
                {"name": 3, "value": 3},
                {"name": 4, "value": 4},
            ]
        },
        {"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]},
        {
            "mergingList": [
                {"name": 2, "value": 2},
                {"name": 1, "other": "a"},
                {"name": 7},
                {"name": 9},
                {"name": 8},
                {"name": 4, "value": 4},
                {"name": 3, "value": 3},
            ]
        },
    ),
    (
        "set elements order in a int list (two-way)",
        {"mergingIntList": [1, 3, 4, 2]},
        {"$setElementOrder/mergingIntList": [4, 2, 3, 1]},
        {"mergingIntList": [4, 2, 3, 1]},
    ),
    (
        "set elements order in a int list (three-way)",
        {"mergingIntList": [1, 3, 4, 2]},
        {"$setElementOrder/mergingIntList": [4, 2, 3, 1]},
        {"mergingIntList": [4, 2, 3, 1]},
    ),
    (
        "set elements order in a int list with server-only items (two-way)",
        {"mergingIntList": [1, 3, 4, 2]},
        {"$setElementOrder/mergingIntList": [4, 2, 3, 1]},
        {"mergingIntList": [4, 2, 3, 1]},
    ),
    (
        "set elements order in a int list with server-only items (three-way)",
        {"mergingIntList": [1, 3, 4, 2, 9]},
        {"$setElementOrder/mergingIntList": [4, 2, 3, 1]},
        {"mergingIntList": [4, 2, 3, 1, 9]},
    ),
    (
        "set elements order in a int list with server-only items 3 (two-way)",
        {"mergingIntList": [1, 2, 3, 4]},
        {"$setElementOrder/mergingIntList": [2, 1, 4, 3]},
        {"mergingIntList": [2, 1, 4, 3]},
    ),
    (
        "set elements order in a int list with server-only items 3 (three-way)",
        {"mergingIntList": [1, 2, 7, 9, 8, 3, 4]},
        {"$setElementOrder/mergingIntList": [2, 1, 4, 3]},
        {"mergingIntList": [2, 1, 7, 9, 8, 4, 3]},
    ),
    (
        "behavior of set element order for a merging list with duplicate (two-way)",
        {
            "mergingList": [
                {"name": 1},
                {"name": 2, "value": "dup1"},
                {"name": 3},
                {"name": 2, "value": "dup2"},
                {"name": 4},
            ]
        },
        {"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}, {"name": 2}]},
        {
            "mergingList": [
                {"name": 2, "value": "dup1"},
                {"name": 2, "value": "dup2"},
                {"name": 1},
                {"name": 4},
                {"name": 3},
            ]
        },
    ),
    (
        "behavior of set element order for a merging list with duplicate (three-way)",
        {
            "mergingList": [
                {"name": 1},
                {"name": 2, "value": "dup1"},
                {"name": 3},
                {"name": 2, "value": "dup2"},
                {"name": 4},
            ]
        },
        {"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}, {"name": 2}]},
        {
            "mergingList": [
                {"name": 2, "value": "dup1"},
                {"name": 2, "value": "dup2"},
                {"name": 1},
                {"name": 4},
                {"name": 3},
            ]
        },
    ),
    (
        "behavior of set element order for a merging int list with duplicate (two-way)",
        {"mergingIntList": [1, 2, 3, 2, 4]},
        {"$setElementOrder/mergingIntList": [2, 1, 4, 3, 2]},
        {"mergingIntList": [2, 2, 1, 4, 3]},
    ),
    (
        "behavior of set element order for a merging int list with duplicate (three-way)",
        {"mergingIntList": [1, 2, 3, 2, 4]},
        {"$setElementOrder/mergingIntList": [2, 1, 4, 3, 2]},
        {"mergingIntList": [2, 2, 1, 4, 3]},
    ),
    (
        "retainKeys map should clear defaulted field (two-way)",
        {},
        {"retainKeysMap": {"other": "bar"}},
        {"retainKeysMap": {"other": "bar"}},
    ),
    (
        "retainKeys map should clear defaulted field (three-way)",
        {"retainKeysMap": {"value": "foo"}},
        {"retainKeysMap": {"$retainKeys": ["other"], "other": "bar"}},
        {"retainKeysMap": {"other": "bar"}},
    ),
    (
        "retainKeys map should clear defaulted field with conflict (discriminated union) (two-way)",
        {},
        {"retainKeysMap": {"name": "type2", "other": "bar"}},
        {"retainKeysMap": {"name": "type2", "other": "bar"}},
    ),
    (
        "retainKeys map should clear defaulted field with conflict (discriminated union) (three-way)",
        {"retainKeysMap": {"name": "type1", "value": "foo"}},
        {"retainKeysMap": {"$retainKeys": ["name", "other"], "name": "type2", "other": "bar"}},
        {"retainKeysMap": {"name": "type2", "other": "bar"}},
    ),
    (
        "retainKeys map adds a field and clear a field (two-way)",
        {"retainKeysMap": {"name": "foo"}},
        {"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "bar"}},
        {"retainKeysMap": {"name": "foo", "value": "bar"}},
    ),
    (
        "retainKeys map adds a field and clear a field (three-way)",
        {"retainKeysMap": {"name": "foo", "other": "a"}},
        {"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "bar"}},
        {"retainKeysMap": {"name": "foo", "value": "bar"}},
    ),
    (
        "retainKeys map clears a field (two-way)",
        {"retainKeysMap": {"name": "foo", "value": "bar"}},
        {},
        {"retainKeysMap": {"name": "foo", "value": "bar"}},
    ),
    (
        "retainKeys map clears a field (three-way)",
        {"retainKeysMap": {"name": "foo", "value": "bar", "other": "a"}},
        {"retainKeysMap": {"$retainKeys": ["name", "value"]}},
        {"retainKeysMap": {"name": "foo", "value": "bar"}},
    ),
    (
        "retainKeys map replaces non-merging list (two-way)",
        {"retainKeysMap": {"name": "foo", "value": "bar", "nonMergingList": [{"name": "a"}, {"name": "b"}]}},
        {
            "retainKeysMap": {
                "$retainKeys": ["name", "nonMergingList", "value"],
                "nonMergingList": [{"name": "a"}, {"name": "c"}, {"name": "b"}],
            }
        },
        {
            "retainKeysMap": {
                "name": "foo",
                "value": "bar",
                "nonMergingList": [{"name": "a"}, {"name": "c"}, {"name": "b"}],
            }
        },
    ),
    (
        "retainKeys map replaces non-merging list (three-way)",
        {"retainKeysMap": {"name": "foo", "value": "bar", "nonMergingList": [{"name": "a"}, {"name": "b"}]}},
        {
            "retainKeysMap": {
                "$retainKeys": ["name", "nonMergingList", "value"],
                "nonMergingList": [{"name": "a"}, {"name": "c"}, {"name": "b"}],
            }
        },
        {
            "retainKeysMap": {
                "name": "foo",
                "value": "bar",
                "nonMergingList": [{"name": "a"}, {"name": "c"}, {"name": "b"}],
            }
        },
    ),
    (
        "retainKeys map deletes an item in nested merging int list (two-way)",
        {"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3]}},
        {
            "retainKeysMap": {
                "$retainKeys": ["mergingIntList", "name"],
                "$deleteFromPrimitiveList/mergingIntList": [2],
                "$setElementOrder/mergingIntList": [1, 3],
            }
        },
        {"retainKeysMap": {"name": "foo", "mergingIntList": [1, 3]}},
    ),
    (
        "retainKeys map deletes an item in nested merging int list (three-way)",
        {"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3, 4]}},
        {
            "retainKeysMap": {
                "$retainKeys": ["mergingIntList", "name"],
                "$deleteFromPrimitiveList/mergingIntList": [2],
                "$setElementOrder/mergingIntList": [1, 3],
            }
        },
        {"retainKeysMap": {"name": "foo", "mergingIntList": [1, 3, 4]}},
    ),
    (
        "retainKeys map adds an item in nested merging list (two-way)",
        {"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}]}},
        {
            "retainKeysMap": {
                "$retainKeys": ["mergingList", "name"],
                "$setElementOrder/mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                "mergingList": [{"name": "c"}],
            }
        },
        {"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}},
    ),
    (
        "retainKeys map adds an item in nested merging list (three-way)",
        {"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "x"}]}},
        {
            "retainKeysMap": {
                "$retainKeys": ["mergingList", "name"],
                "$setElementOrder/mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                "mergingList": [{"name": "c"}],
            }
        },
        {
            "retainKeysMap": {
                "name": "foo",
                "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "x"}],
            }
        },
    ),
    (
        "retainKeys map deletes an item in nested merging list (two-way)",
        {"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}]}},
        {
            "retainKeysMap": {
                "$retainKeys": ["mergingList", "name"],
                "$setElementOrder/mergingList": [{"name": "a"}],
                "mergingList": [{"name": "b", "$patch": "delete"}],
            }
        },
        {"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}]}},
    ),
    (
        "retainKeys map deletes an item in nested merging list (three-way)",
        {"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "x"}]}},
        {
            "retainKeysMap": {
                "$retainKeys": ["mergingList", "name"],
                "$setElementOrder/mergingList": [{"name": "a"}],
                "mergingList": [{"name": "b", "$patch": "delete"}],
            }
        },
        {"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "x"}]}},
    ),
    (
        "retainKeys list of maps clears a field (two-way)",
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]},
        {},
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]},
    ),
    (
        "retainKeys list of maps clears a field (three-way)",
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a", "other": "x"}]},
        {
            "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
            "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo"}],
        },
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]},
    ),
    (
        "retainKeys list of maps adds a field (two-way)",
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]},
        {
            "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
            "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo", "value": "a"}],
        },
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]},
    ),
    (
        "retainKeys list of maps adds a field (three-way)",
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]},
        {
            "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
            "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo", "value": "a"}],
        },
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]},
    ),
    (
        "delete and reorder in one list, reorder in another (two-way)",
        {
            "mergingList": [{"name": "a", "value": "a"}, {"name": "b", "value": "b"}],
            "mergeItemPtr": [{"name": "c", "value": "c"}, {"name": "d", "value": "d"}],
        },
        {
            "$setElementOrder/mergingList": [{"name": "b"}],
            "$setElementOrder/mergeItemPtr": [{"name": "d"}, {"name": "c"}],
            "mergingList": [{"$patch": "delete", "name": "a"}],
        },
        {
            "mergingList": [{"name": "b", "value": "b"}],
            "mergeItemPtr": [{"name": "d", "value": "d"}, {"name": "c", "value": "c"}],
        },
    ),
    (
        "delete and reorder in one list, reorder in another (three-way)",
        {
            "mergingList": [{"name": "a", "value": "a"}, {"name": "b", "value": "b"}],
            "mergeItemPtr": [{"name": "c", "value": "c"}, {"name": "d", "value": "d"}],
        },
        {
            "$setElementOrder/mergingList": [{"name": "b"}],
            "$setElementOrder/mergeItemPtr": [{"name": "d"}, {"name": "c"}],
            "mergingList": [{"$patch": "delete", "name": "a"}],
        },
        {
            "mergingList": [{"name": "b", "value": "b"}],
            "mergeItemPtr": [{"name": "d", "value": "d"}, {"name": "c", "value": "c"}],
        },
    ),
    (
        "replace RawExtension field, rest unchanched (three-way)",
        {
            "name": "my-object",
            "value": "some-value",
            "other": "current-other",
            "mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
            "replacingItem": {"Some": "Generic", "Yaml": "Inside", "The": "RawExtension", "Field": "Period"},
        },
        {"replacingItem": {"Newly": "Modified", "Yaml": "Inside", "The": "RawExtension"}},
        {
            "name": "my-object",
            "value": "some-value",
            "other": "current-other",
            "mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
            "replacingItem": {"Newly": "Modified", "Yaml": "Inside", "The": "RawExtension"},
        },
    ),
    (
        "replace RawExtension field and merge list (three-way)",
        {
            "name": "my-object",
            "value": "some-value",
            "other": "current-other",
            "mergingList": [{"name": 1}, {"name": 3}],
            "replacingItem": {"Some": "Generic", "Yaml": "Inside", "The": "RawExtension", "Field": "Period"},
        },
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 2}],
            "replacingItem": {"Newly": "Modified", "Yaml": "Inside", "The": "RawExtension"},
        },
        {
            "name": "my-object",
            "value": "some-value",
            "other": "current-other",
            "mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
            "replacingItem": {"Newly": "Modified", "Yaml": "Inside", "The": "RawExtension"},
        },
    ),
    (
        "$setElementOrder contains item that is not present in the list to be merged",
        {"mergingList": [{"name": 1}, {"name": 3}]},
        {
            "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
            "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
        },
        {"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]},
    ),
    (
        "$setElementOrder contains item that is not present in the int list to be merged",
        {"mergingIntList": [1, 3]},
        {"$setElementOrder/mergingIntList": [3, 2, 1]},
        {"mergingIntList": [3, 1]},
    ),
    (
        "$deleteFromPrimitiveList of nonexistent item in primitive list should not add the item to the list",
        {"mergingIntList": [1, 2]},
        {"$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [1, 2]},
    ),
    (
        "$deleteFromPrimitiveList on empty primitive list should not add the item to the list",
        {"mergingIntList": None},
        {"$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": None},
    ),
    (
        "$deleteFromPrimitiveList on nonexistent primitive list should not add the primitive list",
        {"foo": ["bar"]},
        {"$deleteFromPrimitiveList/mergingIntList": [3]},
        {"foo": ["bar"]},
    ),
    (
        "$deleteFromPrimitiveList should delete item from a list with merge patch strategy",
        {"mergingIntList": [1, 2, 3]},
        {"$deleteFromPrimitiveList/mergingIntList": [2]},
        {"mergingIntList": [1, 3]},
    ),
    (
        "$deleteFromPrimitiveList should delete item from a list without merge patch strategy",
        {"nonMergingIntList": [1, 2, 3]},
        {"$deleteFromPrimitiveList/nonMergingIntList": [2]},
        {"nonMergingIntList": [1, 3]},
    ),
    (
        "delete map from nested map",
        {"simpleMap": {"key1": 1, "key2": 1}},
        {"simpleMap": {"$patch": "delete"}},
        {"simpleMap": {}},
    ),
    (
        "delete all items from merging list",
        {"mergingList": [{"name": 1}, {"name": 2}]},
        {"mergingList": [{"$patch": "replace"}]},
        {"mergingList": []},
    ),
    ("delete all keys from map", {"name": 1, "value": 1}, {"$patch": "replace"}, {}),
    (
        "add key and delete all keys from map",
        {"name": 1, "value": 1},
        {"other": "a", "$patch": "replace"},
        {"other": "a"},
    ),
    (
        "delete all duplicate entries in a merging list",
        {"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]},
        {"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]},
        {"mergingList": [{"name": 2, "value": "a"}]},
    ),
    (
        "retainKeys map can delete a field when no retainKeys directive present",
        {"retainKeysMap": {"name": "foo", "value": "a"}},
        {"retainKeysMap": {"value": None}},
        {"retainKeysMap": {"name": "foo"}},
    ),
    (
        "preserve the order from the patch in a merging list",
        {"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]},
        {"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]},
        {
            "mergingList": [
                {"name": 3, "value": "c"},
                {"name": 1, "value": "a"},
                {"name": 2, "value": "b", "other": "x"},
            ]
        },
    ),
    (
        "preserve the order from the patch in a merging list 2",
        {"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]},
        {"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]},
        {"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]},
    ),
    (
        "preserve the order from the patch in a merging int list",
        {"mergingIntList": [1, 2, 3]},
        {"mergingIntList": [3, 1]},
        {"mergingIntList": [2, 3, 1]},
    ),
]


@pytest.mark.parametrize(
    ("original", "patch", "expected"),
    [
        pytest.param(original, patch, expected, id=description)
        for description, original, patch, expected in UPSTREAM_CASES
    ],
)
def test_upstream_strategic_merge_cases(
    merge_item: SchemaNode, original: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    before = copy.deepcopy((original, patch))
    assert strategic_merge_patch(original, patch, merge_item) == expected
    assert (original, patch) == before  # the inputs are left untouched


# (description, original, patch, part of upstream's error message)
UPSTREAM_ERRORS = [
    (
        "should check if order in $setElementOrder and patch list match",
        {"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
        },
        "doesn't match",
    ),
    (
        "$setElementOrder contains item that is not present in the int list to be merged",
        {"mergingIntList": [1, 3, 2]},
        {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]},
        "doesn't match",
    ),
    (
        "missing merge key should error out",
        {"mergingList": [{"name": 1, "value": "a"}]},
        {"mergingList": [{"value": "b"}]},
        "does not contain declared merge key",
    ),
]


@pytest.mark.parametrize(
    ("original", "patch", "message"),
    [
        pytest.param(original, patch, message, id=description)
        for description, original, patch, message in UPSTREAM_ERRORS
    ],
)
def test_upstream_strategic_merge_errors(
    merge_item: SchemaNode, original: dict[str, Any], patch: dict[str, Any], message: str
) -> None:
    with pytest.raises(PatchError, match=message) as caught:
        strategic_merge_patch(original, patch, merge_item)
    assert caught.value.code == 422


# ---------------------------------------------------------------------------------------
# Strategic merge patch: what kubectl really sends.
#
# The patches below were captured from kubectl 1.33 (`kubectl apply -f`, client-side) run
# against a recording server that answered GET with LIVE_DEPLOYMENT: the last-applied
# annotation holds the previous manifest, the live object has server defaults and status.

LIVE_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "labels": {"app": "web"},
        "uid": "u1",
        "resourceVersion": "42",
        "generation": 1,
        "creationTimestamp": "2025-01-01T00:00:00Z",
        "annotations": {
            "deployment.kubernetes.io/revision": "1",
            "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default","labels":{"app":"web"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.25","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80,"name":"http"},{"containerPort":443,"name":"https"}]},{"name":"sidecar","image":"busybox:1.36","args":["sleep","3600"]}]}}}}\n',
        },
    },
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.25",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "ports": [
                            {"containerPort": 80, "name": "http", "protocol": "TCP"},
                            {"containerPort": 443, "name": "https", "protocol": "TCP"},
                        ],
                        "imagePullPolicy": "IfNotPresent",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    },
                    {
                        "name": "sidecar",
                        "image": "busybox:1.36",
                        "args": ["sleep", "3600"],
                        "imagePullPolicy": "IfNotPresent",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    },
                ],
                "restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30,
            },
        },
        "progressDeadlineSeconds": 600,
        "revisionHistoryLimit": 10,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    },
    "status": {"replicas": 2, "readyReplicas": 2, "observedGeneration": 1},
}

_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _kubectl_patch(
    last_applied: str, spec: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"annotations": {_LAST_APPLIED: last_applied}}
    if labels is not None:
        metadata["labels"] = labels
    return {"metadata": metadata, "spec": {"template": {"spec": spec}}}


# Manifest change: env B=2 -> B=3 in container "web".
KUBECTL_CHANGE_ENV = _kubectl_patch(
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"labels":{"app":"web"},"name":"web","namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"3"}],"image":"nginx:1.25","name":"web","ports":[{"containerPort":80,"name":"http"},{"containerPort":443,"name":"https"}]},{"args":["sleep","3600"],"image":"busybox:1.36","name":"sidecar"}]}}}}\n',
    {
        "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
        "containers": [
            {
                "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                "env": [{"name": "B", "value": "3"}],
                "name": "web",
            }
        ],
    },
)
# Manifest change: container port 443 removed from "web".
KUBECTL_REMOVE_PORT = _kubectl_patch(
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"labels":{"app":"web"},"name":"web","namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"nginx:1.25","name":"web","ports":[{"containerPort":80,"name":"http"}]},{"args":["sleep","3600"],"image":"busybox:1.36","name":"sidecar"}]}}}}\n',
    {
        "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
        "containers": [
            {
                "$setElementOrder/ports": [{"containerPort": 80}],
                "name": "web",
                "ports": [{"$patch": "delete", "containerPort": 443}],
            }
        ],
    },
)
# Manifest change: containers listed as [sidecar, web] instead of [web, sidecar].
KUBECTL_REORDER_CONTAINERS = _kubectl_patch(
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"labels":{"app":"web"},"name":"web","namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"args":["sleep","3600"],"image":"busybox:1.36","name":"sidecar"},{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"nginx:1.25","name":"web","ports":[{"containerPort":80,"name":"http"},{"containerPort":443,"name":"https"}]}]}}}}\n',
    {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]},
)
# Manifest change: env Z prepended in "web", args dropped from "sidecar", label tier=front added.
KUBECTL_ADD_ENV_DROP_ARGS = _kubectl_patch(
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"labels":{"app":"web","tier":"front"},"name":"web","namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"env":[{"name":"Z","value":"0"},{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"nginx:1.25","name":"web","ports":[{"containerPort":80,"name":"http"},{"containerPort":443,"name":"https"}]},{"image":"busybox:1.36","name":"sidecar"}]}}}}\n',
    {
        "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
        "containers": [
            {
                "$setElementOrder/env": [{"name": "Z"}, {"name": "A"}, {"name": "B"}],
                "env": [{"name": "Z", "value": "0"}],
                "name": "web",
            },
            {"args": None, "name": "sidecar"},
        ],
    },
    labels={"tier": "front"},
)


@pytest.fixture(scope="module")
def deployment() -> SchemaNode:
    return definitions().node("io.k8s.api.apps.v1.Deployment")


@pytest.fixture(scope="module")
def pod() -> SchemaNode:
    return definitions().node("io.k8s.api.core.v1.Pod")


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


def test_kubectl_apply_changing_an_env_var_keeps_server_fields(deployment: SchemaNode) -> None:
    result = strategic_merge_patch(LIVE_DEPLOYMENT, KUBECTL_CHANGE_ENV, deployment)
    web, sidecar = _containers(result)
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert web["ports"] == _containers(LIVE_DEPLOYMENT)[0]["ports"]  # defaults (protocol) kept
    assert web["imagePullPolicy"] == "IfNotPresent"
    assert sidecar == _containers(LIVE_DEPLOYMENT)[1]
    assert result["status"] == LIVE_DEPLOYMENT["status"]
    assert (
        result["metadata"]["annotations"][_LAST_APPLIED]
        == KUBECTL_CHANGE_ENV["metadata"]["annotations"][_LAST_APPLIED]
    )
    assert result["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert not any(key.startswith("$") for key in web)


def test_kubectl_apply_removing_a_container_port_deletes_by_merge_key(deployment: SchemaNode) -> None:
    result = strategic_merge_patch(LIVE_DEPLOYMENT, KUBECTL_REMOVE_PORT, deployment)
    web, _ = _containers(result)
    assert web["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert web["env"] == _containers(LIVE_DEPLOYMENT)[0]["env"]


def test_kubectl_apply_reordering_containers_uses_set_element_order(deployment: SchemaNode) -> None:
    result = strategic_merge_patch(LIVE_DEPLOYMENT, KUBECTL_REORDER_CONTAINERS, deployment)
    live_web, live_sidecar = _containers(LIVE_DEPLOYMENT)
    assert _containers(result) == [live_sidecar, live_web]


def test_kubectl_apply_adding_env_dropping_args_and_adding_a_label(deployment: SchemaNode) -> None:
    result = strategic_merge_patch(LIVE_DEPLOYMENT, KUBECTL_ADD_ENV_DROP_ARGS, deployment)
    web, sidecar = _containers(result)
    assert [env["name"] for env in web["env"]] == ["Z", "A", "B"]
    assert "args" not in sidecar
    assert result["metadata"]["labels"] == {"app": "web", "tier": "front"}


def test_kubectl_patches_leave_the_live_object_untouched(deployment: SchemaNode) -> None:
    before = copy.deepcopy(LIVE_DEPLOYMENT)
    for patch in (
        KUBECTL_CHANGE_ENV,
        KUBECTL_REMOVE_PORT,
        KUBECTL_REORDER_CONTAINERS,
        KUBECTL_ADD_ENV_DROP_ARGS,
    ):
        patch_before = copy.deepcopy(patch)
        strategic_merge_patch(LIVE_DEPLOYMENT, patch, deployment)
        assert patch == patch_before
    assert before == LIVE_DEPLOYMENT


def test_set_element_order_places_server_only_items_by_live_order(deployment: SchemaNode) -> None:
    # Another manager added container "extra" between the applied ones; kubectl's patch only
    # knows about web and sidecar and reorders them. A server-only item keeps its place
    # before any patch item it preceded in the live list (upstream's mergeSortedSlice):
    # "extra" stood before "sidecar", so it stays before it.
    live = copy.deepcopy(LIVE_DEPLOYMENT)
    _containers(live).insert(1, {"name": "extra", "image": "extra:1"})
    result = strategic_merge_patch(live, KUBECTL_REORDER_CONTAINERS, deployment)
    assert [c["name"] for c in _containers(result)] == ["extra", "sidecar", "web"]
    _containers(live).append(_containers(live).pop(1))  # live: web, sidecar, extra
    result = strategic_merge_patch(live, KUBECTL_REORDER_CONTAINERS, deployment)
    assert [c["name"] for c in _containers(result)] == ["sidecar", "web", "extra"]


def test_rollout_restart_patch_adds_a_template_annotation(deployment: SchemaNode) -> None:
    patch = {
        "spec": {
            "template": {
                "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}
            }
        }
    }
    result = strategic_merge_patch(LIVE_DEPLOYMENT, patch, deployment)
    assert result["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"},
    }


# ---------------------------------------------------------------------------------------
# Strategic merge patch against the built-in definitions.


def test_env_list_merges_by_name_and_adds_unknown_names_at_the_front(pod: SchemaNode) -> None:
    current = {
        "spec": {
            "containers": [{"name": "c", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]
        }
    }
    patch = {
        "spec": {
            "containers": [{"name": "c", "env": [{"name": "B", "value": "x"}, {"name": "C", "value": "3"}]}]
        }
    }
    result = strategic_merge_patch(current, patch, pod)
    assert result["spec"]["containers"][0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "x"},
        {"name": "C", "value": "3"},
    ]


def test_volume_mounts_merge_by_mount_path(pod: SchemaNode) -> None:
    current = {"spec": {"containers": [{"name": "c", "volumeMounts": [{"name": "a", "mountPath": "/a"}]}]}}
    patch = {
        "spec": {
            "containers": [
                {"name": "c", "volumeMounts": [{"name": "b", "mountPath": "/a", "readOnly": True}]}
            ]
        }
    }
    result = strategic_merge_patch(current, patch, pod)
    assert result["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "b", "mountPath": "/a", "readOnly": True}
    ]


def test_list_without_strategy_is_replaced(pod: SchemaNode) -> None:
    current = {
        "spec": {
            "tolerations": [{"key": "a", "operator": "Exists"}],
            "containers": [{"name": "c", "args": ["x", "y"]}],
        }
    }
    patch = {
        "spec": {
            "tolerations": [{"key": "b", "operator": "Exists"}],
            "containers": [{"name": "c", "args": ["z"]}],
        }
    }
    result = strategic_merge_patch(current, patch, pod)
    assert result["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert result["spec"]["containers"][0]["args"] == ["z"]


def test_finalizers_merge_as_an_ordered_set(pod: SchemaNode) -> None:
    current = {"metadata": {"finalizers": ["a", "b"]}}
    assert strategic_merge_patch(current, {"metadata": {"finalizers": ["b", "c"]}}, pod)["metadata"] == {
        "finalizers": ["a", "b", "c"]
    }
    removed = strategic_merge_patch(
        current, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, pod
    )
    assert removed["metadata"]["finalizers"] == ["b"]


def test_null_deletes_a_key_and_nested_nulls_in_new_values_are_dropped(pod: SchemaNode) -> None:
    current = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    patch = {"metadata": {"labels": {"a": None}, "annotations": {"x": "1", "y": None}}}
    assert strategic_merge_patch(current, patch, pod)["metadata"] == {
        "labels": {"b": "2"},
        "annotations": {"x": "1"},
    }


def test_patch_replace_directive_on_a_map(pod: SchemaNode) -> None:
    current = {"spec": {"nodeSelector": {"a": "1", "b": "2"}}}
    patch = {"spec": {"nodeSelector": {"$patch": "replace", "c": "3"}}}
    assert strategic_merge_patch(current, patch, pod)["spec"]["nodeSelector"] == {"c": "3"}


def test_patch_delete_directive_on_a_map_empties_it(pod: SchemaNode) -> None:
    current = {"metadata": {"labels": {"a": "1"}}}
    assert strategic_merge_patch(current, {"metadata": {"labels": {"$patch": "delete"}}}, pod)[
        "metadata"
    ] == {"labels": {}}


def test_patch_replace_directive_in_a_merging_list(pod: SchemaNode) -> None:
    current = {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    patch = {"spec": {"containers": [{"name": "z", "image": "i"}, {"$patch": "replace"}]}}
    assert strategic_merge_patch(current, patch, pod)["spec"]["containers"] == [{"name": "z", "image": "i"}]


def test_a_directive_map_for_an_absent_field_is_dropped(pod: SchemaNode) -> None:
    # removeDirectives: a new value that is a map carrying $patch is not added at all.
    assert strategic_merge_patch({"kind": "Pod"}, {"metadata": {"$patch": "replace", "name": "x"}}, pod) == {
        "kind": "Pod"
    }
    current = {"spec": {"containers": [{"name": "a"}]}}
    patch = {"spec": {"volumes": [{"name": "v"}, {"name": "w", "$patch": "delete"}]}}
    assert strategic_merge_patch(current, patch, pod)["spec"]["volumes"] == [{"name": "v"}]


def test_whole_object_replace_directive(pod: SchemaNode) -> None:
    assert strategic_merge_patch({"spec": {"x": 1}}, {"$patch": "replace", "kind": "Pod"}, pod) == {
        "kind": "Pod"
    }


def test_retain_keys_clears_the_other_strategy_fields(deployment: SchemaNode) -> None:
    # What kubectl apply sends when a manifest switches a Deployment to Recreate.
    current = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert strategic_merge_patch(current, patch, deployment)["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_on_volumes_switches_the_volume_source(pod: SchemaNode) -> None:
    current = {"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]}}
    patch = {
        "spec": {
            "volumes": [{"$retainKeys": ["configMap", "name"], "name": "v", "configMap": {"name": "cm"}}]
        }
    }
    assert strategic_merge_patch(current, patch, pod)["spec"]["volumes"] == [
        {"name": "v", "configMap": {"name": "cm"}},
        {"name": "w", "emptyDir": {}},
    ]


def test_unknown_fields_merge_like_a_merge_patch(pod: SchemaNode) -> None:
    current = {"spec": {"mystery": {"a": 1, "list": [1, 2]}}}
    patch = {"spec": {"mystery": {"b": 2, "list": [3]}}}
    assert strategic_merge_patch(current, patch, pod)["spec"]["mystery"] == {"a": 1, "b": 2, "list": [3]}


def test_strategic_merge_is_refused_for_custom_resources() -> None:
    crd = compile_crd_schema({"type": "object", "properties": {"spec": {"type": "object"}}})
    for schema in (crd, None):
        with pytest.raises(StrategicMergeUnsupported) as caught:
            strategic_merge_patch({}, {"spec": {}}, schema)
        assert caught.value.code == 415
        assert caught.value.reason == "UnsupportedMediaType"
        assert "application/merge-patch+json" in caught.value.message


@pytest.mark.parametrize(
    ("current", "patch", "code", "message"),
    [
        pytest.param({}, ["not", "a", "map"], 400, "cannot unmarshal array", id="patch is not an object"),
        pytest.param(
            {"metadata": {"name": "x"}},
            {"metadata": {"$patch": "merge"}},
            422,
            "unknown patch type: merge in map",
            id="merge in a map",
        ),
        pytest.param({}, {"$patch": "bogus"}, 422, "unknown patch type: bogus", id="unknown directive"),
        pytest.param(
            {"spec": {"containers": [{"name": "a"}]}},
            {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}},
            422,
            "merging lists cannot yet be specified in the patch",
            id="merge in a list",
        ),
        pytest.param(
            {"spec": {"containers": [{"name": "a"}]}},
            {"spec": {"containers": [{"image": "x"}]}},
            422,
            "does not contain declared merge key: name",
            id="missing merge key",
        ),
        pytest.param(
            {"metadata": {"name": "x"}},
            {"metadata": {"$retainKeys": "name"}},
            400,
            "invalid patch format of retainKeys",
            id="retainKeys not a list",
        ),
        pytest.param(
            {"metadata": {"name": "x"}},
            {"metadata": {"$retainKeys": ["name"], "labels": {"a": "b"}}},
            400,
            "invalid patch format of retainKeys",
            id="field outside retainKeys",
        ),
        pytest.param(
            {"metadata": {"name": "x"}},
            {"metadata": {"$setElementOrderfinalizers": ["a"]}},
            400,
            "invalid patch format of setElementOrder list",
            id="bad setElementOrder key",
        ),
        pytest.param(
            {"metadata": {"name": "x"}},
            {"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}},
            400,
            "invalid patch format of primitive list",
            id="bad deleteFromPrimitiveList key",
        ),
        pytest.param(
            {"metadata": {"finalizers": [["a"]]}},
            {"metadata": {"finalizers": [["b"]]}},
            422,
            "lists of lists are not supported",
            id="list of lists",
        ),
        pytest.param(
            {"metadata": {"finalizers": ["a"]}},
            {"metadata": {"finalizers": [1]}},
            422,
            "list element types are not identical",
            id="mixed element types",
        ),
        pytest.param(
            {"spec": {"containers": [{"name": "a"}]}},
            {"spec": {"$setElementOrder/containers": "a"}},
            422,
            "expected a \\[\\]interface {}, but received a string",
            id="setElementOrder not a list",
        ),
        pytest.param(
            {"metadata": {"finalizers": ["a"]}},
            {"metadata": {"finalizers": [{"x": 1}]}},
            422,
            "list element types",
            id="map among strings",
        ),
    ],
)
def test_bad_strategic_merge_patches(
    pod: SchemaNode, current: dict[str, Any], patch: Any, code: int, message: str
) -> None:
    with pytest.raises(PatchError, match=message) as caught:
        strategic_merge_patch(current, patch, pod)
    assert caught.value.code == code


# ---------------------------------------------------------------------------------------
# JSON merge patch: RFC 7386 appendix A, plus null semantics.


@pytest.mark.parametrize(
    ("original", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
        ({"a": "x"}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}),
        ({"a": {"b": 1}}, {}, {"a": {"b": 1}}),
        ({"a": {"b": 1}}, {"a": None, "missing": None}, {}),
    ],
)
def test_json_merge_patch(original: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    before = copy.deepcopy((original, patch))
    result = json_merge_patch(original, patch)
    assert result == expected
    assert (original, patch) == before


def test_json_merge_patch_result_shares_nothing_with_its_inputs() -> None:
    original = {"a": {"b": [1]}}
    patch = {"c": {"d": [2]}}
    result = json_merge_patch(original, patch)
    result["a"]["b"].append(9)
    result["c"]["d"].append(9)
    assert original == {"a": {"b": [1]}}
    assert patch == {"c": {"d": [2]}}


@pytest.mark.parametrize("patch", [None, [], ["a"], "x", 1])
def test_json_merge_patch_must_be_an_object(patch: Any) -> None:
    with pytest.raises(PatchError, match="Invalid JSON Patch") as caught:
        json_merge_patch({"a": 1}, patch)
    assert caught.value.code == 400


# ---------------------------------------------------------------------------------------
# JSON patch: RFC 6902 appendix A, and evanphx/json-patch v4's behaviour and messages.


@pytest.mark.parametrize(
    ("original", "operations", "expected"),
    [
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux"}],
            {"baz": "qux", "foo": "bar"},
            id="A.1",
        ),
        pytest.param(
            {"foo": ["bar", "baz"]},
            [{"op": "add", "path": "/foo/1", "value": "qux"}],
            {"foo": ["bar", "qux", "baz"]},
            id="A.2",
        ),
        pytest.param(
            {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}, id="A.3"
        ),
        pytest.param(
            {"foo": ["bar", "qux", "baz"]},
            [{"op": "remove", "path": "/foo/1"}],
            {"foo": ["bar", "baz"]},
            id="A.4",
        ),
        pytest.param(
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
            id="A.5",
        ),
        pytest.param(
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
            id="A.6",
        ),
        pytest.param(
            {"foo": ["all", "grass", "cows", "eat"]},
            [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
            {"foo": ["all", "cows", "eat", "grass"]},
            id="A.7",
        ),
        pytest.param(
            {"baz": "qux", "foo": ["a", 2, "c"]},
            [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
            {"baz": "qux", "foo": ["a", 2, "c"]},
            id="A.8",
        ),
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
            {"foo": "bar", "child": {"grandchild": {}}},
            id="A.10",
        ),
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
            {"foo": "bar", "baz": "qux"},
            id="A.11",
        ),
        pytest.param(
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
            id="A.16",
        ),
        pytest.param(
            {"/": 9, "~1": 10},
            [{"op": "test", "path": "/~01", "value": 10}, {"op": "remove", "path": "/~1"}],
            {"~1": 10},
            id="A.14 escapes",
        ),
        pytest.param(
            {"a": [1, 2, 3]}, [{"op": "remove", "path": "/a/-1"}], {"a": [1, 2]}, id="negative index"
        ),
        pytest.param(
            {"a": [1]}, [{"op": "add", "path": "/a/-1", "value": 0}], {"a": [1, 0]}, id="negative add index"
        ),
        pytest.param(
            {"a": {}},
            [{"op": "copy", "from": "/a", "path": "/b"}, {"op": "add", "path": "/b/x", "value": 1}],
            {"a": {}, "b": {"x": 1}},
            id="copy is deep",
        ),
        pytest.param(
            {"a": 1},
            [{"op": "replace", "path": "/b", "value": 2}],
            {"a": 1, "b": 2},
            id="v4 replace sets a missing key",
        ),
        pytest.param(
            {"a": 1},
            [{"op": "test", "path": "/b", "value": None}],
            {"a": 1},
            id="v4 missing key tests equal to null",
        ),
        pytest.param(
            {"a": 1}, [{"op": "add", "path": "/b"}], {"a": 1, "b": None}, id="add without value adds null"
        ),
        pytest.param(
            {"metadata": {"labels": {"a/b": "1"}}},
            [{"op": "remove", "path": "/metadata/labels/a~1b"}],
            {"metadata": {"labels": {}}},
            id="label key with a slash",
        ),
    ],
)
def test_json_patch(
    original: dict[str, Any], operations: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    before = copy.deepcopy((original, operations))
    assert json_patch(original, operations) == expected
    assert (original, operations) == before


@pytest.mark.parametrize(
    ("original", "operations", "message"),
    [
        pytest.param(
            {"foo": "bar"},
            [{"op": "test", "path": "/foo", "value": "baz"}],
            "testing value /foo failed: test failed",
            id="A.9 test fails",
        ),
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/baz/bat", "value": "qux"}],
            'add operation does not apply: doc is missing path: "/baz/bat": missing value',
            id="A.12 missing parent",
        ),
        pytest.param(
            {"foo": {"a": 1}},
            [{"op": "test", "path": "/foo", "value": {"a": 1.0}}],
            "testing value /foo failed",
            id="1 is not 1.0",
        ),
        pytest.param(
            {"a": True},
            [{"op": "test", "path": "/a", "value": 1}],
            "testing value /a failed",
            id="true is not 1",
        ),
        pytest.param(
            {"a": 1},
            [{"op": "remove", "path": "/b"}],
            "error in remove for path: '/b': Unable to remove nonexistent key: b: missing value",
            id="remove missing key",
        ),
        pytest.param(
            {"a": [1]},
            [{"op": "add", "path": "/a/5", "value": 2}],
            "error in add for path: '/a/5': Unable to access invalid index: 5: invalid index referenced",
            id="index past the end",
        ),
        pytest.param(
            {"a": [1]},
            [{"op": "add", "path": "/a/x", "value": 2}],
            "value was not a proper array index: 'x'",
            id="non-numeric index",
        ),
        pytest.param(
            {"a": [1]},
            [{"op": "remove", "path": "/a/-5"}],
            "Unable to access invalid index: -5",
            id="negative index too far",
        ),
        pytest.param(
            {"a": [1]},
            [{"op": "replace", "path": "/a/3", "value": 2}],
            "replace operation does not apply: doc is missing key: /a/3",
            id="replace past the end",
        ),
        pytest.param(
            {"a": 1},
            [{"op": "move", "from": "/b", "path": "/c"}],
            "error in move for path: 'b'",
            id="move from missing",
        ),
        pytest.param(
            {"a": 1},
            [{"op": "copy", "from": "/x/y", "path": "/c"}],
            "copy operation does not apply: doc is missing from path: /x/y",
            id="copy from missing parent",
        ),
        pytest.param(
            {"a": 1},
            [{"op": "add", "value": 1}],
            "add operation failed to decode path: missing value",
            id="add without path",
        ),
        pytest.param(
            {"a": 1},
            [{"op": "replace", "value": 1}],
            "replace operation failed to decode path: operation missing path field: missing value",
            id="replace without path",
        ),
        pytest.param(
            {"a": 1},
            [{"op": "move", "path": "/a"}],
            "move operation failed to decode from: operation, missing from field",
            id="move without from",
        ),
        pytest.param(
            {"a": 1},
            [{"op": "add", "path": 5, "value": 1}],
            "add operation failed to decode path",
            id="path not a string",
        ),
        pytest.param(
            {"a": 1}, [{"op": "frobnicate", "path": "/a"}], "Unexpected kind: frobnicate", id="unknown op"
        ),
        pytest.param({"a": 1}, [{"path": "/a"}], "Unexpected kind: unknown", id="no op"),
        pytest.param(
            {"a": 1}, [{"op": "add", "path": "", "value": 1}], "doc is missing path", id="whole document path"
        ),
        pytest.param(
            {"a": "s"},
            [{"op": "add", "path": "/a/b", "value": 1}],
            "doc is missing path",
            id="descend into a string",
        ),
    ],
)
def test_json_patch_errors(original: dict[str, Any], operations: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(PatchError) as caught:
        json_patch(original, operations)
    assert message in caught.value.message
    assert caught.value.code == 422
    assert caught.value.reason == "Invalid"


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
        ("add", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
        (["add"], "json: cannot unmarshal string into Go value of type jsonpatch.Operation"),
    ],
)
def test_json_patch_must_be_a_list_of_operations(operations: Any, message: str) -> None:
    with pytest.raises(PatchError, match=message) as caught:
        json_patch({}, operations)
    assert caught.value.code == 400
    assert caught.value.reason == "BadRequest"


def test_json_patch_operation_limit() -> None:
    operations = [{"op": "test", "path": "/a", "value": 1}] * (MAX_JSON_PATCH_OPERATIONS + 1)
    with pytest.raises(
        PatchError, match="The allowed maximum operations in a JSON patch is 10000, got 10001"
    ) as caught:
        json_patch({"a": 1}, operations)
    assert caught.value.code == 413
    assert json_patch({"a": 1}, operations[:MAX_JSON_PATCH_OPERATIONS]) == {"a": 1}


def test_a_failing_json_patch_changes_nothing() -> None:
    original = {"a": [1, 2]}
    with pytest.raises(PatchError):
        json_patch(original, [{"op": "remove", "path": "/a/0"}, {"op": "test", "path": "/a/0", "value": 1}])
    assert original == {"a": [1, 2]}
