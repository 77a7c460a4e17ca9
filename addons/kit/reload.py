"""Reload a config file when it changes, the way ConfigMap volumes change it.

The kubelet updates a ConfigMap volume by writing a new timestamped directory and swapping the
``..data`` symlink, so ``/etc/<addon>/<file>`` (a symlink into ``..data``) suddenly resolves to a
different inode; editors and ``kubectl cp`` instead rewrite the file in place (new mtime, maybe
the same inode). Inotify on the path misses the first case, so :class:`FileWatcher` polls: every
``interval`` seconds it ``stat``\\ s the path (following symlinks) and, when the identity (device,
inode, size, mtime) moved, reads the file and calls ``on_change`` only if the *content* differs
from the last version it delivered — a touched but unchanged file is not a reload.

A file that vanished or cannot be read is logged and retried on the next poll (during a symlink
swap the path can briefly dangle); the last good content stays in force. An ``on_change`` that
raises (the new config is invalid) is logged and counted in :attr:`FileWatcher.failures`; the
add-on keeps running with its previous configuration, as CoreDNS's ``reload`` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger(__name__)

OnChange = Callable[[bytes], Awaitable[None] | None]


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class FileWatcher:
    """Polls ``path``; calls ``on_change(content)`` when its content changed since :meth:`prime`."""

    def __init__(self, path: str | os.PathLike[str], *, on_change: OnChange, interval: float = 2.0) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.path = Path(path)
        self.interval = interval
        self._on_change = on_change
        self._identity: tuple[int, int, int, int] | None = None
        self._digest: bytes | None = None
        self.reloads = 0
        self.failures = 0

    def prime(self, content: bytes) -> None:
        """Record ``content`` (what the add-on started with) as the version in force."""
        self._identity = _identity(self.path)
        self._digest = hashlib.sha512(content).digest()

    async def check(self) -> bool:
        """One poll: True if a changed content was delivered (and accepted) now."""
        identity = _identity(self.path)
        if identity is None or identity == self._identity:
            return False
        try:
            content = self.path.read_bytes()
        except OSError as exc:
            log.warning("cannot read %s: %s; keeping the current configuration", self.path, exc)
            return False
        self._identity = identity
        digest = hashlib.sha512(content).digest()
        if digest == self._digest:
            return False
        self._digest = digest
        try:
            outcome = self._on_change(content)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            self.failures += 1
            log.exception("reloading %s failed; keeping the current configuration", self.path)
            return False
        self.reloads += 1
        log.info("reloaded %s", self.path, extra={"path": str(self.path)})
        return True

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            await self.check()
