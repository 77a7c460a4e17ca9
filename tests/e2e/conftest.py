"""Whole-lab fixtures: a real lab started with the real `kubelab up`, driven with the
real kubectl, taken down with `kubelab down`.

``lab`` is one lab for the whole test session (DESIGN.md: e2e tests share one lab per
run), on a free port and in a temporary data directory, so it never collides with a lab
the developer runs. ``own_lab`` starts extra labs for the tests that must stop, resume or
duplicate one. Every lab is taken down at teardown and its server must then be gone.

kubectl gets ``--kubeconfig`` and a ``--cache-dir`` private to this session (one per
client version), so discovery cached by an earlier run or another client never hides
what the server serves now. Any client version the machine's kubectl package ships can
be picked: ``lab.kubectl("get", "ns", version="1.27")``.

Every test under tests/e2e is marked ``e2e``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

KUBECTL = Path("/usr/bin/kubectl")
KUBECTL_VERSIONS_DIR = Path("/usr/lib/google-cloud-sdk/bin")
KUBECTL_VERSIONS = ("1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33")
UP_TIMEOUT_SECONDS = 60
# The shared lab has three nodes (issue 3's acceptance); labs of single tests run the
# control plane only, since node N's address (127.100.0.N) belongs to one lab at a time.
SESSION_LAB_NODES = 3
E2E_DIR = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)


def kubelab_command() -> list[str]:
    """The console script installed beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "kubelab"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "control.cli"]


def kubectl_binary(version: str | None = None) -> Path:
    """/usr/bin/kubectl, or the client of one minor version (e.g. "1.27")."""
    if version is None:
        return KUBECTL
    if version not in KUBECTL_VERSIONS:
        raise ValueError(
            f"no kubectl {version!r} on this machine: choose one of {', '.join(KUBECTL_VERSIONS)}"
        )
    return KUBECTL_VERSIONS_DIR / f"kubectl.{version}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(b")") + 2 :][:1] == b"Z"


@dataclass(frozen=True, kw_only=True)
class Lab:
    data_dir: Path
    port: int
    server_url: str
    kubeconfig: Path
    kubectl_cache_dir: Path
    up_output: str  # what `kubelab up` printed (stdout, then stderr)
    server_pid: int

    def kubelab(self, command: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `kubelab <command> --data-dir <this lab> <args>`; never raises on exit codes."""
        return subprocess.run(
            [*kubelab_command(), command, "--data-dir", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def kubectl(
        self,
        *args: str,
        version: str | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this lab; with ``check`` a non-zero exit fails the test
        showing kubectl's own output."""
        cache_dir = self.kubectl_cache_dir / (version or "default")
        env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
        result = subprocess.run(
            [
                str(kubectl_binary(version)),
                "--kubeconfig",
                str(self.kubeconfig),
                "--cache-dir",
                str(cache_dir),
                *args,
            ],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"kubectl {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}",
                pytrace=False,
            )
        return result

    @contextlib.contextmanager
    def namespace(self, name: str) -> Iterator[None]:
        """Namespace ``name`` for the block; deleted after it without waiting (the lab is shared)."""
        self.kubectl("create", "namespace", name)
        try:
            yield
        finally:
            self.kubectl("delete", "namespace", name, "--wait=false", check=False)


def start_lab(
    *, data_dir: Path, kubectl_cache_dir: Path, port: int | None = None, store: str = "", nodes: int = 0
) -> Lab:
    """`kubelab up` a lab in ``data_dir``; fail the test (leaving nothing running) if it does not come up."""
    port = port or free_port()
    command = [
        *kubelab_command(),
        "up",
        "--data-dir",
        str(data_dir),
        "--api-port",
        str(port),
        "--timeout",
        str(UP_TIMEOUT_SECONDS),
        *(["--store", store] if store else []),
        "--nodes",
        str(nodes),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=UP_TIMEOUT_SECONDS + 30, check=False
        )
    except subprocess.TimeoutExpired as exc:
        _down(data_dir)
        pytest.fail(f"kubelab up did not return within {exc.timeout}s", pytrace=False)
    if result.returncode != 0:
        _down(data_dir)
        pytest.fail(
            f"kubelab up exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}",
            pytrace=False,
        )
    return Lab(
        data_dir=data_dir,
        port=port,
        server_url=f"https://127.0.0.1:{port}",
        kubeconfig=data_dir / "kubeconfig",
        kubectl_cache_dir=kubectl_cache_dir,
        up_output=result.stdout + result.stderr,
        server_pid=int((data_dir / "server.pid").read_text()),
    )


def stop_lab(lab: Lab) -> None:
    """`kubelab down`, then insist that the server process is really gone."""
    result = _down(lab.data_dir)
    assert result.returncode == 0, f"kubelab down exited {result.returncode}: {result.stdout}{result.stderr}"
    assert process_gone(lab.server_pid), f"server pid {lab.server_pid} still runs after `kubelab down`"


def _down(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kubelab_command(), "down", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The session's shared lab. Tests must leave it running and usable."""
    running = start_lab(
        data_dir=tmp_path_factory.mktemp("lab"),
        kubectl_cache_dir=tmp_path_factory.mktemp("kubectl-cache"),
        nodes=SESSION_LAB_NODES,
    )
    try:
        yield running
    finally:
        stop_lab(running)


@pytest.fixture
def own_lab(tmp_path: Path) -> Iterator[Callable[..., Lab]]:
    """Start labs of the test's own (``own_lab()`` or ``own_lab(data_dir=...)``); all are
    taken down after the test, even those it already stopped."""
    started: list[Lab] = []

    def start(*, data_dir: Path | None = None, port: int | None = None, store: str = "") -> Lab:
        running = start_lab(
            data_dir=data_dir or tmp_path / f"lab-{len(started)}",
            kubectl_cache_dir=tmp_path / "kubectl-cache",
            port=port,
            store=store,
        )
        started.append(running)
        return running

    yield start
    for running in started:
        stop_lab(running)
