"""One Event served in two versions (core/v1 and events.k8s.io/v1) over real HTTPS: the same
keys and resourceVersions for create/get/list/watch/update/patch/delete of either version,
field selectors and Tables for both, real kubectl and the official Python client; and the
move of objects a lab stored at events.k8s.io's own keys before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from kubernetes import client, config

from control.apiserver.codec import encode_for_storage, stored_api_version
from control.apiserver.conversion import move_to_storage_keys
from control.resources.builtin import builtin_registry
from control.store import open_store
from tests.control.apiserver.conftest import RunningServer

CORE = "/api/v1/namespaces/default/events"
NEW = "/apis/events.k8s.io/v1/namespaces/default/events"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def new_style(name: str, *, regarding: str = "web", note: str = "Successfully assigned default/web") -> dict:
    """An Event as client-go's events library (kube-scheduler) writes it."""
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name},
        "eventTime": "2026-11-25T21:00:00.123456Z",
        "reportingController": "default-scheduler",
        "reportingInstance": "default-scheduler-node-1",
        "action": "Binding",
        "reason": "Scheduled",
        "regarding": {"kind": "Pod", "namespace": "default", "name": regarding, "apiVersion": "v1"},
        "note": note,
        "type": "Normal",
    }


def legacy(name: str, *, involved: str = "web", message: str = "Pulled image") -> dict:
    """An Event as client-go's record.EventRecorder (the kubelet, most controllers) writes it."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": involved, "apiVersion": "v1"},
        "reason": "Pulled",
        "message": message,
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2026-11-25T21:00:00Z",
        "lastTimestamp": "2026-11-25T21:00:00Z",
        "count": 1,
        "type": "Normal",
    }


async def create(api: RunningServer, path: str, body: dict) -> dict:
    code, created = await api.request("POST", path, body=body)
    assert code == 201, created
    return created


async def test_an_event_created_through_either_version_is_one_object(apiserver: RunningServer) -> None:
    written = await create(apiserver, NEW, new_style("sched.1"))
    assert written["apiVersion"] == "events.k8s.io/v1" and written["note"].startswith("Successfully")
    code, as_core = await apiserver.request("GET", f"{CORE}/sched.1")
    assert code == 200, as_core
    assert as_core["apiVersion"] == "v1" and as_core["kind"] == "Event"
    assert as_core["metadata"] == written["metadata"]  # same uid, resourceVersion, timestamps
    assert as_core["involvedObject"] == written["regarding"]
    assert as_core["message"] == written["note"]
    assert as_core["reportingComponent"] == "default-scheduler"
    assert as_core["reportingInstance"] == "default-scheduler-node-1"
    assert (as_core["action"], as_core["reason"], as_core["eventTime"]) == (
        "Binding",
        "Scheduled",
        "2026-11-25T21:00:00.123456Z",
    )
    assert "note" not in as_core and "regarding" not in as_core

    kubelet = await create(apiserver, CORE, legacy("kubelet.1"))
    code, as_new = await apiserver.request("GET", f"{NEW}/kubelet.1")
    assert code == 200, as_new
    assert as_new["metadata"] == kubelet["metadata"]
    assert as_new["regarding"]["name"] == "web" and as_new["note"] == "Pulled image"
    assert as_new["deprecatedSource"] == {"component": "kubelet", "host": "node-1"}
    assert as_new["deprecatedCount"] == 1 and as_new["eventTime"] is None

    for path, api_version in ((CORE, "v1"), (NEW, "events.k8s.io/v1")):
        code, listing = await apiserver.request("GET", path)
        assert code == 200 and listing["kind"] == "EventList" and listing["apiVersion"] == api_version
        items = {item["metadata"]["name"]: item for item in listing["items"]}
        assert set(items) == {"sched.1", "kubelet.1"}
        assert {item["apiVersion"] for item in items.values()} == {api_version}
        assert items["sched.1"]["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
        # A paged list walks the same keys.
        code, page = await apiserver.request("GET", path, params={"limit": "1"})
        assert code == 200 and len(page["items"]) == 1 and page["metadata"]["continue"]
        assert page["items"][0]["apiVersion"] == api_version


async def test_writes_through_one_version_show_in_the_other(apiserver: RunningServer) -> None:
    await create(apiserver, NEW, new_style("sched.2"))
    # client-go's events library bumps a repeated event's series with a patch.
    series = {"series": {"count": 2, "lastObservedTime": "2026-11-25T21:01:00.000000Z"}}
    code, patched = await apiserver.request(
        "PATCH", f"{NEW}/sched.2", body=series, content_type="application/merge-patch+json"
    )
    assert code == 200, patched
    code, as_core = await apiserver.request("GET", f"{CORE}/sched.2")
    assert as_core["series"] == series["series"]
    assert as_core["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]

    # One resourceVersion for both: a version read through one API pins a write through the other.
    stale = dict(as_core, message="changed")
    stale["metadata"] = dict(as_core["metadata"], labels={"a": "b"})
    code, _ = await apiserver.request(
        "PATCH",
        f"{NEW}/sched.2",
        body={"metadata": {"labels": {"seen": "yes"}}},
        content_type="application/merge-patch+json",
    )
    assert code == 200
    code, conflict = await apiserver.request("PUT", f"{CORE}/sched.2", body=stale)
    assert code == 409 and conflict["reason"] == "Conflict", conflict

    # Updates through core/v1 (legacy rules) are read back through events.k8s.io/v1.
    code, fresh = await apiserver.request("GET", f"{CORE}/sched.2")
    fresh["metadata"]["labels"]["by"] = "core"
    code, updated = await apiserver.request("PUT", f"{CORE}/sched.2", body=fresh)
    assert code == 200, updated
    code, as_new = await apiserver.request("GET", f"{NEW}/sched.2")
    assert as_new["metadata"]["labels"] == {"seen": "yes", "by": "core"}
    assert as_new["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]

    # events.k8s.io/v1 keeps everything but series immutable, whichever version wrote the event.
    code, refused = await apiserver.request(
        "PATCH", f"{NEW}/sched.2", body={"note": "other"}, content_type="application/merge-patch+json"
    )
    assert code == 422, refused
    # Upstream validates the internal Event, so the field is named as core/v1 names it.
    assert [cause["field"] for cause in refused["details"]["causes"]] == ["message"]

    code, gone = await apiserver.request("DELETE", f"{NEW}/sched.2")
    assert code == 200, gone
    code, missing = await apiserver.request("GET", f"{CORE}/sched.2")
    assert code == 404 and missing["message"] == 'events "sched.2" not found'
    code, missing = await apiserver.request("GET", f"{NEW}/sched.2")
    assert code == 404 and missing["message"] == 'events.events.k8s.io "sched.2" not found'


async def test_bad_input_is_refused_as_upstream(apiserver: RunningServer) -> None:
    await create(apiserver, CORE, legacy("taken"))
    code, exists = await apiserver.request("POST", NEW, body=new_style("taken"))
    assert code == 409 and exists["reason"] == "AlreadyExists"
    assert exists["message"] == 'events.events.k8s.io "taken" already exists'

    no_time = new_style("no-time")
    del no_time["eventTime"]
    code, invalid = await apiserver.request("POST", NEW, body=no_time)
    assert code == 422, invalid
    assert "eventTime" in [cause["field"] for cause in invalid["details"]["causes"]]

    deprecated = dict(new_style("old-fields"), deprecatedCount=3)
    code, invalid = await apiserver.request("POST", NEW, body=deprecated)
    assert code == 422 and "count: Invalid value" in invalid["message"], invalid

    code, wrong = await apiserver.request("POST", NEW, body=legacy("core-body"))
    assert code == 400 and "does not match the expected API version" in wrong["message"]
    code, _ = await apiserver.request("GET", f"{CORE}/core-body")
    assert code == 404


async def test_field_selectors_and_tables_for_both_versions(apiserver: RunningServer) -> None:
    await create(apiserver, NEW, new_style("web.sched", regarding="web"))
    await create(apiserver, NEW, new_style("db.sched", regarding="db"))
    await create(apiserver, CORE, legacy("web.pulled", involved="web"))

    async def names(path: str, selector: str) -> set[str]:
        code, listing = await apiserver.request("GET", path, params={"fieldSelector": selector})
        assert code == 200, listing
        return {item["metadata"]["name"] for item in listing["items"]}

    assert await names(NEW, "regarding.name=web") == {"web.sched", "web.pulled"}
    assert await names(CORE, "involvedObject.name=web") == {"web.sched", "web.pulled"}
    assert await names(NEW, "reportingController=default-scheduler") == {"web.sched", "db.sched"}
    assert await names(CORE, "reportingComponent=default-scheduler") == {"web.sched", "db.sched"}
    assert await names(CORE, "source=kubelet") == {"web.pulled"}
    assert await names(NEW, "metadata.name=db.sched") == {"db.sched"}
    assert await names(NEW, "regarding.name=db,type=Normal") == {"db.sched"}
    code, refused = await apiserver.request("GET", NEW, params={"fieldSelector": "involvedObject.name=web"})
    assert code == 400, refused  # events.k8s.io/v1 speaks regarding.*, as upstream

    for path in (CORE, NEW):
        code, table = await apiserver.request("GET", path, headers={"Accept": TABLE})
        assert code == 200 and table["kind"] == "Table", table
        rows = {row["object"]["metadata"]["name"]: row["cells"] for row in table["rows"]}
        assert rows["web.sched"][1:4] == ["Normal", "Scheduled", "pod/web"]
        assert rows["web.pulled"][1:4] == ["Normal", "Pulled", "pod/web"]

    code, deleted = await apiserver.request("DELETE", NEW, params={"fieldSelector": "regarding.name=web"})
    assert code == 200 and {item["metadata"]["name"] for item in deleted["items"]} == {
        "web.sched",
        "web.pulled",
    }
    assert {item["apiVersion"] for item in deleted["items"]} == {"events.k8s.io/v1"}
    assert await names(CORE, "") == {"db.sched"}


class _Watch:
    def __init__(self, response) -> None:
        self.response = response

    async def next(self) -> dict:
        while True:
            line = await asyncio.wait_for(self.response.content.readline(), 10)
            assert line, "the watch ended"
            event = orjson.loads(line)
            if event["type"] != "BOOKMARK":
                return event


@asynccontextmanager
async def watching(
    api: RunningServer, path: str, *, headers: dict | None = None, **params: str
) -> AsyncIterator[_Watch]:
    query = {"watch": "true", **params}
    async with api.session.get(api.url + path, params=query, headers=headers or {}) as response:
        assert response.status == 200, await response.text()
        yield _Watch(response)


async def test_watchers_of_each_version_see_every_write_in_their_version(apiserver: RunningServer) -> None:
    seed = await create(apiserver, CORE, legacy("seed", involved="other"))
    since = seed["metadata"]["resourceVersion"]
    async with (
        watching(apiserver, CORE, resourceVersion=since) as core,
        watching(apiserver, NEW, resourceVersion=since) as new,
        watching(apiserver, NEW, resourceVersion=since, fieldSelector="regarding.name=db") as db_only,
        watching(apiserver, NEW, resourceVersion=since, headers={"Accept": TABLE}) as rows,
    ):
        created = await create(apiserver, CORE, legacy("web.1", involved="web", message="first"))
        code, patched = await apiserver.request(
            "PATCH",
            f"{NEW}/web.1",
            body={"metadata": {"labels": {"k": "v"}}},
            content_type="application/merge-patch+json",
        )
        assert code == 200, patched
        await create(apiserver, NEW, new_style("db.1", regarding="db", note="second"))
        code, _ = await apiserver.request("DELETE", f"{CORE}/web.1")
        assert code == 200

        core_events = [await core.next() for _ in range(4)]
        new_events = [await new.next() for _ in range(4)]
        assert [e["type"] for e in core_events] == ["ADDED", "MODIFIED", "ADDED", "DELETED"]
        assert [e["type"] for e in new_events] == ["ADDED", "MODIFIED", "ADDED", "DELETED"]
        core_rvs = [e["object"]["metadata"]["resourceVersion"] for e in core_events]
        assert core_rvs == [e["object"]["metadata"]["resourceVersion"] for e in new_events]
        assert core_rvs[0] == created["metadata"]["resourceVersion"]
        assert core_rvs[1] == patched["metadata"]["resourceVersion"]
        assert {e["object"]["apiVersion"] for e in core_events} == {"v1"}
        assert {e["object"]["apiVersion"] for e in new_events} == {"events.k8s.io/v1"}
        assert core_events[0]["object"]["message"] == "first" and "note" not in core_events[0]["object"]
        assert new_events[0]["object"]["note"] == "first" and "message" not in new_events[0]["object"]
        assert core_events[2]["object"]["message"] == "second"
        assert new_events[1]["object"]["metadata"]["labels"] == {"k": "v"}

        only = await db_only.next()
        assert (only["type"], only["object"]["metadata"]["name"]) == ("ADDED", "db.1")
        assert only["object"]["regarding"]["name"] == "db"

        row = await rows.next()
        assert row["type"] == "ADDED" and row["object"]["kind"] == "Table"
        assert row["object"]["rows"][0]["cells"][3] == "pod/web"


async def test_a_watch_from_zero_replays_both_versions_writes(apiserver: RunningServer) -> None:
    await create(apiserver, CORE, legacy("a.1"))
    await create(apiserver, NEW, new_style("b.1"))
    async with watching(apiserver, NEW, resourceVersion="0") as new:
        seen = {}
        for _ in range(2):
            event = await new.next()
            seen[event["object"]["metadata"]["name"]] = event
    assert {e["type"] for e in seen.values()} == {"ADDED"}
    assert seen["a.1"]["object"]["note"] == "Pulled image"
    assert seen["b.1"]["object"]["note"] == "Successfully assigned default/web"


# --- real clients ---------------------------------------------------------------------------------


async def kubectl(api: RunningServer, *args: str) -> str:
    code, out, err = await api.kubectl(*args)
    assert code == 0, err
    return out


async def test_kubectl_shows_events_k8s_io_events(apiserver: RunningServer) -> None:
    code, pod = await apiserver.request(
        "POST",
        "/api/v1/namespaces/default/pods",
        body={"metadata": {"name": "web"}, "spec": {"containers": [{"name": "main", "image": "kubelab"}]}},
    )
    assert code == 201, pod
    scheduled = new_style("web.sched", note="Successfully assigned default/web to node-1")
    scheduled["regarding"]["uid"] = pod["metadata"]["uid"]
    await create(apiserver, NEW, scheduled)
    pulled = legacy("web.pulled", message="Container image already present")
    pulled["involvedObject"]["uid"] = pod["metadata"]["uid"]
    await create(apiserver, CORE, pulled)
    table = await kubectl(apiserver, "get", "events")
    assert "Successfully assigned default/web to node-1" in table
    assert "Container image already present" in table
    assert "pod/web" in table and "Scheduled" in table

    as_new = orjson.loads(await kubectl(apiserver, "get", "events.v1.events.k8s.io", "-o", "json"))
    notes = {item["metadata"]["name"]: item.get("note") for item in as_new["items"]}
    assert notes == {
        "web.sched": "Successfully assigned default/web to node-1",
        "web.pulled": "Container image already present",
    }

    events = await kubectl(apiserver, "events")
    assert "Successfully assigned default/web to node-1" in events and "Scheduled" in events

    described = await kubectl(apiserver, "describe", "pod", "web")
    events_section = described.split("Events:", 1)[1]
    assert "Scheduled" in events_section and "Successfully assigned default/web to node-1" in events_section
    assert "Pulled" in events_section


async def test_the_python_client_reads_and_writes_both_versions(apiserver: RunningServer) -> None:
    def run() -> tuple[str, str, str]:
        api_client = config.new_client_from_config(config_file=str(apiserver.data_dir / "kubeconfig"))
        try:
            events_v1 = client.EventsV1Api(api_client)
            core = client.CoreV1Api(api_client)
            events_v1.create_namespaced_event(
                "default",
                client.EventsV1Event(
                    metadata=client.V1ObjectMeta(name="py.sched"),
                    event_time=datetime(2026, 11, 25, 21, 0, 0, 123456, tzinfo=UTC),
                    reporting_controller="example.com/py",
                    reporting_instance="py-1",
                    action="Testing",
                    reason="Tested",
                    regarding=client.V1ObjectReference(kind="Pod", namespace="default", name="web"),
                    note="written through events.k8s.io/v1",
                    type="Normal",
                ),
            )
            listed = core.list_namespaced_event("default", field_selector="involvedObject.name=web")
            core.create_namespaced_event(
                "default",
                client.CoreV1Event(
                    metadata=client.V1ObjectMeta(name="py.core"),
                    involved_object=client.V1ObjectReference(kind="Pod", namespace="default", name="web"),
                    event_time=datetime(2026, 11, 25, 21, 0, 1, tzinfo=UTC),
                    reporting_component="example.com/py",
                    reporting_instance="py-1",
                    action="Testing",
                    reason="Tested",
                    message="written through core/v1",
                    type="Normal",
                ),
            )
            read = events_v1.read_namespaced_event("py.core", "default")
            return listed.items[0].message, read.note, read.reporting_controller
        finally:
            api_client.close()

    message, note, controller = await asyncio.to_thread(run)
    assert message == "written through events.k8s.io/v1"
    assert (note, controller) == ("written through core/v1", "example.com/py")


# --- data from before shared storage --------------------------------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator:
    store = open_store("sqlite://", data_dir=tmp_path)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def test_objects_left_at_events_k8s_io_keys_move_to_the_core_keys(sqlite_store) -> None:
    old_prefix = "/registry/events.k8s.io/events/"
    core_prefix = "/registry/core/events/"
    moved_event = new_style("moved")
    moved_event["metadata"].update(namespace="default", uid="u-moved")
    await sqlite_store.create(old_prefix + "default/moved", encode_for_storage(moved_event))
    await sqlite_store.create(old_prefix + "default/both", encode_for_storage(new_style("both")))
    kept = legacy("both", message="the core copy wins")
    kept["metadata"]["namespace"] = "default"
    await sqlite_store.create(core_prefix + "default/both", encode_for_storage(kept))

    registry = builtin_registry()
    assert await move_to_storage_keys(store=sqlite_store, registry=registry) == 1
    assert (await sqlite_store.list(old_prefix)).items == []
    stored = {kv.key: orjson.loads(kv.value) for kv in (await sqlite_store.list(core_prefix)).items}
    assert set(stored) == {core_prefix + "default/moved", core_prefix + "default/both"}
    assert stored[core_prefix + "default/moved"]["apiVersion"] == "v1"
    assert stored[core_prefix + "default/moved"]["message"] == "Successfully assigned default/web"
    assert stored[core_prefix + "default/moved"]["metadata"]["uid"] == "u-moved"
    assert stored[core_prefix + "default/both"]["message"] == "the core copy wins"
    # A second start finds nothing left to move.
    assert await move_to_storage_keys(store=sqlite_store, registry=registry) == 0


def test_the_stored_api_version_is_read_without_decoding() -> None:
    assert stored_api_version(encode_for_storage(new_style("x"))) == "events.k8s.io/v1"
    assert stored_api_version(encode_for_storage({"metadata": {}})) == ""
    assert stored_api_version(b'{"kind":"Event","apiVersion":"v1"}') == ""  # not the canonical layout
    assert stored_api_version(b'{"apiVersion":"v1') == ""
