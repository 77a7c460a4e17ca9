"""Config files watched the way ConfigMap volumes change them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from addons.kit.reload import FileWatcher


def configmap_volume(root: Path, content: str, *, version: int) -> Path:
    """Lay out a ConfigMap volume as the kubelet does: a versioned dir, ..data -> it, file -> ..data/file."""
    data = root / f"..2026_{version}"
    data.mkdir()
    (data / "Corefile").write_text(content)
    link = root / "..data_tmp"
    link.symlink_to(data.name)
    os.replace(link, root / "..data")
    target = root / "Corefile"
    if not target.is_symlink():
        target.symlink_to("..data/Corefile")
    return target


async def test_a_symlink_swap_is_a_reload_and_a_touch_is_not(tmp_path: Path) -> None:
    seen: list[bytes] = []
    path = configmap_volume(tmp_path, "one", version=1)
    watcher = FileWatcher(path, on_change=seen.append, interval=0.01)
    watcher.prime(path.read_bytes())
    assert not await watcher.check()
    configmap_volume(tmp_path, "two", version=2)
    assert await watcher.check()
    assert seen == [b"two"]
    configmap_volume(tmp_path, "two", version=3)  # same content, new inode
    assert not await watcher.check()
    os.utime(path, (1, 1))
    assert not await watcher.check()
    assert watcher.reloads == 1


async def test_in_place_rewrites_missing_files_and_failing_reloads(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("a")
    calls: list[bytes] = []

    async def apply(content: bytes) -> None:
        calls.append(content)
        if content == b"bad":
            raise ValueError("invalid")

    watcher = FileWatcher(path, on_change=apply, interval=0.01)
    watcher.prime(b"a")
    path.write_text("bad!")
    path.write_text("bad")
    assert not await watcher.check()
    assert watcher.failures == 1
    path.unlink()
    assert not await watcher.check()
    path.write_text("good")
    assert await watcher.check()
    assert calls == [b"bad", b"good"]


def test_the_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        FileWatcher(tmp_path, on_change=lambda content: None, interval=0)
