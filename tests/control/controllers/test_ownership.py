"""The helpers every workload controller shares: controller references, the controller-uid
index, expectations, pod predicates, template hashing — on their own — and claiming and pod
creation against the real API server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control.client import errors
from control.client.config import load_kubeconfig
from control.client.informer import SharedInformer
from control.client.rest import RESTClient
from control.client.testing import FakeClock, FakeListerWatcher
from control.controllers.events import EventRecorder
from control.controllers.kinds import PODS, REPLICA_SETS
from control.controllers.ownership import (
    CONTROLLER_UID_INDEX,
    ClaimError,
    ControllerRefManager,
    Expectations,
    PodControl,
    add_controller_uid_index,
    compute_hash,
    controller_of,
    controller_ref,
    controllers_selecting,
    format_time,
    is_controlled_by,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    namespace_terminating,
    owned_or_orphaned,
    parse_time,
    pod_from_template,
    resolve_controller_ref,
    safe_encode,
    slow_start_batch,
)
from control.resources.selectors import label_selector_from_spec
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.test_replicaset import NS, events_of, orphan_pod, rs_body


@pytest.fixture
async def client(apiserver):  # noqa: F811
    rest = RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    yield rest
    await rest.close()


OWNER = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {"name": "web", "namespace": NS, "uid": "owner-uid"},
}
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}, "annotations": {"a": "1"}, "finalizers": ["example.com/keep"]},
    "spec": {"containers": [{"name": "app", "image": "busybox"}]},
}


def owned(name: str, uid: str | None, *, namespace: str = NS) -> dict[str, Any]:
    refs = [] if uid is None else [{"kind": "ReplicaSet", "name": "x", "uid": uid, "controller": True}]
    return {"metadata": {"name": name, "namespace": namespace, "uid": f"u-{name}", "ownerReferences": refs}}


# --------------------------------------------------------------------------- references and the index


def test_controller_ref_is_a_blocking_controller_reference():
    assert controller_ref(OWNER, REPLICA_SETS) == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "uid": "owner-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_controller_of_ignores_plain_owner_references():
    obj = {
        "metadata": {
            "ownerReferences": [
                {"kind": "ConfigMap", "name": "c", "uid": "c-uid"},
                {"kind": "ReplicaSet", "name": "web", "uid": "owner-uid", "controller": True},
            ]
        }
    }
    assert controller_of(obj)["uid"] == "owner-uid"
    assert is_controlled_by(obj, OWNER)
    assert controller_of({"metadata": {"ownerReferences": [{"uid": "c", "controller": False}]}}) is None
    assert controller_of({"metadata": {}}) is None and not is_controlled_by({"metadata": {}}, OWNER)


def test_owned_or_orphaned_finds_owned_objects_and_orphans_of_the_namespace():
    informer = SharedInformer(FakeListerWatcher())
    add_controller_uid_index(informer)
    add_controller_uid_index(informer)  # a second controller sharing the informer: no error
    cache = informer.cache
    for obj in (
        owned("mine", "owner-uid"),
        owned("theirs", "other-uid"),
        owned("orphan", None),
        owned("far-orphan", None, namespace="elsewhere"),
    ):
        cache.add(obj)
    found = sorted(obj["metadata"]["name"] for obj in owned_or_orphaned(cache, OWNER))
    assert found == ["mine", "orphan"]
    cache.add(owned("orphan", "owner-uid"))  # adopted: now filed under its owner
    assert sorted(cache.index_keys(CONTROLLER_UID_INDEX, "owner-uid")) == [f"{NS}/mine", f"{NS}/orphan"]


# --------------------------------------------------------------------------- expectations


def test_expectations_wait_for_every_creation():
    expectations = Expectations(clock=FakeClock())
    assert expectations.satisfied("ns/web")  # nothing ever expected
    expectations.expect_creations("ns/web", 2)
    assert not expectations.satisfied("ns/web")
    expectations.creation_observed("ns/web")
    assert not expectations.satisfied("ns/web") and expectations.pending("ns/web") == (1, 0)
    expectations.creation_observed("ns/web")
    assert expectations.satisfied("ns/web")
    expectations.creation_observed("unknown/key")  # observing for an unknown key is harmless


def test_expectations_count_each_expected_deletion_once():
    expectations = Expectations(clock=FakeClock())
    expectations.expect_deletions("ns/web", ["ns/a", "ns/b"])
    expectations.deletion_observed("ns/web", "ns/a")
    expectations.deletion_observed("ns/web", "ns/a")  # seen twice (terminating, then gone)
    expectations.deletion_observed("ns/web", "ns/stranger")
    assert expectations.pending("ns/web") == (0, 1) and not expectations.satisfied("ns/web")
    expectations.deletion_observed("ns/web", "ns/b")
    assert expectations.satisfied("ns/web")


def test_expectations_expire_and_can_be_forgotten():
    clock = FakeClock()
    expectations = Expectations(clock=clock, timeout=300)
    expectations.expect_creations("ns/web", 3)
    clock.advance(299)
    assert not expectations.satisfied("ns/web")
    clock.advance(2)
    assert expectations.satisfied("ns/web")  # the events were lost: act on the cache again
    expectations.expect_creations("ns/web", 1)
    expectations.forget("ns/web")
    assert expectations.satisfied("ns/web") and expectations.pending("ns/web") == (0, 0)


# --------------------------------------------------------------------------- pods


def pod_with(
    *, phase: str = "Running", ready: str | None = None, since: datetime | None = None, **meta: Any
) -> dict:
    conditions = []
    if ready is not None:
        condition = {"type": "Ready", "status": ready}
        if since is not None:
            condition["lastTransitionTime"] = format_time(since)
        conditions.append(condition)
    return {"metadata": {"name": "p", **meta}, "status": {"phase": phase, "conditions": conditions}}


def test_active_ready_and_available_pods():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert is_pod_active(pod_with(phase="Pending")) and is_pod_active(pod_with(phase="Unknown"))
    assert not is_pod_active(pod_with(phase="Succeeded")) and not is_pod_active(pod_with(phase="Failed"))
    assert not is_pod_active(pod_with(deletionTimestamp="2026-01-01T00:00:00Z"))
    assert is_pod_ready(pod_with(ready="True")) and not is_pod_ready(pod_with(ready="False"))
    assert not is_pod_ready(pod_with())
    long_ago = pod_with(ready="True", since=now - timedelta(seconds=11))
    just_now = pod_with(ready="True", since=now - timedelta(seconds=10))
    assert is_pod_available(long_ago, min_ready_seconds=10, now=now)
    assert not is_pod_available(just_now, min_ready_seconds=10, now=now)  # strictly longer than
    assert is_pod_available(just_now, min_ready_seconds=0, now=now)
    assert not is_pod_available(pod_with(ready="True"), min_ready_seconds=5, now=now)  # no transition time
    assert not is_pod_available(
        pod_with(ready="False", since=now - timedelta(days=1)), min_ready_seconds=0, now=now
    )


def test_times_parse_and_format_as_the_api_writes_them():
    moment = parse_time("2026-03-04T05:06:07Z")
    assert moment == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert format_time(moment) == "2026-03-04T05:06:07Z"
    assert parse_time("2026-03-04T05:06:07.123456Z").microsecond == 123456
    assert parse_time("not a time") is None and parse_time(None) is None and parse_time("") is None


def test_pod_from_template_copies_the_template_and_names_by_prefix():
    ref = controller_ref(OWNER, REPLICA_SETS)
    pod = pod_from_template(TEMPLATE, owner_name="web", controller_ref=ref)
    assert pod["metadata"] == {
        "generateName": "web-",
        "labels": {"app": "web"},
        "annotations": {"a": "1"},
        "finalizers": ["example.com/keep"],
        "ownerReferences": [ref],
    }
    assert pod["spec"] == TEMPLATE["spec"] and pod["spec"] is not TEMPLATE["spec"]
    pod["metadata"]["labels"]["changed"] = "yes"
    assert "changed" not in TEMPLATE["metadata"]["labels"]  # a copy, never the cached template
    long_name = "w" * 253
    assert (
        pod_from_template(TEMPLATE, owner_name=long_name, controller_ref=None)["metadata"]["generateName"]
        == long_name
    )
    assert (
        "ownerReferences"
        not in pod_from_template({"spec": {}}, owner_name="x", controller_ref=None)["metadata"]
    )


def test_namespace_terminating_is_read_from_the_status_causes():
    terminating = errors.api_error_from_status(
        {
            "kind": "Status",
            "status": "Failure",
            "reason": "Forbidden",
            "code": 403,
            "message": "unable to create new content in namespace x because it is being terminated",
            "details": {"causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}]},
        }
    )
    assert namespace_terminating(terminating)
    assert not namespace_terminating(errors.TransportError("reset"))


# --------------------------------------------------------------------------- hashing


def test_fnv_and_safe_encoding_follow_upstream():
    from control.controllers.ownership import _fnv32a

    # FNV-1a 32-bit test vectors.
    assert _fnv32a(b"") == 0x811C9DC5 and _fnv32a(b"a") == 0xE40C292C and _fnv32a(b"foobar") == 0xBF9CF968
    # rand.SafeEncodeString maps every character onto "bcdfghjklmnpqrstvwxz2456789".
    assert safe_encode("0123456789") == "456789bcdf"  # ord("0") = 48, 48 % 27 = 21 -> "4"
    assert set(safe_encode("anything at all")) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_template_hash_is_stable_and_sensitive_to_content_and_collisions():
    first = compute_hash(TEMPLATE)
    reordered = {"spec": TEMPLATE["spec"], "metadata": dict(reversed(list(TEMPLATE["metadata"].items())))}
    assert compute_hash(reordered) == first  # key order does not matter
    assert compute_hash(TEMPLATE) == first == "5947d8b7c4"  # pinned: a change would re-create every RS
    changed = {**TEMPLATE, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}
    assert compute_hash(changed) != first
    assert len({first, compute_hash(TEMPLATE, 0), compute_hash(TEMPLATE, 1)}) == 3
    assert set(first) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(first) <= 10


# --------------------------------------------------------------------------- against the API server


async def test_claim_adopts_keeps_releases_and_ignores(client):
    owner = await client.create(REPLICA_SETS, rs_body("web", replicas=0))
    other = await client.create(REPLICA_SETS, rs_body("other", replicas=0))
    await client.create(PODS, orphan_pod("orphan", {"app": "web"}))
    await client.create(PODS, orphan_pod("unrelated", {"app": "nope"}))
    mine = orphan_pod("mine", {"app": "web"})
    mine["metadata"]["ownerReferences"] = [controller_ref(owner, REPLICA_SETS)]
    await client.create(PODS, mine)
    relabelled = orphan_pod("relabelled", {"app": "retired"})
    relabelled["metadata"]["ownerReferences"] = [controller_ref(owner, REPLICA_SETS)]
    await client.create(PODS, relabelled)
    theirs = orphan_pod("theirs", {"app": "web"})
    theirs["metadata"]["ownerReferences"] = [controller_ref(other, REPLICA_SETS)]
    await client.create(PODS, theirs)
    pods = (await client.list(PODS, namespace=NS))["items"]

    manager = ControllerRefManager(
        client=client,
        owner=owner,
        owner_resource=REPLICA_SETS,
        resource=PODS,
        selector=label_selector_from_spec({"matchLabels": {"app": "web"}}),
    )
    claimed = await manager.claim(pods)
    assert sorted(p["metadata"]["name"] for p in claimed) == ["mine", "orphan"]
    current = {p["metadata"]["name"]: p for p in (await client.list(PODS, namespace=NS))["items"]}
    assert is_controlled_by(current["orphan"], owner)
    assert current["orphan"]["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True
    assert not current["relabelled"]["metadata"].get("ownerReferences")
    assert is_controlled_by(current["theirs"], other)
    assert not current["unrelated"]["metadata"].get("ownerReferences")


async def test_claim_adopts_nothing_for_an_owner_that_is_gone(client):
    owner = await client.create(REPLICA_SETS, rs_body("web", replicas=0))
    await client.create(PODS, orphan_pod("orphan", {"app": "web"}))
    pods = (await client.list(PODS, namespace=NS))["items"]
    await client.delete(REPLICA_SETS, "web", namespace=NS)
    await client.create(REPLICA_SETS, rs_body("web", replicas=0))  # same name, new uid
    manager = ControllerRefManager(
        client=client,
        owner=owner,
        owner_resource=REPLICA_SETS,
        resource=PODS,
        selector=label_selector_from_spec({"matchLabels": {"app": "web"}}),
    )
    with pytest.raises(ClaimError, match="is gone"):
        await manager.claim(pods)
    assert not (await client.get(PODS, "orphan", namespace=NS))["metadata"].get("ownerReferences")


async def test_claim_by_an_owner_being_deleted_only_keeps_what_it_has(client):
    owner = await client.create(
        REPLICA_SETS,
        {
            **rs_body("web", replicas=0),
            "metadata": {"name": "web", "namespace": NS, "finalizers": ["example.com/hold"]},
        },
    )
    mine = orphan_pod("mine", {"app": "retired"})
    mine["metadata"]["ownerReferences"] = [controller_ref(owner, REPLICA_SETS)]
    await client.create(PODS, mine)
    await client.create(PODS, orphan_pod("orphan", {"app": "web"}))
    deleting = await client.delete(REPLICA_SETS, "web", namespace=NS)
    assert deleting["metadata"].get("deletionTimestamp")
    manager = ControllerRefManager(
        client=client,
        owner=deleting,
        owner_resource=REPLICA_SETS,
        resource=PODS,
        selector=label_selector_from_spec({"matchLabels": {"app": "web"}}),
    )
    assert await manager.claim((await client.list(PODS, namespace=NS))["items"]) == []
    assert (await client.get(PODS, "mine", namespace=NS))["metadata"].get("ownerReferences")  # not released
    assert not (await client.get(PODS, "orphan", namespace=NS))["metadata"].get("ownerReferences")
    await client.patch(REPLICA_SETS, "web", {"metadata": {"finalizers": None}}, namespace=NS)


async def test_pod_control_creates_and_deletes_with_events(client):
    owner = await client.create(REPLICA_SETS, rs_body("web", replicas=0))
    control = PodControl(client=client, recorder=EventRecorder(client=client, component="test"))
    template = {"metadata": {"labels": {"app": "web"}}, "spec": TEMPLATE["spec"]}
    created = await control.create_pod(
        owner, template=template, controller_ref=controller_ref(owner, REPLICA_SETS)
    )
    name = created["metadata"]["name"]
    assert name.startswith("web-") and is_controlled_by(created, owner)
    await control.delete_pod(owner, name=name)
    with pytest.raises(errors.NotFoundError):
        await control.delete_pod(owner, name=name)
    assert sorted(await events_of(client, "web")) == [
        ("Normal", "SuccessfulCreate", f"Created pod: {name}"),
        ("Normal", "SuccessfulDelete", f"Deleted pod: {name}"),
    ]
    with pytest.raises(ValueError, match="no labels"):
        await control.create_pod(owner, template={"spec": TEMPLATE["spec"]}, controller_ref=None)


async def test_pod_control_reports_a_failed_create(client):
    owner = await client.create(REPLICA_SETS, rs_body("web", replicas=0))
    control = PodControl(client=client, recorder=EventRecorder(client=client, component="test"))
    bad = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}  # a pod needs a container
    with pytest.raises(errors.InvalidError) as failed:
        await control.create_pod(owner, template=bad, controller_ref=None)
    (event,) = await events_of(client, "web")
    assert event[:2] == ("Warning", "FailedCreate")
    assert event[2] == f"Error creating: {failed.value.message}"


# --------------------------------------------------------------------------- finding owners


def set_with(name: str, *, selector: Any, namespace: str = NS, uid: str | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"u-{name}"},
        "spec": {"selector": selector},
    }


def test_resolve_controller_ref_needs_the_kind_the_name_and_the_uid():
    informer = SharedInformer(FakeListerWatcher())
    informer.cache.add(set_with("web", selector={}, uid="owner-uid"))
    ref = controller_ref(OWNER, REPLICA_SETS)
    assert (
        resolve_controller_ref(informer.cache, namespace=NS, ref=ref, kind="ReplicaSet")["metadata"]["name"]
        == "web"
    )
    assert resolve_controller_ref(informer.cache, namespace=NS, ref=None, kind="ReplicaSet") is None
    assert resolve_controller_ref(informer.cache, namespace=NS, ref=ref, kind="DaemonSet") is None
    assert resolve_controller_ref(informer.cache, namespace="elsewhere", ref=ref, kind="ReplicaSet") is None
    recreated = {**ref, "uid": "an-earlier-web"}
    assert resolve_controller_ref(informer.cache, namespace=NS, ref=recreated, kind="ReplicaSet") is None
    missing = {**ref, "name": "gone"}
    assert resolve_controller_ref(informer.cache, namespace=NS, ref=missing, kind="ReplicaSet") is None


def test_controllers_selecting_matches_selectors_in_the_namespace_only():
    informer = SharedInformer(FakeListerWatcher())
    for owner in (
        set_with("web", selector={"matchLabels": {"app": "web"}}),
        set_with("by-expression", selector={"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
        set_with("other-app", selector={"matchLabels": {"app": "db"}}),
        set_with("empty", selector={}),  # an empty selector adopts nothing
        set_with("unreadable", selector={"matchExpressions": [{"key": "app", "operator": "Sometimes"}]}),
        set_with("no-selector", selector=None),
        set_with("far", selector={"matchLabels": {"app": "web"}}, namespace="elsewhere"),
    ):
        informer.cache.add(owner)
    pod = {"metadata": {"name": "p", "namespace": NS, "labels": {"app": "web"}}}
    assert sorted(o["metadata"]["name"] for o in controllers_selecting(informer.cache, pod)) == [
        "by-expression",
        "web",
    ]
    unlabelled = {"metadata": {"name": "q", "namespace": NS}}
    assert controllers_selecting(informer.cache, unlabelled) == []
    assert controllers_selecting(informer.cache, {"metadata": {"name": "r", "namespace": "nowhere"}}) == []


# --------------------------------------------------------------------------- creating pods


async def test_slow_start_batch_takes_the_items_of_an_iterator_in_order():
    items = iter(range(7))
    taken: list[int] = []

    async def create() -> None:
        taken.append(next(items))
        await asyncio.sleep(0)

    assert await slow_start_batch(7, initial_batch_size=1, create=create) == (7, None)
    assert taken == list(range(7))


async def test_slow_start_batch_reports_the_first_failure_and_passes_cancellation_on():
    calls = 0

    async def fail_third() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise ValueError("third")

    successes, failure = await slow_start_batch(10, initial_batch_size=2, create=fail_third)
    # Batches of 2 then 4: the third call fails, the rest of its batch still runs, none after it.
    assert (successes, calls) == (5, 6) and isinstance(failure, ValueError)

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await slow_start_batch(3, initial_batch_size=1, create=cancelled)


async def test_pod_control_creates_with_another_name_prefix(client):
    owner = await client.create(REPLICA_SETS, rs_body("web", replicas=0))
    control = PodControl(client=client, recorder=EventRecorder(client=client, component="test"))
    template = {"metadata": {"labels": {"app": "web"}}, "spec": TEMPLATE["spec"]}
    created = await control.create_pod(
        owner, template=template, controller_ref=controller_ref(owner, REPLICA_SETS), generate_name="web-3-"
    )
    name = created["metadata"]["name"]
    assert name.startswith("web-3-") and len(name) == len("web-3-") + 5
    assert created["metadata"]["generateName"] == "web-3-" and is_controlled_by(created, owner)
    assert await events_of(client, "web") == [("Normal", "SuccessfulCreate", f"Created pod: {name}")]
    with pytest.raises(ValueError, match="no labels"):
        await control.create_pod(
            owner, template={"spec": TEMPLATE["spec"]}, controller_ref=None, generate_name="x-"
        )
