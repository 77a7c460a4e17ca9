"""Shared informers and the factory: handler calls (tombstones included), sync, resync, sharing."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from control.client.informer import (
    DeletedFinalStateUnknown,
    InformerFactory,
    SharedInformer,
    deletion_handling_key,
)
from control.client.rest import Resource
from control.client.testing import FakeClock, FakeListerWatcher
from tests.control.client.support import eventually

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")


def cm(name: str, data: str = "x", namespace: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "data": {"v": data}}


def name_of(obj: dict | DeletedFinalStateUnknown) -> str:
    if isinstance(obj, DeletedFinalStateUnknown):
        return f"tombstone:{obj.obj['metadata']['name']}"
    return obj["metadata"]["name"]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_add(self, obj: dict) -> None:
        self.events.append(("add", name_of(obj)))

    def on_update(self, old: dict, new: dict) -> None:
        self.events.append(("update", name_of(new), old["data"]["v"], new["data"]["v"]))

    def on_delete(self, obj: dict | DeletedFinalStateUnknown) -> None:
        self.events.append(("delete", name_of(obj)))

    def register(self, informer: SharedInformer):
        return informer.add_event_handler(
            on_add=self.on_add, on_update=self.on_update, on_delete=self.on_delete
        )


@pytest.fixture
async def informers():
    made: list[SharedInformer] = []
    clock = FakeClock()

    def make(fake: FakeListerWatcher, **options: Any) -> SharedInformer:
        options.setdefault("clock", clock)
        informer = SharedInformer(fake, name="test", **options)
        made.append(informer)
        return informer

    make.clock = clock
    yield make
    for informer in made:
        await informer.stop()


async def test_initial_list_is_added_then_the_informer_is_synced(informers):
    fake = FakeListerWatcher([cm("a"), cm("b")])
    informer = informers(fake)
    recorder = Recorder()
    registration = recorder.register(informer)
    assert not informer.has_synced() and not registration.has_synced()
    informer.start()
    assert await informer.wait_for_sync(timeout=5)
    assert registration.has_synced()
    assert sorted(recorder.events) == [("add", "a"), ("add", "b")]
    assert informer.cache.get_by_key("default/a")["data"] == {"v": "x"}


async def test_watch_events_become_add_update_delete(informers):
    fake = FakeListerWatcher([cm("a")])
    informer = informers(fake)
    recorder = Recorder()
    recorder.register(informer)
    informer.start()
    await informer.wait_for_sync(timeout=5)
    fake.create(cm("b"))
    fake.update(cm("a", "y"))
    fake.delete("default/b")
    await eventually(lambda: len(recorder.events) == 4)
    assert recorder.events[1:] == [("add", "b"), ("update", "a", "x", "y"), ("delete", "b")]
    assert informer.cache.list_keys() == ["default/a"]


async def test_relist_infers_missed_changes_with_tombstones(informers):
    fake = FakeListerWatcher([cm("kept"), cm("changed"), cm("gone")])
    informer = informers(fake)
    recorder = Recorder()
    recorder.register(informer)
    informer.start()
    await informer.wait_for_sync(timeout=5)
    recorder.events.clear()
    # The watch drops; while it is down the collection changes and is compacted, so the
    # re-watch gets 410 and the informer must relist and infer what it missed.
    fake.drop_watches()
    informers.clock.advance(5.0)
    fake.update(cm("changed", "new"))
    fake.delete("default/gone")
    fake.create(cm("born"))
    fake.compact()
    await eventually(lambda: informers.clock.pending())
    informers.clock.advance_to_next()
    await eventually(lambda: ("add", "born") in recorder.events)
    assert sorted(recorder.events) == [
        ("add", "born"),
        ("delete", "tombstone:gone"),
        ("update", "changed", "x", "new"),
        ("update", "kept", "x", "x"),
    ]
    assert recorder.events[-1] == ("delete", "tombstone:gone"), (
        "updates are delivered before inferred deletes"
    )
    assert sorted(informer.cache.list_keys()) == ["default/born", "default/changed", "default/kept"]


async def test_tombstone_carries_key_and_last_known_state(informers):
    fake = FakeListerWatcher([cm("gone", "last")])
    informer = informers(fake)
    deleted: list = []
    informer.add_event_handler(on_delete=deleted.append)
    informer.start()
    await informer.wait_for_sync(timeout=5)
    fake.delete_silently("default/gone")
    fake.expire_watches()
    await eventually(lambda: informers.clock.pending())
    informers.clock.advance_to_next()
    await eventually(lambda: deleted)
    (tombstone,) = deleted
    assert isinstance(tombstone, DeletedFinalStateUnknown)
    assert tombstone.key == "default/gone" and tombstone.obj["data"] == {"v": "last"}
    assert deletion_handling_key(tombstone) == "default/gone"
    assert deletion_handling_key(cm("x", namespace="ns")) == "ns/x"


async def test_handler_added_after_sync_gets_the_cache_as_adds(informers):
    fake = FakeListerWatcher([cm("a"), cm("b")])
    informer = informers(fake)
    informer.start()
    await informer.wait_for_sync(timeout=5)
    recorder = Recorder()
    registration = recorder.register(informer)
    assert registration.has_synced()
    assert sorted(recorder.events) == [("add", "a"), ("add", "b")]


async def test_failing_handler_does_not_affect_the_others(informers, caplog):
    fake = FakeListerWatcher([cm("a")])
    informer = informers(fake)

    def broken(obj):
        raise RuntimeError("handler bug")

    informer.add_event_handler(on_add=broken)
    recorder = Recorder()
    recorder.register(informer)
    informer.start()
    with caplog.at_level(logging.ERROR):
        assert await informer.wait_for_sync(timeout=5)
    assert recorder.events == [("add", "a")]
    assert "handler bug" in caplog.text


async def test_removed_handler_hears_nothing_more(informers):
    fake = FakeListerWatcher()
    informer = informers(fake)
    recorder, other = Recorder(), Recorder()
    registration = recorder.register(informer)
    other.register(informer)
    informer.start()
    await informer.wait_for_sync(timeout=5)
    informer.remove_event_handler(registration)
    fake.create(cm("a"))
    await eventually(lambda: other.events)
    assert recorder.events == []


async def test_periodic_resync_replays_the_cache_as_updates(informers):
    fake = FakeListerWatcher([cm("a")])
    informer = informers(fake, resync_period=30.0)
    recorder = Recorder()
    recorder.register(informer)
    informer.start()
    await informer.wait_for_sync(timeout=5)
    informers.clock.advance(29.0)
    await eventually(lambda: True)
    assert recorder.events == [("add", "a")]
    informers.clock.advance(1.0)
    await eventually(lambda: len(recorder.events) == 2)
    assert recorder.events[1] == ("update", "a", "x", "x")


def test_resync_period_must_be_positive():
    with pytest.raises(ValueError, match="resync_period"):
        SharedInformer(FakeListerWatcher(), resync_period=0)


async def test_informer_indexes(informers):
    fake = FakeListerWatcher([cm("a", namespace="n1"), cm("b", namespace="n2")])
    informer = informers(fake, indexers={"value": lambda o: [o["data"]["v"]]})
    informer.start()
    await informer.wait_for_sync(timeout=5)
    assert [o["metadata"]["name"] for o in informer.cache.by_index("namespace", "n2")] == ["b"]
    assert sorted(informer.cache.index_keys("value", "x")) == ["n1/a", "n2/b"]
    informer.add_indexers({"name": lambda o: [o["metadata"]["name"]]})
    assert informer.cache.index_keys("name", "a") == ["n1/a"]


async def test_wait_for_sync_verdicts(informers):
    fake = FakeListerWatcher()
    from control.client.errors import TransportError

    for _ in range(3):
        fake.fail_next_list(TransportError("refused"))
    informer = informers(fake)
    with pytest.raises(RuntimeError, match="before start"):
        await informer.wait_for_sync(timeout=1)
    informer.start()
    assert await informer.wait_for_sync(timeout=0.01) is False, "not synced while the list fails"
    await informer.stop()
    assert await informer.wait_for_sync(timeout=None) is False, "a stopped informer never syncs"


async def test_start_and_stop_are_idempotent(informers):
    informer = informers(FakeListerWatcher())
    informer.start()
    informer.start()
    assert informer.running
    await informer.stop()
    await informer.stop()
    assert not informer.running


class FakeClient:
    """Hands out one FakeListerWatcher per request, as RESTClient.lister_watcher would."""

    def __init__(self) -> None:
        self.requests: list[tuple] = []
        self.made: list[FakeListerWatcher] = []

    def lister_watcher(self, resource, *, namespace=None, label_selector=None, field_selector=None):
        self.requests.append((resource.plural, namespace, label_selector, field_selector))
        fake = FakeListerWatcher([cm("a")], kind=resource.kind)
        self.made.append(fake)
        return fake


async def test_factory_shares_one_informer_per_collection():
    client = FakeClient()
    factory = InformerFactory(client, clock=FakeClock())
    first = factory.informer(CONFIGMAPS)
    assert factory.informer(CONFIGMAPS) is first
    assert factory.informer(CONFIGMAPS, namespace="kube-system") is not first
    assert factory.informer(CONFIGMAPS, label_selector="app=web") is not first
    assert factory.informer(SECRETS) is not first
    assert len(client.requests) == 4
    assert factory.informer(CONFIGMAPS, label_selector="app=web").name == "configmaps[app=web]"
    try:
        factory.start()
        assert await factory.wait_for_sync(timeout=5)
        assert all(informer.has_synced() for informer in factory.informers())
        late = factory.informer(SECRETS, namespace="late")
        assert await factory.wait_for_sync(timeout=5), "informers not yet started are not waited for"
        assert not late.running
    finally:
        await factory.shutdown()
    assert not any(informer.running for informer in factory.informers())
