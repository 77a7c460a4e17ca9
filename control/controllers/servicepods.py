"""Pods as the endpoints of a Service: the rules the Endpoints and EndpointSlice controllers share.

Upstream keeps these in ``k8s.io/endpointslice/util`` and ``pkg/api/v1/pod`` so that both
controllers agree on which pods back a Service and how each one appears: a pod is listed
when it has an IP and is not terminal (Succeeded/Failed); a terminating pod (with a
``deletionTimestamp``) only where the caller accepts terminating pods; it is *ready* when
its ``Ready`` condition is ``True``; a named ``targetPort`` resolves to the container port
of that name and protocol (regular containers, then restartable init containers); and the
endpoint carries the pod's ``hostname`` when ``spec.subdomain`` names the Service.

Selection is by the Service's plain ``spec.selector`` map; a missing or empty selector
selects nothing (the controllers leave such Services to whoever writes their endpoints).
Matching pods are found through a label index on the shared pod informer — the smallest
bucket among the selector's ``key=value`` pairs, then a full match — instead of scanning a
namespace, because pod events arrive at a high rate and every one asks "which Services?".

Everything here reads shared cache objects and never mutates them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from control.client.indexer import NAMESPACE_INDEX, object_key
from control.client.informer import DeletedFinalStateUnknown, SharedInformer

Obj = Mapping[str, Any]

# Index of the pod cache: "<namespace>/<label key>=<label value>" for every label.
POD_LABEL_INDEX = "kubelab.io/pod-label"
HEADLESS_LABEL = "service.kubernetes.io/headless"


def _pod_label_values(pod: Obj) -> list[str]:
    metadata = pod.get("metadata") or {}
    namespace = metadata.get("namespace") or ""
    return [f"{namespace}/{key}={value}" for key, value in (metadata.get("labels") or {}).items()]


def ensure_pod_label_index(pods: SharedInformer) -> None:
    """Add the label index to the shared pod informer unless another controller already did."""
    if POD_LABEL_INDEX not in pods.cache.index_names():
        pods.add_indexers({POD_LABEL_INDEX: _pod_label_values})


def selector_of(service: Obj) -> dict[str, str]:
    """The Service's selector; empty when it has none (which selects no pods)."""
    selector = (service.get("spec") or {}).get("selector")
    return dict(selector) if isinstance(selector, Mapping) else {}


def matches(selector: Mapping[str, str], labels: Mapping[str, str] | None) -> bool:
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(key) == value for key, value in selector.items())


def selected_pods(
    pods: SharedInformer, *, namespace: str, selector: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The cached pods of ``namespace`` whose labels match ``selector`` (shared: do not mutate)."""
    if not selector:
        return []
    cache = pods.cache
    smallest: list[str] | None = None
    for key, value in selector.items():
        keys = cache.index_keys(POD_LABEL_INDEX, f"{namespace}/{key}={value}")
        if not keys:
            return []
        if smallest is None or len(keys) < len(smallest):
            smallest = keys
    result = []
    for key in sorted(smallest or ()):
        pod = cache.get_by_key(key)
        if pod is not None and matches(selector, (pod.get("metadata") or {}).get("labels")):
            result.append(pod)
    return result


def services_selecting(
    services: SharedInformer, *, namespace: str, labels: Mapping[str, str] | None
) -> set[str]:
    """Keys of the cached Services in ``namespace`` whose selector matches ``labels``."""
    return {
        object_key(service)
        for service in services.cache.by_index(NAMESPACE_INDEX, namespace)
        if matches(selector_of(service), labels)
    }


def pod_from_event(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def services_to_update(services: SharedInformer, *, old: Obj | None, new: Obj) -> set[str]:
    """The Services a pod event concerns (upstream's GetServicesToUpdateOnPodChange).

    A resync (same resourceVersion) or a change irrelevant to endpoints concerns none; a
    label or hostname change concerns the Services matched before and after — all of them
    if the endpoint itself changed too, else only those gained or lost.
    """
    new_meta = new.get("metadata") or {}
    namespace = new_meta.get("namespace") or ""
    if old is None:
        return services_selecting(services, namespace=namespace, labels=new_meta.get("labels"))
    old_meta = old.get("metadata") or {}
    if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
        return set()
    endpoint_changed = _endpoint_changed(old, new)
    labels_changed = old_meta.get("labels") != new_meta.get("labels") or _host_changed(old, new)
    if not labels_changed:
        if not endpoint_changed:
            return set()
        return services_selecting(services, namespace=namespace, labels=new_meta.get("labels"))
    before = services_selecting(services, namespace=namespace, labels=old_meta.get("labels"))
    after = services_selecting(services, namespace=namespace, labels=new_meta.get("labels"))
    return before | after if endpoint_changed else before ^ after


def _host_changed(old: Obj, new: Obj) -> bool:
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    return old_spec.get("hostname") != new_spec.get("hostname") or old_spec.get("subdomain") != new_spec.get(
        "subdomain"
    )


def _endpoint_changed(old: Obj, new: Obj) -> bool:
    """podEndpointsChanged's first answer: deletion, readiness, IPs or node changed."""
    if (old.get("metadata") or {}).get("deletionTimestamp") != (new.get("metadata") or {}).get(
        "deletionTimestamp"
    ):
        return True
    if is_ready(old) != is_ready(new):
        return True
    if pod_ips(old) != pod_ips(new):
        return True
    old_status, new_status = old.get("status") or {}, new.get("status") or {}
    if old_status.get("phase") != new_status.get("phase"):
        return True
    return (old.get("spec") or {}).get("nodeName") != (new.get("spec") or {}).get("nodeName")


# --- pod state ------------------------------------------------------------------------------


def is_ready(pod: Obj) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def pod_ips(pod: Obj) -> list[str]:
    """``status.podIPs`` (falling back to ``status.podIP``), in the pod's order."""
    status = pod.get("status") or {}
    ips = [entry.get("ip") for entry in status.get("podIPs") or () if entry.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


def should_be_in_endpoints(pod: Obj, *, include_terminating: bool) -> bool:
    if is_terminal(pod) or not pod_ips(pod):
        return False
    return include_terminating or not is_terminating(pod)


def should_set_hostname(pod: Obj, service: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (
        bool(spec.get("hostname"))
        and spec.get("subdomain") == (service.get("metadata") or {}).get("name")
        and (pod.get("metadata") or {}).get("namespace") == (service.get("metadata") or {}).get("namespace")
    )


def is_ipv6(ip: str) -> bool:
    return ":" in ip


# --- services -------------------------------------------------------------------------------


def has_cluster_ip(service: Obj) -> bool:
    cluster_ip = (service.get("spec") or {}).get("clusterIP") or ""
    return cluster_ip not in ("", "None")


def ip_families(service: Obj) -> list[str]:
    """The Service's IP families (``IPv4``/``IPv6``), as upstream guesses them when unset."""
    spec = service.get("spec") or {}
    families = [family for family in spec.get("ipFamilies") or () if family in ("IPv4", "IPv6")]
    if families:
        return families
    if has_cluster_ip(service):
        return ["IPv6" if is_ipv6(spec.get("clusterIP") or "") else "IPv4"]
    return ["IPv4", "IPv6"]


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod port a Service port targets (upstream's FindPort); None if a named port is missing."""
    target = service_port.get("targetPort")
    if target is None:
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    for container in _port_containers(spec):
        for port in container.get("ports") or ():
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return port.get("containerPort")
    return None


def _port_containers(spec: Obj) -> Iterable[Obj]:
    yield from spec.get("containers") or ()
    for container in spec.get("initContainers") or ():
        if container.get("restartPolicy") == "Always":  # sidecars serve too
            yield container


def target_ref(pod: Obj) -> dict[str, str]:
    metadata = pod.get("metadata") or {}
    return {
        "kind": "Pod",
        "namespace": metadata.get("namespace") or "",
        "name": metadata.get("name") or "",
        "uid": metadata.get("uid") or "",
    }
