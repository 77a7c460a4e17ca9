"""The HorizontalPodAutoscaler controller (kube-controller-manager's ``horizontalpodautoscaling``).

A port of upstream's ``pkg/controller/podautoscaler/horizontal.go`` and ``metrics/client.go`` as of
1.33. Every autoscaling/v2 HPA is reconciled when it is added or changed and then again every sync
period (``--horizontal-pod-autoscaler-sync-period``, 15 s): upstream re-queues each key with a
fixed delay after every sync, success or not, and so does this controller — errors are logged
and reported as Events and conditions, never retried faster.

One sync:

1. resolve ``spec.scaleTargetRef`` (apiVersion, kind) to a resource through discovery and read its
   ``scale`` subresource; failing that: Warning ``FailedGetScale`` and ``AbleToScale False
   FailedGetScale``. Otherwise ``AbleToScale True SucceededGetScale``;
2. a target at 0 replicas (with ``minReplicas`` above 0) disables scaling (``ScalingActive False
   ScalingDisabled``); one above ``maxReplicas`` or below ``minReplicas`` is scaled to that bound;
3. otherwise each metric proposes a replica count — Resource and ContainerResource from
   ``metrics.k8s.io/v1beta1`` PodMetrics, Pods and Object from ``custom.metrics.k8s.io/v1beta2``,
   External from ``external.metrics.k8s.io/v1beta1``, all read through the API server (they are
   aggregated APIs) — and the largest wins, bounded by
   :mod:`control.controllers.replica_calculator` (limits, ``behavior``, stabilization). A metric
   that cannot be read gives a Warning named after it (``FailedGetResourceMetric``...) and, when no
   metric can be read, ``ScalingActive False`` with that reason and a Warning
   ``FailedComputeMetricsReplicas``; the target is then left alone;
4. a new count is written through the target's ``scale`` subresource (Event ``SuccessfulRescale``
   "New size: N; reason: ...", ``lastScaleTime``), and the status is written when it changed.

All texts are upstream's. The recommendations and scale events the stabilization windows and
``behavior`` policies look back on live in memory, per HPA, as upstream keeps them: a restarted
controller starts with none. ``status.observedGeneration`` is not written (1.33 has no
``HPAGeneration``), and tolerances are the controller's 10 % both ways (``behavior.*.tolerance``
is alpha in 1.33 and off).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any
from urllib.parse import quote

from control.client import errors
from control.client.controller import Controller
from control.client.discovery import Discovery, UnknownKindError
from control.client.indexer import object_key
from control.client.informer import DeletedFinalStateUnknown, InformerFactory
from control.client.rest import Resource, RESTClient
from control.client.workqueue import RateLimitingQueue
from control.controllers import replica_calculator as calc
from control.controllers.events import EventRecorder
from control.controllers.kinds import PODS
from control.controllers.manager import ControllerContext
from control.controllers.ownership import format_time, parse_time
from control.resources.selectors import SelectorError, format_label_selector, parse_label_selector
from control.resources.validation import Quantity
from control.scheduler.quantity import QuantityError, milli_value

log = logging.getLogger("kubelab.controllers.horizontalpodautoscaler")

HORIZONTAL_POD_AUTOSCALERS = Resource(
    group="autoscaling", version="v2", plural="horizontalpodautoscalers", kind="HorizontalPodAutoscaler"
)
POD_METRICS = Resource(group="metrics.k8s.io", version="v1beta1", plural="pods", kind="PodMetrics")
CUSTOM_METRICS_PREFIX = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL_METRICS_PREFIX = "/apis/external.metrics.k8s.io/v1beta1"

NAME = "horizontalpodautoscaling"
QUEUE = "horizontalpodautoscaler"
COMPONENT = "horizontal-pod-autoscaler"
SYNC_PERIOD = 15.0  # --horizontal-pod-autoscaler-sync-period
DEFAULT_METRIC_WINDOW = timedelta(minutes=1)  # metricServerDefaultMetricWindow

Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def new_controller(ctx: ControllerContext) -> HorizontalController:
    return HorizontalController(
        client=ctx.client,
        informers=ctx.informers,
        recorder=ctx.recorder(COMPONENT),
        workers=ctx.options.concurrent_syncs,
    )


class _FixedInterval:
    """Upstream's ``FixedItemIntervalRateLimiter``: every key waits one sync period."""

    def __init__(self, interval: float) -> None:
        self._interval = interval

    def when(self, item: object) -> float:
        return self._interval

    def forget(self, item: object) -> None:
        return None

    def num_requeues(self, item: object) -> int:
        return 0


class MetricError(Exception):
    """One metric could not give a replica count: ``reason`` names the condition and Event."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------- status helpers


def set_condition(
    status: dict[str, Any], *, type: str, state: str, reason: str, message: str, now: datetime
) -> None:
    """``setCondition``: update (or append) the condition, moving lastTransitionTime only when the
    status flips."""
    conditions = status.setdefault("conditions", [])
    existing = next((c for c in conditions if c.get("type") == type), None)
    if existing is None:
        existing = {"type": type}
        conditions.append(existing)
    if existing.get("status") != state:
        existing["lastTransitionTime"] = format_time(now)
    existing.update(status=state, reason=reason, message=message)


def milli_quantity(milli: int, *, binary: bool = False) -> str:
    """``resource.NewMilliQuantity(milli, DecimalSI|BinarySI).String()``: kubelab's Quantity prints
    Go's canonical form."""
    return str(Quantity(Fraction(milli, 1000), "BinarySI" if binary else "DecimalSI"))


def _format_go_selector(selector: Mapping[str, Any] | None) -> str:
    """A metric selector as Go's ``%+v`` of a ``*metav1.LabelSelector`` prints it."""
    if selector is None:
        return "nil"
    labels = " ".join(f"{k}:{v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))
    expressions = " ".join(
        f"&LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
        f"Values:[{' '.join(e.get('values') or ())}],}}"
        for e in selector.get("matchExpressions") or ()
    )
    return f"&LabelSelector{{MatchLabels:map[{labels}],MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"


def _milli(raw: Any) -> int:
    try:
        return milli_value(raw)
    except QuantityError as exc:
        raise MetricError(f"invalid quantity {raw!r}: {exc}", reason="InvalidMetricSourceType") from exc


# --------------------------------------------------------------------------- one sync's state


@dataclass
class _Sync:
    """The HPA being reconciled (a deep copy: the cache is never touched) and what to report."""

    hpa: dict[str, Any]
    key: str
    now: datetime
    original_status: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> dict[str, Any]:
        return self.hpa.setdefault("status", {})

    @property
    def spec(self) -> dict[str, Any]:
        return self.hpa.get("spec") or {}

    @property
    def namespace(self) -> str:
        return self.hpa["metadata"]["namespace"]

    def condition(self, type: str, state: str, reason: str, message: str) -> None:
        set_condition(self.status, type=type, state=state, reason=reason, message=message, now=self.now)


@dataclass
class _Memory:
    """What upstream keeps per HPA between syncs (``recommendations``, scale events)."""

    recommendations: list[calc.Recommendation] = field(default_factory=list)
    up_events: list[calc.ScaleEvent] = field(default_factory=list)
    down_events: list[calc.ScaleEvent] = field(default_factory=list)


class HorizontalController:
    """Reconciles HorizontalPodAutoscalers; :meth:`run` works until cancelled."""

    def __init__(
        self,
        *,
        client: RESTClient,
        informers: InformerFactory,
        recorder: EventRecorder,
        workers: int = 5,
        sync_period: float = SYNC_PERIOD,
        downscale_stabilization: timedelta = calc.DOWNSCALE_STABILIZATION_WINDOW,
        now: Now = _utcnow,
    ) -> None:
        self.name = NAME
        self._client = client
        self._recorder = recorder
        self._discovery = Discovery(client)
        self._workers = workers
        self._sync_period = sync_period
        self._downscale_stabilization = downscale_stabilization
        self._now = now
        self._memory: dict[str, _Memory] = {}
        self._queue: RateLimitingQueue[str] | None = None
        self._hpas = informers.informer(HORIZONTAL_POD_AUTOSCALERS)
        self._pods = informers.informer(PODS)
        self._hpas.add_event_handler(
            on_add=self._enqueue, on_update=self._on_update, on_delete=self._on_delete
        )

    async def run(self) -> None:
        queue: RateLimitingQueue[str] = RateLimitingQueue(_FixedInterval(self._sync_period), name=QUEUE)
        self._queue = queue
        for hpa in self._hpas.cache.list():
            queue.add_rate_limited(object_key(hpa))
        try:
            # --concurrent-horizontal-pod-autoscaler-syncs (5); the queue never hands one key to two
            # workers, so the per-HPA memory is only ever touched by one sync at a time.
            await Controller(
                QUEUE, queue, self.reconcile, workers=self._workers, informers=[self._hpas, self._pods]
            ).run()
        finally:
            if self._queue is queue:
                self._queue = None

    # --- event handlers: every change waits for the next sync period, as upstream's AddRateLimited

    def _enqueue(self, hpa: dict[str, Any]) -> None:
        if self._queue is not None:
            self._queue.add_rate_limited(object_key(hpa))

    def _on_update(self, old: dict[str, Any], cur: dict[str, Any]) -> None:
        self._enqueue(cur)

    def _on_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj)
        if self._queue is not None:
            self._queue.forget(key)

    # --- reconcile ------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """Sync one HPA and queue it again after a sync period (unless it is gone). Failures are
        upstream's ``HandleError``: logged, already reported as Events and conditions."""
        cached = self._hpas.cache.get_by_key(key)
        if cached is None:
            log.info("Horizontal Pod Autoscaler %s has been deleted", key)
            self._memory.pop(key, None)
            return
        try:
            await self._sync(key, cached)
        except (errors.RequestError, MetricError, calc.MetricComputationError) as exc:
            log.warning("%s: %s", key, exc)
        finally:
            if self._queue is not None:
                self._queue.add_rate_limited(key)

    async def _sync(self, key: str, cached: Mapping[str, Any]) -> None:
        hpa = copy.deepcopy(dict(cached))
        sync = _Sync(
            hpa=hpa, key=key, now=self._now(), original_status=copy.deepcopy(hpa.get("status") or {})
        )
        memory = self._memory.setdefault(key, _Memory())
        ref = sync.spec.get("scaleTargetRef") or {}
        reference = f"{ref.get('kind', '')}/{sync.namespace}/{ref.get('name', '')}"
        try:
            target, scale = await self._get_scale(sync.namespace, ref)
        except MetricError as exc:
            await self._event(hpa, "Warning", "FailedGetScale", str(exc))
            sync.condition(
                "AbleToScale",
                "False",
                "FailedGetScale",
                f"the HPA controller was unable to get the target's current scale: {exc}",
            )
            await self._update_status_if_needed(sync)
            raise MetricError(
                f"failed to query scale subresource for {reference}: {exc}", reason="FailedGetScale"
            ) from exc
        sync.condition(
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        )
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        if not memory.recommendations:
            memory.recommendations.append(calc.Recommendation(current, sync.now))
        min_replicas = sync.spec.get("minReplicas")
        min_replicas = 1 if min_replicas is None else int(min_replicas)
        max_replicas = int(sync.spec.get("maxReplicas") or 0)
        metric_statuses: list[dict[str, Any]] | None = None
        rescale = True
        reason = ""
        desired = 0
        if current == 0 and min_replicas != 0:
            rescale = False
            sync.condition(
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
        elif current > max_replicas:
            reason, desired = "Current number of replicas above Spec.MaxReplicas", max_replicas
        elif current < min_replicas:
            reason, desired = "Current number of replicas below Spec.MinReplicas", min_replicas
        else:
            proposed, metric, metric_statuses, failure = await self._compute_replicas(sync, scale)
            if proposed < 0:
                self._set_status(
                    sync,
                    current=current,
                    desired=int(sync.status.get("desiredReplicas") or 0),
                    metrics=metric_statuses,
                    rescaled=False,
                )
                await self._update_status_if_needed(sync)
                await self._event(hpa, "Warning", "FailedComputeMetricsReplicas", failure)
                raise MetricError(
                    f"failed to compute desired number of replicas based on listed metrics for {reference}: {failure}",
                    reason="FailedComputeMetricsReplicas",
                )
            desired = proposed
            if desired > current:
                reason = f"{metric} above target"
            if desired < current:
                reason = "All metrics below target"
            desired = self._normalize(
                sync,
                memory,
                current=current,
                desired=desired,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
            )
            rescale = desired != current
        if rescale:
            try:
                await self._update_scale(sync.namespace, target, ref.get("name") or "", scale, desired)
            except errors.RequestError as exc:
                text = _error_text(exc)
                await self._event(
                    hpa, "Warning", "FailedRescale", f"New size: {desired}; reason: {reason}; error: {text}"
                )
                sync.condition(
                    "AbleToScale",
                    "False",
                    "FailedUpdateScale",
                    f"the HPA controller was unable to update the target scale: {text}",
                )
                self._set_status(
                    sync,
                    current=current,
                    desired=int(sync.status.get("desiredReplicas") or 0),
                    metrics=metric_statuses,
                    rescaled=False,
                )
                await self._update_status_if_needed(sync)
                raise
            sync.condition(
                "AbleToScale",
                "True",
                "SucceededRescale",
                f"the HPA controller was able to update the target scale to {desired}",
            )
            await self._event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            self._store_scale_event(sync, memory, previous=current, new=desired)
            log.info("%s: rescaled %s from %d to %d: %s", key, reference, current, desired, reason)
        else:
            desired = current
        self._set_status(sync, current=current, desired=desired, metrics=metric_statuses, rescaled=rescale)
        await self._update_status_if_needed(sync)

    # --- the target's scale ------------------------------------------------------------------------

    async def _get_scale(self, namespace: str, ref: Mapping[str, Any]) -> tuple[Resource, dict[str, Any]]:
        api_version = str(ref.get("apiVersion") or "")
        if api_version.count("/") > 1:
            raise MetricError(f"unexpected GroupVersion string: {api_version}", reason="FailedGetScale")
        kind = str(ref.get("kind") or "")
        try:
            target = await self._discovery.resource_for(api_version=api_version or "v1", kind=kind)
        except UnknownKindError as exc:
            group = api_version.rpartition("/")[0] if "/" in api_version else ""
            raise MetricError(
                f'no matches for kind "{kind}" in group "{group}"', reason="FailedGetScale"
            ) from exc
        try:
            scale = await self._client.get(
                target, str(ref.get("name") or ""), namespace=namespace, subresource="scale"
            )
        except errors.RequestError as exc:
            raise MetricError(_error_text(exc), reason="FailedGetScale") from exc
        return target, scale

    async def _update_scale(
        self, namespace: str, target: Resource, name: str, scale: dict[str, Any], desired: int
    ) -> None:
        """Write ``spec.replicas`` through the scale subresource; on a conflict re-read and retry
        (client-go's ``RetryOnConflict`` with ``DefaultRetry``: 5 attempts)."""
        for attempt in range(5):
            body = {**scale, "spec": {**(scale.get("spec") or {}), "replicas": desired}}
            try:
                await self._client.replace(target, body, namespace=namespace, subresource="scale")
                return
            except errors.ConflictError:
                if attempt == 4:
                    raise
                scale = await self._client.get(target, name, namespace=namespace, subresource="scale")

    # --- metrics -----------------------------------------------------------------------------------

    async def _compute_replicas(
        self, sync: _Sync, scale: Mapping[str, Any]
    ) -> tuple[int, str, list[dict[str, Any]] | None, str]:
        """``computeReplicasForMetrics``: (replicas, or -1 when no count can be had; the metric
        named in the reason; the metric statuses; the error, "" on success)."""
        selector_text = (scale.get("status") or {}).get("selector") or ""
        if not selector_text:
            await self._event(sync.hpa, "Warning", "SelectorRequired", "selector is required")
            sync.condition(
                "ScalingActive", "False", "InvalidSelector", "the HPA target's scale is missing a selector"
            )
            return -1, "", None, "selector is required"
        try:
            selector = parse_label_selector(selector_text)
        except SelectorError as exc:
            message = f"couldn't convert selector into a corresponding internal selector object: {exc}"
            await self._event(sync.hpa, "Warning", "InvalidSelector", message)
            sync.condition("ScalingActive", "False", "InvalidSelector", message)
            return -1, "", None, message
        pods = [
            pod
            for pod in self._pods.cache.list()
            if pod["metadata"].get("namespace") == sync.namespace
            and selector.matches(pod["metadata"].get("labels") or {})
        ]
        spec_replicas = int((scale.get("spec") or {}).get("replicas") or 0)
        status_replicas = int((scale.get("status") or {}).get("replicas") or 0)
        specs = sync.spec.get("metrics") or []
        statuses: list[dict[str, Any]] = [{"type": ""} for _ in specs]
        replicas, metric = 0, ""
        invalid = 0
        first_error: str | None = None
        first_condition: tuple[str, str] | None = None
        for index, spec in enumerate(specs):
            try:
                proposal, name, statuses[index] = await self._compute_replicas_for_metric(
                    sync,
                    spec,
                    spec_replicas=spec_replicas,
                    status_replicas=status_replicas,
                    selector=selector_text,
                    pods=pods,
                )
            except MetricError as exc:
                await self._event(sync.hpa, "Warning", exc.reason, str(exc.__cause__ or exc))
                if invalid == 0:
                    first_error = str(exc)
                    first_condition = (
                        exc.reason,
                        f"the HPA was unable to compute the replica count: {exc.__cause__ or exc}",
                    )
                invalid += 1
                continue
            if replicas == 0 or proposal > replicas:
                replicas, metric = proposal, name
        if first_error is not None:
            first_error = (
                f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first_error}"
            )
        if invalid >= len(specs) or (invalid > 0 and replicas < spec_replicas):
            if first_condition is not None:
                sync.condition("ScalingActive", "False", *first_condition)
            return -1, "", statuses, first_error or "no metrics specified"
        sync.condition(
            "ScalingActive",
            "True",
            "ValidMetricFound",
            f"the HPA was able to successfully calculate a replica count from {metric}",
        )
        return replicas, metric, statuses, ""

    async def _compute_replicas_for_metric(
        self,
        sync: _Sync,
        spec: Mapping[str, Any],
        *,
        spec_replicas: int,
        status_replicas: int,
        selector: str,
        pods: Sequence[Mapping[str, Any]],
    ) -> tuple[int, str, dict[str, Any]]:
        """One metric's (replicas, name, status). Raises MetricError whose ``__cause__`` is the
        condition's error and whose text is the wrapped one upstream returns."""
        kind = spec.get("type")
        if kind in ("Resource", "ContainerResource"):
            source = spec.get("resource" if kind == "Resource" else "containerResource") or {}
            container = str(source.get("container") or "")
            reason = "FailedGetResourceMetric" if kind == "Resource" else "FailedGetContainerResourceMetric"
            try:
                replicas, name, current = await self._resource_metric(
                    sync,
                    source,
                    spec_replicas=spec_replicas,
                    selector=selector,
                    pods=pods,
                    container=container,
                )
            except calc.MetricComputationError as exc:
                wrap = (
                    f"{source.get('name')} resource metric value"
                    if kind == "Resource"
                    else f"{container} container metric value"
                )
                raise MetricError(f"failed to get {wrap}: {exc}", reason=reason) from exc
            if kind == "ContainerResource":
                name = name.replace(" resource utilization", " container resource utilization")
                status = {
                    "type": kind,
                    "containerResource": {
                        "name": source.get("name"),
                        "container": container,
                        "current": current,
                    },
                }
            else:
                status = {"type": kind, "resource": {"name": source.get("name"), "current": current}}
            return replicas, name, status
        if kind == "Pods":
            source = spec.get("pods") or {}
            metric = source.get("metric") or {}
            try:
                target = _milli((source.get("target") or {}).get("averageValue"))
                samples = await self._custom_pod_metrics(sync.namespace, metric, selector=selector)
                proposal = calc.plain_metric_replicas(
                    current_replicas=spec_replicas,
                    target_usage=target,
                    resource="",
                    pods=pods,
                    metrics=samples,
                    now=sync.now,
                )
            except calc.MetricComputationError as exc:
                raise MetricError(
                    f"failed to get pods metric value: {exc}", reason="FailedGetPodsMetric"
                ) from exc
            status = {
                "type": "Pods",
                "pods": {"metric": metric, "current": {"averageValue": milli_quantity(proposal.usage)}},
            }
            return proposal.replicas, f"pods metric {metric.get('name')}", status
        if kind == "Object":
            return await self._object_metric(
                sync,
                spec.get("object") or {},
                spec_replicas=spec_replicas,
                status_replicas=status_replicas,
                pods=pods,
            )
        if kind == "External":
            return await self._external_metric(
                sync,
                spec.get("external") or {},
                spec_replicas=spec_replicas,
                status_replicas=status_replicas,
                pods=pods,
            )
        cause = calc.MetricComputationError(f'unknown metric source type "{kind}"')
        raise MetricError(str(cause), reason="InvalidMetricSourceType") from cause

    async def _resource_metric(
        self,
        sync: _Sync,
        source: Mapping[str, Any],
        *,
        spec_replicas: int,
        selector: str,
        pods: Sequence[Mapping[str, Any]],
        container: str,
    ) -> tuple[int, str, dict[str, Any]]:
        resource = str(source.get("name") or "")
        target = source.get("target") or {}
        binary = resource == "memory"
        if target.get("averageValue") is not None:
            samples = await self._resource_samples(
                sync, resource, selector=selector, container=container, what="usage"
            )
            try:
                proposal = calc.plain_metric_replicas(
                    current_replicas=spec_replicas,
                    target_usage=milli_value(target["averageValue"]),
                    resource=resource,
                    pods=pods,
                    metrics=samples,
                    now=sync.now,
                )
            except calc.MetricComputationError as exc:
                raise calc.MetricComputationError(f"failed to get {resource} usage: {exc}") from exc
            return (
                proposal.replicas,
                f"{resource} resource",
                {"averageValue": milli_quantity(proposal.usage, binary=binary)},
            )
        if target.get("averageUtilization") is None:
            raise calc.MetricComputationError(
                "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set"
            )
        samples = await self._resource_samples(
            sync, resource, selector=selector, container=container, what="utilization"
        )
        try:
            proposal = calc.resource_replicas(
                current_replicas=spec_replicas,
                target_utilization=int(target["averageUtilization"]),
                resource=resource,
                pods=pods,
                metrics=samples,
                now=sync.now,
                container=container,
            )
        except calc.MetricComputationError as exc:
            raise calc.MetricComputationError(f"failed to get {resource} utilization: {exc}") from exc
        current = {
            "averageUtilization": proposal.utilization,
            "averageValue": milli_quantity(proposal.usage, binary=binary),
        }
        return proposal.replicas, f"{resource} resource utilization (percentage of request)", current

    async def _resource_samples(
        self, sync: _Sync, resource: str, *, selector: str, container: str, what: str
    ) -> dict[str, calc.PodMetric]:
        """The pods' samples of ``resource``, or upstream's ``failed to get <resource> <what>``."""
        try:
            return await self._resource_pod_metrics(
                sync.namespace, resource, selector=selector, container=container
            )
        except calc.MetricComputationError as exc:
            raise calc.MetricComputationError(
                f"failed to get {resource} {what}: unable to get metrics for resource {resource}: {exc}"
            ) from exc

    async def _resource_pod_metrics(
        self, namespace: str, resource: str, *, selector: str, container: str
    ) -> dict[str, calc.PodMetric]:
        """``GetResourceMetric``: PodMetrics of the selected pods (milli-units per pod)."""
        try:
            answer = await self._client.list(POD_METRICS, namespace=namespace, label_selector=selector)
        except errors.RequestError as exc:
            raise calc.MetricComputationError(
                f"unable to fetch metrics from resource metrics API: {_error_text(exc, unserved='get pods.metrics.k8s.io')}"
            ) from exc
        items = answer.get("items") or []
        if not items:
            raise calc.MetricComputationError("no metrics returned from resource metrics API")
        samples: dict[str, calc.PodMetric] = {}
        for item in items:
            name = item["metadata"]["name"]
            containers = item.get("containers") or []
            usages = [c.get("usage") or {} for c in containers if not container or c.get("name") == container]
            if not usages or any(resource not in usage for usage in usages):
                continue  # a pod (or container) without a sample for this resource
            samples[name] = calc.PodMetric(
                value=sum(milli_value(usage[resource]) for usage in usages),
                timestamp=parse_time(item.get("timestamp")),
                window=_window(item.get("window")),
            )
        return samples

    async def _custom_pod_metrics(
        self, namespace: str, metric: Mapping[str, Any], *, selector: str
    ) -> dict[str, calc.PodMetric]:
        """``GetRawMetric``: a custom metric of every selected pod."""
        name = str(metric.get("name") or "")
        params = {"labelSelector": selector}
        if metric.get("selector") is not None:
            params["metricLabelSelector"] = format_label_selector(metric["selector"])
        path = f"{CUSTOM_METRICS_PREFIX}/namespaces/{quote(namespace)}/pods/*/{quote(name)}"
        try:
            answer = (await self._client.request("GET", path, params=params)).json()
        except errors.RequestError as exc:
            raise calc.MetricComputationError(
                f"unable to get metric {name}: unable to fetch metrics from custom metrics API: "
                f"{_error_text(exc, unserved='get pods.custom.metrics.k8s.io')}"
            ) from exc
        items = answer.get("items") or []
        if not items:
            raise calc.MetricComputationError(
                f"unable to get metric {name}: no metrics returned from custom metrics API"
            )
        return {
            (item.get("describedObject") or {}).get("name") or "": calc.PodMetric(
                value=milli_value(item.get("value")),
                timestamp=parse_time(item.get("timestamp")),
                window=timedelta(seconds=item["windowSeconds"])
                if item.get("windowSeconds")
                else DEFAULT_METRIC_WINDOW,
            )
            for item in items
        }

    async def _object_metric(
        self,
        sync: _Sync,
        source: Mapping[str, Any],
        *,
        spec_replicas: int,
        status_replicas: int,
        pods: Sequence[Mapping[str, Any]],
    ) -> tuple[int, str, dict[str, Any]]:
        described = source.get("describedObject") or {}
        metric = source.get("metric") or {}
        target = source.get("target") or {}
        name = str(metric.get("name") or "")
        status: dict[str, Any] = {
            "type": "Object",
            "object": {"describedObject": described, "metric": metric, "current": {}},
        }
        where = f"{described.get('kind')} {sync.namespace}/{described.get('name')}"

        def failed(exc: calc.MetricComputationError, *, wrap: str = "") -> MetricError:
            error = MetricError(
                f"failed to get object metric value: {wrap}{exc}", reason="FailedGetObjectMetric"
            )
            error.__cause__ = exc
            return error

        if target.get("type") == "Value" and target.get("value") is not None:
            try:
                usage = await self._object_value(sync.namespace, described, metric, where=where)
                ratio = usage / _milli(target["value"])
                replicas = calc.usage_ratio_replicas(
                    current_replicas=spec_replicas, usage_ratio=ratio, pods=pods
                )
            except calc.MetricComputationError as exc:
                raise failed(exc) from exc
            status["object"]["current"]["value"] = milli_quantity(usage)
            return replicas, f"{described.get('kind')} metric {name}", status
        if target.get("type") == "AverageValue" and target.get("averageValue") is not None:
            try:
                usage = await self._object_value(sync.namespace, described, metric, where=where)
                proposal = calc.per_pod_replicas(
                    status_replicas=status_replicas,
                    usage=usage,
                    target_average=_milli(target["averageValue"]),
                )
            except calc.MetricComputationError as exc:
                raise failed(exc, wrap=f"failed to get {name} object metric: ") from exc
            status["object"]["current"]["averageValue"] = milli_quantity(proposal.usage)
            return (
                proposal.replicas,
                f"external metric {name}({_format_go_selector(metric.get('selector'))})",
                status,
            )
        cause = calc.MetricComputationError(
            "invalid object metric source: neither a value target nor an average value target was set"
        )
        raise failed(cause) from cause

    async def _object_value(
        self, namespace: str, described: Mapping[str, Any], metric: Mapping[str, Any], *, where: str
    ) -> int:
        """``GetObjectMetric``: one custom metric of one object (a Namespace's is root-scoped)."""
        prefix = f"unable to get metric {metric.get('name') or ''} on {where}: "
        kind = str(described.get("kind") or "")
        api_version = str(described.get("apiVersion") or "v1")
        try:
            resource = await self._discovery.resource_for(api_version=api_version, kind=kind)
        except UnknownKindError as exc:
            raise calc.MetricComputationError(
                f"{prefix}unable to fetch metrics from custom metrics API: {exc}"
            ) from exc
        name = quote(str(metric.get("name") or ""))
        group = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
        if kind == "Namespace" and not resource.group:
            path = f"{CUSTOM_METRICS_PREFIX}/namespaces/{quote(namespace)}/metrics/{name}"
        else:
            path = f"{CUSTOM_METRICS_PREFIX}/namespaces/{quote(namespace)}/{group}/{quote(str(described.get('name') or ''))}/{name}"
        params = (
            {"metricLabelSelector": format_label_selector(metric["selector"])}
            if metric.get("selector")
            else None
        )
        try:
            answer = (await self._client.request("GET", path, params=params)).json()
        except errors.RequestError as exc:
            raise calc.MetricComputationError(
                f"{prefix}unable to fetch metrics from custom metrics API: "
                f"{_error_text(exc, unserved=f'get {group}.custom.metrics.k8s.io')}"
            ) from exc
        items = answer.get("items") if answer.get("kind") == "MetricValueList" else [answer]
        if not items:
            raise calc.MetricComputationError(
                f"{prefix}unable to fetch metrics from custom metrics API: no metrics returned"
            )
        return milli_value(items[0].get("value"))

    async def _external_metric(
        self,
        sync: _Sync,
        source: Mapping[str, Any],
        *,
        spec_replicas: int,
        status_replicas: int,
        pods: Sequence[Mapping[str, Any]],
    ) -> tuple[int, str, dict[str, Any]]:
        metric = source.get("metric") or {}
        target = source.get("target") or {}
        name = str(metric.get("name") or "")
        label = f"external metric {name}({_format_go_selector(metric.get('selector'))})"
        status: dict[str, Any] = {"type": "External", "external": {"metric": metric, "current": {}}}
        prefix = f"unable to get external metric {sync.namespace}/{name}/{_format_go_selector(metric.get('selector'))}: "
        if target.get("averageValue") is not None:
            try:
                usage = await self._external_values(sync.namespace, metric, prefix=prefix)
            except calc.MetricComputationError as exc:
                raise MetricError(
                    f"failed to get {name} external metric value: failed to get {name} external metric: {exc}",
                    reason="FailedGetExternalMetric",
                ) from exc
            proposal = calc.per_pod_replicas(
                status_replicas=status_replicas, usage=usage, target_average=_milli(target["averageValue"])
            )
            status["external"]["current"]["averageValue"] = milli_quantity(proposal.usage)
            return proposal.replicas, label, status
        if target.get("value") is not None:
            try:
                usage = await self._external_values(sync.namespace, metric, prefix=prefix)
                replicas = calc.usage_ratio_replicas(
                    current_replicas=spec_replicas, usage_ratio=usage / _milli(target["value"]), pods=pods
                )
            except calc.MetricComputationError as exc:
                raise MetricError(
                    f"failed to get {name} external metric value: failed to get external metric {name}: {exc}",
                    reason="FailedGetExternalMetric",
                ) from exc
            status["external"]["current"]["value"] = milli_quantity(usage)
            return replicas, label, status
        cause = calc.MetricComputationError(
            "invalid external metric source: neither a value target nor an average value target was set"
        )
        raise MetricError(
            f"failed to get {name} external metric value: {cause}", reason="FailedGetExternalMetric"
        ) from cause

    async def _external_values(self, namespace: str, metric: Mapping[str, Any], *, prefix: str) -> int:
        """``GetExternalMetric``: the sum of the metric's values matching its selector."""
        metric_name = str(metric.get("name") or "")
        path = f"{EXTERNAL_METRICS_PREFIX}/namespaces/{quote(namespace)}/{quote(metric_name)}"
        params = (
            {"labelSelector": format_label_selector(metric["selector"])} if metric.get("selector") else None
        )
        try:
            answer = (await self._client.request("GET", path, params=params)).json()
        except errors.RequestError as exc:
            raise calc.MetricComputationError(
                f"{prefix}unable to fetch metrics from external metrics API: "
                f"{_error_text(exc, unserved=f'get {metric_name}.external.metrics.k8s.io')}"
            ) from exc
        items = answer.get("items") or []
        if not items:
            raise calc.MetricComputationError(f"{prefix}no metrics returned from external metrics API")
        return sum(milli_value(item.get("value")) for item in items)

    # --- normalisation and memory --------------------------------------------------------------------

    def _normalize(
        self,
        sync: _Sync,
        memory: _Memory,
        *,
        current: int,
        desired: int,
        min_replicas: int,
        max_replicas: int,
    ) -> int:
        behavior = sync.spec.get("behavior")
        if behavior is None:
            stabilized = calc.stabilize_recommendation(
                memory.recommendations,
                desired_replicas=desired,
                now=sync.now,
                window=self._downscale_stabilization,
            )
            if stabilized != desired:
                sync.condition(
                    "AbleToScale",
                    "True",
                    "ScaleDownStabilized",
                    "recent recommendations were higher than current one, applying the highest recent recommendation",
                )
            else:
                sync.condition(
                    "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"
                )
            limited = calc.convert_desired_replicas_with_rules(
                current_replicas=current,
                desired_replicas=stabilized,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
            )
        else:
            down_window = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds")
            if down_window is None:
                down_window = int(self._downscale_stabilization.total_seconds())
            held = calc.stabilize_recommendation_with_behaviors(
                memory.recommendations,
                current_replicas=current,
                desired_replicas=desired,
                up_window_seconds=int((behavior.get("scaleUp") or {}).get("stabilizationWindowSeconds") or 0),
                down_window_seconds=int(down_window),
                now=sync.now,
            )
            stabilized = held.replicas
            if stabilized != desired:
                sync.condition("AbleToScale", "True", held.reason, held.message)
            else:
                sync.condition(
                    "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"
                )
            limited = calc.convert_desired_replicas_with_behavior_rate(
                current_replicas=current,
                desired_replicas=stabilized,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                behavior=behavior,
                up_events=memory.up_events,
                down_events=memory.down_events,
                now=sync.now,
            )
        state = "False" if limited.replicas == stabilized else "True"
        sync.condition("ScalingLimited", state, limited.reason, limited.message)
        return limited.replicas

    def _store_scale_event(self, sync: _Sync, memory: _Memory, *, previous: int, new: int) -> None:
        behavior = sync.spec.get("behavior")
        if behavior is None:
            return  # only behavior policies look back at scale events
        if new > previous:
            period = calc.longest_policy_period(behavior.get("scaleUp") or {})
            calc.store_scale_event(
                memory.up_events, change=new - previous, longest_period=period, now=sync.now
            )
        else:
            period = calc.longest_policy_period(behavior.get("scaleDown") or {})
            calc.store_scale_event(
                memory.down_events, change=previous - new, longest_period=period, now=sync.now
            )

    # --- status and events ---------------------------------------------------------------------------

    def _set_status(
        self, sync: _Sync, *, current: int, desired: int, metrics: list[dict[str, Any]] | None, rescaled: bool
    ) -> None:
        """``setStatus``: the status rebuilt from the counts, metrics, conditions and lastScaleTime."""
        status: dict[str, Any] = {"currentReplicas": current, "desiredReplicas": desired}
        last = format_time(sync.now) if rescaled else sync.status.get("lastScaleTime")
        if last:
            status["lastScaleTime"] = last
        if metrics:
            status["currentMetrics"] = metrics
        if sync.status.get("conditions"):
            status["conditions"] = sync.status["conditions"]
        sync.hpa["status"] = status

    async def _update_status_if_needed(self, sync: _Sync) -> None:
        if sync.status == sync.original_status:
            return
        try:
            await self._client.replace(
                HORIZONTAL_POD_AUTOSCALERS, sync.hpa, namespace=sync.namespace, subresource="status"
            )
        except errors.RequestError as exc:
            await self._event(sync.hpa, "Warning", "FailedUpdateStatus", _error_text(exc))
            raise

    async def _event(self, hpa: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        obj = {
            **hpa,
            "kind": HORIZONTAL_POD_AUTOSCALERS.kind,
            "apiVersion": HORIZONTAL_POD_AUTOSCALERS.api_version,
        }
        await self._recorder.event(obj, type=type, reason=reason, message=message)


def _error_text(exc: errors.RequestError, *, unserved: str = "") -> str:
    """An API failure as client-go's ``err.Error()`` prints it: the Status message alone.

    ``unserved`` (``"get pods.metrics.k8s.io"``) is for requests to a metrics API: when the API is
    not served at all, kube-apiserver answers a plain-text ``404 page not found`` and client-go
    prints ``the server could not find the requested resource (get pods.metrics.k8s.io)``; kubelab's
    server answers a Status naming no object instead, which gets the same text here.
    """
    if not isinstance(exc, errors.APIError) or not exc.message:
        return str(exc)
    unnamed = isinstance(exc, errors.NotFoundError) and not exc.details.get("name")
    if unserved and unnamed and not exc.message.endswith(")"):
        return f"{exc.message} ({unserved})"
    return exc.message


def _window(value: Any) -> timedelta:
    """A metav1.Duration such as ``"30s"``, ``"1m0s"`` or ``"15.5s"``."""
    if not isinstance(value, str) or not value:
        return DEFAULT_METRIC_WINDOW
    total = 0.0
    number = ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    index = 0
    while index < len(value):
        char = value[index]
        if char.isdigit() or char == ".":
            number += char
            index += 1
            continue
        unit = "ms" if value.startswith("ms", index) else char
        if unit not in units or not number:
            return DEFAULT_METRIC_WINDOW
        total += float(number) * units[unit]
        number = ""
        index += len(unit)
    return timedelta(seconds=total) if not number else DEFAULT_METRIC_WINDOW
