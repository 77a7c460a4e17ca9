"""``open_store``: every accepted ``--store`` URL, and the malformed ones it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.store import EtcdStore, SqliteStore, Store, open_store


def test_sqlite_default_is_state_db_in_the_data_dir(tmp_path: Path) -> None:
    store = open_store("sqlite://", data_dir=tmp_path)

    assert isinstance(store, SqliteStore)
    assert isinstance(store, Store)
    assert store.path == tmp_path / "state.db"


def test_sqlite_absolute_path(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/elsewhere.db", data_dir=Path("/unused"))

    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / "elsewhere.db"


def test_etcd_endpoints() -> None:
    store = open_store("etcd://127.0.0.1:2379,127.0.0.2:2379", data_dir=Path("/unused"))

    assert isinstance(store, EtcdStore)
    assert isinstance(store, Store)
    assert store.endpoints == ["http://127.0.0.1:2379", "http://127.0.0.2:2379"]


def test_etcd_over_https() -> None:
    store = open_store("etcd+https://etcd.example:2379/", data_dir=Path("/unused"))

    assert isinstance(store, EtcdStore)
    assert store.endpoints == ["https://etcd.example:2379"]


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("state.db", "no scheme"),
        ("sqlite://relative/path.db", "must be absolute"),
        ("postgres://127.0.0.1:5432", "unknown scheme"),
        ("etcd://", "host:port"),
        ("etcd://127.0.0.1", "host:port"),
        ("etcd://127.0.0.1:port", "host:port"),
        ("etcd://:2379", "host:port"),
        ("etcd://127.0.0.1:2379,", "host:port"),
        ("etcd://127.0.0.1:2379/prefix", "host:port"),
    ],
)
def test_malformed_urls_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        open_store(url, data_dir=Path("/unused"))
