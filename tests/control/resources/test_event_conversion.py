"""Event conversion between events.k8s.io/v1 and core/v1, field by field as upstream's
pkg/apis/events/v1/conversion.go, with each side's JSON tags (what is always written,
what is left out when empty)."""

from __future__ import annotations

import copy

from control.resources.builtin import builtin_registry
from control.resources.event_conversion import to_core, to_events_v1

NEW_STYLE = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": {"name": "web.17a3", "namespace": "default", "uid": "u-1", "resourceVersion": "42"},
    "eventTime": "2026-11-25T21:00:00.123456Z",
    "series": {"count": 3, "lastObservedTime": "2026-11-25T21:05:00.000000Z"},
    "reportingController": "default-scheduler",
    "reportingInstance": "default-scheduler-node-1",
    "action": "Binding",
    "reason": "Scheduled",
    "regarding": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "p-1", "apiVersion": "v1"},
    "related": {"kind": "Node", "name": "node-1", "apiVersion": "v1"},
    "note": "Successfully assigned default/web to node-1",
    "type": "Normal",
    "deprecatedSource": {"component": "kubelet", "host": "node-1"},
    "deprecatedFirstTimestamp": "2026-11-25T21:00:00Z",
    "deprecatedLastTimestamp": "2026-11-25T21:05:00Z",
    "deprecatedCount": 3,
}


def test_events_v1_to_core_renames_every_field_upstream_renames() -> None:
    core = to_core(NEW_STYLE)
    assert core == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": NEW_STYLE["metadata"],
        "eventTime": "2026-11-25T21:00:00.123456Z",
        "series": {"count": 3, "lastObservedTime": "2026-11-25T21:05:00.000000Z"},
        "reportingComponent": "default-scheduler",
        "reportingInstance": "default-scheduler-node-1",
        "action": "Binding",
        "reason": "Scheduled",
        "involvedObject": NEW_STYLE["regarding"],
        "related": NEW_STYLE["related"],
        "message": "Successfully assigned default/web to node-1",
        "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2026-11-25T21:00:00Z",
        "lastTimestamp": "2026-11-25T21:05:00Z",
        "count": 3,
    }
    assert list(core)[:3] == ["apiVersion", "kind", "metadata"]  # the codec's stored layout


def test_round_trips_are_lossless_both_ways() -> None:
    assert to_events_v1(to_core(NEW_STYLE)) == NEW_STYLE
    core = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web"},
        "reason": "Pulled",
        "message": "pulled",
        "source": {"component": "kubelet"},
        "count": 2,
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
        "eventTime": None,
    }
    assert to_core(to_events_v1(core)) == core


def test_metadata_is_shared_and_the_argument_untouched() -> None:
    before = copy.deepcopy(NEW_STYLE)
    core = to_core(NEW_STYLE)
    assert before == NEW_STYLE
    assert core["metadata"] is NEW_STYLE["metadata"]
    back = to_events_v1(core)
    assert back["metadata"] is core["metadata"]


def test_a_legacy_core_event_reads_as_events_v1_with_upstreams_json_tags() -> None:
    legacy = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web"},
        "reason": "Killing",
        "message": "Stopping container main",
        "source": {"component": "kubelet", "host": "node-1"},
        "count": 0,
        "reportingComponent": "",
        "reportingInstance": "",
        "type": "Normal",
    }
    assert to_events_v1(legacy) == {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "web"},
        "reason": "Killing",
        "note": "Stopping container main",
        "deprecatedSource": {"component": "kubelet", "host": "node-1"},
        "type": "Normal",
        "eventTime": None,  # not omitempty in events.k8s.io/v1
    }


def test_a_sparse_events_v1_event_gets_cores_always_written_fields() -> None:
    sparse = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "x"}}
    assert to_core(sparse) == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "x"},
        "involvedObject": {},
        "reportingComponent": "",
        "reportingInstance": "",
    }
    assert to_events_v1({"metadata": {}}) == {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {},
        "eventTime": None,
        "regarding": {},
    }


def test_events_k8s_io_is_stored_at_core_events_keys() -> None:
    registry = builtin_registry()
    new = registry.lookup(group="events.k8s.io", version="v1", plural="events")
    core = registry.lookup(group="", version="v1", plural="events")
    assert new is not None and core is not None
    assert new.stored_as is not None and core.stored_as is None
    assert new.storage_prefix == core.storage_prefix == "/registry/core/events/"
    assert new.own_prefix == "/registry/events.k8s.io/events/"
    assert new.stored_as.to_storage is to_core and new.stored_as.from_storage is to_events_v1
