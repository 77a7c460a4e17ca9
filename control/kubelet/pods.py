"""Pod workers: one per pod bound to this node, reconciling the pod object with the runtime.

:class:`PodManager` follows the pods with ``spec.nodeName=<node>`` (an informer) and keeps
one :class:`PodWorker` — one asyncio task — per pod UID. A worker wakes when its pod
changes, a container exits, a probe verdict changes, a referenced ConfigMap or Secret
changes, a back-off expires, or every ``resync_interval``; it then runs :meth:`PodWorker.sync`,
which does what ``SyncPod`` does:

1. a pod being deleted (``deletionTimestamp``) or gone from the API is terminated: probes
   stop, every running container gets its ``preStop`` hook, SIGTERM, and SIGKILL after the
   grace period (the pod's ``deletionGracePeriodSeconds``, at least 2 s, as upstream); its
   final status is written, and the pod object is deleted with ``gracePeriodSeconds=0``
   (UID precondition). Once the object is gone, its volumes, IP, sandbox and logs go too;
2. the sandbox: the handler of the pod's RuntimeClass (``spec.runtimeClassName``; the process
   runtime has only ``runc``, any other handler or a missing class is a ``FailedCreatePodSandBox``
   event and the pod stays ``ContainerCreating``, retried), a pod IP from the node's pod CIDR
   (``spec.podCIDR``, or ``127.244.N.0/24`` for node IP ``127.100.0.N`` until the node-IPAM
   controller assigns one), the pod's ``resolv.conf`` and ``hosts``
   (:mod:`control.kubelet.dns`), then its volumes
   (:mod:`control.kubelet.volumes`; a failure is a ``FailedMount`` event and the pod stays
   ``ContainerCreating``);
3. init containers one at a time, in order; a failed one is restarted (with back-off)
   unless ``restartPolicy`` is ``Never``, which fails the pod. A *sidecar* (an init
   container with ``restartPolicy: Always``) is started in its turn and the next one follows
   as soon as it has started (its startup probe passed); it keeps running beside the
   containers, is restarted whenever it exits (with back-off, whatever the pod's
   ``restartPolicy``), does not keep a pod whose containers have all finished from
   completing, and is stopped last — after the containers, in reverse order. Ephemeral
   containers (added through ``pods/ephemeralcontainers``, as ``kubectl debug`` does) are
   started once the pod is initialized and never restarted;
4. then the containers: started when never started; restarted after exiting as
   ``restartPolicy`` says (``Always``; ``OnFailure`` after a non-zero exit; never with
   ``Never``), the first restart at once and then after ``CrashLoopBackOff`` delays of 10 s
   doubling to 5 min (reset once a container ran 10 min; all configurable); restarted when
   a liveness or startup probe says so;
5. a pod running longer than its ``activeDeadlineSeconds`` (from ``startTime``) is failed as
   upstream's activeDeadlineHandler does: a ``DeadlineExceeded`` event, its containers
   stopped within the grace period, phase ``Failed`` with reason ``DeadlineExceeded``;
6. the status is written (:mod:`control.kubelet.status`).

Starting a container: its image (:meth:`Runtime.image_info`: ``InvalidImageName``, or
``ErrImagePull`` then ``ImagePullBackOff`` with the same back-off, for images the runtime
cannot run), its environment (:mod:`control.kubelet.env`; ``CreateContainerConfigError``),
its command (``$(VAR)`` expanded), its mounts (``subPath``/``subPathExpr`` included), its
securityContext (:mod:`control.kubelet.runtime.security`: runAsNonRoot refusals are
``CreateContainerConfigError``; fsGroup is applied to the volumes), limits, and the CRI log
file ``<sandbox>/<container>/<restart>.log`` with its ``containers/`` link, and (with mount
namespaces) the termination-message file bound at ``terminationMessagePath``, read into the
attempt's message when it exits (:func:`control.kubelet.logs.termination_message`).
A command that cannot be executed ends the attempt with ``StartError`` (exit code 128)
and the container waits with ``RunContainerError``, then ``CrashLoopBackOff``. ``postStart``
runs before the container counts as started; if it fails the container is killed
(``FailedPostStartHook``). Only the newest two attempts of a container are kept (for
``lastState`` and ``kubectl logs --previous``).

Events are upstream's: ``Pulled``, ``Created``, ``Started``, ``Killing``, ``BackOff``,
``Unhealthy``, ``Failed``, ``FailedMount``, ``FailedPostStartHook``, ``FailedPreStopHook``,
``DNSConfigForming``, ``DeadlineExceeded``, and one ``ProcessRuntimeLimits`` warning per pod
when the runtime cannot isolate it (not root, no cgroups) or does not apply part of its
securityContext.

On start, the manager lets workers re-adopt containers the runtime already runs (after a
node agent restart nothing is started twice), and terminates containers of pods the API
no longer has (grace 1 s, as the kubelet's orphan cleanup).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import ipaddress
import logging
import math
import os
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from control.client import errors
from control.client.informer import DeletedFinalStateUnknown, SharedInformer
from control.client.rest import Preconditions, Resource, RESTClient
from control.controllers.events import EventRecorder
from control.kubelet import dns, logs
from control.kubelet.env import EnvError, build_env, expand, expand_command, mapping_for
from control.kubelet.ipam import HostLocalIPAM, IPAMError
from control.kubelet.node import NodeStatus
from control.kubelet.objectcache import CONFIG_MAPS, SECRETS, ObjectUnavailableError, ReferencedObjects
from control.kubelet.probes import ContainerProbes, Outcome, Result, run_action
from control.kubelet.runtime.images import effective_command
from control.kubelet.runtime.protocol import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    ImageNotSupportedError,
    InvalidImageError,
    Mount,
    Runtime,
    RuntimeError_,
    SandboxConfig,
    SandboxStatus,
)
from control.kubelet.runtime.security import (
    SecurityContextError,
    VolumeOwnership,
    VolumeOwnershipError,
    container_security,
    unapplied,
    verify_run_as_non_root,
)
from control.kubelet.status import (
    PODS,
    ContainerView,
    PodView,
    StatusManager,
    generate_status,
    is_sidecar,
    rfc3339,
)
from control.kubelet.volumes import PodVolumes, VolumeError, VolumeManager
from control.resources.validation import InvalidQuantityError, Quantity

log = logging.getLogger("kubelab.kubelet.pods")

Obj = dict[str, Any]
MINIMUM_GRACE_SECONDS = 2.0
ORPHAN_GRACE_SECONDS = 1.0
EVENT_QUEUE_SIZE = 1000
EVENT_WRITERS = 2
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_INIT = "io.kubelab.container.init"
RUNTIME_CLASSES = Resource(
    group="node.k8s.io", version="v1", plural="runtimeclasses", kind="RuntimeClass", namespaced=False
)
# pkg/kubelet/active_deadline.go
DEADLINE_EXCEEDED = "DeadlineExceeded"
DEADLINE_EXCEEDED_MESSAGE = "Pod was active on the node longer than the specified deadline"


@dataclass(frozen=True, kw_only=True)
class KubeletOptions:
    cluster_dns: tuple[str, ...] = ("127.96.0.10",)
    cluster_domain: str = "cluster.local"
    pod_cidr_fallback: str = ""  # "" = 127.244.N.0/24 from the node IP 127.100.0.N
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    backoff_reset: float = 600.0  # a container that ran this long starts its back-off afresh
    resync_interval: float = 10.0
    retry_interval: float = 2.0  # after a failed sync step (volumes, sandbox)
    host_resolv_conf: Path = dns.HOST_RESOLV_CONF
    host_hosts: Path = dns.HOST_HOSTS


class RuntimeClassLookupError(Exception):
    """The pod's RuntimeClass could not be read (the message is the event's, after its prefix)."""


class LogUnavailableError(Exception):
    """No log for that container (the message is the kubelet's, for the HTTP answer)."""


@dataclass(frozen=True, kw_only=True)
class LogSource:
    """Where a container's log is, for :func:`control.kubelet.logs.read_container_log`."""

    path: Path
    container_id: str
    still_running: Callable[[], bool]


class Backoff:
    """flowcontrol.Backoff as the kubelet uses it for crash loops and image pulls.

    A failure at ``at`` is in back-off while ``at + delay`` is in the future; each restart
    after a back-off doubles the delay up to ``maximum``; a failure more than ``reset`` after
    the last restart starts again from ``initial`` (and restarts at once).
    """

    def __init__(self, *, initial: float, maximum: float, reset: float) -> None:
        self.initial, self.maximum, self.reset = initial, maximum, reset
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (delay, last update)

    def remaining(self, key: str, *, since: float, now: float) -> float:
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        delay, updated = entry
        if since - updated > self.reset:
            return 0.0
        return max(0.0, since + delay - now)

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry[0] if entry else self.initial

    def next(self, key: str, *, at: float) -> None:
        entry = self._entries.get(key)
        if entry is None or at - entry[1] > self.reset:
            self._entries[key] = (self.initial, at)
        else:
            self._entries[key] = (min(entry[0] * 2, self.maximum), at)

    def forget_prefix(self, prefix: str) -> None:
        for key in [key for key in self._entries if key.startswith(prefix)]:
            del self._entries[key]


def _quantity_int(value: Any, *, scale: int = 1) -> int | None:
    if value in (None, ""):
        return None
    try:
        return math.ceil(Quantity.parse(value).value * scale)
    except InvalidQuantityError:
        return None


def _format_duration(seconds: float) -> str:
    """Go's time.Duration String for whole seconds/minutes: 10s, 1m20s, 5m0s."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{rest}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{rest}s"


# ---------------------------------------------------------------------------- per container


@dataclass(kw_only=True)
class _Container:
    spec: Obj
    init: bool
    ephemeral: bool = False
    current: ContainerStatus | None = None
    previous: ContainerStatus | None = None
    waiting_reason: str = ""
    waiting_message: str = ""
    probes: ContainerProbes | None = None
    watcher: asyncio.Task[None] | None = None
    adopted_ready: bool | None = None
    adopted_started: bool | None = None

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.state is ContainerState.RUNNING

    @property
    def exited(self) -> bool:
        return self.current is not None and self.current.state is ContainerState.EXITED

    @property
    def restart_count(self) -> int:
        return self.current.attempt if self.current is not None else 0

    def view(self) -> ContainerView:
        ready = started = False
        if self.running:
            if self.probes is not None:
                ready, started = self.probes.ready, self.probes.started
            else:
                ready = self.adopted_ready if self.adopted_ready is not None else True
                started = self.adopted_started if self.adopted_started is not None else True
        return ContainerView(
            name=self.name,
            image=self.spec.get("image", ""),
            current=self.current,
            previous=self.previous,
            restart_count=self.restart_count,
            waiting_reason=self.waiting_reason,
            waiting_message=self.waiting_message,
            ready=ready,
            started=started,
        )


# ---------------------------------------------------------------------------- the manager


class PodManager:
    """All pod workers of this node, and what the kubelet's HTTP API asks about pods."""

    def __init__(
        self,
        *,
        client: RESTClient,
        runtime: Runtime,
        node: NodeStatus,
        pods: SharedInformer,
        services: SharedInformer,
        recorder: EventRecorder,
        data_dir: Path,
        options: KubeletOptions | None = None,
        namespaces: bool = True,
        limitations: Iterable[str] = (),
    ) -> None:
        self.client = client
        self.runtime = runtime
        self.node = node
        self.pods_informer = pods
        self.services = services
        self.recorder = recorder
        self.data_dir = data_dir
        self.options = options or KubeletOptions()
        self.namespaces = namespaces
        self.limitations = list(limitations)
        self.pods_root = data_dir / "pods"
        self.containers_dir = data_dir / "containers"
        self.host_resolv_conf = dns.HostFile(self.options.host_resolv_conf)
        self.host_hosts = dns.HostFile(self.options.host_hosts)
        self.status = StatusManager(client=client)
        self.objects = ReferencedObjects(client=client, on_change=self._objects_changed)
        self.volumes = VolumeManager(
            client=client, objects=self.objects, ca_bundle=client.config.ca_data, use_tmpfs=namespaces
        )
        self.crash_backoff = Backoff(
            initial=self.options.backoff_initial,
            maximum=self.options.backoff_max,
            reset=self.options.backoff_reset,
        )
        self.image_backoff = Backoff(
            initial=self.options.backoff_initial,
            maximum=self.options.backoff_max,
            reset=self.options.backoff_reset,
        )
        self.workers: dict[str, PodWorker] = {}
        self._ipams: dict[str, HostLocalIPAM] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._event_queue: asyncio.Queue[tuple[Obj, str, str, str]] = asyncio.Queue(maxsize=EVENT_QUEUE_SIZE)
        self._adopted: dict[str, list[ContainerStatus]] = {}
        self._sandboxes: dict[str, SandboxStatus] = {}
        self._started = False
        pods.add_event_handler(on_add=self._on_add, on_update=self._on_update, on_delete=self._on_delete)

    # ------------------------------------------------------------------ start and stop

    async def start(self) -> None:
        """Re-adopt what the runtime runs, then start a worker per pod (call after the
        pods informer has synced), and end what belongs to pods the API no longer has."""
        for index in range(EVENT_WRITERS):
            self._spawn(self._write_events(), name=f"event writer {index}")
        containers = await self.runtime.list_containers()
        for status in containers:
            self._adopted.setdefault(status.pod_uid, []).append(status)
        self._sandboxes = {sandbox.pod_uid: sandbox for sandbox in await self.runtime.list_sandboxes()}
        for ipam in HostLocalIPAM.existing(self.data_dir / "ipam"):
            self._ipams[str(ipam.network)] = ipam
        self._started = True
        known = set()
        for pod in self.pods_informer.cache.list():
            known.add(pod["metadata"]["uid"])
            self._ensure_worker(pod)
        for uid in set(self._sandboxes) | set(self._adopted):
            if uid not in known:
                self._spawn(self._clean_orphan(uid), name=f"orphan {uid}")

    async def shutdown(self, *, stop_containers: bool, grace_seconds: float = 10.0) -> None:
        """Stop the workers. With ``stop_containers`` their containers are stopped too
        (within ``grace_seconds``); otherwise they keep running for the next agent."""
        workers = list(self.workers.values())
        tasks = [worker.task for worker in workers if worker.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in workers:
            await worker.stop_watching()
        if stop_containers:
            stops = []
            for status in await self.runtime.list_containers():
                if status.state is ContainerState.RUNNING:
                    stops.append(self.runtime.stop(status.id, grace_seconds=grace_seconds))
            await asyncio.gather(*stops, return_exceptions=True)
            # Nothing runs any more: memory-backed volumes go, as they would on a reboot.
            for worker in workers:
                with contextlib.suppress(VolumeError):
                    self.volumes.unmount(worker.sandbox_dir)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.objects.close()

    def _spawn(self, coroutine: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _clean_orphan(self, uid: str) -> None:
        try:
            for status in self._adopted.pop(uid, []):
                if status.state is ContainerState.RUNNING:
                    await self.runtime.stop(status.id, grace_seconds=ORPHAN_GRACE_SECONDS)
            sandbox = self._sandboxes.pop(uid, None)
            if sandbox is not None:
                await self.volumes.teardown(uid, sandbox.directory)
                self._remove_links(sandbox.namespace, sandbox.name)
            await self.runtime.remove_sandbox(uid)
            self.release_ip(uid)
            log.info("cleaned up orphaned pod %s", uid)
        except Exception:
            log.exception("cleaning up orphaned pod %s failed", uid)

    def _remove_links(self, namespace: str, name: str) -> None:
        if not self.containers_dir.is_dir():
            return
        prefix = f"{name}_{namespace}_"
        for entry in os.scandir(self.containers_dir):
            if entry.name.startswith(prefix):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    # ------------------------------------------------------------------ informer events

    def _ensure_worker(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is None:
            worker = PodWorker(
                self, pod, adopted=self._adopted.pop(uid, []), sandbox=self._sandboxes.pop(uid, None)
            )
            self.workers[uid] = worker
            worker.start()
        else:
            worker.update(pod)

    def _on_add(self, pod: Obj) -> None:
        if self._started:
            self._ensure_worker(pod)

    def _on_update(self, old: Obj, new: Obj) -> None:
        if self._started:
            self._ensure_worker(new)

    def _on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if not isinstance(pod, dict):
            return
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.removed_from_api()

    def _objects_changed(self, key: tuple[str, str, str], holders: set[str]) -> None:
        for uid in holders:
            worker = self.workers.get(uid)
            if worker is not None:
                worker.volumes_dirty = True
                worker.wake()

    def worker_done(self, worker: PodWorker) -> None:
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]

    # ------------------------------------------------------------------ shared services

    def event(self, pod: Obj, *, type: str, reason: str, message: str) -> None:
        """Record an event about ``pod`` without waiting for it. Events are best effort, as
        upstream's broadcaster: queued, written by a few writers (so a burst of pods does not
        open a connection per event), and dropped when the queue is full."""
        try:
            self._event_queue.put_nowait((pod, type, reason, message))
        except asyncio.QueueFull:
            log.warning(
                "event queue full; dropping %s %s for pod %s", type, reason, pod["metadata"].get("name")
            )

    async def _write_events(self) -> None:
        while True:
            pod, type_, reason, message = await self._event_queue.get()
            await self.recorder.event(pod, type=type_, reason=reason, message=message)

    def ipam(self) -> HostLocalIPAM:
        """The address range of the node's current pod CIDR."""
        cidr = self.node.pod_cidr or self.options.pod_cidr_fallback or fallback_pod_cidr(self.node.node_ip)
        ipam = self._ipams.get(cidr)
        if ipam is None:
            ipam = HostLocalIPAM(directory=self.data_dir / "ipam", cidr=cidr)
            self._ipams[str(ipam.network)] = self._ipams[cidr] = ipam
        return ipam

    def release_ip(self, uid: str) -> None:
        """Free the pod's address, whichever range it came from (the pod CIDR may have changed)."""
        for ipam in set(self._ipams.values()):
            ipam.release(uid)

    # ------------------------------------------------------------------ for the HTTP API

    def running_pods(self) -> list[Obj]:
        """The pod objects this kubelet runs (the kubelet's ``/pods``)."""
        return [copy.deepcopy(worker.pod) for worker in self.workers.values() if not worker.finished]

    def find(self, namespace: str, name: str) -> PodWorker | None:
        for worker in self.workers.values():
            metadata = worker.pod["metadata"]
            if (
                metadata.get("namespace") == namespace
                and metadata.get("name") == name
                and not worker.finished
            ):
                return worker
        return None

    def log_source(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> LogSource:
        """Which log file ``kubectl logs [--previous]`` means (validateContainerLogStatus)."""
        worker = self.find(namespace, pod)
        if worker is None:
            raise LogUnavailableError(f'pod "{pod}" cannot be found - no logs available')
        record = worker.containers.get(container)
        if record is None:
            raise LogUnavailableError(f'container "{container}" in pod "{pod}" is not available')
        if previous:
            # The status's lastState: the attempt before a running (or finished) one, or the
            # attempt that just ended while the container waits to be restarted.
            target = record.current if record.exited and record.waiting_reason else record.previous
            if target is None or target.state is not ContainerState.EXITED:
                raise LogUnavailableError(
                    f'previous terminated container "{container}" in pod "{pod}" not found'
                )
        elif record.current is not None:
            target = record.current
        else:
            reason = record.waiting_reason or (
                "PodInitializing" if worker.pod["spec"].get("initContainers") else "ContainerCreating"
            )
            if reason == "ErrImagePull":
                raise LogUnavailableError(
                    f'container "{container}" in pod "{pod}" is waiting to start: image can\'t be pulled'
                )
            if reason == "ImagePullBackOff":
                raise LogUnavailableError(
                    f'container "{container}" in pod "{pod}" is waiting to start: trying and failing to pull image'
                )
            raise LogUnavailableError(f'container "{container}" in pod "{pod}" is waiting to start: {reason}')
        container_id = target.id

        def still_running() -> bool:
            current = record.current
            return (
                current is not None and current.id == container_id and current.state is ContainerState.RUNNING
            )

        return LogSource(path=target.log_path, container_id=container_id, still_running=still_running)


def fallback_pod_cidr(node_ip: str) -> str:
    """``127.244.N.0/24`` for node ``127.100.0.N`` (the lab's address plan)."""
    try:
        number = int(ipaddress.ip_address(node_ip).packed[-1])
    except ValueError:
        number = 1
    return f"127.244.{number}.0/24"


# ---------------------------------------------------------------------------- one pod


class PodWorker:
    def __init__(
        self, manager: PodManager, pod: Obj, *, adopted: list[ContainerStatus], sandbox: SandboxStatus | None
    ) -> None:
        self.manager = manager
        self.runtime = manager.runtime
        self.options = manager.options
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._wake.set()
        self.deleted = False
        self.finished = False
        self.terminated = False  # every container stopped for good (terminal phase or deletion)
        self.initialized = False  # every init container completed (sidecars: started) once
        self.failure: tuple[str, str] | None = None  # (reason, message) when this kubelet failed the pod
        self.sandbox_ready = False
        self.pod_ips: list[str] = []
        self.start_time = (pod.get("status") or {}).get("startTime")
        self.volumes: PodVolumes | None = None
        self.volumes_dirty = True
        self._warned_limits = False
        self._mount_failure = ""
        self._ownership = VolumeOwnership(pod)  # fsGroup, applied to volumes as they are (re)written
        self._resolver: dns.ResolverConfig | None = None
        self.sandbox_dir = logs.pod_directory(
            manager.pods_root,
            namespace=pod["metadata"]["namespace"],
            name=pod["metadata"]["name"],
            uid=self.uid,
        )
        if sandbox is not None:
            self.sandbox_dir = sandbox.directory
            self.pod_ips = [sandbox.pod_ip] if sandbox.pod_ip else []
        self.containers: dict[str, _Container] = {}
        for container in pod["spec"].get("initContainers") or ():
            self.containers[container["name"]] = _Container(spec=container, init=True)
        for container in pod["spec"].get("containers") or ():
            self.containers[container["name"]] = _Container(spec=container, init=False)
        self._add_ephemeral_containers()
        self._adopt(adopted)

    def _add_ephemeral_containers(self) -> None:
        """Ephemeral containers (``kubectl debug``) are only ever added to a pod, never changed."""
        for container in self.pod["spec"].get("ephemeralContainers") or ():
            if container["name"] not in self.containers:
                self.containers[container["name"]] = _Container(spec=container, init=False, ephemeral=True)

    # ------------------------------------------------------------------ identity

    @property
    def namespace(self) -> str:
        return self.pod["metadata"]["namespace"]

    @property
    def name(self) -> str:
        return self.pod["metadata"]["name"]

    def _key(self, container: _Container) -> str:
        return f"{self.uid}/{container.name}"

    def _describe(self) -> str:
        return f"{self.name}_{self.namespace}({self.uid})"

    def event(self, type: str, reason: str, message: str) -> None:
        self.manager.event(self.pod, type=type, reason=reason, message=message)

    # ------------------------------------------------------------------ adoption

    def _adopt(self, adopted: list[ContainerStatus]) -> None:
        """Take over containers the runtime already had for this pod (node agent restart)."""
        by_name: dict[str, list[ContainerStatus]] = {}
        for status in adopted:
            by_name.setdefault(status.labels.get(LABEL_CONTAINER_NAME, status.name), []).append(status)
        reported = {}
        for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
            for entry in (self.pod.get("status") or {}).get(key) or ():
                reported[entry.get("containerID", "")] = entry
        for name, statuses in by_name.items():
            record = self.containers.get(name)
            if record is None:
                continue
            statuses.sort(key=lambda status: (status.attempt, status.created_at or 0))
            statuses = [
                self._with_termination_message(record, status)
                if status.state is ContainerState.EXITED
                else status
                for status in statuses[-2:]
            ]
            record.current = statuses[-1]
            record.previous = statuses[-2] if len(statuses) > 1 else None
            api = reported.get("kubelab://" + record.current.id)
            if api is not None:
                record.adopted_ready = bool(api.get("ready"))
                record.adopted_started = bool(api.get("started"))
            if record.running:
                self._watch_exit(record)
        if adopted:
            self.sandbox_ready = bool(self.pod_ips) or bool(self.pod["spec"].get("hostNetwork"))

    def _observe(self, record: _Container, status: ContainerStatus) -> None:
        """Take a newer runtime status of the container's current attempt."""
        known = record.current
        if (
            known is not None
            and known.id == status.id
            and known.state is status.state is ContainerState.EXITED
            and known.reason == status.reason
        ):
            status = dataclasses.replace(status, message=known.message)  # read once, when it exited
        elif status.state is ContainerState.EXITED:
            status = self._with_termination_message(record, status)
        record.current = status

    def _with_termination_message(self, record: _Container, status: ContainerStatus) -> ContainerStatus:
        """convertToKubeContainerStatus: an exited attempt's message, enriched with what it left
        at its terminationMessagePath (or, under FallbackToLogsOnError, its log's tail)."""
        fallback_to_logs = (
            record.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"
            and status.exit_code not in (0, None)
            and status.reason != "ContainerCannotRun"
        )
        message_file = (
            logs.termination_message_path(
                self.sandbox_dir, container=record.name, restart_count=status.attempt
            )
            if self.manager.namespaces and record.spec.get("terminationMessagePath")
            else None
        )
        text = logs.termination_message(
            message_file=message_file, log_path=status.log_path, fallback_to_logs=fallback_to_logs
        )
        if not text:
            return status
        return dataclasses.replace(status, message=f"{status.message}: {text}" if status.message else text)

    # ------------------------------------------------------------------ wake-ups

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"pod {self.namespace}/{self.name}")

    def wake(self) -> None:
        self._wake.set()

    def update(self, pod: Obj) -> None:
        old = self.pod
        self.pod = pod
        if _meaningful_change(old, pod):
            if old["metadata"].get("labels") != pod["metadata"].get("labels") or old["metadata"].get(
                "annotations"
            ) != pod["metadata"].get("annotations"):
                self.volumes_dirty = True
            for container in list(pod["spec"].get("initContainers") or ()) + list(
                pod["spec"].get("containers") or ()
            ):
                record = self.containers.get(container["name"])
                if record is not None:
                    record.spec = container
            self._add_ephemeral_containers()
            self.wake()

    def removed_from_api(self) -> None:
        self.deleted = True
        self.wake()

    async def run(self) -> None:
        try:
            while not self.finished:
                delay: float | None = None
                try:
                    delay = await self.sync()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("syncing pod %s/%s failed; retrying", self.namespace, self.name)
                    delay = self.options.retry_interval
                if self.finished:
                    break
                timeout = (
                    self.options.resync_interval
                    if delay is None
                    else min(delay, self.options.resync_interval)
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(timeout, 0.01))
                self._wake.clear()
        finally:
            if self.finished:
                self.manager.worker_done(self)

    async def stop_watching(self) -> None:
        for record in self.containers.values():
            if record.probes is not None:
                await record.probes.stop()
                record.probes = None
            if record.watcher is not None:
                record.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await record.watcher
                record.watcher = None

    def _watch_exit(self, record: _Container) -> None:
        assert record.current is not None
        container_id = record.current.id

        async def watch() -> None:
            status = await self.runtime.wait(container_id)
            if record.current is not None and record.current.id == container_id:
                self._observe(record, status)
            self.wake()

        if record.watcher is not None:
            record.watcher.cancel()
        record.watcher = asyncio.create_task(watch(), name=f"exit {self.name}/{record.name}")

    # ------------------------------------------------------------------ sync

    async def sync(self) -> float | None:
        """Bring the pod one step closer to its spec; returns when to look again (seconds)."""
        pod = self.pod
        if self.deleted or pod["metadata"].get("deletionTimestamp"):
            return await self._terminate()
        await self._refresh()
        if self.terminated or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            # A terminal pod never runs again, whoever made it terminal.
            self.terminated = True
            await self._stop_probes()
            await self._stop_containers(grace=self._grace())
            await self._push_status()
            return None
        deadline_in = self._active_deadline_remaining()
        if deadline_in is not None and deadline_in <= 0:
            await self._exceed_active_deadline()
            return None
        if not self.sandbox_ready:
            try:
                await self._prepare_sandbox()
            except (IPAMError, OSError, RuntimeError_, RuntimeClassLookupError) as exc:
                self.event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
                await self._push_status()
                return self.options.retry_interval
        if (
            self.volumes is not None
            and self.volumes.next_refresh is not None
            and time.time() >= self.volumes.next_refresh
        ):
            self.volumes_dirty = True  # a projected token is due for renewal
        if (self.volumes is None or self.volumes_dirty) and not await self._setup_volumes():
            await self._push_status()
            return self.options.retry_interval
        wake_in: list[float] = []
        if self.volumes is not None and self.volumes.next_refresh is not None:
            wake_in.append(max(0.0, self.volumes.next_refresh - time.time()))
        deadline_in = self._active_deadline_remaining()
        if deadline_in is not None:
            wake_in.append(max(0.0, deadline_in))
        policy = pod["spec"].get("restartPolicy") or "Always"

        for record in self.containers.values():
            if not record.running:
                continue
            assert record.current is not None
            if record.probes is not None and record.probes.restart_reason:
                await self._kill(record, grace=self._grace(), message=record.probes.restart_reason)
            elif record.current.image != record.spec.get("image"):
                await self._kill(
                    record,
                    grace=self._grace(),
                    message=f"Container {record.name} definition changed, will be restarted",
                )

        initialized = self.initialized or await self._initialize(policy, wake_in)
        if initialized:
            self.initialized = True
            for record in (r for r in self.containers.values() if r.init and is_sidecar(r.spec)):
                if not record.running:
                    delay = await self._start_or_back_off(record)
                    if delay is not None:
                        wake_in.append(delay)
            for record in (r for r in self.containers.values() if r.ephemeral and r.current is None):
                delay = await self._start_or_back_off(record)  # started once, never restarted
                if delay is not None:
                    wake_in.append(delay)
            for record in (r for r in self.containers.values() if not r.init and not r.ephemeral):
                if record.running:
                    continue
                if record.exited and not _will_restart(record, policy):
                    record.waiting_reason = ""
                    continue
                delay = await self._start_or_back_off(record)
                if delay is not None:
                    wake_in.append(delay)
            regular = [r for r in self.containers.values() if not r.init and not r.ephemeral]
            if regular and all(r.exited and not _will_restart(r, policy) for r in regular):
                self.terminated = True  # nothing will restart: the pod is done (Succeeded/Failed)
                await self._stop_probes()
                await self._stop_containers(grace=self._grace())  # the sidecars
            elif any(r.exited and _will_restart(r, policy) and not r.waiting_reason for r in regular):
                self.wake()  # killed during this sync (a hook or probe): restart it next time round
        await self._push_status()
        return min(wake_in) if wake_in else None

    async def _initialize(self, policy: str, wake_in: list[float]) -> bool:
        """One step of the init containers, in order; whether they are all done (sidecars: started)."""
        for record in (r for r in self.containers.values() if r.init):
            if is_sidecar(record.spec):
                if not record.running:
                    delay = await self._start_or_back_off(record)
                    if delay is not None:
                        wake_in.append(delay)
                if record.running and record.view().started:
                    continue
                return False
            if record.exited and record.current is not None and record.current.exit_code == 0:
                record.waiting_reason = ""
                continue
            if record.running:
                return False
            if record.exited and policy == "Never":
                await self._fail_pod()
                return False
            delay = await self._start_or_back_off(record)
            if delay is not None:
                wake_in.append(delay)
            return False
        return True

    async def _stop_containers(self, *, grace: float) -> None:
        """Upstream's termination order: the containers (and a running init container) together,
        then the sidecars one at a time, last started first, within the same grace period."""
        deadline = time.monotonic() + grace
        first = [r for r in self.containers.values() if r.running and not (r.init and is_sidecar(r.spec))]
        await asyncio.gather(
            *(
                self._kill(record, grace=grace, message=f"Stopping container {record.name}")
                for record in first
            )
        )
        sidecars = [r for r in self.containers.values() if r.init and is_sidecar(r.spec)]
        for record in reversed(sidecars):
            await self._kill(
                record,
                grace=max(deadline - time.monotonic(), 0.0),
                message=f"Stopping container {record.name}",
            )

    async def _refresh(self) -> None:
        for record in self.containers.values():
            if record.current is not None:
                with contextlib.suppress(RuntimeError_):
                    self._observe(record, await self.runtime.status(record.current.id))
            if not record.running and record.probes is not None:
                await record.probes.stop()
                record.probes = None

    async def _stop_probes(self) -> None:
        for record in self.containers.values():
            if record.probes is not None:
                await record.probes.stop()
                record.probes = None

    def _grace(self) -> float:
        return float(self.pod["spec"].get("terminationGracePeriodSeconds", 30) or 0)

    async def _fail_pod(self) -> None:
        self.terminated = True
        await self._stop_probes()

    def _active_deadline_remaining(self) -> float | None:
        """Seconds left before ``activeDeadlineSeconds`` runs out, counted from ``startTime``;
        None when the pod has no deadline or has not started."""
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        if deadline is None or not self.start_time:
            return None
        started = datetime.fromisoformat(self.start_time).timestamp()
        return started + float(deadline) - time.time()

    async def _exceed_active_deadline(self) -> None:
        """Upstream's activeDeadlineHandler: a ``DeadlineExceeded`` event, every container
        stopped within the grace period, and the pod ``Failed`` with that reason."""
        self.event("Normal", DEADLINE_EXCEEDED, DEADLINE_EXCEEDED_MESSAGE)
        self.failure = (DEADLINE_EXCEEDED, DEADLINE_EXCEEDED_MESSAGE)
        self.terminated = True
        await self._stop_probes()
        await self._stop_containers(grace=self._grace())
        await self._refresh()
        await self._push_status()

    # ------------------------------------------------------------------ sandbox and volumes

    async def _runtime_handler(self) -> str:
        """The runtimeClassManager's LookupRuntimeHandler: the handler of the pod's RuntimeClass,
        "" when it names none. Read from the API at each sandbox attempt (upstream reads its
        informer): pods naming a class are few and their sandboxes are made once."""
        name = self.pod["spec"].get("runtimeClassName")
        if not name:
            return ""
        try:
            runtime_class = await self.manager.client.get(RUNTIME_CLASSES, str(name))
        except errors.NotFoundError as exc:
            raise RuntimeClassLookupError(f'runtimeclass.node.k8s.io "{name}" not found') from exc
        except errors.RequestError as exc:
            raise RuntimeClassLookupError(f"failed to lookup RuntimeClass {name}: {exc}") from exc
        return str(runtime_class.get("handler") or "")

    async def _prepare_sandbox(self) -> None:
        manager = self.manager
        pod = self.pod
        handler = await self._runtime_handler()
        host_network = bool(pod["spec"].get("hostNetwork"))
        if host_network:
            pod_ips = [manager.node.node_ip]
        elif self.pod_ips:
            pod_ips = self.pod_ips
        else:  # the same address again on a retry: IPAM allocates by pod UID
            pod_ips = [await asyncio.to_thread(manager.ipam().allocate, self.uid)]
        options = self.options
        resolver = self._resolver_config(report=True)
        hostname, _ = dns.pod_hostname(pod, cluster_domain=options.cluster_domain)
        await self.runtime.run_sandbox(
            SandboxConfig(
                pod_uid=self.uid,
                namespace=self.namespace,
                name=self.name,
                pod_ip=pod_ips[0],
                hostname=hostname,
                directory=self.sandbox_dir,
                resolv_conf=resolver.render(),
                hosts=dns.hosts_file(
                    pod,
                    pod_ips=pod_ips,
                    cluster_domain=options.cluster_domain,
                    host_hosts=manager.host_hosts.text(),
                ),
                runtime_handler=handler,
            )
        )
        self.pod_ips = pod_ips  # reported once the sandbox exists, as upstream reports its IP
        if not self.start_time:
            self.start_time = rfc3339(time.time())
        self.sandbox_ready = True
        limitations = [
            *manager.limitations,
            *unapplied(pod, root=os.geteuid() == 0, mount_namespaces=manager.namespaces),
        ]
        if limitations and not self._warned_limits:
            self._warned_limits = True
            self.event("Warning", "ProcessRuntimeLimits", "; ".join(limitations))

    def _resolver_config(self, *, report: bool = False) -> dns.ResolverConfig:
        if self._resolver is None or report:
            options = self.options
            self._resolver, warnings = dns.pod_resolver_config(
                self.pod,
                cluster_dns=list(options.cluster_dns),
                cluster_domain=options.cluster_domain,
                host_resolv_conf=self.manager.host_resolv_conf.text(),
            )
            if report:
                for warning in warnings:
                    self.event("Warning", "DNSConfigForming", warning)
        return self._resolver

    async def _setup_volumes(self) -> bool:
        try:
            self.volumes = await self.manager.volumes.setup(
                self.pod,
                self.sandbox_dir,
                pod_ips=self.pod_ips,
                host_ips=[self.manager.node.node_ip],
                node_allocatable=self.manager.node.allocatable(),
            )
            if self._ownership.needed:
                await asyncio.to_thread(self._ownership.apply, self.volumes.paths)
        except (VolumeError, VolumeOwnershipError) as exc:
            message = str(exc)
            if message != self._mount_failure:
                self._mount_failure = message
                self.event("Warning", "FailedMount", message)
            return False
        self._mount_failure = ""
        self.volumes_dirty = False
        return True

    # ------------------------------------------------------------------ starting containers

    async def _start_or_back_off(self, record: _Container) -> float | None:
        """Start the container's next attempt unless its back-off says wait; returns a wake-up delay."""
        now = time.time()
        if record.current is not None and record.exited:
            finished = record.current.finished_at or now
            remaining = self.manager.crash_backoff.remaining(self._key(record), since=finished, now=now)
            if remaining > 0:
                delay = self.manager.crash_backoff.delay(self._key(record))
                message = f"back-off {_format_duration(delay)} restarting failed container={record.name} pod={self._describe()}"
                if record.waiting_reason != "CrashLoopBackOff":
                    self.event(
                        "Warning",
                        "BackOff",
                        f"Back-off restarting failed container {record.name} in pod {self._describe()}",
                    )
                record.waiting_reason, record.waiting_message = "CrashLoopBackOff", message
                return remaining
            self.manager.crash_backoff.next(self._key(record), at=finished)
        return await self._start(record)

    async def _start(self, record: _Container) -> float | None:
        spec = record.spec
        image = spec.get("image", "")
        image_key = f"{self.uid}/image/{image}"
        try:
            info = await self.runtime.image_info(image)
        except InvalidImageError as exc:
            record.waiting_reason, record.waiting_message = "InvalidImageName", str(exc)
            self.event("Warning", "InspectFailed", str(exc))
            self.event("Warning", "Failed", "Error: InvalidImageName")
            return None
        except ImageNotSupportedError as exc:
            now = time.time()
            remaining = self.manager.image_backoff.remaining(image_key, since=now, now=now)
            if record.waiting_reason in ("ErrImagePull", "ImagePullBackOff") and remaining > 0:
                # Upstream's image manager and startContainer, on every sync inside the back-off
                # (the recorder folds repeats into one event with a count).
                self.event("Normal", "BackOff", f'Back-off pulling image "{image}"')
                self.event("Warning", "Failed", "Error: ImagePullBackOff")
                record.waiting_reason = "ImagePullBackOff"
                record.waiting_message = f'Back-off pulling image "{image}": ErrImagePull: {exc}'
                return remaining
            self.manager.image_backoff.next(image_key, at=now)
            self.event("Normal", "Pulling", f'Pulling image "{image}"')
            self.event("Warning", "Failed", f'Failed to pull image "{image}": {exc}')
            self.event("Warning", "Failed", "Error: ErrImagePull")
            record.waiting_reason, record.waiting_message = "ErrImagePull", str(exc)
            return self.manager.image_backoff.delay(image_key)
        self.manager.image_backoff.forget_prefix(image_key)
        try:
            env = await self._environment(spec)
            command = expand_command(
                effective_command(info, command=spec.get("command") or [], args=spec.get("args") or []), env
            )
            mounts = self._mounts(spec, env)
            security = container_security(self.pod, spec)
            verify_run_as_non_root(self.pod, spec, image=info)
            mounts.extend(self._termination_message_mount(record))
        except (
            EnvError,
            VolumeError,
            ObjectUnavailableError,
            SecurityContextError,
            logs.TerminationLogError,
        ) as exc:
            if record.waiting_reason != "CreateContainerConfigError" or record.waiting_message != str(exc):
                self.event("Warning", "Failed", f"Error: {exc}")
            record.waiting_reason, record.waiting_message = "CreateContainerConfigError", str(exc)
            return self.options.retry_interval
        self.event("Normal", "Pulled", f'Container image "{image}" already present on machine')
        attempt = record.current.attempt + 1 if record.current is not None else 0
        resources = spec.get("resources") or {}
        limits = resources.get("limits") or {}
        config = ContainerConfig(
            name=record.name,
            image=image,
            command=command,
            env=env,
            working_dir=spec.get("workingDir") or "",
            mounts=mounts,
            log_path=logs.container_log_path(self.sandbox_dir, container=record.name, restart_count=attempt),
            restart_count=attempt,
            stdin=bool(spec.get("stdin")),
            stdin_once=bool(spec.get("stdinOnce")),
            tty=bool(spec.get("tty")),
            memory_limit_bytes=_quantity_int(limits.get("memory")),
            cpu_limit_millis=_quantity_int(limits.get("cpu"), scale=1000),
            cpu_request_millis=_quantity_int((resources.get("requests") or {}).get("cpu"), scale=1000),
            labels={
                LABEL_POD_UID: self.uid,
                LABEL_POD_NAME: self.name,
                LABEL_POD_NAMESPACE: self.namespace,
                LABEL_CONTAINER_NAME: record.name,
                LABEL_INIT: "true" if record.init else "false",
            },
            security=security,
        )
        try:
            container_id = await self.runtime.create_and_start(self.uid, config)
        except RuntimeError_ as exc:
            record.waiting_reason, record.waiting_message = "CreateContainerError", str(exc)
            self.event("Warning", "Failed", f"Error: {exc}")
            return self.options.retry_interval
        status = await self.runtime.status(container_id)
        if record.current is not None:
            await self._collect_garbage(record, keep=record.current)
        if status.state is ContainerState.EXITED:  # gone already: its message is read now, once
            status = self._with_termination_message(record, status)
        record.previous, record.current = record.current, status
        record.waiting_reason = record.waiting_message = ""
        record.adopted_ready = record.adopted_started = None
        self.event("Normal", "Created", f"Created container: {record.name}")
        logs.create_log_link(
            self.manager.containers_dir,
            pod=self.name,
            namespace=self.namespace,
            container=record.name,
            container_id=container_id,
            target=status.log_path,
        )
        if status.state is ContainerState.EXITED and status.reason == "StartError":
            self.event("Warning", "Failed", f"Error: {status.message}")
            record.waiting_reason, record.waiting_message = "RunContainerError", status.message
            if (self.pod["spec"].get("restartPolicy") or "Always") == "Never":
                record.waiting_reason = record.waiting_message = ""
            self.wake()
            return None
        self.event("Normal", "Started", f"Started container {record.name}")
        self._watch_exit(record)
        post_start = (spec.get("lifecycle") or {}).get("postStart")
        if post_start is not None:
            outcome = await self._run_handler(record, post_start, timeout=3600)
            if not outcome.passed:
                message = self._hook_message(record, post_start, outcome)
                self.event("Warning", "FailedPostStartHook", message)
                await self._kill(record, grace=self._grace(), message=message, run_pre_stop=False)
                return None
        if record.running and (not record.init or is_sidecar(spec)):
            self._start_probes(record)
        return None

    def _start_probes(self, record: _Container) -> None:
        assert record.current is not None
        spec = record.spec
        if not any(spec.get(key) for key in ("livenessProbe", "readinessProbe", "startupProbe")):
            record.probes = None
            return
        container_id = record.current.id

        async def action(probe: Obj, timeout: float) -> Outcome:  # noqa: ASYNC109
            return await run_action(
                probe,
                runtime=self.runtime,
                container_id=container_id,
                container=spec,
                pod_ip=self.pod_ips[0] if self.pod_ips else "",
                timeout=timeout,
            )

        record.probes = ContainerProbes(
            spec,
            started_at=record.current.started_at or time.time(),
            action=action,
            on_change=self.wake,
            on_event=lambda type_, reason, message: self.event(type_, reason, message),
        )
        record.probes.start()

    async def _run_handler(self, record: _Container, handler: Obj, *, timeout: float) -> Outcome:  # noqa: ASYNC109
        assert record.current is not None
        try:
            return await asyncio.wait_for(
                run_action(
                    handler,
                    runtime=self.runtime,
                    container_id=record.current.id,
                    container=record.spec,
                    pod_ip=self.pod_ips[0] if self.pod_ips else "",
                    timeout=timeout,
                ),
                timeout=timeout,
            )
        except TimeoutError:
            return Outcome(Result.FAILURE, f"the handler did not finish within {timeout:g}s")

    def _hook_message(self, record: _Container, handler: Obj, outcome: Outcome) -> str:
        if handler.get("exec") is not None:
            command = handler["exec"].get("command") or []
            what = f"Exec lifecycle hook ({command})"
        elif handler.get("httpGet") is not None:
            what = f"HTTP lifecycle hook ({handler['httpGet'].get('path', '/')})"
        else:
            what = "Lifecycle hook"
        return f'{what} for Container "{record.name}" in Pod "{self._describe()}" failed - error: {outcome.output}'

    async def _environment(self, spec: Obj) -> dict[str, str]:
        """Fetch what the container's env references (through the watched-object cache), then build it."""
        manager = self.manager
        wanted: set[tuple[str, str]] = set()
        for source in spec.get("envFrom") or ():
            if source.get("configMapRef"):
                wanted.add(("configmap", source["configMapRef"].get("name", "")))
            if source.get("secretRef"):
                wanted.add(("secret", source["secretRef"].get("name", "")))
        for variable in spec.get("env") or ():
            source = variable.get("valueFrom") or {}
            if source.get("configMapKeyRef"):
                wanted.add(("configmap", source["configMapKeyRef"].get("name", "")))
            if source.get("secretKeyRef"):
                wanted.add(("secret", source["secretKeyRef"].get("name", "")))
        found: dict[tuple[str, str], Obj | None] = {}
        for kind, name in wanted:
            resource = CONFIG_MAPS if kind == "configmap" else SECRETS
            found[(kind, name)] = await manager.objects.get(resource, self.namespace, name, holder=self.uid)
        env = build_env(
            pod=self.pod,
            container=spec,
            pod_ips=self.pod_ips,
            host_ips=[manager.node.node_ip],
            node_allocatable=manager.node.allocatable(),
            services=manager.services.cache.list(),
            config_map=lambda namespace, name: found.get(("configmap", name)),
            secret=lambda namespace, name: found.get(("secret", name)),
        )
        if not manager.namespaces:
            for key, value in dns.resolver_env(self._resolver_config()).items():
                env.setdefault(key, value)
        return env

    def _termination_message_mount(self, record: _Container) -> list[Mount]:
        """makeMounts' termination-log mount: a fresh file for the next attempt, bound at the
        container's terminationMessagePath (only with mount namespaces: see logs.py)."""
        container_path = record.spec.get("terminationMessagePath") or ""
        if not container_path or not self.manager.namespaces:
            return []
        attempt = record.current.attempt + 1 if record.current is not None else 0
        host_path = logs.termination_message_path(
            self.sandbox_dir, container=record.name, restart_count=attempt
        )
        logs.create_termination_message_file(host_path)
        return [Mount(host_path=host_path, container_path=container_path)]

    def _mounts(self, spec: Obj, env: dict[str, str]) -> list[Mount]:
        paths = self.volumes.paths if self.volumes is not None else {}
        read_only = self.volumes.read_only if self.volumes is not None else set()  # a claim's readOnly
        mounts = []
        for volume_mount in spec.get("volumeMounts") or ():
            name = volume_mount.get("name", "")
            host_path = paths.get(name)
            if host_path is None:
                raise EnvError(f'cannot find volume "{name}" to mount into container "{spec.get("name")}"')
            sub_path = volume_mount.get("subPath") or ""
            if volume_mount.get("subPathExpr"):
                sub_path = expand(volume_mount["subPathExpr"], mapping_for(env))
            if sub_path:
                if sub_path.startswith("/") or ".." in sub_path.split("/"):
                    raise EnvError(f"error SubPath `{sub_path}` must not be an absolute path or contain '..'")
                target = host_path / sub_path
                if not target.exists():
                    target.mkdir(parents=True, exist_ok=True)
                host_path = target
            mounts.append(
                Mount(
                    host_path=host_path,
                    container_path=volume_mount.get("mountPath", ""),
                    read_only=bool(volume_mount.get("readOnly")) or name in read_only,
                )
            )
        return mounts

    async def _collect_garbage(self, record: _Container, *, keep: ContainerStatus) -> None:
        """Remove attempts older than ``keep`` (the one about to become ``previous``)."""
        for status in await self.runtime.list_containers():
            if (
                status.pod_uid != self.uid
                or status.labels.get(LABEL_CONTAINER_NAME, status.name) != record.name
            ):
                continue
            if status.attempt >= keep.attempt or status.state is ContainerState.RUNNING:
                continue
            await self.runtime.remove_container(status.id)
            logs.remove_log_link(
                self.manager.containers_dir,
                pod=self.name,
                namespace=self.namespace,
                container=record.name,
                container_id=status.id,
            )
            with contextlib.suppress(FileNotFoundError):
                status.log_path.unlink()
            with contextlib.suppress(FileNotFoundError):
                logs.termination_message_path(
                    self.sandbox_dir, container=record.name, restart_count=status.attempt
                ).unlink()
            for rotated in logs.rotated_files(status.log_path):
                with contextlib.suppress(FileNotFoundError):
                    rotated.unlink()

    # ------------------------------------------------------------------ stopping

    async def _kill(
        self, record: _Container, *, grace: float, message: str, run_pre_stop: bool = True
    ) -> None:
        if not record.running:
            return
        assert record.current is not None
        self.event("Normal", "Killing", message)
        if record.probes is not None:
            await record.probes.stop()
            record.probes = None
        started = time.monotonic()
        pre_stop = (record.spec.get("lifecycle") or {}).get("preStop")
        if pre_stop is not None and run_pre_stop and grace > 0:
            outcome = await self._run_handler(record, pre_stop, timeout=grace)
            if not outcome.passed:
                self.event("Warning", "FailedPreStopHook", self._hook_message(record, pre_stop, outcome))
        remaining = max(grace - (time.monotonic() - started), MINIMUM_GRACE_SECONDS)
        try:
            await self.runtime.stop(record.current.id, grace_seconds=remaining)
        except RuntimeError_ as exc:
            log.warning("stopping %s/%s container %s failed: %s", self.namespace, self.name, record.name, exc)
        self._observe(record, await self.runtime.status(record.current.id))

    async def _terminate(self) -> float | None:
        """The pod is being deleted (or is gone): stop everything, report, delete, clean up."""
        pod = self.pod
        if not self.terminated:
            await self._stop_probes()
            if self.deleted and not pod["metadata"].get("deletionTimestamp"):
                grace = ORPHAN_GRACE_SECONDS
            else:
                grace = float(pod["metadata"].get("deletionGracePeriodSeconds", self._grace()) or 0)
            await self._stop_containers(grace=grace)
            await self._refresh()
            self.terminated = True
        if not self.deleted:
            await self._push_status()
            metadata = pod["metadata"]
            try:
                await self.manager.client.delete(
                    PODS,
                    metadata["name"],
                    namespace=metadata["namespace"],
                    grace_period_seconds=0,
                    preconditions=Preconditions(uid=self.uid),
                )
            except (errors.NotFoundError, errors.ConflictError):
                pass
            except errors.RequestError as exc:
                log.warning("deleting pod %s/%s failed: %s", metadata["namespace"], metadata["name"], exc)
                return self.options.retry_interval
            return self.options.retry_interval  # the DELETED event wakes us to clean up
        await self._clean_up()
        return None

    async def _clean_up(self) -> None:
        manager = self.manager
        await self.stop_watching()
        await manager.volumes.teardown(self.uid, self.sandbox_dir)
        for record in self.containers.values():
            for status in (record.previous, record.current):
                if status is not None:
                    logs.remove_log_link(
                        manager.containers_dir,
                        pod=self.name,
                        namespace=self.namespace,
                        container=record.name,
                        container_id=status.id,
                    )
        await self.runtime.remove_sandbox(self.uid)
        manager.release_ip(self.uid)
        manager.crash_backoff.forget_prefix(self.uid + "/")
        manager.image_backoff.forget_prefix(self.uid + "/")
        manager.status.forget(self.uid)
        self.finished = True

    # ------------------------------------------------------------------ status

    def view(self) -> PodView:
        return PodView(
            pod=self.pod,
            init_containers=[r.view() for r in self.containers.values() if r.init],
            containers=[r.view() for r in self.containers.values() if not r.init and not r.ephemeral],
            ephemeral_containers=[r.view() for r in self.containers.values() if r.ephemeral],
            pod_ips=self.pod_ips,
            host_ip=self.manager.node.node_ip,
            start_time=self.start_time,
            sandbox_ready=self.sandbox_ready,
            terminal=self.terminated
            and (self.deleted or bool(self.pod["metadata"].get("deletionTimestamp"))),
            initialized=self.initialized,
            failure=self.failure,
        )

    async def _push_status(self) -> None:
        status = generate_status(self.view(), last_sent=self.manager.status.last(self.uid))
        await self.manager.status.set(self.pod, status)


def _will_restart(record: _Container, policy: str) -> bool:
    """Whether an exited container is to run again under the pod's restartPolicy."""
    if policy == "Always":
        return True
    return policy == "OnFailure" and record.current is not None and record.current.exit_code != 0


def _meaningful_change(old: Obj, new: Obj) -> bool:
    """Whether a pod update is more than this kubelet's own status write coming back."""
    if old.get("spec") != new.get("spec"):
        return True
    old_meta = {k: v for k, v in old["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    new_meta = {k: v for k, v in new["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    if old_meta != new_meta:
        return True
    terminal = ("Succeeded", "Failed")
    if (new.get("status") or {}).get("phase") in terminal and (old.get("status") or {}).get(
        "phase"
    ) not in terminal:
        return True
    owned = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
    old_conditions = [
        c for c in (old.get("status") or {}).get("conditions") or () if c.get("type") not in owned
    ]
    new_conditions = [
        c for c in (new.get("status") or {}).get("conditions") or () if c.get("type") not in owned
    ]
    return old_conditions != new_conditions
