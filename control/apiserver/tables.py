"""meta.k8s.io Table and PartialObjectMetadata answers, assembled from the kind's printer.

The columns and cells are the printer's business (control.resources.printers); this
module wraps them the way upstream's TableConvertor does: one row per object, the row's
``object`` holding PartialObjectMetadata by default (kubectl fills NAMESPACE, labels and
``-L`` columns from it), the full object for ``includeObject=Object``, nothing for None.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from control.apiserver import errors
from control.resources import printers
from control.resources.registry import ResourceType

INCLUDE_OBJECT_VALUES = ("", "None", "Metadata", "Object")


def partial_metadata(obj: dict[str, Any], *, version: str = "v1") -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj.get("metadata", {}),
    }


def partial_metadata_list(
    items: Iterable[dict[str, Any]], *, list_meta: dict[str, Any], version: str = "v1"
) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": list_meta,
        "items": [partial_metadata(obj, version=version) for obj in items],
    }


def check_include_object(value: str) -> str:
    if value not in INCLUDE_OBJECT_VALUES:
        raise errors.bad_request(
            f'includeObject: Unsupported value: "{value}": supported values: "Metadata", "None", "Object"'
        )
    return value or "Metadata"


def table(
    rt: ResourceType,
    items: Iterable[dict[str, Any]],
    *,
    list_meta: dict[str, Any],
    include_object: str,
    now: datetime,
    version: str = "v1",
) -> dict[str, Any]:
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": printers.row_cells(rt, obj, now=now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object == "Metadata":
            row["object"] = partial_metadata(obj, version=version)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": list_meta,
        "columnDefinitions": printers.column_definitions(rt),
        "rows": rows,
    }
