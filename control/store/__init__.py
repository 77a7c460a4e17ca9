"""kubelab's storage: etcd v3 semantics behind one protocol, on SQLite (default) or etcd.

The API server depends on :class:`Store` only; :func:`open_store` picks the backend from
the ``--store`` URL:

- ``sqlite://`` — ``<data_dir>/state.db`` (the embedded default);
- ``sqlite:///abs/path.db`` — that file;
- ``etcd://host:port[,host:port...]`` — an etcd v3 cluster over plain HTTP;
- ``etcd+https://host:port[,...]`` — the same over TLS, verified against the system's trust
  store (for a private CA or client certificates, build :class:`EtcdStore` with ``ssl=``).

The store returned is not started: ``await store.start()`` before use, ``await
store.close()`` at the end.
"""

from __future__ import annotations

from pathlib import Path

from control.store.etcd import EtcdStore
from control.store.protocol import (
    CompactedError,
    Event,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyValue,
    ListResult,
    Store,
    StoreError,
    StoreUnavailableError,
    SwapResult,
    WatcherOverflowError,
)
from control.store.sqlite import SqliteStore

__all__ = [
    "CompactedError",
    "EtcdStore",
    "Event",
    "EventType",
    "FutureRevisionError",
    "KeyExistsError",
    "KeyValue",
    "ListResult",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "SwapResult",
    "WatcherOverflowError",
    "open_store",
]

_ETCD_SCHEMES = {"etcd": "http", "etcd+https": "https"}


def open_store(url: str, *, data_dir: Path) -> Store:
    """The store a ``--store`` URL names (see the module docstring); ValueError if malformed."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError(
            f"store URL {url!r} has no scheme: use sqlite://, sqlite:///path or etcd://host:port"
        )
    if scheme == "sqlite":
        if not rest:
            return SqliteStore(data_dir / "state.db")
        path = Path(rest)
        if not path.is_absolute():
            raise ValueError(f"store URL {url!r}: the SQLite path must be absolute (sqlite:///abs/path.db)")
        return SqliteStore(path)
    if scheme in _ETCD_SCHEMES:
        hosts = [host.strip() for host in rest.rstrip("/").split(",")]
        for host in hosts:
            name, colon, port = host.rpartition(":")
            if not colon or not name or not port.isdigit() or "/" in host:
                raise ValueError(f"store URL {url!r}: each etcd endpoint must be host:port, not {host!r}")
        return EtcdStore([f"{_ETCD_SCHEMES[scheme]}://{host}" for host in hosts])
    raise ValueError(f"store URL {url!r}: unknown scheme {scheme!r}; use sqlite:// or etcd://")
