"""The indexed cache: keys, the built-in namespace index, custom indexes, replace and mutation detection."""

from __future__ import annotations

import logging

import pytest

from control.client.indexer import NAMESPACE_INDEX, CacheMutationError, Indexer, object_key, split_key


def pod(name: str, namespace: str = "default", node: str = "", rv: str = "1") -> dict:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv},
        "spec": {"nodeName": node} if node else {},
    }


def by_node(obj) -> list[str]:
    node = obj.get("spec", {}).get("nodeName")
    return [node] if node else []


def test_keys_are_namespace_slash_name_or_just_name():
    assert object_key(pod("a", "ns")) == "ns/a"
    assert object_key({"metadata": {"name": "node-1"}}) == "node-1"
    assert split_key("ns/a") == ("ns", "a")
    assert split_key("node-1") == ("", "node-1")


@pytest.mark.parametrize("obj", [{}, {"metadata": {}}, {"metadata": {"name": ""}}])
def test_object_without_name_has_no_key(obj):
    with pytest.raises(ValueError, match=r"metadata\.name"):
        object_key(obj)


@pytest.mark.parametrize("key", ["", "a/b/c", "ns/"])
def test_split_key_rejects_malformed_keys(key):
    with pytest.raises(ValueError):
        split_key(key)


def test_add_get_update_delete():
    cache = Indexer()
    first = pod("a")
    assert cache.add(first) is None
    assert cache.get_by_key("default/a") is first
    assert cache.get(pod("a")) is first
    second = pod("a", rv="2")
    assert cache.update(second) is first
    assert cache.get_by_key("default/a") is second
    assert len(cache) == 1 and "default/a" in cache
    assert cache.delete(pod("a")) is second
    assert cache.get_by_key("default/a") is None
    assert cache.delete(pod("a")) is None, "deleting a missing object is a no-op"


def test_namespace_index_is_built_in():
    cache = Indexer()
    for name, namespace in (("a", "ns1"), ("b", "ns1"), ("c", "ns2")):
        cache.add(pod(name, namespace))
    cache.add({"metadata": {"name": "node-1"}})
    assert NAMESPACE_INDEX in cache.index_names()
    assert sorted(o["metadata"]["name"] for o in cache.by_index(NAMESPACE_INDEX, "ns1")) == ["a", "b"]
    assert sorted(cache.index_values(NAMESPACE_INDEX)) == ["ns1", "ns2"]
    assert cache.by_index(NAMESPACE_INDEX, "missing") == []


def test_custom_index_follows_updates_and_deletes():
    cache = Indexer(indexers={"node": by_node})
    cache.add(pod("a", node="n1"))
    cache.add(pod("b", node="n1"))
    cache.add(pod("c"))
    assert sorted(cache.index_keys("node", "n1")) == ["default/a", "default/b"]
    cache.update(pod("a", node="n2"))
    assert cache.index_keys("node", "n1") == ["default/b"]
    assert cache.index_keys("node", "n2") == ["default/a"]
    cache.delete(pod("b"))
    assert cache.index_keys("node", "n1") == []
    assert sorted(cache.index_values("node")) == ["n2"], "empty buckets are dropped"


def test_index_returns_objects_sharing_a_value():
    cache = Indexer(indexers={"node": by_node})
    cache.add(pod("a", node="n1"))
    cache.add(pod("b", node="n1"))
    cache.add(pod("c", node="n2"))
    assert sorted(o["metadata"]["name"] for o in cache.index("node", pod("x", node="n1"))) == ["a", "b"]


def test_multi_valued_index():
    cache = Indexer(
        indexers={"labels": lambda o: [f"{k}={v}" for k, v in o["metadata"].get("labels", {}).items()]}
    )
    obj = pod("a")
    obj["metadata"]["labels"] = {"app": "web", "tier": "front"}
    cache.add(obj)
    assert cache.index_keys("labels", "app=web") == ["default/a"]
    assert cache.index_keys("labels", "tier=front") == ["default/a"]


def test_unknown_index_is_an_error():
    cache = Indexer()
    with pytest.raises(KeyError, match="nope"):
        cache.by_index("nope", "x")


def test_add_indexers_indexes_existing_objects_and_refuses_duplicates():
    cache = Indexer()
    cache.add(pod("a", node="n1"))
    cache.add_indexers({"node": by_node})
    assert cache.index_keys("node", "n1") == ["default/a"]
    with pytest.raises(ValueError, match="already exists"):
        cache.add_indexers({"node": by_node})
    with pytest.raises(ValueError, match="already exists"):
        cache.add_indexers({NAMESPACE_INDEX: by_node})


def test_replace_swaps_contents_and_rebuilds_indexes():
    cache = Indexer(indexers={"node": by_node})
    cache.add(pod("old", node="n1"))
    cache.replace([pod("a", node="n2"), pod("b", "other")])
    assert sorted(cache.list_keys()) == ["default/a", "other/b"]
    assert cache.index_keys("node", "n1") == []
    assert cache.index_keys("node", "n2") == ["default/a"]
    assert cache.index_keys(NAMESPACE_INDEX, "other") == ["other/b"]


def test_list_returns_a_fresh_list_of_the_shared_objects():
    cache = Indexer()
    obj = pod("a")
    cache.add(obj)
    listed = cache.list()
    listed.clear()
    assert cache.list() == [obj] and cache.list()[0] is obj


def test_mutation_detector_names_objects_changed_in_place():
    cache = Indexer(detect_mutations=True)
    cache.add(pod("a"))
    cache.add(pod("b"))
    cache.verify_unmutated()
    cache.get_by_key("default/a")["metadata"]["labels"] = {"oops": "yes"}
    with pytest.raises(CacheMutationError, match="default/a"):
        cache.verify_unmutated()


def test_mutation_detector_reports_a_mutated_object_even_after_it_was_replaced(caplog):
    cache = Indexer(detect_mutations=True)
    cache.add(pod("a"))
    cache.get_by_key("default/a")["spec"]["nodeName"] = "mutated"
    with caplog.at_level(logging.ERROR):
        cache.update(pod("a", rv="2"))
    assert "default/a" in caplog.text
    with pytest.raises(CacheMutationError, match="default/a"):
        cache.verify_unmutated()


def test_mutation_detector_can_be_switched_on_from_the_environment(monkeypatch):
    monkeypatch.setenv("KUBELAB_CACHE_MUTATION_DETECTOR", "true")
    cache = Indexer()
    cache.add(pod("a"))
    cache.get_by_key("default/a")["x"] = 1
    with pytest.raises(CacheMutationError):
        cache.verify_unmutated()


def test_without_the_detector_verify_is_a_no_op():
    cache = Indexer(detect_mutations=False)
    cache.add(pod("a"))
    cache.get_by_key("default/a")["x"] = 1
    cache.verify_unmutated()
