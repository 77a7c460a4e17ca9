"""A real etcd (Debian's etcd-server) for tests: free ports, a temp data dir, stopped after.

Used by the store contract suite and by the e2e test that runs a lab on etcd.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ETCD_BINARY = Path("/usr/bin/etcd")
ETCD_START_TIMEOUT = 20.0


@dataclass(frozen=True)
class EtcdServer:
    endpoint: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/health", timeout=1) as response:
            return json.load(response).get("health") == "true"
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextmanager
def running_etcd(workdir: Path) -> Iterator[EtcdServer]:
    """Start etcd in ``workdir``; fail the test (with etcd's log) if it does not come up."""
    workdir.mkdir(parents=True, exist_ok=True)
    if not ETCD_BINARY.exists():
        pytest.fail(f"{ETCD_BINARY} is missing: run scripts/setup (it installs Debian's etcd-server)")
    client = f"http://127.0.0.1:{_free_port()}"
    peer = f"http://127.0.0.1:{_free_port()}"
    log_path = workdir / "etcd.log"
    command = [
        str(ETCD_BINARY),
        "--name=kubelab-test",
        f"--data-dir={workdir / 'data'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=kubelab-test={peer}",
        "--logger=zap",
        "--log-level=warn",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + ETCD_START_TIMEOUT
        while not _healthy(client):
            if process.poll() is not None:
                pytest.fail(
                    f"etcd exited with {process.returncode}; its log:\n{log_path.read_text()[-4000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"etcd was not healthy after {ETCD_START_TIMEOUT}s; its log:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.05)
        yield EtcdServer(endpoint=client, log=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
