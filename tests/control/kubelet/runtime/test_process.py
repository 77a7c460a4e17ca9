"""The process runtime on its own: real containers, shims, exec, attach, adoption."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control.kubelet.logs import rotated_files
from control.kubelet.runtime import images, procfs
from control.kubelet.runtime.process import ProcessRuntime, RuntimeOptions
from control.kubelet.runtime.protocol import (
    ContainerConfig,
    ContainerNotFoundError,
    ContainerState,
    ExecTimeoutError,
    ImageNotSupportedError,
    InvalidImageError,
    Mount,
    RuntimeError_,
    SandboxConfig,
)
from tests.control.kubelet.conftest import kill_leftovers, leftover_processes

UID = "pod-uid-1"


async def open_runtime(root: Path, **options: object) -> ProcessRuntime:
    runtime = ProcessRuntime(data_dir=root, node_name="node-1", options=RuntimeOptions(**options))  # type: ignore[arg-type]
    await runtime.start()
    return runtime


async def add_sandbox(runtime: ProcessRuntime, root: Path, uid: str = UID) -> Path:
    directory = root / "pods" / f"default_demo_{uid}"
    await runtime.run_sandbox(
        SandboxConfig(
            pod_uid=uid,
            namespace="default",
            name="demo",
            pod_ip="127.244.1.9",
            hostname="demo",
            directory=directory,
            resolv_conf="nameserver 127.96.0.10\n",
            hosts="127.0.0.1\tlocalhost\n",
        )
    )
    return directory


def config(name: str, *command: str, sandbox: Path, attempt: int = 0, **extra: object) -> ContainerConfig:
    return ContainerConfig(
        name=name,
        image="busybox",
        command=list(command),
        env={"GREETING": "hi"},
        log_path=sandbox / name / f"{attempt}.log",
        restart_count=attempt,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    runtime = await open_runtime(tmp_path / "node")
    try:
        yield runtime
    finally:
        for status in await runtime.list_containers():
            if status.state is ContainerState.RUNNING:
                await runtime.stop(status.id, grace_seconds=0)
        await runtime.close()
        leftovers = leftover_processes(tmp_path)
        kill_leftovers(tmp_path)
        assert not leftovers, leftovers


async def test_container_runs_logs_and_exits_with_its_code(runtime: ProcessRuntime, tmp_path: Path) -> None:
    sandbox = await add_sandbox(runtime, tmp_path / "node")
    container_id = await runtime.create_and_start(
        UID,
        config(
            "app", "sh", "-c", "echo out $GREETING; echo err >&2; exit 5", sandbox=sandbox, labels={"k": "v"}
        ),
    )
    assert len(container_id) == 64
    status = await runtime.wait(container_id)
    assert status.state is ContainerState.EXITED
    assert (status.exit_code, status.reason) == (5, "Error")
    assert status.pod_uid == UID and status.attempt == 0 and status.labels == {"k": "v"}
    assert status.image_id.startswith("kubelab-process://busybox@")
    assert status.started_at is not None and status.finished_at is not None
    assert status.finished_at >= status.started_at
    entries = [line.split(" ", 3)[1:] for line in runtime.log_path(container_id).read_text().splitlines()]
    assert sorted(entries) == [["stderr", "F", "err"], ["stdout", "F", "out hi"]]

    ok = await runtime.create_and_start(UID, config("ok", "true", sandbox=sandbox))
    assert (await runtime.wait(ok)).reason == "Completed"


async def test_containers_bind_the_sandbox_files_it_has(runtime: ProcessRuntime, tmp_path: Path) -> None:
    """A sandbox written without resolv.conf and hosts (the caller had none) binds only its
    hostname into the container; its own resolution files are the host's then."""
    directory = tmp_path / "node" / "pods" / "default_bare_uid-2"
    await runtime.run_sandbox(
        SandboxConfig(
            pod_uid="uid-2",
            namespace="default",
            name="bare",
            pod_ip="127.244.1.10",
            hostname="bare",
            directory=directory,
            resolv_conf="",
            hosts="",
        )
    )
    assert sorted(path.name for path in directory.iterdir()) == ["containers", "hostname", "sandbox.json"]
    container_id = await runtime.create_and_start("uid-2", config("app", "sleep", "30", sandbox=directory))
    record = json.loads((directory / "containers" / container_id / "config.json").read_text())
    expected = [{"source": str(directory / "hostname"), "target": "/etc/hostname", "read_only": False}]
    assert record["mounts"] == (expected if runtime.namespaces else [])
    assert record["credentials"]["uid"] == os.geteuid()
    await runtime.stop(container_id, grace_seconds=0)


async def test_images_are_resolved_once_and_failures_again(
    runtime: ProcessRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    original = images.resolve_image

    def counting(image: str) -> images.ResolvedImage:
        lookups.append(image)
        return original(image)

    monkeypatch.setattr(images, "resolve_image", counting)
    sandbox = await add_sandbox(runtime, tmp_path / "node")
    assert (await runtime.image_info("busybox")).uid == os.geteuid()
    ok = await runtime.create_and_start(UID, config("ok", "true", sandbox=sandbox))
    assert (await runtime.wait(ok)).reason == "Completed"
    assert lookups == ["busybox"], "a found image stays known, as a pulled image stays present"
    for _ in range(2):
        with pytest.raises(ImageNotSupportedError):
            await runtime.image_info("mysql:8")
    assert lookups == ["busybox", "mysql:8", "mysql:8"], "an image not found is looked for again"


async def test_start_errors_are_reported_as_upstream_does(runtime: ProcessRuntime, tmp_path: Path) -> None:
    sandbox = await add_sandbox(runtime, tmp_path / "node")
    missing = await runtime.wait(
        await runtime.create_and_start(UID, config("a", "no-such-thing", sandbox=sandbox))
    )
    assert (missing.exit_code, missing.reason) == (128, "StartError")
    assert (
        missing.message
        == 'failed to start container process: exec: "no-such-thing": executable file not found in $PATH'
    )
    absolute = await runtime.wait(
        await runtime.create_and_start(UID, config("b", "/nowhere/bin", sandbox=sandbox))
    )
    assert absolute.message.endswith('exec: "/nowhere/bin": stat /nowhere/bin: no such file or directory')
    cwd = await runtime.wait(
        await runtime.create_and_start(UID, config("c", "true", sandbox=sandbox, working_dir="/no/such/dir"))
    )
    assert cwd.reason == "StartError"
    assert 'chdir to cwd ("/no/such/dir") set in config.json failed: no such file or directory' in cwd.message
    with pytest.raises(ImageNotSupportedError, match="not supported by the kubelab process runtime"):
        await runtime.create_and_start(
            UID, ContainerConfig(name="d", image="quay.io/x/y", command=["true"], env={})
        )
    with pytest.raises(InvalidImageError, match="invalid reference format"):
        await runtime.image_info("UPPER/Case")
    with pytest.raises(RuntimeError_, match="no sandbox"):
        await runtime.create_and_start("unknown-pod", config("e", "true", sandbox=sandbox))
    with pytest.raises(ContainerNotFoundError):
        await runtime.status("0" * 64)


async def test_stop_sends_sigterm_then_sigkill_after_the_grace_period(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    sandbox = await add_sandbox(runtime, tmp_path / "node")
    polite = await runtime.create_and_start(UID, config("polite", "sleep", "60", sandbox=sandbox))
    started = time.monotonic()
    await runtime.stop(polite, grace_seconds=5)
    assert time.monotonic() - started < 2
    assert (await runtime.status(polite)).exit_code == 128 + signal.SIGTERM

    stubborn = await runtime.create_and_start(
        UID,
        config(
            "stubborn",
            "sh",
            "-c",
            "trap '' TERM; echo ready; while true; do sleep 0.05; done",
            sandbox=sandbox,
        ),
    )
    for _ in range(200):  # a SIGTERM before the shell has set its trap would end it at once
        if "ready" in runtime.log_path(stubborn).read_text():
            break
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await runtime.stop(stubborn, grace_seconds=0.5)
    assert 0.5 <= time.monotonic() - started < 5
    assert (await runtime.status(stubborn)).exit_code == 128 + signal.SIGKILL
    await runtime.stop(stubborn, grace_seconds=1)  # stopping a stopped container is a no-op


async def test_exec_sync_runs_in_the_container_context(runtime: ProcessRuntime, tmp_path: Path) -> None:
    sandbox = await add_sandbox(runtime, tmp_path / "node")
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "data").write_text("volume data\n")
    container_id = await runtime.create_and_start(
        UID,
        config(
            "app",
            "sleep",
            "60",
            sandbox=sandbox,
            working_dir="/srv",
            mounts=[Mount(host_path=volume, container_path="/srv")],
        ),
    )
    result = await runtime.exec_sync(
        container_id, ["sh", "-c", "pwd; cat data; echo $GREETING; exit 3"], timeout=5
    )
    assert result.exit_code == 3
    assert result.stdout.decode().splitlines() == ["/srv", "volume data", "hi"]
    with pytest.raises(ExecTimeoutError, match="timed out"):
        await runtime.exec_sync(container_id, ["sleep", "10"], timeout=0.3)
    with pytest.raises(RuntimeError_, match='exec: "nope": executable file not found in \\$PATH'):
        await runtime.exec_sync(container_id, ["nope"], timeout=1)
    await runtime.stop(container_id, grace_seconds=1)
    with pytest.raises(RuntimeError_, match="is not running"):
        await runtime.exec_sync(container_id, ["true"], timeout=1)


async def test_interactive_exec_with_and_without_a_terminal(runtime: ProcessRuntime, tmp_path: Path) -> None:
    sandbox = await add_sandbox(runtime, tmp_path / "node")
    container_id = await runtime.create_and_start(UID, config("app", "sleep", "60", sandbox=sandbox))

    session = await runtime.exec(
        container_id, ["sh", "-c", "read line; echo got $line; echo oops >&2; exit 2"], stdin=True, tty=False
    )
    session.stdin.write(b"hello\n")  # type: ignore[union-attr]
    await session.stdin.drain()  # type: ignore[union-attr]
    output = [item async for item in session.output]
    assert (1, b"got hello\n") in output and (2, b"oops\n") in output
    assert await session.wait() == 2  # type: ignore[operator]

    terminal = await runtime.exec(container_id, ["sh", "-c", "stty size; tty; exit 4"], stdin=True, tty=True)
    terminal.resize(100, 30)  # type: ignore[misc]
    seen = b"".join([data async for _, data in terminal.output])
    assert await terminal.wait() == 4  # type: ignore[operator]
    assert b"/dev/pts/" in seen


async def test_attach_reaches_the_main_process_stdio(runtime: ProcessRuntime, tmp_path: Path) -> None:
    sandbox = await add_sandbox(runtime, tmp_path / "node")
    container_id = await runtime.create_and_start(
        UID,
        config(
            "app",
            "sh",
            "-c",
            "while read line; do echo echo:$line; done; exit 6",
            sandbox=sandbox,
            stdin=True,
        ),
    )
    session = await runtime.attach(container_id, stdin=True, tty=False)
    session.stdin.write(b"one\n")  # type: ignore[union-attr]
    await session.stdin.drain()  # type: ignore[union-attr]
    first = await anext(session.output)  # type: ignore[call-overload]
    assert first == (1, b"echo:one\n")
    session.stdin.close()  # type: ignore[union-attr]
    rest = [item async for item in session.output]
    assert rest == []
    assert await session.wait() == 6  # type: ignore[operator]
    assert "echo:one" in runtime.log_path(container_id).read_text()
    await runtime.wait(container_id)
    with pytest.raises(RuntimeError_, match="not running"):
        await runtime.attach(container_id, stdin=False, tty=False)


async def test_containers_outlive_the_runtime_and_are_adopted(tmp_path: Path) -> None:
    root = tmp_path / "node"
    first = await open_runtime(root)
    try:
        sandbox = await add_sandbox(first, root)
        long_lived = await first.create_and_start(UID, config("long", "sleep", "60", sandbox=sandbox))
        short = await first.create_and_start(
            UID, config("short", "sh", "-c", "sleep 0.3; exit 9", sandbox=sandbox)
        )
    finally:
        await first.close()
    state = json.loads(next(root.glob(f"pods/*/containers/{short}/state.json")).read_text())
    for _ in range(100):
        if not procfs.is_alive(state["pid"], state["pid_start"]):
            break
        await asyncio.sleep(0.05)

    second = await open_runtime(root)
    try:
        # The short container's shim records its exit just after the process is gone: the new
        # runtime either reads that record or adopts the shim and sees the exit through it.
        for _ in range(100):
            statuses = {status.id: status for status in await second.list_containers()}
            if statuses[short].state is ContainerState.EXITED:
                break
            await asyncio.sleep(0.05)
        assert statuses[long_lived].state is ContainerState.RUNNING
        assert statuses[short].state is ContainerState.EXITED and statuses[short].exit_code == 9
        sandboxes = await second.list_sandboxes()
        assert [(s.pod_uid, s.pod_ip) for s in sandboxes] == [(UID, "127.244.1.9")]
        await second.stop(long_lived, grace_seconds=1)
        assert (await second.wait(long_lived)).exit_code == 128 + signal.SIGTERM
        await second.remove_sandbox(UID)
        assert not sandbox.exists()
        assert await second.list_containers() == []
    finally:
        await second.close()
    assert not leftover_processes(tmp_path)


async def test_a_container_whose_shim_dies_is_stopped_and_reported_unknown(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    sandbox = await add_sandbox(runtime, tmp_path / "node")
    container_id = await runtime.create_and_start(UID, config("app", "sleep", "60", sandbox=sandbox))
    state = json.loads(
        next((tmp_path / "node").glob(f"pods/*/containers/{container_id}/state.json")).read_text()
    )
    os.kill(state["shim_pid"], signal.SIGKILL)
    status = await asyncio.wait_for(runtime.wait(container_id), timeout=10)
    assert (status.exit_code, status.reason) == (137, "ContainerStatusUnknown")
    for _ in range(100):
        if not procfs.is_alive(state["pid"], state["pid_start"]):
            break
        await asyncio.sleep(0.05)
    assert not procfs.is_alive(state["pid"], state["pid_start"])


async def test_usage_comes_from_cgroups_or_the_process_tree(tmp_path: Path) -> None:
    for cgroups in (None, False):
        root = tmp_path / f"node-{cgroups}"
        runtime = await open_runtime(root, cgroups=cgroups)
        try:
            sandbox = await add_sandbox(runtime, root)
            busy = await runtime.create_and_start(
                UID,
                config(
                    "busy",
                    "sh",
                    "-c",
                    "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 60",
                    sandbox=sandbox,
                ),
            )
            usage = None
            for _ in range(100):
                usage = runtime.usage(busy)
                if usage is not None and usage.cpu_usage_core_nanoseconds > 0:
                    break
                await asyncio.sleep(0.05)
            assert usage is not None and usage.cpu_usage_core_nanoseconds > 0
            assert usage.memory_working_set_bytes > 0 and usage.processes >= 1
            await runtime.stop(busy, grace_seconds=1)
            assert runtime.usage(busy) is None
        finally:
            await runtime.close()


async def test_log_files_rotate_by_size(tmp_path: Path) -> None:
    root = tmp_path / "node"
    runtime = await open_runtime(root, log_max_bytes=4096, log_max_files=3)
    try:
        sandbox = await add_sandbox(runtime, root)
        container_id = await runtime.create_and_start(
            UID,
            config(
                "chatty",
                "sh",
                "-c",
                "i=0; while [ $i -lt 600 ]; do echo line-$i; i=$((i+1)); done",
                sandbox=sandbox,
            ),
        )
        await runtime.wait(container_id)
    finally:
        await runtime.close()
    log_path = sandbox / "chatty" / "0.log"
    rotated = rotated_files(log_path)
    assert len(rotated) == 2, rotated
    assert log_path.stat().st_size < 4096 + 100
    assert log_path.read_text().splitlines()[-1].endswith("stdout F line-599")


def test_the_runtime_works_under_uvloop(tmp_path: Path) -> None:
    """The lab runs uvloop: pidfd watching, handshakes and attach must work there too."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        root = tmp_path / "node"
        runtime = await open_runtime(root)
        try:
            sandbox = await add_sandbox(runtime, root)
            container_id = await runtime.create_and_start(
                UID, config("app", "sh", "-c", "read line; echo got:$line", sandbox=sandbox, stdin=True)
            )
            session = await runtime.attach(container_id, stdin=True, tty=False)
            session.stdin.write(b"hi\n")  # type: ignore[union-attr]
            await session.stdin.drain()  # type: ignore[union-attr]
            assert await anext(session.output) == (1, b"got:hi\n")  # type: ignore[call-overload]
            assert (await runtime.wait(container_id)).exit_code == 0
        finally:
            await runtime.close()

    uvloop.run(scenario())
    assert not leftover_processes(tmp_path)


def test_the_runtime_imports_when_control_is_a_namespace_package(tmp_path: Path) -> None:
    """A stale editable install makes ``control`` a namespace package (``__file__`` None):
    the node agent must still import its runtime, from any working directory."""
    repo = Path(__file__).resolve().parents[4]
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    script = (
        "import importlib.machinery, sys\n"
        "spec = importlib.machinery.ModuleSpec('control', None, is_package=True)\n"
        f"spec.submodule_search_locations = [{str(repo / 'control')!r}]\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['control'] = module\n"
        "assert module.__file__ is None\n"
        "from control.kubelet.runtime import process\n"
        "print(process._KEEP_IN_TMP)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import importlib.util\n" + script],
        cwd=shadow,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
