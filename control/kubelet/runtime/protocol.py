"""The CRI-like seam between the kubelet's pod workers and a container runtime.

Shaped after the CRI's RuntimeService (RunPodSandbox, CreateContainer, StartContainer,
StopContainer, ContainerStatus, ExecSync/Exec, ReopenContainerLog) but Python-sized:
the kubelet decides *what* should run; a runtime only knows *how*. The process runtime
(control.kubelet.runtime.process) runs each container as a host process group; tests may
use a fake runtime to inject faults.

The kubelet's HTTP API (logs, exec, attach, port-forward) depends on this protocol only.

Additions made with the process runtime (all additive, with defaults, so code written
against the first version keeps working): ``InvalidImageError`` and ``ExecTimeoutError``;
``ContainerConfig.labels``, ``stdin_once`` and ``cpu_request_millis``; ``ContainerStatus``
gained ``pod_uid``, ``attempt``, ``image``, ``image_id``, ``created_at`` and ``labels``
(what the kubelet needs to re-adopt containers after a restart, as CRI labels do);
``ImageInfo``, ``ContainerUsage`` and ``SandboxStatus``; and the methods ``image_info``
(CRI ImageStatus), ``wait`` (exit notification), ``remove_container`` (CRI
RemoveContainer), ``list_sandboxes``, ``usage`` (CRI ContainerStats, synchronous) and
``close``. Then ``SecurityConfig`` (CRI's LinuxContainerSecurityContext) as
``ContainerConfig.security``, and ``ImageInfo.uid``/``username`` (the user an image runs as,
as CRI ImageStatus reports it, for runAsNonRoot). Then ``ContainerStatus.user`` (CRI's
ContainerUser: the uid, gid and groups the container's process started with). Then
``SandboxConfig.runtime_handler`` (RunPodSandboxRequest's runtime_handler: the handler of the pod's
RuntimeClass, "" for the default) and ``RuntimeHandlerError`` for a handler the runtime has none for.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class RuntimeError_(Exception):
    """Base of runtime failures (kept distinct from Python's RuntimeError)."""


class ContainerNotFoundError(RuntimeError_):
    pass


class ImageNotSupportedError(RuntimeError_):
    """The image names nothing this runtime can run (the container stays Waiting)."""


class InvalidImageError(RuntimeError_):
    """The image reference does not parse (upstream's InvalidImageName)."""


class ExecTimeoutError(RuntimeError_):
    """``exec_sync`` ran out of time; the command was killed."""


class RuntimeHandlerError(RuntimeError_):
    """The sandbox asks for a runtime handler this runtime has no runtime for (the pod's sandbox is
    not created; the kubelet reports it and retries)."""


class ContainerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    pod_uid: str
    namespace: str
    name: str
    pod_ip: str
    hostname: str
    directory: Path  # pods/<ns>_<name>_<uid>/ under the data dir
    resolv_conf: str = ""  # contents of the pod's /etc/resolv.conf ("" = host's)
    hosts: str = ""  # contents of the pod's /etc/hosts
    runtime_handler: str = ""  # the pod's RuntimeClass handler ("" = the runtime's default)


@dataclass(frozen=True, kw_only=True)
class Mount:
    host_path: Path
    container_path: str
    read_only: bool = False


@dataclass(frozen=True, kw_only=True)
class SecurityConfig:
    """CRI's LinuxContainerSecurityContext: the pod's and the container's securityContext
    merged by the kubelet (control.kubelet.runtime.security.container_security)."""

    run_as_user: int | None = None  # None: the image's user
    run_as_group: int | None = None  # None: that user's primary group
    supplemental_groups: tuple[int, ...] = ()  # the pod's supplementalGroups and fsGroup
    supplemental_groups_policy: str = "Merge"  # Merge: also the user's groups from /etc/group
    privileged: bool = False
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    no_new_privs: bool = False
    readonly_rootfs: bool = False


@dataclass(frozen=True, kw_only=True)
class ContainerConfig:
    name: str
    image: str
    command: Sequence[str]  # resolved: entrypoint + args after $(VAR) expansion
    env: Mapping[str, str]
    working_dir: str = ""
    mounts: Sequence[Mount] = ()
    log_path: Path = Path()  # the CRI log file this attempt writes
    restart_count: int = 0
    stdin: bool = False
    stdin_once: bool = False  # close the container's stdin when the first attach that used it ends
    tty: bool = False
    memory_limit_bytes: int | None = None
    cpu_limit_millis: int | None = None
    cpu_request_millis: int | None = None  # relative CPU weight (cgroup shares/weight)
    # CRI-style labels (io.kubernetes.container.name, ...): stored with the container and
    # returned in its status, so a restarted kubelet can tell what each container is.
    labels: Mapping[str, str] = field(default_factory=dict)
    security: SecurityConfig | None = None  # None: the runtime's defaults (as an empty securityContext)


@dataclass(frozen=True, kw_only=True)
class ContainerUser:
    """CRI's (Linux) ContainerUser: the identity the container's first process started with."""

    uid: int
    gid: int
    supplemental_groups: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ContainerStatus:
    id: str
    name: str
    state: ContainerState
    pid: int | None = None
    started_at: float | None = None  # epoch seconds
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str = ""  # Completed, Error, OOMKilled, StartError, ContainerStatusUnknown
    message: str = ""
    log_path: Path = Path()
    pod_uid: str = ""
    attempt: int = 0  # ContainerConfig.restart_count of this container
    image: str = ""
    image_id: str = ""
    created_at: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    user: ContainerUser | None = None  # None: the runtime does not report it


@dataclass(frozen=True, kw_only=True)
class ImageInfo:
    """What an image provides, as CRI ImageStatus reports an image's config."""

    image: str  # the reference as given
    image_id: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = ""
    uid: int | None = None  # the numeric user the image runs as, when known
    username: str = ""  # the image's user when it is a name


@dataclass(frozen=True, kw_only=True)
class ContainerUsage:
    """One reading of a container's resource usage (cumulative CPU, current memory)."""

    timestamp: float  # epoch seconds
    cpu_usage_core_nanoseconds: int
    memory_usage_bytes: int
    memory_working_set_bytes: int
    memory_rss_bytes: int
    processes: int = 0


@dataclass(frozen=True, kw_only=True)
class SandboxStatus:
    pod_uid: str
    namespace: str
    name: str
    pod_ip: str
    directory: Path
    created_at: float


@dataclass(frozen=True, kw_only=True)
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


@dataclass(kw_only=True)
class ExecSession:
    """A running exec: write to ``stdin`` (None when not requested), read ``output``
    chunks tagged 1 (stdout) or 2 (stderr), ``resize`` a TTY, await ``wait()`` for the
    exit code."""

    stdin: object | None  # asyncio.StreamWriter-like (write/drain/close)
    output: AsyncIterator[tuple[int, bytes]]
    wait: object  # Callable[[], Awaitable[int]]
    resize: object | None = None  # Callable[[int, int], None] (width, height)
    extra: dict[str, object] = field(default_factory=dict)


class Runtime(Protocol):
    async def run_sandbox(self, config: SandboxConfig) -> None:
        """Prepare the pod's sandbox (directories, namespaces, resolv.conf, hosts)."""

    async def remove_sandbox(self, pod_uid: str) -> None: ...

    async def create_and_start(self, pod_uid: str, config: ContainerConfig) -> str:
        """Start one container attempt; returns its container id."""

    async def stop(self, container_id: str, *, grace_seconds: float) -> None:
        """SIGTERM the container's process group, SIGKILL after ``grace_seconds``."""

    async def status(self, container_id: str) -> ContainerStatus: ...

    async def list_containers(self) -> list[ContainerStatus]:
        """Every container this runtime knows, including ones adopted after a restart."""

    async def exec_sync(
        self,
        container_id: str,
        command: Sequence[str],
        *,
        timeout: float,  # noqa: ASYNC109 - CRI ExecSync's timeout
    ) -> ExecResult:
        """Run a command in the container's context (env, cwd, mounts); for exec probes."""

    async def exec(self, container_id: str, command: Sequence[str], *, stdin: bool, tty: bool) -> ExecSession:
        """An interactive exec for `kubectl exec` (TTY when ``tty``)."""

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
        """Attach to the container's main process stdio (`kubectl attach`)."""

    def log_path(self, container_id: str) -> Path: ...

    async def image_info(self, image: str) -> ImageInfo:
        """The image's config; ``InvalidImageError`` or ``ImageNotSupportedError`` otherwise."""

    async def wait(self, container_id: str) -> ContainerStatus:
        """Return once the container has exited (at once if it already has)."""

    async def remove_container(self, container_id: str) -> None:
        """Forget an exited container and delete its records (its log file is the kubelet's)."""

    async def list_sandboxes(self) -> list[SandboxStatus]: ...

    def usage(self, container_id: str) -> ContainerUsage | None:
        """Current usage of a running container; None once it has exited or is unknown.

        Synchronous (a few small file reads) so stats can be sampled from any code path."""

    async def close(self) -> None:
        """Stop watching containers; the containers themselves keep running."""
