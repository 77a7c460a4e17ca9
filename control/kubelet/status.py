"""Pod status as the kubelet computes it, and writing it through ``pods/<name>/status``.

:func:`generate_status` follows ``generateAPIPodStatus``:

- container statuses in spec order, each with ``state`` (``waiting`` with a reason such as
  ``ContainerCreating``, ``PodInitializing``, ``ErrImagePull``, ``CrashLoopBackOff``,
  ``CreateContainerConfigError``; ``running``; ``terminated`` with exit code, reason,
  message and times), ``lastState`` (the previous attempt), ``restartCount``, ``ready``,
  ``started``, ``image``, ``imageID``, ``containerID`` (``kubelab://<id>``) and ``user``
  (``{"linux": {"uid", "gid", "supplementalGroups"}}`` of the newest attempt's process, as the
  runtime reports it: upstream's SupplementalGroupsPolicy status). Termination messages are
  cut to the pod's budget as upstream's status manager cuts them: 12 KiB
  (``MaxPodTerminationMessageLogLength``) shared evenly by the pod's containers and init
  containers, each message keeping its first bytes;
- ``phase`` by upstream's ``getPhase`` (init containers pending -> Pending; a failed init
  container with restartPolicy Never -> Failed; running containers -> Running; all
  stopped -> Running while they will restart, else Succeeded or Failed; a pod being
  deleted whose containers have stopped ends Succeeded only if all exited 0), never
  leaving a terminal phase once reached; a pod the kubelet fails itself (past its
  ``activeDeadlineSeconds``) is ``Failed`` with that ``reason`` and ``message``. Sidecars
  (init containers with ``restartPolicy: Always``) keep the pod Pending until started,
  then count as running containers; their
  ``ready``/``started`` follow their probes and they take part in ``ContainersReady``;
- conditions ``PodReadyToStartContainers``, ``Initialized``, ``ContainersReady``, ``Ready``
  (readiness gates honoured) and ``PodScheduled``, with upstream's reasons and messages
  (``containers with unready status: [web]``) and ``lastTransitionTime`` kept while a
  condition's status does not change; conditions the kubelet does not own are kept;
- ``hostIP(s)``, ``podIP(s)``, ``startTime`` (set once), ``qosClass`` (kept, computed if
  missing).

:class:`StatusManager` sends a JSON merge patch of the whole status (lists replace, so a
container's old state never lingers) carrying ``metadata.uid``, so a status computed for
one pod never lands on a new pod of the same name; it skips sending what it last sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from control.client import errors
from control.client.rest import PatchType, Resource, RESTClient
from control.kubelet.runtime.protocol import ContainerState, ContainerStatus

log = logging.getLogger("kubelab.kubelet.status")

PODS = Resource(group="", version="v1", plural="pods", kind="Pod")
CONTAINER_ID_SCHEME = "kubelab://"
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
POD_TERMINATION_MESSAGE_BUDGET = 12 * 1024  # MaxPodTerminationMessageLogLength
CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"
Obj = dict[str, Any]


def rfc3339(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(kw_only=True)
class ContainerView:
    """What the pod worker knows of one container of the spec."""

    name: str
    image: str
    current: ContainerStatus | None = None  # the newest attempt
    previous: ContainerStatus | None = None  # the attempt before it
    restart_count: int = 0
    waiting_reason: str = ""  # why the next attempt is not running (ErrImagePull, CrashLoopBackOff...)
    waiting_message: str = ""
    ready: bool = False  # readiness probe verdict while running
    started: bool = False  # startup probe verdict while running


@dataclass(kw_only=True)
class PodView:
    pod: Obj
    init_containers: Sequence[ContainerView]
    containers: Sequence[ContainerView]
    pod_ips: list[str]
    host_ip: str
    start_time: str | None
    sandbox_ready: bool
    terminal: bool  # deleted (or otherwise done) and every container has stopped
    initialized: bool = False  # the init containers have all completed (or started, sidecars) once
    ephemeral_containers: Sequence[ContainerView] = ()
    # Set when the kubelet itself fails the pod (upstream's ShouldEvict: activeDeadlineSeconds):
    # the phase becomes Failed with this status reason and message.
    failure: tuple[str, str] | None = None


def is_sidecar(container: Obj) -> bool:
    """A restartable init container (``restartPolicy: Always``): runs beside the pod's containers."""
    return container.get("restartPolicy") == "Always"


def _terminated(status: ContainerStatus) -> Obj:
    terminated: Obj = {
        "exitCode": status.exit_code if status.exit_code is not None else 0,
        "reason": status.reason or ("Completed" if status.exit_code == 0 else "Error"),
        "startedAt": rfc3339(status.started_at),
        "finishedAt": rfc3339(status.finished_at),
        "containerID": CONTAINER_ID_SCHEME + status.id,
    }
    if status.message:
        terminated["message"] = status.message
    return terminated


def container_status(view: ContainerView, *, default_waiting: str, init: bool, sidecar: bool = False) -> Obj:
    current = view.current
    running = current is not None and current.state is ContainerState.RUNNING
    exited = current is not None and current.state is ContainerState.EXITED
    status: Obj = {
        "name": view.name,
        "image": view.image,
        "imageID": current.image_id if current is not None else "",
        "restartCount": view.restart_count,
        "lastState": {},
    }
    if current is not None:
        status["containerID"] = CONTAINER_ID_SCHEME + current.id
        if current.user is not None:
            status["user"] = {
                "linux": {
                    "uid": current.user.uid,
                    "gid": current.user.gid,
                    "supplementalGroups": list(current.user.supplemental_groups),
                }
            }
    if view.waiting_reason and not running:
        waiting: Obj = {"reason": view.waiting_reason}
        if view.waiting_message:
            waiting["message"] = view.waiting_message
        status["state"] = {"waiting": waiting}
        last = current if exited else view.previous
        if last is not None and last.state is ContainerState.EXITED:
            status["lastState"] = {"terminated": _terminated(last)}
    elif running:
        assert current is not None
        status["state"] = {"running": {"startedAt": rfc3339(current.started_at)}}
        if view.previous is not None and view.previous.state is ContainerState.EXITED:
            status["lastState"] = {"terminated": _terminated(view.previous)}
    elif exited:
        assert current is not None
        status["state"] = {"terminated": _terminated(current)}
        if view.previous is not None and view.previous.state is ContainerState.EXITED:
            status["lastState"] = {"terminated": _terminated(view.previous)}
    else:
        status["state"] = {"waiting": {"reason": default_waiting}}
    if init and not sidecar:
        status["ready"] = exited and current is not None and current.exit_code == 0
        status["started"] = running
    else:
        status["ready"] = running and view.ready
        status["started"] = running and view.started
    return status


def _cut(message: str, limit: int) -> str:
    """The first ``limit`` bytes of ``message`` (not splitting a character)."""
    if len(message) * 4 <= limit:  # short enough whatever its characters: no need to encode
        return message
    raw = message.encode()
    return message if len(raw) <= limit else raw[:limit].decode(errors="ignore")


def trim_termination_messages(pod: Obj, statuses: Sequence[list[Obj]]) -> None:
    """normalizeStatus's cut: every terminated state's message to its share of the pod's budget."""
    spec = pod.get("spec") or {}
    containers = len(spec.get("containers") or ()) + len(spec.get("initContainers") or ())
    limit = POD_TERMINATION_MESSAGE_BUDGET // containers if containers else POD_TERMINATION_MESSAGE_BUDGET
    for entries in statuses:
        for entry in entries:
            for key in ("state", "lastState"):
                terminated = (entry.get(key) or {}).get("terminated")
                if terminated is not None and "message" in terminated:
                    terminated["message"] = _cut(terminated["message"], limit)


def pod_phase(
    pod: Obj, *, init_statuses: list[Obj], statuses: list[Obj], terminal: bool, initialized: bool = False
) -> str:
    """Upstream's getPhase: regular init containers, then sidecars (running ones keep the pod
    Running; stopped ones do not count), then the containers."""
    spec = pod.get("spec") or {}
    restart_policy = spec.get("restartPolicy") or "Always"
    pending_init = failed_init = pending_sidecars = 0
    unknown = running = waiting = stopped = succeeded = 0
    by_name = {status["name"]: status for status in init_statuses}
    for container in spec.get("initContainers") or ():
        status = by_name.get(container["name"])
        if is_sidecar(container):
            state = (status or {}).get("state") or {}
            if status is None:
                unknown += 1
            elif "running" in state:
                running += 1
                if not status.get("started"):
                    pending_sidecars += 1
            elif "waiting" in state and (status.get("lastState") or {}).get("terminated") is None:
                pending_sidecars += 1
                waiting += 1
            continue
        state = (status or {}).get("state") or {}
        if status is None or "running" in state:
            pending_init += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode", 0) != 0:
                failed_init += 1
        elif "waiting" in state:
            last = (status.get("lastState") or {}).get("terminated")
            if last is not None:
                if last.get("exitCode", 0) != 0:
                    failed_init += 1
            else:
                pending_init += 1
        else:
            pending_init += 1
    by_name = {status["name"]: status for status in statuses}
    for container in spec.get("containers") or ():
        status = by_name.get(container["name"])
        if status is None:
            unknown += 1
            continue
        state = status.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode", 0) == 0:
                succeeded += 1
        elif "waiting" in state:
            if (status.get("lastState") or {}).get("terminated") is not None:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init > 0 and restart_policy == "Never":
        return "Failed"
    if pending_init > 0 or (pending_sidecars > 0 and not initialized) or waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _names(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"


def _has_started_regular(statuses: list[Obj]) -> bool:
    for status in statuses:
        state = status.get("state") or {}
        if "running" in state or "terminated" in state or (status.get("lastState") or {}).get("terminated"):
            return True
    return False


def _kubelet_conditions(
    pod: Obj,
    *,
    init_statuses: list[Obj],
    statuses: list[Obj],
    phase: str,
    sandbox_ready: bool,
    other_conditions: list[Obj],
) -> list[Obj]:
    spec = pod.get("spec") or {}
    conditions: list[Obj] = [
        {"type": "PodReadyToStartContainers", "status": "True" if sandbox_ready else "False"}
    ]

    # Initialized
    by_init = {status["name"]: status for status in init_statuses}
    unknown = [c["name"] for c in spec.get("initContainers") or () if c["name"] not in by_init]
    incomplete = [
        c["name"]
        for c in spec.get("initContainers") or ()
        if c["name"] in by_init and not by_init[c["name"]].get("started" if is_sidecar(c) else "ready")
    ]
    if phase == "Succeeded" and not unknown:
        initialized: Obj = {"type": "Initialized", "status": "True", "reason": "PodCompleted"}
    elif _has_started_regular(statuses) or (not unknown and not incomplete):
        initialized = {"type": "Initialized", "status": "True"}
    else:
        messages = []
        if unknown:
            messages.append(f"containers with unknown status: {_names(unknown)}")
        if incomplete:
            messages.append(f"containers with incomplete status: {_names(incomplete)}")
        initialized = {
            "type": "Initialized",
            "status": "False",
            "reason": "ContainersNotInitialized",
            "message": ", ".join(messages),
        }
    conditions.append(initialized)

    # ContainersReady and Ready: the sidecars, then the containers
    by_name = {status["name"]: status for status in [*init_statuses, *statuses]}
    counted = [
        *(c for c in spec.get("initContainers") or () if is_sidecar(c)),
        *(spec.get("containers") or ()),
    ]
    unknown = [c["name"] for c in counted if c["name"] not in by_name]
    unready = [c["name"] for c in counted if c["name"] in by_name and not by_name[c["name"]].get("ready")]
    if phase in ("Succeeded", "Failed") and (phase == "Failed" or not unknown):
        containers_ready: Obj = {
            "type": "ContainersReady",
            "status": "False",
            "reason": "PodCompleted" if phase == "Succeeded" else "PodFailed",
        }
    elif unknown or unready:
        messages = []
        if unknown:
            messages.append(f"containers with unknown status: {_names(unknown)}")
        if unready:
            messages.append(f"containers with unready status: {_names(unready)}")
        containers_ready = {
            "type": "ContainersReady",
            "status": "False",
            "reason": "ContainersNotReady",
            "message": ", ".join(messages),
        }
    else:
        containers_ready = {"type": "ContainersReady", "status": "True"}
    if containers_ready["status"] != "True":
        ready = {**containers_ready, "type": "Ready"}
    else:
        gate_messages = []
        by_type = {condition.get("type"): condition for condition in other_conditions}
        for gate in spec.get("readinessGates") or ():
            gate_type = gate.get("conditionType", "")
            condition = by_type.get(gate_type)
            if condition is None:
                gate_messages.append(
                    f'corresponding condition of pod readiness gate "{gate_type}" does not exist.'
                )
            elif condition.get("status") != "True":
                gate_messages.append(
                    f'the status of pod readiness gate "{gate_type}" is not "True", but {condition.get("status")}'
                )
        ready = (
            {
                "type": "Ready",
                "status": "False",
                "reason": "ReadinessGatesNotReady",
                "message": ", ".join(gate_messages),
            }
            if gate_messages
            else {"type": "Ready", "status": "True"}
        )
    conditions.append(ready)
    conditions.append(containers_ready)
    conditions.append({"type": "PodScheduled", "status": "True"})
    return conditions


def qos_class(pod: Obj) -> str:
    """GetPodQOS for CPU and memory: Guaranteed, Burstable or BestEffort."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or ()) + list(spec.get("initContainers") or ())
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        for name in ("cpu", "memory"):
            if requests.get(name) or limits.get(name):
                any_set = True
            if not limits.get(name) or (requests.get(name) and str(requests[name]) != str(limits[name])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def generate_status(view: PodView, *, last_sent: Obj | None = None, now: float | None = None) -> Obj:
    """The pod's whole ``status`` (see the module doc). ``last_sent`` is what this kubelet last
    wrote for the pod (newer than the pod object it may not have seen come back yet)."""
    pod = view.pod
    api_status = pod.get("status") or {}
    old = last_sent or api_status
    default_waiting = (
        POD_INITIALIZING if (pod.get("spec") or {}).get("initContainers") else CONTAINER_CREATING
    )
    sidecars = {c["name"] for c in (pod.get("spec") or {}).get("initContainers") or () if is_sidecar(c)}
    init_statuses = [
        container_status(c, default_waiting=POD_INITIALIZING, init=True, sidecar=c.name in sidecars)
        for c in view.init_containers
    ]
    statuses = [container_status(c, default_waiting=default_waiting, init=False) for c in view.containers]
    phase = pod_phase(
        pod,
        init_statuses=init_statuses,
        statuses=statuses,
        terminal=view.terminal,
        initialized=view.initialized,
    )
    if view.failure is not None:
        phase = "Failed"
    for earlier in (old, api_status):
        if earlier.get("phase") in ("Succeeded", "Failed") and phase != earlier.get("phase"):
            phase = earlier["phase"]  # pods never leave a terminal phase
    other = [c for c in api_status.get("conditions") or () if c.get("type") not in KUBELET_CONDITIONS]
    conditions = _kubelet_conditions(
        pod,
        init_statuses=init_statuses,
        statuses=statuses,
        phase=phase,
        sandbox_ready=view.sandbox_ready,
        other_conditions=other,
    )
    stamp = rfc3339(time.time() if now is None else now)
    previous = {c.get("type"): c for c in old.get("conditions") or ()}
    for condition in conditions:
        before = previous.get(condition["type"])
        condition["lastProbeTime"] = None
        condition["lastTransitionTime"] = (
            before.get("lastTransitionTime")
            if before and before.get("status") == condition["status"]
            else stamp
        )
    status: Obj = {
        "phase": phase,
        "conditions": other + conditions,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "qosClass": api_status.get("qosClass") or qos_class(pod),
        "containerStatuses": statuses,
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if view.ephemeral_containers:
        ephemeral = [
            container_status(c, default_waiting=CONTAINER_CREATING, init=False)
            for c in view.ephemeral_containers
        ]
        for entry in ephemeral:
            entry["ready"] = False  # ephemeral containers never take part in readiness
        status["ephemeralContainerStatuses"] = ephemeral
    trim_termination_messages(
        pod,
        [
            status[key]
            for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses")
            if key in status
        ],
    )
    if view.pod_ips:
        status["podIP"] = view.pod_ips[0]
        status["podIPs"] = [{"ip": ip} for ip in view.pod_ips]
    start = api_status.get("startTime") or old.get("startTime") or view.start_time
    if start:
        status["startTime"] = start
    if phase == api_status.get("phase"):
        for key in ("reason", "message"):
            if api_status.get(key):
                status[key] = api_status[key]
    if view.failure is not None and phase == "Failed":
        status["reason"], status["message"] = view.failure
    return status


class StatusManager:
    """Sends pod statuses to the API server (pods/status), skipping repeats."""

    def __init__(self, *, client: RESTClient) -> None:
        self._client = client
        self._sent: dict[str, Obj] = {}

    def last(self, uid: str) -> Obj | None:
        return self._sent.get(uid)

    async def set(self, pod: Obj, status: Obj) -> bool:
        """Write ``status`` for ``pod``; False when the pod is gone or is another pod now."""
        metadata = pod["metadata"]
        uid = metadata["uid"]
        if self._sent.get(uid) == status:
            return True
        patch = {"metadata": {"uid": uid}, "status": status}
        try:
            await self._client.patch(
                PODS,
                metadata["name"],
                patch,
                namespace=metadata["namespace"],
                subresource="status",
                patch_type=PatchType.MERGE,
            )
        except (errors.NotFoundError, errors.ConflictError, errors.InvalidError) as exc:
            log.info(
                "not updating the status of pod %s/%s (%s): %s",
                metadata["namespace"],
                metadata["name"],
                uid,
                exc,
            )
            self._sent.pop(uid, None)
            return False
        self._sent[uid] = status
        return True

    def forget(self, uid: str) -> None:
        self._sent.pop(uid, None)
