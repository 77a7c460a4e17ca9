"""The process runtime: each container is a host process group, supervised by a shim.

Implements :class:`control.kubelet.runtime.protocol.Runtime`. The pieces:

- a *sandbox* is a directory (``pods/<ns>_<pod>_<uid>/`` under the node's data dir) with
  ``sandbox.json`` and the pod's ``resolv.conf``, ``hosts`` and ``hostname`` files; there
  is no pause process — each container gets its own mount and UTS namespace (as root);
- a *container* is started by a shim (``control.kubelet.runtime.shim``) forked by the
  fork server (``control.kubelet.runtime.zygote``) and keeps its records in
  ``<sandbox>/containers/<id>/``. Its id is 64 hex digits, as containerd's;
- images are profiles of host programs (``control.kubelet.runtime.images``);
- one runtime handler, ``runc`` (containerd's default name; ``""`` means it too): a sandbox
  asking for any other is refused as containerd refuses a handler it has no runtime for;
- limits and usage come from cgroups when writable (``control.kubelet.runtime.cgroups``),
  else usage from the container's session in ``/proc`` and no limits;
- the securityContext (``control.kubelet.runtime.security``): credentials resolved here,
  applied by the container's process before exec; a read-only root built by ``mountns``;
- ``exec`` runs ``nsenter --target <pid> --mount --uts`` and ``setpriv`` (the container's
  user, groups, capabilities and no_new_privs) with the container's env (and joins the
  container's cgroup), ``attach`` talks to the shim's socket.

Containers outlive this object: :meth:`close` only stops watching them, and
:meth:`start` re-adopts every container recorded on disk — a running one (its shim alive,
recognised by pid *and* start time) is watched again; one whose shim vanished without
recording an exit is killed and reported as ``ContainerStatusUnknown`` (exit code 137),
as the kubelet reports a container it lost.

Exits are noticed through a pidfd on the shim, so :meth:`wait` returns as soon as the shim
has written the container's ``exit.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control.kubelet.logs import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES
from control.kubelet.runtime import images, procfs, security
from control.kubelet.runtime.cgroups import CgroupError, CgroupManager, ContainerCgroup
from control.kubelet.runtime.protocol import (
    ContainerConfig,
    ContainerNotFoundError,
    ContainerState,
    ContainerStatus,
    ContainerUsage,
    ContainerUser,
    ExecResult,
    ExecSession,
    ExecTimeoutError,
    ImageInfo,
    RuntimeError_,
    RuntimeHandlerError,
    SandboxConfig,
    SandboxStatus,
)
from control.kubelet.runtime.shim import (
    CHANNEL_CONTROL,
    CHANNEL_RESIZE,
    CHANNEL_STDIN,
    frame,
    write_json_atomically,
)

log = logging.getLogger("kubelab.kubelet.runtime")

RUNTIME_NAME = "kubelab"
LOST_EXIT_CODE = 137
_FRAME = struct.Struct(">BI")
_TREE_SAMPLE_SECONDS = 0.5
_EXEC_OUTPUT_LIMIT = 16 * 1024 * 1024
# Every pod runs the same way here; it answers to "runc", containerd's default handler name, and
# to "" (no RuntimeClass: the default handler).
RUNTIME_HANDLERS = ("", "runc")


def check_runtime_handler(handler: str) -> None:
    """Refuse a handler this runtime has no runtime for, as containerd's RunPodSandbox does (its
    error as the kubelet's CRI client reports it)."""
    if handler not in RUNTIME_HANDLERS:
        raise RuntimeHandlerError(
            "rpc error: code = Unknown desc = failed to get sandbox runtime: "
            f'no runtime for "{handler}" is configured'
        )


def _installation_dirs_under_tmp() -> tuple[str, ...]:
    """kubelab's own directories (its Python, its sources) that live under /tmp, e.g. a CI
    checkout there: a container's private /tmp must keep showing them, or the programs
    the `kubelab` and `python` images run would vanish. The sources are found from this
    file, not from ``control.__file__``, which is None when ``control`` is imported as a
    namespace package (an editable install made before ``control/__init__.py`` existed)."""
    sources = Path(__file__).resolve().parents[3]  # <sources>/control/kubelet/runtime/process.py
    dirs = {Path(sys.prefix).resolve(), sources}
    return tuple(sorted(str(d) for d in dirs if d.is_relative_to("/tmp") and d != Path("/tmp")))


_KEEP_IN_TMP = _installation_dirs_under_tmp()


@dataclass(frozen=True, kw_only=True)
class RuntimeOptions:
    log_max_bytes: int = DEFAULT_MAX_BYTES
    log_max_files: int = DEFAULT_MAX_FILES
    namespaces: bool | None = None  # None: use mount namespaces when running as root
    cgroups: bool | None = None  # None: use cgroups when a hierarchy is writable
    private_tmp: bool = True
    start_timeout: float = 30.0
    kill_timeout: float = 10.0  # how long a SIGKILLed container may take to be reported gone


@dataclass(kw_only=True)
class _Sandbox:
    pod_uid: str
    namespace: str
    name: str
    pod_ip: str
    hostname: str
    directory: Path
    created_at: float
    files: frozenset[str] = frozenset()  # which of _SANDBOX_MOUNTS' files the sandbox has

    def status(self) -> SandboxStatus:
        return SandboxStatus(
            pod_uid=self.pod_uid,
            namespace=self.namespace,
            name=self.name,
            pod_ip=self.pod_ip,
            directory=self.directory,
            created_at=self.created_at,
        )


class _Container:
    def __init__(self, *, directory: Path, config: dict[str, Any]) -> None:
        self.id: str = config["id"]
        self.directory = directory
        self.config = config
        self.state: dict[str, Any] | None = None
        self.exit: dict[str, Any] | None = None
        self.exited = asyncio.Event()
        self.pidfd = -1
        cgroup = config.get("cgroup")
        self.cgroup = ContainerCgroup.from_record(cgroup) if cgroup else None
        credentials = config.get("credentials")
        self.user = (
            ContainerUser(
                uid=int(credentials["uid"]),
                gid=int(credentials["gid"]),
                supplemental_groups=tuple(int(gid) for gid in credentials.get("groups") or ()),
            )
            if credentials
            else None
        )

    @property
    def pod_uid(self) -> str:
        return self.config["pod_uid"]

    @property
    def running(self) -> bool:
        return self.state is not None and self.exit is None

    def status(self) -> ContainerStatus:
        config, state, exit_ = self.config, self.state or {}, self.exit
        if exit_ is not None:
            container_state = ContainerState.EXITED
        elif self.state is not None:
            container_state = ContainerState.RUNNING
        else:
            container_state = ContainerState.CREATED
        return ContainerStatus(
            id=self.id,
            name=config["name"],
            state=container_state,
            pid=state.get("pid"),
            started_at=(exit_ or {}).get("started_at") or state.get("started_at"),
            finished_at=exit_.get("finished_at") if exit_ else None,
            exit_code=exit_.get("exit_code") if exit_ else None,
            reason=exit_.get("reason", "") if exit_ else "",
            message=exit_.get("message", "") if exit_ else "",
            log_path=Path(config["log_path"]),
            pod_uid=config["pod_uid"],
            attempt=config["attempt"],
            image=config["image"],
            image_id=config["image_id"],
            created_at=config["created_at"],
            labels=dict(config.get("labels") or {}),
            user=self.user,
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable record %s: %s", path, exc)
        return None


# The sandbox's files bound into each container (with mount namespaces), as containerd binds
# them: (file, target, whether readOnlyRootFilesystem makes it read-only). /etc/hosts stays
# writable, as the kubelet mounts it.
_SANDBOX_MOUNTS = (
    ("resolv.conf", "/etc/resolv.conf", True),
    ("hosts", "/etc/hosts", False),
    ("hostname", "/etc/hostname", True),
)


def _sandbox_files(config: SandboxConfig) -> frozenset[str]:
    """Which of the sandbox's files :func:`_write_sandbox_files` writes for ``config``."""
    written = {"hostname"}
    if config.resolv_conf:
        written.add("resolv.conf")
    if config.hosts:
        written.add("hosts")
    return frozenset(written)


def _write_sandbox_files(config: SandboxConfig, record: dict[str, Any]) -> None:
    """The pod's directory and the files its containers bind in (resolv.conf, hosts, hostname)."""
    directory = config.directory
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "containers").mkdir(exist_ok=True)
    if config.resolv_conf:
        (directory / "resolv.conf").write_text(config.resolv_conf)
    if config.hosts:
        (directory / "hosts").write_text(config.hosts)
    (directory / "hostname").write_text(config.hostname + "\n")
    write_json_atomically(directory / "sandbox.json", record)


class ProcessRuntime:
    """Runs containers as host processes. Create it in the event loop, then ``await start()``."""

    def __init__(self, *, data_dir: Path, node_name: str, options: RuntimeOptions | None = None) -> None:
        self.data_dir = data_dir
        self.node_name = node_name
        self.options = options or RuntimeOptions()
        self.pods_root = data_dir / "pods"
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._zygote: subprocess.Popen[bytes] | None = None
        self._zygote_socket: socket.socket | None = None
        self.cgroups: CgroupManager | None = None
        self.namespaces = False
        self._nsenter = shutil.which("nsenter") or ""
        self._setsid = shutil.which("setsid") or ""
        self._setpriv = shutil.which("setpriv") or ""
        self._tree_sample: tuple[float, dict[int, procfs.TreeUsage]] = (0.0, {})
        self._images: dict[str, images.ResolvedImage] = {}
        self._started = False

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Detect what the machine allows, start the fork server, re-adopt recorded containers."""
        if self._started:
            return
        self._started = True
        self.pods_root.mkdir(parents=True, exist_ok=True)
        wants_namespaces = self.options.namespaces
        if wants_namespaces is None:
            wants_namespaces = os.geteuid() == 0
        self.namespaces = bool(wants_namespaces and self._nsenter and os.geteuid() == 0)
        if self.options.cgroups is not False:
            self.cgroups = CgroupManager.detect(node_name=self.node_name)
            if self.cgroups is None and self.options.cgroups:
                raise RuntimeError_(
                    "cgroups were asked for, but no cgroup hierarchy is writable on this machine"
                )
        self._start_zygote()
        self._adopt()
        log.info(
            "process runtime ready: %s; %s; %d containers re-adopted",
            "private mount namespaces" if self.namespaces else "host mount namespace",
            self.cgroups.describe() if self.cgroups else "no cgroups",
            sum(1 for container in self._containers.values() if container.running),
        )

    def limitations(self) -> list[str]:
        """What this runtime cannot do on this machine, for events and the README."""
        found = []
        if not self.namespaces:
            reason = "not running as root" if os.geteuid() != 0 else "nsenter (util-linux) is missing"
            found.append(
                f"{reason}: containers share the host's mount namespace, so volumes are not mounted at their "
                "mountPath and /etc/resolv.conf and /etc/hosts are the host's (the DNS search path and ndots are "
                "passed as LOCALDOMAIN and RES_OPTIONS instead)"
            )
        if self.cgroups is None:
            found.append(
                "no writable cgroup hierarchy: memory and CPU limits are not enforced, OOM kills are not "
                "reported, and usage is read from the container's process tree"
            )
        return found

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for container in self._containers.values():
            if container.pidfd >= 0:
                loop.remove_reader(container.pidfd)
                os.close(container.pidfd)
                container.pidfd = -1
        if self._zygote_socket is not None:
            self._zygote_socket.close()
            self._zygote_socket = None
        if self._zygote is not None:
            zygote = self._zygote
            self._zygote = None
            try:
                await asyncio.wait_for(asyncio.to_thread(zygote.wait), timeout=10)
            except TimeoutError:
                zygote.kill()
                await asyncio.to_thread(zygote.wait)

    def _start_zygote(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        root = str(Path(__file__).resolve().parents[3])  # the directory holding the control package
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            self._zygote = subprocess.Popen(
                [sys.executable, "-m", "control.kubelet.runtime.zygote", str(child.fileno())],
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        finally:
            child.close()
        self._zygote_socket = parent

    def _send_to_zygote(self, payload: bytes, fd: int) -> None:
        for attempt in range(2):
            if self._zygote is None or self._zygote.poll() is not None or self._zygote_socket is None:
                if self._zygote_socket is not None:
                    self._zygote_socket.close()
                log.warning("the shim fork server is gone; starting a new one")
                self._start_zygote()
            assert self._zygote_socket is not None
            try:
                socket.send_fds(self._zygote_socket, [payload], [fd])
                return
            except OSError as exc:
                if attempt:
                    raise RuntimeError_(f"cannot reach the shim fork server: {exc}") from exc
                self._zygote_socket.close()
                self._zygote_socket = None

    # ------------------------------------------------------------------ re-adoption

    def _adopt(self) -> None:
        for pod_dir in sorted(self.pods_root.iterdir()):
            record = _read_json(pod_dir / "sandbox.json")
            if record is None or record.get("node") != self.node_name:
                continue
            sandbox = _Sandbox(
                pod_uid=record["pod_uid"],
                namespace=record["namespace"],
                name=record["name"],
                pod_ip=record.get("pod_ip", ""),
                hostname=record.get("hostname", ""),
                directory=pod_dir,
                created_at=record.get("created_at", 0.0),
                files=frozenset(name for name, _, _ in _SANDBOX_MOUNTS if (pod_dir / name).exists()),
            )
            self._sandboxes[sandbox.pod_uid] = sandbox
            containers_dir = pod_dir / "containers"
            if not containers_dir.is_dir():
                continue
            for directory in sorted(containers_dir.iterdir()):
                config = _read_json(directory / "config.json")
                if config is None:
                    continue
                container = _Container(directory=directory, config=config)
                container.state = _read_json(directory / "state.json")
                container.exit = _read_json(directory / "exit.json")
                self._containers[container.id] = container
                if container.exit is not None:
                    self._release_cgroup(container)
                    container.exited.set()
                elif container.state is None:
                    self._record_exit(
                        container,
                        code=LOST_EXIT_CODE,
                        reason="ContainerStatusUnknown",
                        message="The container could not be located: the node agent stopped while starting it",
                    )
                else:
                    self._watch(container)

    # ------------------------------------------------------------------ sandboxes

    async def run_sandbox(self, config: SandboxConfig) -> None:
        check_runtime_handler(config.runtime_handler)
        directory = config.directory
        existing = self._sandboxes.get(config.pod_uid)
        created_at = existing.created_at if existing else time.time()
        record = {
            "node": self.node_name,
            "pod_uid": config.pod_uid,
            "namespace": config.namespace,
            "name": config.name,
            "pod_ip": config.pod_ip,
            "hostname": config.hostname,
            "created_at": created_at,
        }
        # File system work in a worker thread: on a slow disk it must not stall the event loop.
        await asyncio.to_thread(_write_sandbox_files, config, record)
        self._sandboxes[config.pod_uid] = _Sandbox(
            pod_uid=config.pod_uid,
            namespace=config.namespace,
            name=config.name,
            pod_ip=config.pod_ip,
            hostname=config.hostname,
            directory=directory,
            created_at=created_at,
            files=_sandbox_files(config) | (existing.files if existing else frozenset()),
        )

    async def remove_sandbox(self, pod_uid: str) -> None:
        sandbox = self._sandboxes.get(pod_uid)
        for container in [c for c in self._containers.values() if c.pod_uid == pod_uid]:
            if container.running:
                await self.stop(container.id, grace_seconds=0)
            await self.remove_container(container.id)
        if sandbox is None:
            return
        shutil.rmtree(sandbox.directory, ignore_errors=True)
        del self._sandboxes[pod_uid]

    async def list_sandboxes(self) -> list[SandboxStatus]:
        return [sandbox.status() for sandbox in self._sandboxes.values()]

    # ------------------------------------------------------------------ containers

    def _resolve_image(self, image: str) -> images.ResolvedImage:
        """The image's profile and program, looked up once: like a pulled image, an image found
        stays "present on machine" (a failed lookup is not remembered, and is tried again)."""
        resolved = self._images.get(image)
        if resolved is None:
            resolved = self._images[image] = images.resolve_image(image)
        return resolved

    async def image_info(self, image: str) -> ImageInfo:
        # There are no image users: an image runs as whoever runs its programs, the node agent.
        return dataclasses.replace(self._resolve_image(image).info(image), uid=os.geteuid())

    async def create_and_start(self, pod_uid: str, config: ContainerConfig) -> str:
        sandbox = self._sandboxes.get(pod_uid)
        if sandbox is None:
            raise RuntimeError_(f"no sandbox for pod {pod_uid}: run_sandbox first")
        resolved = self._resolve_image(config.image)
        info = resolved.info(config.image)
        env = {**info.env, "HOSTNAME": sandbox.hostname, **config.env}
        argv = images.resolve_command(
            resolved, config.command, search_path=env.get("PATH", images.DEFAULT_PATH)
        )
        if not argv:
            raise RuntimeError_("no command specified")
        container_id = secrets.token_hex(32)
        directory = sandbox.directory / "containers" / container_id
        read_only_root = bool(config.security and config.security.readonly_rootfs and self.namespaces)
        mounts = []
        if self.namespaces:
            mounts.extend(
                {
                    "source": str(sandbox.directory / name),
                    "target": target,
                    "read_only": read_only_root and follows_read_only_root,
                }
                for name, target, follows_read_only_root in _SANDBOX_MOUNTS
                if name in sandbox.files
            )
            mounts.extend(
                {"source": str(mount.host_path), "target": mount.container_path, "read_only": mount.read_only}
                for mount in config.mounts
            )
        record = {
            "id": container_id,
            "pod_uid": pod_uid,
            "name": config.name,
            "attempt": config.restart_count,
            "image": config.image,
            "image_id": resolved.image_id,
            "profile": resolved.profile.name,
            "labels": dict(config.labels),
            "created_at": time.time(),
            "argv": argv,
            "env": env,
            "working_dir": config.working_dir or info.working_dir or "/",
            "log_path": str(config.log_path),
            "log_max_bytes": self.options.log_max_bytes,
            "log_max_files": self.options.log_max_files,
            "stdin": config.stdin,
            "stdin_once": config.stdin_once,
            "tty": config.tty,
            "namespaces": self.namespaces,
            "hostname": sandbox.hostname,
            "rootfs": str(directory / "rootfs"),
            "mounts": mounts,
            "private_tmp": self.options.private_tmp,
            "keep_in_tmp": _KEEP_IN_TMP,
            "read_only_root": read_only_root,
            "host_devices": bool(config.security and config.security.privileged),
            "attach": f"kubelab-shim/{container_id}",
        }
        # One worker-thread call for all of the container's file system work.
        await asyncio.to_thread(self._prepare_container, directory, pod_uid, config, record)
        container = _Container(directory=directory, config=record)
        self._containers[container_id] = container
        handshake_r, handshake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            self._send_to_zygote(json.dumps({"directory": str(directory)}).encode(), handshake_w)
        finally:
            os.close(handshake_w)
        reading = asyncio.ensure_future(_read_handshake(handshake_r, timeout=self.options.start_timeout))
        try:
            reply = await asyncio.shield(reading)
        except asyncio.CancelledError:
            # The container is being started whatever happens to our caller: finish the
            # bookkeeping so it is known (and stoppable) before passing the cancellation on.
            self._finish_start(container, await reading)
            raise
        self._finish_start(container, reply)
        return container_id

    def _prepare_container(
        self, directory: Path, pod_uid: str, config: ContainerConfig, record: dict[str, Any]
    ) -> None:
        """The container's directory (with its root's mount point), cgroup and credentials (the
        user and group databases are read here), added to ``record``, which is then written as
        its ``config.json``; runs in a worker thread."""
        credentials = security.resolve_credentials(config.security)
        directory.mkdir(parents=True)
        if self.namespaces:
            (directory / "rootfs").mkdir()
        cgroup = None
        if self.cgroups is not None:
            try:
                cgroup = self.cgroups.create(
                    pod_uid=pod_uid,
                    container_id=record["id"],
                    memory_limit_bytes=config.memory_limit_bytes,
                    cpu_limit_millis=config.cpu_limit_millis,
                    cpu_request_millis=config.cpu_request_millis,
                )
            except (CgroupError, OSError) as exc:
                shutil.rmtree(directory, ignore_errors=True)
                raise RuntimeError_(f"cannot create the container's cgroup: {exc}") from exc
        record["credentials"] = credentials.to_record()
        record["cgroup"] = cgroup.to_record() if cgroup else None
        record["cgroup_procs"] = [str(path) for path in cgroup.procs_files] if cgroup else []
        record["oom_file"] = str(cgroup.oom_file) if cgroup else None
        write_json_atomically(directory / "config.json", record)

    def _finish_start(self, container: _Container, reply: dict[str, Any] | None) -> None:
        directory = container.directory
        if reply is None or "error" in reply:
            container.state = _read_json(directory / "state.json")
            container.exit = _read_json(directory / "exit.json")
            if container.exit is None:
                self._record_exit(
                    container,
                    code=128,
                    reason="StartError",
                    message="failed to start container process: the shim did not report within "
                    f"{self.options.start_timeout:g}s",
                )
            self._release_cgroup(container)
            container.exited.set()
            return
        container.state = _read_json(directory / "state.json")
        self._watch(container)

    def _get(self, container_id: str) -> _Container:
        container = self._containers.get(container_id)
        if container is None:
            raise ContainerNotFoundError(f"no container with id {container_id!r}")
        return container

    async def status(self, container_id: str) -> ContainerStatus:
        return self._get(container_id).status()

    async def list_containers(self) -> list[ContainerStatus]:
        return [container.status() for container in self._containers.values()]

    def log_path(self, container_id: str) -> Path:
        return Path(self._get(container_id).config["log_path"])

    async def wait(self, container_id: str) -> ContainerStatus:
        container = self._get(container_id)
        await container.exited.wait()
        return container.status()

    async def stop(self, container_id: str, *, grace_seconds: float) -> None:
        container = self._get(container_id)
        if container.exited.is_set():
            return
        self._signal(container, signal.SIGTERM)
        if grace_seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(container.exited.wait(), timeout=grace_seconds)
                return
        self._signal(container, signal.SIGKILL, everything=True)
        try:
            await asyncio.wait_for(container.exited.wait(), timeout=self.options.kill_timeout)
        except TimeoutError as exc:
            raise RuntimeError_(
                f"container {container_id} did not stop within {self.options.kill_timeout:g}s of SIGKILL"
            ) from exc

    def _signal(self, container: _Container, signum: int, *, everything: bool = False) -> None:
        state = container.state
        if state is None:
            return
        pid = state["pid"]
        if procfs.is_alive(pid, state["pid_start"]):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signum)
        if not everything:
            return
        stragglers = set(procfs.session_members(pid)) if procfs.is_alive(pid, state["pid_start"]) else set()
        if container.cgroup is not None and self.cgroups is not None:
            stragglers.update(self.cgroups.pids(container.cgroup))
        for straggler in stragglers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(straggler, signum)

    async def remove_container(self, container_id: str) -> None:
        container = self._containers.get(container_id)
        if container is None:
            return
        if container.running:
            raise RuntimeError_(f"container {container_id} is running; stop it before removing it")
        if container.cgroup is not None and self.cgroups is not None:
            with contextlib.suppress(CgroupError):
                self.cgroups.remove(container.cgroup)
        shutil.rmtree(container.directory, ignore_errors=True)
        del self._containers[container_id]

    # ------------------------------------------------------------------ exits

    def _watch(self, container: _Container) -> None:
        state = container.state
        assert state is not None
        try:
            pidfd = os.pidfd_open(state["shim_pid"])
        except ProcessLookupError:
            self._shim_gone(container)
            return
        if not procfs.is_alive(state["shim_pid"], state["shim_start"]):
            os.close(pidfd)
            self._shim_gone(container)
            return
        container.pidfd = pidfd
        asyncio.get_running_loop().add_reader(pidfd, self._shim_gone, container)

    def _shim_gone(self, container: _Container) -> None:
        if container.pidfd >= 0:
            asyncio.get_running_loop().remove_reader(container.pidfd)
            os.close(container.pidfd)
            container.pidfd = -1
        container.exit = _read_json(container.directory / "exit.json")
        if container.exit is None:
            state = container.state or {}
            self._signal(container, signal.SIGKILL, everything=True)
            self._record_exit(
                container,
                code=LOST_EXIT_CODE,
                reason="ContainerStatusUnknown",
                message=f"The container's shim (pid {state.get('shim_pid')}) ended without recording the "
                "container's exit; the container was stopped",
            )
        self._release_cgroup(container)
        container.exited.set()

    def _release_cgroup(self, container: _Container) -> None:
        """An exited container's cgroup has served its purpose (the shim read the OOM count)."""
        if container.cgroup is not None and self.cgroups is not None:
            with contextlib.suppress(CgroupError):
                self.cgroups.remove(container.cgroup)

    def _record_exit(self, container: _Container, *, code: int, reason: str, message: str) -> None:
        now = time.time()
        container.exit = {
            "exit_code": code,
            "reason": reason,
            "message": message,
            "started_at": (container.state or {}).get("started_at", now),
            "finished_at": now,
        }
        with contextlib.suppress(OSError):
            write_json_atomically(container.directory / "exit.json", container.exit)
        self._release_cgroup(container)
        container.exited.set()

    # ------------------------------------------------------------------ usage

    def usage(self, container_id: str) -> ContainerUsage | None:
        container = self._containers.get(container_id)
        if container is None or not container.running:
            return None
        now = time.time()
        if container.cgroup is not None and self.cgroups is not None:
            sample = self.cgroups.usage(container.cgroup)
            if sample is not None:
                return ContainerUsage(
                    timestamp=now,
                    cpu_usage_core_nanoseconds=sample.cpu_nanoseconds,
                    memory_usage_bytes=sample.memory_usage_bytes,
                    memory_working_set_bytes=sample.memory_working_set_bytes,
                    memory_rss_bytes=sample.memory_rss_bytes,
                    processes=sample.processes,
                )
        pid = (container.state or {}).get("pid")
        if pid is None:
            return None
        taken, trees = self._tree_sample
        if time.monotonic() - taken > _TREE_SAMPLE_SECONDS or pid not in trees:
            sessions = [c.state["pid"] for c in self._containers.values() if c.running and c.state]
            trees = procfs.session_usage(sessions)
            self._tree_sample = (time.monotonic(), trees)
        tree = trees.get(pid)
        if tree is None or tree.processes == 0:
            return None
        return ContainerUsage(
            timestamp=now,
            cpu_usage_core_nanoseconds=tree.cpu_nanoseconds,
            memory_usage_bytes=tree.rss_bytes,
            memory_working_set_bytes=tree.rss_bytes,
            memory_rss_bytes=tree.rss_bytes,
            processes=tree.processes,
        )

    # ------------------------------------------------------------------ exec and attach

    def _exec_plan(
        self, container: _Container, command: Sequence[str]
    ) -> tuple[list[str], dict[str, str], str | None]:
        """(argv, env, cwd) for running ``command`` in the container's context."""
        if not container.running:
            raise RuntimeError_(f"container {container.id} is not running")
        if not command:
            raise RuntimeError_("no command specified")
        config = container.config
        env = dict(config["env"])
        profile = images.PROFILES.get(config.get("profile", ""))
        program = profile.aliases.get(command[0], command[0]) if profile else command[0]
        argv = [program, *command[1:]]
        pid = container.state["pid"]  # type: ignore[index]
        working_dir = config.get("working_dir") or "/"
        root = f"/proc/{pid}/root" if config.get("namespaces") else ""
        if not _find_program(program, path=env.get("PATH", images.DEFAULT_PATH), root=root, cwd=working_dir):
            if "/" in program:
                raise RuntimeError_(f'exec: "{program}": stat {program}: no such file or directory')
            raise RuntimeError_(f'exec: "{program}": executable file not found in $PATH')
        identity = self._identity_prefix(container)
        if config.get("namespaces"):
            prefix = [self._nsenter, f"--target={pid}", "--mount", "--uts", f"--wd={root}{working_dir}", "--"]
            return [*prefix, *identity, *argv], env, None
        return [*identity, *argv], env, working_dir

    def _identity_prefix(self, container: _Container) -> list[str]:
        """``setpriv ... --``: an exec gets the container's credentials, or is refused."""
        record = container.config.get("credentials")
        if not record:
            return []
        credentials = security.Credentials.from_record(record)
        if not credentials.change_identity and not credentials.no_new_privs:
            return []
        if not self._setpriv:
            raise RuntimeError_(
                "exec into a container with a securityContext needs setpriv (util-linux), "
                "which is not installed"
            )
        return security.setpriv_argv(credentials, setpriv=self._setpriv)

    def _join_cgroup(self, container: _Container, pid: int) -> None:
        for procs in container.config.get("cgroup_procs") or ():
            with contextlib.suppress(OSError):
                Path(procs).write_text(str(pid))

    async def exec_sync(
        self,
        container_id: str,
        command: Sequence[str],
        *,
        timeout: float,  # noqa: ASYNC109 - CRI ExecSync's timeout
    ) -> ExecResult:
        container = self._get(container_id)
        argv, env, cwd = self._exec_plan(container, command)
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self._join_cgroup(container, process.pid)
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout)
        except TimeoutError as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise ExecTimeoutError(f"command {list(command)!r} timed out after {timeout:g}s") from exc
        code = process.returncode if process.returncode >= 0 else 128 - process.returncode
        return ExecResult(
            exit_code=code, stdout=stdout[:_EXEC_OUTPUT_LIMIT], stderr=stderr[:_EXEC_OUTPUT_LIMIT]
        )

    async def exec(self, container_id: str, command: Sequence[str], *, stdin: bool, tty: bool) -> ExecSession:
        container = self._get(container_id)
        argv, env, cwd = self._exec_plan(container, command)
        if tty:
            return await self._exec_tty(container, argv, env, cwd)
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self._join_cgroup(container, process.pid)
        assert process.stdout is not None and process.stderr is not None

        async def wait() -> int:
            code = await process.wait()
            return code if code >= 0 else 128 - code

        return ExecSession(
            stdin=process.stdin if stdin else None,
            output=_merge_streams(process.stdout, process.stderr),
            wait=wait,
            extra={"pid": process.pid},
        )

    async def _exec_tty(
        self, container: _Container, argv: list[str], env: dict[str, str], cwd: str | None
    ) -> ExecSession:
        if not self._setsid:
            raise RuntimeError_("a TTY exec needs setsid (util-linux), which is not installed")
        master, slave = os.openpty()
        env = {**env, "TERM": env.get("TERM", "xterm")}
        try:
            process = await asyncio.create_subprocess_exec(
                self._setsid, "--ctty", *argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self._join_cgroup(container, process.pid)
        os.set_blocking(master, False)
        terminal = _Terminal(master)

        async def wait() -> int:
            code = await process.wait()
            return code if code >= 0 else 128 - code

        return ExecSession(
            stdin=terminal,
            output=terminal.output(),
            wait=wait,
            resize=terminal.resize,
            extra={"pid": process.pid},
        )

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
        container = self._get(container_id)
        if not container.running:
            raise RuntimeError_(f"cannot attach to container {container_id}: it is not running")
        # Connect the socket ourselves: an abstract name ("\0...") is not a path every event
        # loop accepts (uvloop's unix connect refuses it), while an open socket is.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, "\0" + container.config["attach"])
            reader, writer = await asyncio.open_unix_connection(sock=sock)
        except OSError as exc:
            sock.close()
            raise RuntimeError_(f"cannot attach to container {container_id}: {exc}") from exc
        exit_code: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def output() -> AsyncIterator[tuple[int, bytes]]:
            try:
                while True:
                    header = await reader.readexactly(_FRAME.size)
                    channel, length = _FRAME.unpack(header)
                    payload = await reader.readexactly(length) if length else b""
                    if channel == CHANNEL_CONTROL:
                        if not exit_code.done():
                            exit_code.set_result(int(json.loads(payload)["exit_code"]))
                        return
                    yield channel, payload
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            finally:
                writer.close()

        async def wait() -> int:
            if not exit_code.done():
                status = await self.wait(container_id)
                return status.exit_code or 0
            return exit_code.result()

        resize = None
        if tty:

            def resize(width: int, height: int) -> None:
                writer.write(frame(CHANNEL_RESIZE, json.dumps({"width": width, "height": height}).encode()))

        return ExecSession(
            stdin=_FrameWriter(writer) if stdin else None,
            output=output(),
            wait=wait,
            resize=resize,
            extra={"container_id": container_id},
        )


class _FrameWriter:
    """The stdin side of an attach: bytes become stdin frames; close sends end-of-input."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> None:
        self._writer.write(frame(CHANNEL_STDIN, data))

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self._writer.write(frame(CHANNEL_CONTROL, b""))


class _Terminal:
    """A pseudo-terminal master seen as stdin writer, output stream and resize target."""

    def __init__(self, master: int) -> None:
        self._master = master
        self._pending = bytearray()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._closed = False

    def write(self, data: bytes) -> None:
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending and not self._closed:
            try:
                written = os.write(self._master, self._pending)
            except BlockingIOError:
                break
            except OSError:
                self._pending.clear()
                break
            del self._pending[:written]
        if self._pending:
            self._flushed.clear()
            loop.add_writer(self._master, self._writable)
        else:
            self._flushed.set()

    def _writable(self) -> None:
        asyncio.get_running_loop().remove_writer(self._master)
        self._flush()

    async def drain(self) -> None:
        await self._flushed.wait()

    def close(self) -> None:
        # A terminal has no half-close: send the EOF character, as ^D would.
        self.write(b"\x04")

    def resize(self, width: int, height: int) -> None:
        if not self._closed:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(self._master, readable.set)
        try:
            while True:
                try:
                    data = os.read(self._master, 65536)
                except BlockingIOError:
                    readable.clear()
                    await readable.wait()
                    continue
                except OSError:  # EIO: the last process holding the terminal has gone
                    return
                if not data:
                    return
                yield 1, data
        finally:
            loop.remove_reader(self._master)
            with contextlib.suppress(ValueError):
                loop.remove_writer(self._master)
            self._closed = True
            os.close(self._master)


async def _merge_streams(
    stdout: asyncio.StreamReader, stderr: asyncio.StreamReader
) -> AsyncIterator[tuple[int, bytes]]:
    queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

    async def pump(channel: int, stream: asyncio.StreamReader) -> None:
        try:
            while chunk := await stream.read(65536):
                await queue.put((channel, chunk))
        finally:
            await queue.put(None)

    pumps = [asyncio.create_task(pump(1, stdout)), asyncio.create_task(pump(2, stderr))]
    try:
        finished = 0
        while finished < 2:
            item = await queue.get()
            if item is None:
                finished += 1
                continue
            yield item
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


async def _read_handshake(fd: int, *, timeout: float) -> dict[str, Any] | None:  # noqa: ASYNC109
    """The shim's one-line report, or None if it closed the pipe (or timed out) without one."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    buffer = bytearray()

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        buffer.extend(chunk)
        if (not chunk or b"\n" in buffer) and not done.done():
            done.set_result(bytes(buffer))

    loop.add_reader(fd, readable)
    try:
        data = await asyncio.wait_for(done, timeout=timeout)
    except TimeoutError:
        return None
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    line = data.split(b"\n", 1)[0]
    if not line:
        return None
    try:
        return json.loads(line)
    except ValueError:
        return None


def _find_program(program: str, *, path: str, root: str, cwd: str) -> bool:
    """Whether execvp would find ``program`` in the container's view (``root`` prefixes host paths)."""
    if "/" in program:
        candidate = program if program.startswith("/") else os.path.join(cwd, program)
        full = root + candidate
        return os.path.isfile(full) and os.access(full, os.X_OK)
    for directory in path.split(":"):
        full = f"{root}{directory or '.'}/{program}"
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return True
    return False
