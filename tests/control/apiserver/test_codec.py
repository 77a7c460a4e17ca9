"""Stored bytes carry no resourceVersion; serving splices it in without re-encoding."""

import orjson

from control.apiserver.codec import decode, encode_for_storage, served_bytes, with_resource_version
from control.store import KeyValue


def test_stored_form_puts_type_and_metadata_first_and_drops_the_resource_version():
    raw = encode_for_storage(
        {
            "data": {"a": "b"},
            "metadata": {"name": "x", "resourceVersion": "9"},
            "kind": "ConfigMap",
            "apiVersion": "v1",
        }
    )
    assert raw.startswith(b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}')
    assert b"resourceVersion" not in raw


def test_served_bytes_are_the_object_with_its_revision():
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "labels": {"a": "b"}},
        "data": {},
    }
    kv = KeyValue(key="/k", value=encode_for_storage(obj), create_revision=3, mod_revision=7)
    served = orjson.loads(served_bytes(kv))
    assert served["metadata"] == {"resourceVersion": "7", "name": "x", "labels": {"a": "b"}}
    assert decode(kv) == served


def test_empty_metadata_gets_a_valid_object():
    raw = encode_for_storage({"apiVersion": "v1", "kind": "Namespace", "metadata": {}})
    assert orjson.loads(with_resource_version(raw, 5))["metadata"] == {"resourceVersion": "5"}


def test_bytes_not_written_by_the_codec_are_still_served_correctly():
    raw = orjson.dumps({"kind": "X", "spec": {"metadata": {"fake": 1}}, "metadata": {"name": "n"}})
    served = orjson.loads(with_resource_version(raw, 2))
    assert served["metadata"] == {"name": "n", "resourceVersion": "2"}
    assert served["spec"] == {"metadata": {"fake": 1}}
