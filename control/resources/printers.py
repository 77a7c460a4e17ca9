"""What ``kubectl get`` prints: the Table columns and cells kube-apiserver computes.

kubectl asks for ``as=Table`` and prints the cells verbatim, so everything a person
sees in ``kubectl get`` (AGE, a pod's STATUS and RESTARTS, a service's PORT(S)) is
computed here, on the server. This is a port of upstream's printers, kept close to
the original so it can be read side by side with it:

- built-in kinds: ``k8s.io/kubernetes/pkg/printers/internalversion/printers.go``
  (Kubernetes 1.33), which the API server runs with ``Wide: true``, so cells always
  include the ``-o wide`` (priority 1) columns and load-balancer addresses are never
  clipped; the descriptions are the generated swagger docs upstream uses;
- APIServices: kube-aggregator's own convertor (SERVICE, AVAILABLE);
- custom resources: apiextensions-apiserver's ``tableconvertor`` (Name, then the
  ``additionalPrinterColumns`` evaluated by JSONPath; a CRD without any gets Age);
- every other kind: ``rest.NewDefaultTableConvertor`` (Name, Created At).

Printers are keyed by (group, kind) and read objects in their served JSON shape
(``status.podIP`` or ``podIPs``, ``lastState`` ...), exactly as stored: defaulting
is done before storage, as upstream, so nothing here invents defaults beyond those
the upstream printers themselves apply. Times are measured from an injected ``now``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

from control.resources import hpa_conversion
from control.resources.registry import PrinterColumn, ResourceType
from control.resources.selectors import (
    SelectorError,
    format_label_selector,
    format_labels,
    label_selector_from_spec,
)
from control.resources.validation import InvalidQuantityError, Quantity

Cell = str | int | float | bool | None
Obj = Mapping[str, Any]
CellsFn = Callable[[Obj, datetime], list[Cell]]

# --- upstream's column descriptions: the generated swagger docs of k8s.io/api 1.33 ----
# (SwaggerDoc() of the types printers.go names; keys are "Type.field").

_DOC = {
    "ObjectMeta.name": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "ObjectMeta.creationTimestamp": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    "PodStatus.podIP": "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    "PodSpec.nodeName": "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    "PodStatus.nominatedNodeName": "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
    "PodSpec.readinessGates": 'If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to "True" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates',
    "PodSpec.nodeSelector": "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
    "ReplicaSetSpec.replicas": "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    "ReplicaSetStatus.replicas": "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    "ReplicaSetStatus.readyReplicas": "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
    "ReplicaSetSpec.selector": "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "ReplicationControllerSpec.replicas": "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    "ReplicationControllerStatus.replicas": "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    "ReplicationControllerStatus.readyReplicas": "The number of ready replicas for this replication controller.",
    "ReplicationControllerSpec.selector": "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "DaemonSetStatus.desiredNumberScheduled": "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    "DaemonSetStatus.currentNumberScheduled": "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    "DaemonSetStatus.numberReady": "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
    "DaemonSetStatus.updatedNumberScheduled": "The total number of nodes that are running updated daemon pod",
    "DaemonSetStatus.numberAvailable": "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
    "DaemonSetSpec.selector": "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "DeploymentStatus.updatedReplicas": "Total number of non-terminating pods targeted by this deployment that have the desired template spec.",
    "DeploymentStatus.availableReplicas": "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
    "DeploymentSpec.selector": "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    "NetworkPolicySpec.podSelector": "Selects the pods to which this NetworkPolicy object applies.  The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods.  In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.",
    "JobStatus.succeeded": "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.",
    "JobSpec.selector": "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "CronJobSpec.schedule": "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    "CronJobSpec.timeZone": "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
    "CronJobSpec.suspend": "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
    "CronJobStatus.active": "A list of pointers to currently running jobs.",
    "CronJobStatus.lastScheduleTime": "Information when was the last time the job was successfully scheduled.",
    "ServiceSpec.type": 'type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is "None", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. "NodePort" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. "LoadBalancer" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. "ExternalName" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types',
    "ServiceSpec.clusterIP": 'clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are "None", empty string (""), or a valid IP address. Setting this to "None" makes a "headless service" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies',
    "ServiceSpec.externalIPs": "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
    "ServiceSpec.ports": "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    "ServiceSpec.selector": "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
    "Endpoints.subsets": "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    "NodeSystemInfo.kubeletVersion": "Kubelet Version reported by the node.",
    "NodeStatus.addresses": "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).",
    "NodeSystemInfo.osImage": "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    "NodeSystemInfo.kernelVersion": "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    "NodeSystemInfo.containerRuntimeVersion": "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    "Event.lastTimestamp": "The time at which the most recent occurrence of this event was recorded.",
    "Event.type": "Type of this event (Normal, Warning), new types could be added in the future",
    "Event.reason": "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    "Event.involvedObject": "The object that this event is about.",
    "ObjectReference.fieldPath": 'If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: "spec.containers{name}" (where "name" refers to the name of the container that triggered the event) or if no container name is specified "spec.containers[2]" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.',
    "Event.source": "The component reporting this event. Should be a short machine understandable string.",
    "Event.message": "A human-readable description of the status of this operation.",
    "Event.firstTimestamp": "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    "Event.count": "The number of times this event has occurred.",
    "Secret.type": "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    "Secret.data": "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    "ServiceAccount.secrets": 'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a "kubernetes.io/enforce-mountable-secrets" annotation set to "true". The "kubernetes.io/enforce-mountable-secrets" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret',
    "ConfigMap.data": "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    "RoleBinding.roleRef": "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    "ClusterRoleBinding.roleRef": "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    "LeaseSpec.holderIdentity": "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
    "StorageClass.provisioner": "provisioner indicates the type of the provisioner.",
    "StorageClass.reclaimPolicy": "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.",
    "StorageClass.volumeBindingMode": "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.",
    "StorageClass.allowVolumeExpansion": "allowVolumeExpansion shows whether the storage class allow volume expand.",
    "PersistentVolumeSpec.capacity": "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity",
    "PersistentVolumeSpec.accessModes": "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes",
    "PersistentVolumeSpec.persistentVolumeReclaimPolicy": "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming",
    "PersistentVolumeStatus.phase": "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase",
    "PersistentVolumeSpec.claimRef": "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding",
    "PersistentVolumeStatus.reason": "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    "PersistentVolumeSpec.volumeMode": "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.",
    "PersistentVolumeClaimStatus.phase": "phase represents the current phase of PersistentVolumeClaim.",
    "PersistentVolumeClaimSpec.volumeName": "volumeName is the binding reference to the PersistentVolume backing this claim.",
    "PersistentVolumeClaimStatus.capacity": "capacity represents the actual resources of the underlying volume.",
    "PersistentVolumeClaimStatus.accessModes": "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1",
    "PersistentVolumeClaimSpec.volumeMode": "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.",
    "ControllerRevision.revision": "revision indicates the revision of the state represented by Data.",
    "PriorityClass.value": "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.",
    "PriorityClass.globalDefault": "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.",
    "PriorityClass.preemptionPolicy": "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.",
    "EndpointSlice.addressType": "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.",
    "EndpointSlice.ports": 'ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates "all ports". Each slice may include a maximum of 100 ports.',
    "EndpointSlice.endpoints": "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
    "HorizontalPodAutoscalerSpec.scaleTargetRef": "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
    "HorizontalPodAutoscalerSpec.metrics": "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond.",
    "HorizontalPodAutoscalerSpec.minReplicas": "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available.",
    "HorizontalPodAutoscalerSpec.maxReplicas": "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.",
    "HorizontalPodAutoscalerStatus.currentReplicas": "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
}


# --- reading the served JSON (a missing or mistyped field reads as Go's zero value) ---


def _map(obj: Any, key: str) -> dict[str, Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def _sub(obj: Any, key: str) -> dict[str, Any] | None:
    """A nested object that may be absent (Go's nil pointer): None when unset."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else None


def _list(obj: Any, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _str(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else ""


def _opt_str(obj: Any, key: str) -> str | None:
    """A ``*string``: None when unset."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


def _int(obj: Any, key: str) -> int:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _bool(obj: Any, key: str) -> bool:
    return isinstance(obj, dict) and obj.get(key) is True


def _name(obj: Obj) -> str:
    return _str(_map(obj, "metadata"), "name")


# --- time (metav1.Time, duration.HumanDuration) ----------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))"
)
_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (``metav1.Time``/``MicroTime``); None when unset or malformed."""
    if not isinstance(value, str):
        return None
    return _parse_rfc3339(value)


@functools.lru_cache(maxsize=16384)
def _parse_rfc3339(value: str) -> datetime | None:
    """Cached: a list of thousands of objects carries few distinct timestamps."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        stamp = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tzinfo=UTC
        )
    except ValueError:
        return None
    if zulu is None:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        stamp -= offset if sign == "+" else -offset
    return stamp


def _time(value: Any) -> datetime | None:
    """A timestamp that is set: None for unset, malformed or the zero time (Go's IsZero)."""
    stamp = parse_time(value)
    return None if stamp is None or stamp == _ZERO_TIME else stamp


def human_duration(elapsed: timedelta) -> str:
    """``duration.HumanDuration``: about 2-3 significant figures ("5s", "3m20s", "2d3h", "2y1d")."""
    micros = (elapsed.days * 86_400 + elapsed.seconds) * 1_000_000 + elapsed.microseconds
    seconds = abs(micros) // 1_000_000 * (1 if micros >= 0 else -1)  # Go truncates toward zero
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = micros // 60_000_000
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = micros // 3_600_000_000
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if rest == 0 else f"{hours // 24 // 365}y{rest}d"
    return f"{hours // 24 // 365}y"


def _since(stamp: datetime | None, now: datetime) -> str:
    """``translateTimestampSince``."""
    return "<unknown>" if stamp is None else human_duration(now - stamp)


def _age(obj: Obj, now: datetime) -> str:
    return _since(_time(_map(obj, "metadata").get("creationTimestamp")), now)


def _later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    """``if current.Before(&candidate) { current = candidate }`` with zero times as None."""
    if candidate is not None and (current is None or current < candidate):
        return candidate
    return current


# --- columns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Col:
    name: str
    type: str
    description: str
    priority: int = 0
    format: str = ""

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


_NAME = _Col("Name", "string", _DOC["ObjectMeta.name"], format="name")
_AGE = _Col("Age", "string", _DOC["ObjectMeta.creationTimestamp"])
_CONTAINERS = _Col("Containers", "string", "Names of each container in the template.", 1)
_IMAGES = _Col("Images", "string", "Images referenced by each container in the template.", 1)


@dataclass(frozen=True)
class _Printer:
    columns: tuple[dict[str, Any], ...]
    cells: CellsFn


_PRINTERS: dict[tuple[str, str], _Printer] = {}


def _prints(*kinds: tuple[str, str], columns: Sequence[_Col]) -> Callable[[CellsFn], CellsFn]:
    """Register a cells function for (group, kind) pairs, with its column definitions."""

    def register(cells: CellsFn) -> CellsFn:
        printer = _Printer(columns=tuple(c.definition() for c in columns), cells=cells)
        for kind in kinds:
            _PRINTERS[kind] = printer
        return cells

    return register


def _layout_containers(pod_spec: Any) -> tuple[str, str]:
    """``layoutContainerCells``: names and images, comma-joined."""
    containers = _list(pod_spec, "containers")
    return ",".join(_str(c, "name") for c in containers), ",".join(_str(c, "image") for c in containers)


def _template_spec(obj: Obj) -> dict[str, Any]:
    return _map(_map(_map(obj, "spec"), "template"), "spec")


def _selector_or_invalid(spec: Any) -> str:
    """``LabelSelectorAsSelector(s).String()``, ``<invalid>`` on error (Deployment's wide column)."""
    raw = spec.get("selector") if isinstance(spec, dict) else None
    try:
        return str(label_selector_from_spec(raw if isinstance(raw, dict) else None))
    except SelectorError:
        return "<invalid>"


def _conditions(status: Any) -> list[dict[str, Any]]:
    return [c for c in _list(status, "conditions") if isinstance(c, dict)]


def _first_condition(conditions: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    for condition in conditions:
        if condition.get("type") == kind:
            return condition
    return None


def _lb_addresses(status: Any) -> str:
    """``loadBalancerStatusStringer`` with wide output: sorted unique IPs or hostnames."""
    found: set[str] = set()
    for ingress in _list(_map(status, "loadBalancer"), "ingress"):
        address = _str(ingress, "ip") or _str(ingress, "hostname")
        if address:
            found.add(address)
    return ",".join(sorted(found))


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _list_with_more(items: list[str], *, more: bool, count: int, limit: int) -> str:
    text = ",".join(items)
    if more:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"


def _int_or_string(value: Any) -> str | None:
    """``intstr.IntOrString.String()``; None when unset."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else None


# --- pods ----------------------------------------------------------------------------------


def _pod_ip(status: Any) -> str:
    """The internal ``PodIPs[0]``: v1's podIP is authoritative, else podIPs[0].ip."""
    ip = _str(status, "podIP")
    if ip:
        return ip
    ips = _list(status, "podIPs")
    return _str(ips[0], "ip") if ips else ""


def _last_termination(container_status: Any) -> datetime | None:
    terminated = _sub(_map(container_status, "lastState"), "terminated")
    return _time(terminated.get("finishedAt")) if terminated is not None else None


@_prints(
    ("", "Pod"),
    columns=(
        _NAME,
        _Col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
        _Col("Status", "string", "The aggregate status of the containers in this pod."),
        _Col(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last "
            "container in this pod has restarted.",
        ),
        _AGE,
        _Col("IP", "string", _DOC["PodStatus.podIP"], 1),
        _Col("Node", "string", _DOC["PodSpec.nodeName"], 1),
        _Col("Nominated Node", "string", _DOC["PodStatus.nominatedNodeName"], 1),
        _Col("Readiness Gates", "string", _DOC["PodSpec.readinessGates"], 1),
    ),
)
def _pod(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _map(obj, "metadata"), _map(obj, "spec"), _map(obj, "status")
    conditions = _conditions(status)
    restarts = restartable_init_restarts = 0
    total_containers = len(_list(spec, "containers"))
    ready_containers = 0
    last_restart: datetime | None = None
    last_restartable_init_restart: datetime | None = None

    phase = _str(status, "phase")
    reason = _str(status, "reason") or phase
    for condition in conditions:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = _list(spec, "initContainers")
    restartable = {_str(c, "name"): _str(c, "restartPolicy") == "Always" for c in init_specs}
    total_containers += sum(1 for c in init_specs if _str(c, "restartPolicy") == "Always")

    initializing = False
    for index, container in enumerate(_list(status, "initContainerStatuses")):
        count = _int(container, "restartCount")
        restarts += count
        finished = _last_termination(container)
        last_restart = _later(last_restart, finished)
        is_restartable = restartable.get(_str(container, "name"), False)
        if is_restartable:
            restartable_init_restarts += count
            last_restartable_init_restart = _later(last_restartable_init_restart, finished)
        state = _map(container, "state")
        terminated, waiting = _sub(state, "terminated"), _sub(state, "waiting")
        if terminated is not None and _int(terminated, "exitCode") == 0:
            continue
        if is_restartable and container.get("started") is True:
            if _bool(container, "ready"):
                ready_containers += 1
            continue
        if terminated is not None:
            if _str(terminated, "reason"):
                reason = "Init:" + _str(terminated, "reason")
            elif _int(terminated, "signal") != 0:
                reason = f"Init:Signal:{_int(terminated, 'signal')}"
            else:
                reason = f"Init:ExitCode:{_int(terminated, 'exitCode')}"
        elif waiting is not None and _str(waiting, "reason") not in ("", "PodInitializing"):
            reason = "Init:" + _str(waiting, "reason")
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    initialized = _first_condition(conditions, "Initialized")
    if not initializing or (initialized is not None and initialized.get("status") == "True"):
        restarts = restartable_init_restarts
        last_restart = last_restartable_init_restart
        has_running = False
        for container in reversed(_list(status, "containerStatuses")):
            restarts += _int(container, "restartCount")
            last_restart = _later(last_restart, _last_termination(container))
            state = _map(container, "state")
            terminated, waiting = _sub(state, "terminated"), _sub(state, "waiting")
            if waiting is not None and _str(waiting, "reason"):
                reason = _str(waiting, "reason")
            elif terminated is not None and _str(terminated, "reason"):
                reason = _str(terminated, "reason")
            elif terminated is not None:
                signal = _int(terminated, "signal")
                reason = f"Signal:{signal}" if signal != 0 else f"ExitCode:{_int(terminated, 'exitCode')}"
            elif _bool(container, "ready") and _sub(state, "running") is not None:
                has_running = True
                ready_containers += 1
        # A pod whose last container completed while another still runs is not "Completed".
        if reason == "Completed" and has_running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            reason = "Running" if pod_ready else "NotReady"

    if meta.get("deletionTimestamp") is not None:
        if _str(status, "reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Failed", "Succeeded"):
            reason = "Terminating"

    restarts_text = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_text = f"{restarts} ({_since(last_restart, now)} ago)"

    gates = _list(spec, "readinessGates")
    readiness_gates = "<none>"
    if gates:
        true_conditions = 0
        for gate in gates:
            condition = _first_condition(conditions, _str(gate, "conditionType"))
            if condition is not None and condition.get("status") == "True":
                true_conditions += 1
        readiness_gates = f"{true_conditions}/{len(gates)}"

    return [
        _str(meta, "name"),
        f"{ready_containers}/{total_containers}",
        reason,
        restarts_text,
        _age(obj, now),
        _pod_ip(status) or "<none>",
        _str(spec, "nodeName") or "<none>",
        _str(status, "nominatedNodeName") or "<none>",
        readiness_gates,
    ]


# --- workloads ------------------------------------------------------------------------------


@_prints(
    ("apps", "Deployment"),
    columns=(
        _NAME,
        _Col("Ready", "string", "Number of the pod with ready state"),
        _Col("Up-to-date", "string", _DOC["DeploymentStatus.updatedReplicas"]),
        _Col("Available", "string", _DOC["DeploymentStatus.availableReplicas"]),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _Col("Selector", "string", _DOC["DeploymentSpec.selector"], 1),
    ),
)
def _deployment(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    names, images = _layout_containers(_template_spec(obj))
    return [
        _name(obj),
        f"{_int(status, 'readyReplicas')}/{_int(spec, 'replicas')}",
        _int(status, "updatedReplicas"),
        _int(status, "availableReplicas"),
        _age(obj, now),
        names,
        images,
        _selector_or_invalid(spec),
    ]


def _replicated_columns(doc: str) -> tuple[_Col, ...]:
    """ReplicaSets' and ReplicationControllers' columns; ``doc`` names the type whose swagger
    docs describe them (``ReplicaSet`` or ``ReplicationController``)."""
    return (
        _NAME,
        _Col("Desired", "integer", _DOC[f"{doc}Spec.replicas"]),
        _Col("Current", "integer", _DOC[f"{doc}Status.replicas"]),
        _Col("Ready", "integer", _DOC[f"{doc}Status.readyReplicas"]),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _Col("Selector", "string", _DOC[f"{doc}Spec.selector"], 1),
    )


def _replicated_row(obj: Obj, now: datetime, *, selector: str) -> list[Cell]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    names, images = _layout_containers(_template_spec(obj))
    return [
        _name(obj),
        _int(spec, "replicas"),
        _int(status, "replicas"),
        _int(status, "readyReplicas"),
        _age(obj, now),
        names,
        images,
        selector,
    ]


@_prints(("apps", "ReplicaSet"), columns=_replicated_columns("ReplicaSet"))
def _replica_set(obj: Obj, now: datetime) -> list[Cell]:
    return _replicated_row(obj, now, selector=format_label_selector(_sub(_map(obj, "spec"), "selector")))


# printReplicationController: the same cells, the selector a label map (labels.FormatLabels).
@_prints(("", "ReplicationController"), columns=_replicated_columns("ReplicationController"))
def _replication_controller(obj: Obj, now: datetime) -> list[Cell]:
    return _replicated_row(obj, now, selector=format_labels(_map(_map(obj, "spec"), "selector")))


@_prints(
    ("apps", "DaemonSet"),
    columns=(
        _NAME,
        _Col("Desired", "integer", _DOC["DaemonSetStatus.desiredNumberScheduled"]),
        _Col("Current", "integer", _DOC["DaemonSetStatus.currentNumberScheduled"]),
        _Col("Ready", "integer", _DOC["DaemonSetStatus.numberReady"]),
        _Col("Up-to-date", "integer", _DOC["DaemonSetStatus.updatedNumberScheduled"]),
        _Col("Available", "integer", _DOC["DaemonSetStatus.numberAvailable"]),
        _Col("Node Selector", "string", _DOC["PodSpec.nodeSelector"]),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _Col("Selector", "string", _DOC["DaemonSetSpec.selector"], 1),
    ),
)
def _daemon_set(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    pod_spec = _template_spec(obj)
    names, images = _layout_containers(pod_spec)
    return [
        _name(obj),
        _int(status, "desiredNumberScheduled"),
        _int(status, "currentNumberScheduled"),
        _int(status, "numberReady"),
        _int(status, "updatedNumberScheduled"),
        _int(status, "numberAvailable"),
        format_labels(_map(pod_spec, "nodeSelector")),
        _age(obj, now),
        names,
        images,
        format_label_selector(_sub(spec, "selector")),
    ]


@_prints(
    ("apps", "StatefulSet"),
    columns=(
        _NAME,
        _Col("Ready", "string", "Number of the pod with ready state"),
        _AGE,
        _CONTAINERS,
        _IMAGES,
    ),
)
def _stateful_set(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    names, images = _layout_containers(_template_spec(obj))
    return [
        _name(obj),
        f"{_int(status, 'readyReplicas')}/{_int(spec, 'replicas')}",
        _age(obj, now),
        names,
        images,
    ]


@_prints(
    ("apps", "ControllerRevision"),
    columns=(
        _NAME,
        _Col("Controller", "string", "Controller of the object"),
        _Col("Revision", "string", _DOC["ControllerRevision.revision"]),
        _AGE,
    ),
)
def _controller_revision(obj: Obj, now: datetime) -> list[Cell]:
    controller = "<none>"
    for owner in _list(_map(obj, "metadata"), "ownerReferences"):
        if _bool(owner, "controller"):
            api_version = _str(owner, "apiVersion")
            group = api_version.split("/", 1)[0] if "/" in api_version else ""
            kind = _str(owner, "kind")
            group_kind = f"{kind}.{group}" if group else kind
            controller = f"{group_kind.lower()}/{_str(owner, 'name')}" if group_kind else _str(owner, "name")
            break
    return [_name(obj), controller, _int(obj, "revision"), _age(obj, now)]


def _job_condition(conditions: list[dict[str, Any]], kind: str) -> bool:
    """``hasJobCondition``: the first condition of ``kind`` decides."""
    condition = _first_condition(conditions, kind)
    return condition is not None and condition.get("status") == "True"


@_prints(
    ("batch", "Job"),
    columns=(
        _NAME,
        _Col("Status", "string", "Status of the job."),
        _Col("Completions", "string", _DOC["JobStatus.succeeded"]),
        _Col("Duration", "string", "Time required to complete the job."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _Col("Selector", "string", _DOC["JobSpec.selector"], 1),
    ),
)
def _job(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    succeeded = _int(status, "succeeded")
    completions = spec.get("completions")
    if isinstance(completions, int) and not isinstance(completions, bool):
        progress = f"{succeeded}/{completions}"
    elif _int(spec, "parallelism") > 1:
        progress = f"{succeeded}/1 of {_int(spec, 'parallelism')}"
    else:
        progress = f"{succeeded}/1"

    started, completed = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    if started is None:
        job_duration = ""
    elif completed is None:
        job_duration = human_duration(now - started)
    else:
        job_duration = human_duration(completed - started)

    conditions = _conditions(status)
    if _job_condition(conditions, "Complete"):
        state = "Complete"
    elif _job_condition(conditions, "Failed"):
        state = "Failed"
    elif _map(obj, "metadata").get("deletionTimestamp") is not None:
        state = "Terminating"
    elif _job_condition(conditions, "Suspended"):
        state = "Suspended"
    elif _job_condition(conditions, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"

    names, images = _layout_containers(_template_spec(obj))
    return [
        _name(obj),
        state,
        progress,
        job_duration,
        _age(obj, now),
        names,
        images,
        format_label_selector(_sub(spec, "selector")),
    ]


@_prints(
    ("batch", "CronJob"),
    columns=(
        _NAME,
        _Col("Schedule", "string", _DOC["CronJobSpec.schedule"]),
        _Col("Timezone", "string", _DOC["CronJobSpec.timeZone"]),
        _Col("Suspend", "boolean", _DOC["CronJobSpec.suspend"]),
        _Col("Active", "integer", _DOC["CronJobStatus.active"]),
        _Col("Last Schedule", "string", _DOC["CronJobStatus.lastScheduleTime"]),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _Col("Selector", "string", _DOC["JobSpec.selector"], 1),
    ),
)
def _cron_job(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    job_spec = _map(_map(spec, "jobTemplate"), "spec")
    suspend = spec.get("suspend")
    suspend_text = "<unset>" if not isinstance(suspend, bool) else ("True" if suspend else "False")
    last_schedule = "<none>"
    if status.get("lastScheduleTime") is not None:
        last_schedule = _since(_time(status.get("lastScheduleTime")), now)
    names, images = _layout_containers(_map(_map(job_spec, "template"), "spec"))
    return [
        _name(obj),
        _str(spec, "schedule"),
        _opt_str(spec, "timeZone") if _opt_str(spec, "timeZone") is not None else "<none>",
        suspend_text,
        len(_list(status, "active")),
        last_schedule,
        _age(obj, now),
        names,
        images,
        format_label_selector(_sub(job_spec, "selector")),
    ]


@_prints(
    ("policy", "PodDisruptionBudget"),
    columns=(
        _NAME,
        _Col("Min Available", "string", "The minimum number of pods that must be available."),
        _Col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
        _Col(
            "Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."
        ),
        _AGE,
    ),
)
def _pod_disruption_budget(obj: Obj, now: datetime) -> list[Cell]:
    spec = _map(obj, "spec")
    min_available = _int_or_string(spec.get("minAvailable"))
    max_unavailable = _int_or_string(spec.get("maxUnavailable"))
    return [
        _name(obj),
        "N/A" if min_available is None else min_available,
        "N/A" if max_unavailable is None else max_unavailable,
        _int(_map(obj, "status"), "disruptionsAllowed"),
        _age(obj, now),
    ]


def _quantity(value: Any) -> str:
    """``(*resource.Quantity).String()`` of a stored quantity: as written, ``<nil>`` when unset."""
    if value is None:
        return "<nil>"
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else "<nil>"


def _hpa_metric(spec: Any, status: Any) -> str:
    """One entry of ``formatHPAMetrics`` (autoscaling/v2 shape; ``status`` may be None)."""
    kind = _str(spec, "type")
    if kind in ("External", "Object"):
        key = kind.lower()
        target = _map(_map(spec, key), "target")
        current_source = _sub(status, key)
        if target.get("averageValue") is not None:
            current = "<unknown>"
            if current_source is not None and _map(current_source, "current").get("averageValue") is not None:
                current = _quantity(_map(current_source, "current").get("averageValue"))
            return f"{current}/{_quantity(target.get('averageValue'))} (avg)"
        current = "<unknown>"
        if current_source is not None:
            current = _quantity(_map(current_source, "current").get("value"))
        return f"{current}/{_quantity(target.get('value'))}"
    if kind == "Pods":
        current = "<unknown>"
        if _sub(status, "pods") is not None:
            current = _quantity(_map(_map(status, "pods"), "current").get("averageValue"))
        return f"{current}/{_quantity(_map(_map(spec, 'pods'), 'target').get('averageValue'))}"
    if kind in ("Resource", "ContainerResource"):
        key = "resource" if kind == "Resource" else "containerResource"
        source = _map(spec, key)
        target = _map(source, "target")
        current_source = _sub(status, key)
        if target.get("averageValue") is not None:
            current = "<unknown>"
            if current_source is not None:
                current = _quantity(_map(current_source, "current").get("averageValue"))
            return f"{_str(source, 'name')}: {current}/{_quantity(target.get('averageValue'))}"
        current = "<unknown>"
        if current_source is not None and isinstance(
            _map(current_source, "current").get("averageUtilization"), int
        ):
            current = f"{_int(_map(current_source, 'current'), 'averageUtilization')}%"
        wanted = "<auto>"
        if isinstance(target.get("averageUtilization"), int):
            wanted = f"{_int(target, 'averageUtilization')}%"
        return f"{_str(source, 'name')}: {current}/{wanted}"
    return "<unknown type>"


def _hpa_metrics(specs: list[Any], statuses: list[Any]) -> str:
    """``formatHPAMetrics``: the first two targets as ``current/target``, then ``+ N more...``."""
    if not specs:
        return "<none>"
    limit = 2
    items = [_hpa_metric(spec, statuses[i] if i < len(statuses) else None) for i, spec in enumerate(specs)]
    text = ", ".join(items[:limit])
    return f"{text} + {len(items) - limit} more..." if len(items) > limit else text


@_prints(
    ("autoscaling", "HorizontalPodAutoscaler"),
    columns=(
        _NAME,
        _Col("Reference", "string", _DOC["HorizontalPodAutoscalerSpec.scaleTargetRef"]),
        _Col("Targets", "string", _DOC["HorizontalPodAutoscalerSpec.metrics"]),
        _Col("MinPods", "string", _DOC["HorizontalPodAutoscalerSpec.minReplicas"]),
        _Col("MaxPods", "string", _DOC["HorizontalPodAutoscalerSpec.maxReplicas"]),
        _Col("Replicas", "string", _DOC["HorizontalPodAutoscalerStatus.currentReplicas"]),
        _AGE,
    ),
)
def _horizontal_pod_autoscaler(obj: Obj, now: datetime) -> list[Cell]:
    if obj.get("apiVersion") == hpa_conversion.V1_API_VERSION:
        obj = hpa_conversion.to_v2(obj)  # upstream prints the internal object: one row for both
    spec, status = _map(obj, "spec"), _map(obj, "status")
    target = _map(spec, "scaleTargetRef")
    min_replicas = spec.get("minReplicas")
    return [
        _name(obj),
        f"{_str(target, 'kind')}/{_str(target, 'name')}",
        _hpa_metrics(_list(spec, "metrics"), _list(status, "currentMetrics")),
        str(min_replicas)
        if isinstance(min_replicas, int) and not isinstance(min_replicas, bool)
        else "<unset>",
        _int(spec, "maxReplicas"),
        _int(status, "currentReplicas"),
        _age(obj, now),
    ]


# --- services and networking ------------------------------------------------------------------


def _service_external_ip(spec: dict[str, Any], status: dict[str, Any]) -> str:
    """``getServiceExternalIP`` (wide: load-balancer addresses are not clipped)."""
    external_ips = [ip for ip in _list(spec, "externalIPs") if isinstance(ip, str)]
    service_type = _str(spec, "type")
    if service_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if service_type == "LoadBalancer":
        balancer = _lb_addresses(status)
        if external_ips:
            return ",".join((balancer.split(",") if balancer else []) + external_ips)
        return balancer or "<pending>"
    if service_type == "ExternalName":
        return _str(spec, "externalName")
    return "<unknown>"


def _service_ports(spec: dict[str, Any]) -> str:
    """``makePortString``: ``80/TCP,443:30443/TCP``."""
    pieces = []
    for port in _list(spec, "ports"):
        node_port = _int(port, "nodePort")
        prefix = f"{_int(port, 'port')}:{node_port}" if node_port > 0 else str(_int(port, "port"))
        pieces.append(f"{prefix}/{_str(port, 'protocol')}")
    return ",".join(pieces)


@_prints(
    ("", "Service"),
    columns=(
        _NAME,
        _Col("Type", "string", _DOC["ServiceSpec.type"]),
        _Col("Cluster-IP", "string", _DOC["ServiceSpec.clusterIP"]),
        _Col("External-IP", "string", _DOC["ServiceSpec.externalIPs"]),
        _Col("Port(s)", "string", _DOC["ServiceSpec.ports"]),
        _AGE,
        _Col("Selector", "string", _DOC["ServiceSpec.selector"], 1),
    ),
)
def _service(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    # The internal ClusterIPs[0]: v1's clusterIP is authoritative, else clusterIPs[0].
    cluster_ip: str | None = _str(spec, "clusterIP")
    if not cluster_ip:
        cluster_ips = _list(spec, "clusterIPs")
        cluster_ip = (cluster_ips[0] if isinstance(cluster_ips[0], str) else "") if cluster_ips else None
    return [
        _name(obj),
        _str(spec, "type"),
        "<none>" if cluster_ip is None else cluster_ip,
        _service_external_ip(spec, status),
        _service_ports(spec) or "<none>",
        _age(obj, now),
        format_labels(_map(spec, "selector")),
    ]


def _format_endpoints(subsets: list[Any]) -> str:
    """``formatEndpoints`` with all ports: the first three ``ip:port``, then ``+ N more...``."""
    if not subsets:
        return "<none>"
    limit, items, more, count = 3, [], False, 0
    for subset in subsets:
        addresses = _list(subset, "addresses")
        ports = _list(subset, "ports")
        if not ports:  # headless services may have no ports
            count += len(addresses)
            for address in addresses:
                if len(items) == limit:
                    more = True
                    break
                items.append(_str(address, "ip"))
            continue
        for port in ports:
            count += len(addresses)
            for address in addresses:
                if len(items) == limit:
                    more = True
                    break
                items.append(_join_host_port(_str(address, "ip"), _int(port, "port")))
    text = ",".join(items)
    return f"{text} + {count - limit} more..." if more else text


@_prints(
    ("", "Endpoints"),
    columns=(_NAME, _Col("Endpoints", "string", _DOC["Endpoints.subsets"]), _AGE),
)
def _endpoints(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _format_endpoints(_list(obj, "subsets")), _age(obj, now)]


@_prints(
    ("discovery.k8s.io", "EndpointSlice"),
    columns=(
        _NAME,
        _Col("AddressType", "string", _DOC["EndpointSlice.addressType"]),
        _Col("Ports", "string", _DOC["EndpointSlice.ports"]),
        _Col("Endpoints", "string", _DOC["EndpointSlice.endpoints"]),
        _AGE,
    ),
)
def _endpoint_slice(obj: Obj, now: datetime) -> list[Cell]:
    limit = 3
    ports: list[str] = []
    more, count = False, 0
    for port in _list(obj, "ports"):
        if len(ports) < limit:
            number, name = port.get("port") if isinstance(port, dict) else None, _opt_str(port, "name")
            if isinstance(number, int) and not isinstance(number, bool):
                ports.append(str(number))
            else:
                ports.append(name if name is not None else "*")
        elif len(ports) == limit:
            more = True
        count += 1
    addresses: list[str] = []
    more_addresses, address_count = False, 0
    for endpoint in _list(obj, "endpoints"):
        for address in _list(endpoint, "addresses"):
            if len(addresses) < limit:
                addresses.append(address if isinstance(address, str) else "")
            elif len(addresses) == limit:
                more_addresses = True
            address_count += 1
    return [
        _name(obj),
        _str(obj, "addressType"),
        _list_with_more(ports, more=more, count=count, limit=limit),
        _list_with_more(addresses, more=more_addresses, count=address_count, limit=limit),
        _age(obj, now),
    ]


def _ingress_hosts(rules: list[Any]) -> str:
    """``formatHosts``: the first three hosts, ``*`` when none."""
    limit, hosts, more = 3, [], False
    for rule in rules:
        if len(hosts) == limit:
            more = True
        if not more and _str(rule, "host"):
            hosts.append(_str(rule, "host"))
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - limit} more..." if more else text


@_prints(
    ("networking.k8s.io", "Ingress"),
    columns=(
        _NAME,
        _Col(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        _Col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
        _Col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
        _Col("Ports", "string", "Ports of TLS configurations that open"),
        _AGE,
    ),
)
def _ingress(obj: Obj, now: datetime) -> list[Cell]:
    spec = _map(obj, "spec")
    class_name = _opt_str(spec, "ingressClassName")
    return [
        _name(obj),
        "<none>" if class_name is None else class_name,
        _ingress_hosts(_list(spec, "rules")),
        _lb_addresses(_map(obj, "status")),
        "80, 443" if _list(spec, "tls") else "80",
        _age(obj, now),
    ]


@_prints(
    ("networking.k8s.io", "IngressClass"),
    columns=(
        _NAME,
        _Col("Controller", "string", "Controller that is responsible for handling this class"),
        _Col("Parameters", "string", "A reference to a resource with additional parameters"),
        _AGE,
    ),
)
def _ingress_class(obj: Obj, now: datetime) -> list[Cell]:
    spec = _map(obj, "spec")
    parameters = "<none>"
    reference = _sub(spec, "parameters")
    if reference is not None:
        parameters = _str(reference, "kind")
        group = _opt_str(reference, "apiGroup")
        if group is not None:
            parameters += "." + group
        parameters += "/" + _str(reference, "name")
    return [_name(obj), _str(spec, "controller"), parameters, _age(obj, now)]


@_prints(
    ("networking.k8s.io", "NetworkPolicy"),
    columns=(_NAME, _Col("Pod-Selector", "string", _DOC["NetworkPolicySpec.podSelector"]), _AGE),
)
def _network_policy(obj: Obj, now: datetime) -> list[Cell]:
    # podSelector is a struct, not a pointer, upstream: unset means "every pod".
    return [_name(obj), format_label_selector(_map(_map(obj, "spec"), "podSelector")), _age(obj, now)]


# --- cluster objects ----------------------------------------------------------------------------


@_prints(
    ("", "Namespace"),
    columns=(_NAME, _Col("Status", "string", "The status of the namespace"), _AGE),
)
def _namespace(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _str(_map(obj, "status"), "phase"), _age(obj, now)]


def _node_roles(labels: dict[str, Any]) -> str:
    """``findNodeRoles``: ``node-role.kubernetes.io/<role>`` keys and ``kubernetes.io/role`` values."""
    roles: set[str] = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key.removeprefix("node-role.kubernetes.io/")
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and isinstance(value, str) and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(status: dict[str, Any], kind: str) -> str:
    for address in _list(status, "addresses"):
        if _str(address, "type") == kind:
            return _str(address, "address")
    return "<none>"


@_prints(
    ("", "Node"),
    columns=(
        _NAME,
        _Col("Status", "string", "The status of the node"),
        _Col("Roles", "string", "The roles of the node"),
        _AGE,
        _Col("Version", "string", _DOC["NodeSystemInfo.kubeletVersion"]),
        _Col("Internal-IP", "string", _DOC["NodeStatus.addresses"], 1),
        _Col("External-IP", "string", _DOC["NodeStatus.addresses"], 1),
        _Col("OS-Image", "string", _DOC["NodeSystemInfo.osImage"], 1),
        _Col("Kernel-Version", "string", _DOC["NodeSystemInfo.kernelVersion"], 1),
        _Col("Container-Runtime", "string", _DOC["NodeSystemInfo.containerRuntimeVersion"], 1),
    ),
)
def _node(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    ready = None
    for condition in _conditions(status):  # a later duplicate wins, as in upstream's map
        if condition.get("type") == "Ready":
            ready = condition
    states = ["Unknown"] if ready is None else ["Ready" if ready.get("status") == "True" else "NotReady"]
    if _bool(spec, "unschedulable"):
        states.append("SchedulingDisabled")
    info = _map(status, "nodeInfo")
    return [
        _name(obj),
        ",".join(states),
        _node_roles(_map(_map(obj, "metadata"), "labels")),
        _age(obj, now),
        _str(info, "kubeletVersion"),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        _str(info, "osImage") or "<unknown>",
        _str(info, "kernelVersion") or "<unknown>",
        _str(info, "containerRuntimeVersion") or "<unknown>",
    ]


@_prints(
    ("", "ComponentStatus"),
    columns=(
        _NAME,
        _Col("Status", "string", "Status of the component conditions"),
        _Col("Message", "string", "Message of the component conditions"),
        _Col("Error", "string", "Error of the component conditions"),
    ),
)
def _component_status(obj: Obj, now: datetime) -> list[Cell]:
    """printComponentStatus: the Healthy condition's verdict (anything but True is Unhealthy)."""
    healthy = _first_condition(_conditions(obj), "Healthy")
    if healthy is None:
        return [_name(obj), "Unknown", "", ""]
    status = "Healthy" if healthy.get("status") == "True" else "Unhealthy"
    return [_name(obj), status, _str(healthy, "message"), _str(healthy, "error")]


@_prints(("", "ConfigMap"), columns=(_NAME, _Col("Data", "string", _DOC["ConfigMap.data"]), _AGE))
def _config_map(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(_map(obj, "data")) + len(_map(obj, "binaryData")), _age(obj, now)]


@_prints(
    ("", "ResourceQuota"),
    columns=(
        _NAME,
        _AGE,
        _Col(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        _Col(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of "
            "contention on the node.",
        ),
    ),
)
def _resource_quota(obj: Obj, now: datetime) -> list[Cell]:
    """printResourceQuota: ``name: used/hard`` per spec.hard name, limits.* in the Limit column."""
    status = _map(obj, "status")
    used, hard = _map(status, "used"), _map(status, "hard")
    requests: list[str] = []
    limits: list[str] = []
    for name in sorted(_map(_map(obj, "spec"), "hard")):
        column = limits if name.split(".")[0] == "limits" and "." in name else requests
        column.append(f"{name}: {_quota_quantity(used.get(name))}/{_quota_quantity(hard.get(name))}")
    return [_name(obj), _age(obj, now), ", ".join(requests), ", ".join(limits)]


def _quota_quantity(raw: Any) -> str:
    """A status quantity as Quantity.String() prints it (a missing one is the zero Quantity: "0")."""
    try:
        return str(Quantity.parse(raw))
    except InvalidQuantityError:
        return "0"


@_prints(
    ("", "LimitRange"),
    columns=(_NAME, _Col("Created At", "date", _DOC["ObjectMeta.creationTimestamp"])),
)
def _limit_range(obj: Obj, now: datetime) -> list[Cell]:
    """printLimitRange: the creation timestamp itself (RFC 3339), not an age."""
    return [_name(obj), _map(obj, "metadata").get("creationTimestamp")]


@_prints(
    ("", "Secret"),
    columns=(
        _NAME,
        _Col("Type", "string", _DOC["Secret.type"]),
        _Col("Data", "string", _DOC["Secret.data"]),
        _AGE,
    ),
)
def _secret(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _str(obj, "type"), len(_map(obj, "data")), _age(obj, now)]


@_prints(
    ("", "ServiceAccount"), columns=(_NAME, _Col("Secrets", "string", _DOC["ServiceAccount.secrets"]), _AGE)
)
def _service_account(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(_list(obj, "secrets")), _age(obj, now)]


@_prints(
    ("coordination.k8s.io", "Lease"),
    columns=(_NAME, _Col("Holder", "string", _DOC["LeaseSpec.holderIdentity"]), _AGE),
)
def _lease(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _str(_map(obj, "spec"), "holderIdentity"), _age(obj, now)]


@_prints(
    ("certificates.k8s.io", "CertificateSigningRequest"),
    columns=(
        _NAME,
        _AGE,
        _Col(
            "SignerName",
            "string",
            "signerName indicates the requested signer, and is a qualified name.",
        ),
        _Col("Requestor", "string", "Name of the user which made this request."),
        _Col(
            "RequestedDuration",
            "string",
            "expirationSeconds is the requested duration of validity of the issued certificate.",
        ),
        _Col("Condition", "string", "All status conditions applied to this request."),
    ),
)
def _certificate_signing_request(obj: Obj, now: datetime) -> list[Cell]:
    spec = _map(obj, "spec")
    expiration = spec.get("expirationSeconds")
    requested = "<none>" if not isinstance(expiration, int) else human_duration(timedelta(seconds=expiration))
    return [
        _name(obj),
        _age(obj, now),
        _str(spec, "signerName") or "<none>",
        _str(spec, "username"),
        requested,
        _csr_condition(obj),
    ]


def _csr_condition(obj: Obj) -> str:
    """``extractCSRStatus``: Denied beats Approved beats Pending, then ,Failed and ,Issued."""
    types = {_str(c, "type") for c in _list(_map(obj, "status"), "conditions")}
    text = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    if "Failed" in types:
        text += ",Failed"
    if _str(_map(obj, "status"), "certificate"):
        text += ",Issued"
    return text


# printPodTemplate: the template's containers (on every row, not only wide) and pod labels.
@_prints(
    ("", "PodTemplate"),
    columns=(
        _NAME,
        _Col("Containers", "string", "Names of each container in the template."),
        _Col("Images", "string", "Images referenced by each container in the template."),
        _Col("Pod Labels", "string", "The labels for the pod template."),
    ),
)
def _pod_template(obj: Obj, now: datetime) -> list[Cell]:
    template = _map(obj, "template")
    names, images = _layout_containers(_map(template, "spec"))
    return [_name(obj), names, images, format_labels(_map(_map(template, "metadata"), "labels"))]


# printRuntimeClass. Upstream describes Handler with metav1.ObjectMeta{}.SwaggerDoc()["handler"],
# a key ObjectMeta does not have: the description is empty.
@_prints(
    ("node.k8s.io", "RuntimeClass"),
    columns=(_NAME, _Col("Handler", "string", ""), _AGE),
)
def _runtime_class(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _str(obj, "handler"), _age(obj, now)]


@_prints(
    ("scheduling.k8s.io", "PriorityClass"),
    columns=(
        _NAME,
        _Col("Value", "integer", _DOC["PriorityClass.value"]),
        _Col("Global-Default", "boolean", _DOC["PriorityClass.globalDefault"]),
        _AGE,
        _Col("PreemptionPolicy", "string", _DOC["PriorityClass.preemptionPolicy"]),
    ),
)
def _priority_class(obj: Obj, now: datetime) -> list[Cell]:
    return [
        _name(obj),
        _int(obj, "value"),
        _bool(obj, "globalDefault"),
        _age(obj, now),
        _str(obj, "preemptionPolicy"),
    ]


@_prints(
    ("storage.k8s.io", "StorageClass"),
    columns=(
        _NAME,
        _Col("Provisioner", "string", _DOC["StorageClass.provisioner"]),
        _Col("ReclaimPolicy", "string", _DOC["StorageClass.reclaimPolicy"]),
        _Col("VolumeBindingMode", "string", _DOC["StorageClass.volumeBindingMode"]),
        _Col("AllowVolumeExpansion", "string", _DOC["StorageClass.allowVolumeExpansion"]),
        _AGE,
    ),
)
def _storage_class(obj: Obj, now: datetime) -> list[Cell]:
    annotations = _map(_map(obj, "metadata"), "annotations")
    default = (
        annotations.get("storageclass.kubernetes.io/is-default-class") == "true"
        or annotations.get("storageclass.beta.kubernetes.io/is-default-class") == "true"
    )
    reclaim_policy, binding_mode = _opt_str(obj, "reclaimPolicy"), _opt_str(obj, "volumeBindingMode")
    return [
        _name(obj) + (" (default)" if default else ""),
        _str(obj, "provisioner"),
        "Delete" if reclaim_policy is None else reclaim_policy,
        "Immediate" if binding_mode is None else binding_mode,
        _bool(obj, "allowVolumeExpansion"),
        _age(obj, now),
    ]


# --- storage: PersistentVolume, PersistentVolumeClaim ---------------------------------------------

# helper.GetAccessModesAsString: fixed order, each mode once.
_ACCESS_MODE_ABBREVIATIONS = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def _access_modes(modes: list[Any]) -> str:
    return ",".join(short for mode, short in _ACCESS_MODE_ABBREVIATIONS if mode in modes)


def _storage_class_of(obj: Obj) -> str:
    """helper.GetPersistentVolume(Claim)Class: the beta annotation wins over spec.storageClassName."""
    annotations = _map(_map(obj, "metadata"), "annotations")
    if BETA_STORAGE_CLASS_ANNOTATION in annotations:
        return str(annotations[BETA_STORAGE_CLASS_ANNOTATION])
    return _str(_map(obj, "spec"), "storageClassName")


def _storage(resources: dict[str, Any]) -> str:
    """``resource.Quantity.String()`` of the ``storage`` entry ("0" when absent)."""
    raw = resources.get("storage")
    if raw is None:
        return "0"
    try:
        return str(Quantity.parse(raw))
    except InvalidQuantityError:
        return str(raw)


def _phase_or_terminating(obj: Obj) -> str:
    if _map(obj, "metadata").get("deletionTimestamp"):
        return "Terminating"
    return _str(_map(obj, "status"), "phase")


@_prints(
    ("", "PersistentVolume"),
    columns=(
        _NAME,
        _Col("Capacity", "string", _DOC["PersistentVolumeSpec.capacity"]),
        _Col("Access Modes", "string", _DOC["PersistentVolumeSpec.accessModes"]),
        _Col("Reclaim Policy", "string", _DOC["PersistentVolumeSpec.persistentVolumeReclaimPolicy"]),
        _Col("Status", "string", _DOC["PersistentVolumeStatus.phase"]),
        _Col("Claim", "string", _DOC["PersistentVolumeSpec.claimRef"]),
        _Col("StorageClass", "string", "StorageClass of the pv"),
        _Col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
        _Col("Reason", "string", _DOC["PersistentVolumeStatus.reason"]),
        _AGE,
        _Col("VolumeMode", "string", _DOC["PersistentVolumeSpec.volumeMode"], 1),
    ),
)
def _persistent_volume(obj: Obj, now: datetime) -> list[Cell]:
    spec = _map(obj, "spec")
    claim_ref = _sub(spec, "claimRef")
    claim = f"{_str(claim_ref, 'namespace')}/{_str(claim_ref, 'name')}" if claim_ref is not None else ""
    attributes_class = _opt_str(spec, "volumeAttributesClassName")
    volume_mode = _opt_str(spec, "volumeMode")
    return [
        _name(obj),
        _storage(_map(spec, "capacity")),
        _access_modes(_list(spec, "accessModes")),
        _str(spec, "persistentVolumeReclaimPolicy"),
        _phase_or_terminating(obj),
        claim,
        _storage_class_of(obj),
        "<unset>" if attributes_class is None else attributes_class,
        _str(_map(obj, "status"), "reason"),
        _age(obj, now),
        "<unset>" if volume_mode is None else volume_mode,
    ]


@_prints(
    ("", "PersistentVolumeClaim"),
    columns=(
        _NAME,
        _Col("Status", "string", _DOC["PersistentVolumeClaimStatus.phase"]),
        _Col("Volume", "string", _DOC["PersistentVolumeClaimSpec.volumeName"]),
        _Col("Capacity", "string", _DOC["PersistentVolumeClaimStatus.capacity"]),
        _Col("Access Modes", "string", _DOC["PersistentVolumeClaimStatus.accessModes"]),
        _Col("StorageClass", "string", "StorageClass of the pvc"),
        _Col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
        _AGE,
        _Col("VolumeMode", "string", _DOC["PersistentVolumeClaimSpec.volumeMode"], 1),
    ),
)
def _persistent_volume_claim(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    volume_name = _str(spec, "volumeName")
    capacity = access_modes = ""
    if volume_name:
        # Only a bound claim shows what it got (status), never what it asked for.
        capacity = _storage(_map(status, "capacity"))
        access_modes = _access_modes(_list(status, "accessModes"))
    attributes_class = _opt_str(spec, "volumeAttributesClassName")
    volume_mode = _opt_str(spec, "volumeMode")
    return [
        _name(obj),
        _phase_or_terminating(obj),
        volume_name,
        capacity,
        access_modes,
        _storage_class_of(obj),
        "<unset>" if attributes_class is None else attributes_class,
        _age(obj, now),
        "<unset>" if volume_mode is None else volume_mode,
    ]


# --- RBAC -----------------------------------------------------------------------------------------


def _binding_cells(obj: Obj, now: datetime) -> list[Cell]:
    role_ref = _map(obj, "roleRef")
    users: list[str] = []
    groups: list[str] = []
    service_accounts: list[str] = []
    for subject in _list(obj, "subjects"):
        kind = _str(subject, "kind")
        if kind == "ServiceAccount":
            service_accounts.append(f"{_str(subject, 'namespace')}/{_str(subject, 'name')}")
        elif kind == "User":
            users.append(_str(subject, "name"))
        elif kind == "Group":
            groups.append(_str(subject, "name"))
    return [
        _name(obj),
        f"{_str(role_ref, 'kind')}/{_str(role_ref, 'name')}",
        _age(obj, now),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(service_accounts),
    ]


_prints(
    ("rbac.authorization.k8s.io", "RoleBinding"),
    columns=(
        _NAME,
        _Col("Role", "string", _DOC["RoleBinding.roleRef"]),
        _AGE,
        _Col("Users", "string", "Users in the roleBinding", 1),
        _Col("Groups", "string", "Groups in the roleBinding", 1),
        _Col("ServiceAccounts", "string", "ServiceAccounts in the roleBinding", 1),
    ),
)(_binding_cells)
_prints(
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    columns=(
        _NAME,
        _Col("Role", "string", _DOC["ClusterRoleBinding.roleRef"]),
        _AGE,
        _Col("Users", "string", "Users in the clusterRoleBinding", 1),
        _Col("Groups", "string", "Groups in the clusterRoleBinding", 1),
        _Col("ServiceAccounts", "string", "ServiceAccounts in the clusterRoleBinding", 1),
    ),
)(_binding_cells)


# --- events (core/v1 and events.k8s.io/v1 share upstream's storage and printer) ------------------


@dataclass(frozen=True)
class _EventShape:
    """Where the served JSON keeps what the internal Event printer reads."""

    involved_object: str
    message: str
    first_timestamp: str
    last_timestamp: str
    count: str
    source: str
    reporting_controller: str


_CORE_EVENT = _EventShape(
    "involvedObject", "message", "firstTimestamp", "lastTimestamp", "count", "source", "reportingComponent"
)
_EVENTS_K8S_IO_EVENT = _EventShape(
    "regarding",
    "note",
    "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp",
    "deprecatedCount",
    "deprecatedSource",
    "reportingController",
)


def _event_cells(shape: _EventShape) -> CellsFn:
    def cells(obj: Obj, now: datetime) -> list[Cell]:
        first_stamp = _time(obj.get(shape.first_timestamp))
        first = _since(first_stamp if first_stamp is not None else _time(obj.get("eventTime")), now)
        last_stamp = _time(obj.get(shape.last_timestamp))
        last = first if last_stamp is None else _since(last_stamp, now)
        count = _int(obj, shape.count)
        series = _sub(obj, "series")
        if series is not None:
            last = _since(_time(series.get("lastObservedTime")), now)
            count = _int(series, "count")
        elif count == 0:
            count = 1  # singleton events have no count in the new API
        involved = _map(obj, shape.involved_object)
        kind, name = _str(involved, "kind").lower(), _str(involved, "name")
        source = _map(obj, shape.source)
        component = _str(source, "component") or _str(obj, shape.reporting_controller)
        host = _str(source, "host") or _str(obj, "reportingInstance")
        return [
            last,
            _str(obj, "type"),
            _str(obj, "reason"),
            f"{kind}/{name}" if name else kind,
            _str(involved, "fieldPath"),
            f"{component}, {host}" if host else component,
            _str(obj, shape.message).strip(),
            first,
            count,
            _name(obj),
        ]

    return cells


_EVENT_COLUMNS = (
    _Col("Last Seen", "string", _DOC["Event.lastTimestamp"]),
    _Col("Type", "string", _DOC["Event.type"]),
    _Col("Reason", "string", _DOC["Event.reason"]),
    _Col("Object", "string", _DOC["Event.involvedObject"]),
    _Col("Subobject", "string", _DOC["ObjectReference.fieldPath"], 1),
    _Col("Source", "string", _DOC["Event.source"], 1),
    _Col("Message", "string", _DOC["Event.message"]),
    _Col("First Seen", "string", _DOC["Event.firstTimestamp"], 1),
    _Col("Count", "string", _DOC["Event.count"], 1),
    _Col("Name", "string", _DOC["ObjectMeta.name"], 1, "name"),
)
_prints(("", "Event"), columns=_EVENT_COLUMNS)(_event_cells(_CORE_EVENT))
_prints(("events.k8s.io", "Event"), columns=_EVENT_COLUMNS)(_event_cells(_EVENTS_K8S_IO_EVENT))


# --- admissionregistration.k8s.io ----------------------------------------------------------------


@_prints(
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    columns=(
        _NAME,
        _Col(
            "Webhooks",
            "integer",
            "Webhooks indicates the number of webhooks registered in this configuration",
        ),
        _AGE,
    ),
)
def _webhook_configuration(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(_list(obj, "webhooks")), _age(obj, now)]


@_prints(
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    columns=(
        _NAME,
        _Col(
            "Validations",
            "integer",
            "Validations indicates the number of validation rules defined in this configuration",
        ),
        _Col(
            "ParamKind",
            "string",
            "ParamKind specifies the kind of resources used to parameterize this policy",
        ),
        _AGE,
    ),
)
def _validating_admission_policy(obj: Obj, now: datetime) -> list[Cell]:
    spec = _map(obj, "spec")
    param_kind = spec.get("paramKind")
    shown = "<unset>"
    if isinstance(param_kind, dict):
        shown = f"{_str(param_kind, 'apiVersion')}/{_str(param_kind, 'kind')}"
    return [_name(obj), len(_list(spec, "validations")), shown, _age(obj, now)]


def _go_label_selector_string(selector: Obj) -> str:
    """The generated ``(*metav1.LabelSelector).String()`` (gogo-protobuf's struct dump), which the
    binding printer shows verbatim: ``&LabelSelector{MatchLabels:map[string]string{a: b,},...}``."""
    labels = _map(selector, "matchLabels")
    match_labels = "".join(f"{key}: {labels[key]}," for key in sorted(labels))
    expressions = "".join(
        f"LabelSelectorRequirement{{Key:{_str(expr, 'key')},Operator:{_str(expr, 'operator')},"
        f"Values:[{' '.join(str(v) for v in _list(expr, 'values'))}],}},"
        for expr in _list(selector, "matchExpressions")
        if isinstance(expr, dict)
    )
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{match_labels}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )


@_prints(
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    columns=(
        _NAME,
        _Col(
            "PolicyName",
            "string",
            "PolicyName indicates the policy definition which the policy binding binded to",
        ),
        _Col("ParamRef", "string", "ParamRef indicates the param resource which sets the configration param"),
        _AGE,
    ),
)
def _validating_admission_policy_binding(obj: Obj, now: datetime) -> list[Cell]:
    spec = _map(obj, "spec")
    param_ref = spec.get("paramRef")
    shown = "<unset>"
    if isinstance(param_ref, dict):
        name = _str(param_ref, "name")
        if name:
            # a param without a namespace may be cluster-scoped or in the request's namespace
            shown = f"{_str(param_ref, 'namespace') or '*'}/{name}"
        elif isinstance(param_ref.get("selector"), dict):
            shown = _go_label_selector_string(param_ref["selector"])
    return [_name(obj), _str(spec, "policyName"), shown, _age(obj, now)]


# --- APIService (kube-aggregator's convertor) ---------------------------------------------------


@_prints(
    ("apiregistration.k8s.io", "APIService"),
    columns=(
        _NAME,
        _Col("Service", "string", "The reference to the service that hosts this API endpoint."),
        _Col("Available", "string", "Whether this service is available."),
        _AGE,
    ),
)
def _api_service(obj: Obj, now: datetime) -> list[Cell]:
    service_ref = _sub(_map(obj, "spec"), "service")
    service = (
        "Local" if service_ref is None else f"{_str(service_ref, 'namespace')}/{_str(service_ref, 'name')}"
    )
    available = "Unknown"
    condition = _first_condition(_conditions(_map(obj, "status")), "Available")
    if condition is not None:
        state, reason = _str(condition, "status"), _str(condition, "reason")
        available = f"{state} ({reason})" if state != "True" and reason else state
    return [_name(obj), service, available, _age(obj, now)]


# --- the default convertor (rest.NewDefaultTableConvertor) ----------------------------------------

_DEFAULT_COLUMNS = (
    _NAME.definition(),
    _Col("Created At", "date", _DOC["ObjectMeta.creationTimestamp"]).definition(),
)


def _default_cells(obj: Obj, now: datetime) -> list[Cell]:
    """Name and creationTimestamp as RFC 3339 in UTC (the zero time when unset)."""
    t = parse_time(_map(obj, "metadata").get("creationTimestamp")) or _ZERO_TIME
    return [_name(obj), f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"]


_DEFAULT_PRINTER = _Printer(columns=_DEFAULT_COLUMNS, cells=_default_cells)


# --- custom resources (apiextensions-apiserver's tableconvertor) -----------------------------------

_Step = tuple[str, Any]  # ("field", name) | ("index", n) | ("all", None)
_TERMINATORS = frozenset(" \t\r\n.,[]$@{}")
_MISSING = object()


@lru_cache(maxsize=512)
def _compile_json_path(path: str) -> tuple[_Step, ...] | None:
    """The simple JSONPath subset CRD columns use: ``.a.b``, ``.a[0].b``, ``.a[*].b``,
    ``.a['b.c']``, ``\\.`` escapes; None when the path is outside it."""
    steps: list[_Step] = []
    pos, size = 0, len(path)
    while pos < size:
        ch = path[pos]
        if ch in " $@":
            pos += 1
        elif ch == ".":
            if path.startswith("..", pos):
                return None
            pos += 1
            name: list[str] = []
            while pos < size and path[pos] not in _TERMINATORS:
                if path[pos] == "\\" and pos + 1 < size:
                    pos += 1
                name.append(path[pos])
                pos += 1
            text = "".join(name)
            if text == "*":
                steps.append(("all", None))
            elif text:
                steps.append(("field", text))
        elif ch == "[":
            end = path.find("]", pos)
            if end < 0:
                return None
            inner = path[pos + 1 : end].strip()
            pos = end + 1
            if inner == "*":
                steps.append(("all", None))
            elif len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
                steps.append(("field", inner[1:-1]))
            elif re.fullmatch(r"[+-]?[0-9]+", inner):
                steps.append(("index", int(inner)))
            else:
                return None
        else:
            return None
    return tuple(steps)


def _find_first(data: Any, steps: tuple[_Step, ...]) -> Any:
    """The first JSONPath result (missing keys allowed), or ``_MISSING``."""
    current = [data]
    for kind, argument in steps:
        found: list[Any] = []
        for value in current:
            if value is None:
                continue
            if kind == "field":
                if isinstance(value, dict) and argument in value:
                    found.append(value[argument])
            elif kind == "index":
                if not isinstance(value, list):
                    return _MISSING
                index = argument + len(value) if argument < 0 else argument
                if not 0 <= index < len(value):
                    return _MISSING
                found.append(value[index])
            elif isinstance(value, dict):
                found.extend(value.values())
            elif isinstance(value, list):
                found.extend(value)
        if not found:
            return _MISSING
        current = found
    return current[0]


def _go_float(value: float) -> str:
    """Go's ``%v`` of a float64: shortest digits, exponent form below 1e-4 and from 1e6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)
    point = len(digits) + exponent
    negative = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        power = point - 1
        return f"{negative}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{negative}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return negative + digits + "0" * (point - len(digits))
    return f"{negative}{digits[:point]}.{digits[point:]}"


_HTML_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _json_path_text(value: Any) -> str:
    """How client-go's jsonpath prints one result: JSON for objects and lists, text otherwise."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode().translate(_HTML_ESCAPES)
    return str(value)


def _custom_cell(column_type: str, value: Any, *, now: datetime) -> Cell:
    """``cellForJSONValue`` (and the jsonpath text for string columns)."""
    if value is _MISSING:
        return None
    if column_type == "string":
        return _json_path_text(value)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if column_type == "integer" and is_number:
        return int(value) if math.isfinite(value) else None
    if column_type == "number" and is_number:
        return float(value)
    if column_type == "boolean" and isinstance(value, bool):
        return value
    if column_type == "date" and isinstance(value, str):
        if value in ("", "null"):
            return "<unknown>"
        stamp = parse_time(value)
        if stamp is None:
            return "<invalid>"
        return _since(None if stamp == _ZERO_TIME else stamp, now)
    return None


_CRD_DEFAULT_COLUMNS = (
    PrinterColumn(
        name="Age",
        type="date",
        description=_DOC["ObjectMeta.creationTimestamp"],
        json_path=".metadata.creationTimestamp",
    ),
)


@lru_cache(maxsize=256)
def _custom_printer(columns: tuple[PrinterColumn, ...]) -> _Printer:
    """Name, then each column; an unparsable JSONPath ends the list (as upstream's New)."""
    definitions = [_NAME.definition()]
    compiled: list[tuple[str, tuple[_Step, ...]]] = []
    for column in columns or _CRD_DEFAULT_COLUMNS:
        steps = _compile_json_path(column.json_path)
        if steps is None:
            break
        description = column.description or (
            f"Custom resource definition column (in JSONPath format): {column.json_path}"
        )
        definitions.append(
            {
                "name": column.name,
                "type": column.type,
                "format": column.format,
                "description": description,
                "priority": column.priority,
            }
        )
        compiled.append((column.type, steps))

    def cells(obj: Obj, now: datetime) -> list[Cell]:
        row: list[Cell] = [_name(obj)]
        row.extend(_custom_cell(kind, _find_first(obj, steps), now=now) for kind, steps in compiled)
        return row

    return _Printer(columns=tuple(definitions), cells=cells)


# --- the public face -----------------------------------------------------------------------------


def _printer_for(rt: ResourceType) -> _Printer:
    if rt.schema is not None or rt.printer_columns:
        return _custom_printer(rt.printer_columns)
    return _PRINTERS.get((rt.group, rt.kind), _DEFAULT_PRINTER)


def column_definitions(rt: ResourceType) -> list[dict[str, Any]]:
    """The Table ``columnDefinitions`` for ``rt`` (name, type, format, description, priority)."""
    return [dict(column) for column in _printer_for(rt).columns]


def row_cells(rt: ResourceType, obj: Obj, *, now: datetime) -> list[Cell]:
    """One Table row's ``cells`` for ``obj``, in column order, times measured from ``now``."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return _printer_for(rt).cells(obj, now)
