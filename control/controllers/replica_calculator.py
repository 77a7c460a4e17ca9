"""The arithmetic of the HorizontalPodAutoscaler, as pure functions over plain inputs.

A port of upstream's ``pkg/controller/podautoscaler/replica_calculator.go``,
``metrics/utilization.go`` and the normalisation half of ``horizontal.go`` (kube-controller-manager
1.33): how many replicas a metric asks for, and how a recommendation is bounded by
``minReplicas``/``maxReplicas``, the scale-up limit, the ``behavior`` policies and the
stabilization windows. Nothing here talks to the API server or reads a clock: pods, metric samples,
past recommendations and past scale events come in as arguments and ``now`` is passed in, so every
rule is tested on plain values (``control.controllers.horizontalpodautoscaler`` does the I/O).

Integers follow Go's: utilization is ``int32((sum usage * 100) / sum requests)``, averages are
integer divisions of milli-values, replica counts are ``ceil`` of float products.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from control.controllers.ownership import parse_time
from control.scheduler.quantity import QuantityError, milli_value

TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
CPU_INITIALIZATION_PERIOD = timedelta(minutes=5)  # --horizontal-pod-autoscaler-cpu-initialization-period
DELAY_OF_INITIAL_READINESS_STATUS = timedelta(seconds=30)  # ...-initial-readiness-delay
DOWNSCALE_STABILIZATION_WINDOW = timedelta(minutes=5)  # ...-downscale-stabilization
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
MAX_INT32 = 2**31 - 1
MIN_INT32 = -(2**31)


class MetricComputationError(Exception):
    """A metric gave no replica count; the message is upstream's error text."""


@dataclass(frozen=True, slots=True)
class PodMetric:
    """One pod's sample: its value in milli-units, when it was taken and over what window."""

    value: int
    timestamp: datetime | None = None
    window: timedelta = timedelta(minutes=1)


def within_tolerance(usage_ratio: float, tolerance: float = TOLERANCE) -> bool:
    return 1.0 - tolerance <= usage_ratio <= 1.0 + tolerance


# --------------------------------------------------------------------------- pods


@dataclass(frozen=True, slots=True)
class PodGroups:
    ready_count: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def _ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition
    return None


def group_pods(
    pods: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, PodMetric],
    *,
    resource: str,
    now: datetime,
    cpu_initialization_period: timedelta = CPU_INITIALIZATION_PERIOD,
    delay_of_initial_readiness_status: timedelta = DELAY_OF_INITIAL_READINESS_STATUS,
) -> PodGroups:
    """Upstream's ``groupPods``: deleted and finished pods are ignored, pending pods are unready,
    pods without a sample are missing, and for CPU a pod that is not Ready — or, while it
    initialises, whose sample predates a full window after its last readiness change — is unready."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        name = pod["metadata"]["name"]
        phase = (pod.get("status") or {}).get("phase")
        if pod["metadata"].get("deletionTimestamp") or phase in ("Failed", "Succeeded"):
            ignored.add(name)
            continue
        if phase == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu":
            condition = _ready_condition(pod)
            start = parse_time((pod.get("status") or {}).get("startTime"))
            if condition is None or start is None:
                is_unready = True
            else:
                transition = parse_time(condition.get("lastTransitionTime")) or start
                if start + cpu_initialization_period > now:
                    stale = metric.timestamp is not None and metric.timestamp < transition + metric.window
                    is_unready = condition.get("status") == "False" or stale
                else:
                    is_unready = (
                        condition.get("status") == "False"
                        and start + delay_of_initial_readiness_status > transition
                    )
            if is_unready:
                unready.add(name)
                continue
        ready += 1
    return PodGroups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def pod_requests(pods: Sequence[Mapping[str, Any]], *, resource: str, container: str = "") -> dict[str, int]:
    """Each pod's request of ``resource`` in milli-units: the sum over its containers and sidecars,
    or only ``container``'s. Raises MetricComputationError (upstream's text) when one is missing."""
    requests: dict[str, int] = {}
    for pod in pods:
        name = pod["metadata"]["name"]
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or ())
        containers += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
        total = 0
        found = False
        for item in containers:
            if container and item.get("name") != container:
                continue
            raw = ((item.get("resources") or {}).get("requests") or {}).get(resource)
            if raw is None:
                raise MetricComputationError(
                    f"missing request for {resource} in container {item.get('name')} of Pod {name}"
                )
            try:
                total += milli_value(raw)
            except QuantityError as exc:
                raise MetricComputationError(f"invalid request for {resource} of Pod {name}: {exc}") from exc
            found = True
            if container:
                break
        if container and not found:
            raise MetricComputationError(f"container {container} not found in Pod {name}")
        requests[name] = total
    return requests


# --------------------------------------------------------------------------- ratios


@dataclass(frozen=True, slots=True)
class Utilization:
    ratio: float
    percent: int  # average utilization, % of request
    average: int  # average usage in milli-units


def resource_utilization_ratio(
    metrics: Mapping[str, PodMetric], requests: Mapping[str, int], *, target_utilization: int
) -> Utilization:
    """``GetResourceUtilizationRatio``: usage over requests of the pods that have both."""
    usage_total = request_total = entries = 0
    for name, metric in metrics.items():
        request = requests.get(name)
        if request is None:
            continue  # extraneous metrics
        usage_total += metric.value
        request_total += request
        entries += 1
    if request_total == 0:
        raise MetricComputationError("no metrics returned matched known pods")
    percent = (usage_total * 100) // request_total  # samples and requests are never negative
    return Utilization(ratio=percent / target_utilization, percent=percent, average=usage_total // entries)


def metric_usage_ratio(metrics: Mapping[str, PodMetric], *, target_usage: int) -> tuple[float, int]:
    """``GetMetricUsageRatio``: (average usage / target, average usage) over all samples."""
    average = sum(metric.value for metric in metrics.values()) // len(metrics)
    return average / target_usage, average


# --------------------------------------------------------------------------- replica counts


@dataclass(frozen=True, slots=True)
class Proposal:
    replicas: int
    usage: int  # the current value reported in status (milli-units, or the average for averages)
    utilization: int | None = None  # % of request, for utilization targets


def resource_replicas(
    *,
    current_replicas: int,
    target_utilization: int,
    resource: str,
    pods: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, PodMetric],
    now: datetime,
    container: str = "",
    tolerance: float = TOLERANCE,
) -> Proposal:
    """``GetResourceReplicas`` after the metrics were fetched: replicas for a utilization target."""
    if not pods:
        raise MetricComputationError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource=resource, now=now)
    samples = {name: m for name, m in metrics.items() if name not in groups.ignored | groups.unready}
    if not samples:
        raise MetricComputationError("did not receive metrics for targeted pods (pods might be unready)")
    requests = pod_requests(pods, resource=resource, container=container)
    first = resource_utilization_ratio(samples, requests, target_utilization=target_utilization)

    def proposal(replicas: int) -> Proposal:
        return Proposal(replicas=replicas, usage=first.average, utilization=first.percent)

    scale_up_with_unready = bool(groups.unready) and first.ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if within_tolerance(first.ratio, tolerance):
            return proposal(current_replicas)
        return proposal(math.ceil(first.ratio * groups.ready_count))
    if groups.missing:
        if first.ratio < 1.0:
            fallback = max(100, target_utilization)
            samples.update(
                {name: PodMetric(value=requests[name] * fallback // 100) for name in groups.missing}
            )
        elif first.ratio > 1.0:
            samples.update({name: PodMetric(value=0) for name in groups.missing})
    if scale_up_with_unready:
        samples.update({name: PodMetric(value=0) for name in groups.unready})
    new = resource_utilization_ratio(samples, requests, target_utilization=target_utilization).ratio
    return proposal(_rebalanced(current_replicas, first.ratio, new, len(samples), tolerance))


def _rebalanced(current: int, old_ratio: float, new_ratio: float, count: int, tolerance: float) -> int:
    """The count after missing/unready pods were filled in, unless that flips the direction."""
    if (
        within_tolerance(new_ratio, tolerance)
        or (old_ratio < 1.0 < new_ratio)
        or (old_ratio > 1.0 > new_ratio)
    ):
        return current
    replicas = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


def plain_metric_replicas(
    *,
    current_replicas: int,
    target_usage: int,
    resource: str,
    pods: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, PodMetric],
    now: datetime,
    tolerance: float = TOLERANCE,
) -> Proposal:
    """``calcPlainMetricReplicas``: replicas for an average-value target (Pods metrics, and
    Resource metrics with ``averageValue``); ``resource`` is "" for Pods metrics."""
    if not pods:
        raise MetricComputationError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource=resource, now=now)
    samples = {name: m for name, m in metrics.items() if name not in groups.ignored | groups.unready}
    if not samples:
        raise MetricComputationError("did not receive metrics for targeted pods (pods might be unready)")
    ratio, usage = metric_usage_ratio(samples, target_usage=target_usage)
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if within_tolerance(ratio, tolerance):
            return Proposal(replicas=current_replicas, usage=usage)
        return Proposal(replicas=math.ceil(ratio * groups.ready_count), usage=usage)
    if groups.missing:
        if ratio < 1.0:
            samples.update({name: PodMetric(value=target_usage) for name in groups.missing})
        elif ratio > 1.0:
            samples.update({name: PodMetric(value=0) for name in groups.missing})
    if scale_up_with_unready:
        samples.update({name: PodMetric(value=0) for name in groups.unready})
    new_ratio, _ = metric_usage_ratio(samples, target_usage=target_usage)
    return Proposal(
        replicas=_rebalanced(current_replicas, ratio, new_ratio, len(samples), tolerance), usage=usage
    )


def ready_pod_count(pods: Sequence[Mapping[str, Any]]) -> int:
    """``getReadyPodsCount``: Running and Ready pods (at least one pod must be selected)."""
    if not pods:
        raise MetricComputationError(
            "unable to calculate ready pods: no pods returned by selector while calculating replica count"
        )
    return sum(
        1
        for pod in pods
        if (pod.get("status") or {}).get("phase") == "Running"
        and (_ready_condition(pod) or {}).get("status") == "True"
    )


def usage_ratio_replicas(
    *,
    current_replicas: int,
    usage_ratio: float,
    pods: Sequence[Mapping[str, Any]],
    tolerance: float = TOLERANCE,
) -> int:
    """``getUsageRatioReplicaCount`` (Object and External value targets)."""
    if current_replicas == 0:
        return math.ceil(usage_ratio)
    if within_tolerance(usage_ratio, tolerance):
        return current_replicas
    return min(math.ceil(usage_ratio * ready_pod_count(pods)), MAX_INT32)


def per_pod_replicas(
    *, status_replicas: int, usage: int, target_average: int, tolerance: float = TOLERANCE
) -> Proposal:
    """``GetObjectPerPodMetricReplicas``/``GetExternalPerPodMetricReplicas`` after the fetch: an
    average-value target over the target's current replicas."""
    replicas = status_replicas
    ratio = usage / (target_average * replicas) if replicas else math.inf if usage else math.nan
    if not within_tolerance(ratio, tolerance):
        replicas = min(math.ceil(usage / target_average), MAX_INT32)
    per_pod = math.ceil(usage / status_replicas) if status_replicas else 0
    return Proposal(replicas=replicas, usage=per_pod)


# --------------------------------------------------------------------------- normalisation


@dataclass(frozen=True, slots=True)
class Recommendation:
    replicas: int
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    change: int  # replicas added (scale-up list) or removed (scale-down list)
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class Limited:
    """A bounded replica count, with the ScalingLimited reason and message that explain it."""

    replicas: int
    reason: str
    message: str


WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
SCALE_UP_LIMIT = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
)
SCALE_DOWN_LIMIT = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
)


def scale_up_limit(current_replicas: int) -> int:
    """Without ``behavior``: at most double, and at least 4."""
    return int(max(SCALE_UP_LIMIT_FACTOR * current_replicas, SCALE_UP_LIMIT_MINIMUM))


def convert_desired_replicas_with_rules(
    *, current_replicas: int, desired_replicas: int, min_replicas: int, max_replicas: int
) -> Limited:
    """``convertDesiredReplicasWithRules``: bound a recommendation when the HPA has no ``behavior``."""
    up_limit = scale_up_limit(current_replicas)
    if max_replicas > up_limit:
        maximum, limiting = up_limit, SCALE_UP_LIMIT
    else:
        maximum, limiting = max_replicas, TOO_MANY
    if desired_replicas < min_replicas:
        return Limited(min_replicas, *TOO_FEW)
    if desired_replicas > maximum:
        return Limited(maximum, *limiting)
    return Limited(desired_replicas, *WITHIN_RANGE)


def stabilize_recommendation(
    recommendations: list[Recommendation], *, desired_replicas: int, now: datetime, window: timedelta
) -> int:
    """``stabilizeRecommendation`` (no ``behavior``): the highest recommendation of the window;
    records ``desired_replicas`` in ``recommendations`` (replacing an expired one)."""
    highest = desired_replicas
    cutoff = now - window
    expired = None
    for index, rec in enumerate(recommendations):
        if rec.timestamp < cutoff:
            expired = index
        elif rec.replicas > highest:
            highest = rec.replicas
    _record(recommendations, expired, Recommendation(desired_replicas, now))
    return highest


def _record(recommendations: list[Recommendation], index: int | None, rec: Recommendation) -> None:
    if index is None:
        recommendations.append(rec)
    else:
        recommendations[index] = rec


def stabilize_recommendation_with_behaviors(
    recommendations: list[Recommendation],
    *,
    current_replicas: int,
    desired_replicas: int,
    up_window_seconds: int,
    down_window_seconds: int,
    now: datetime,
) -> Limited:
    """``stabilizeRecommendationWithBehaviors``: keep the count between the lowest recommendation
    of the scale-up window and the highest of the scale-down window; records ``desired_replicas``."""
    up_cutoff = now - timedelta(seconds=up_window_seconds)
    down_cutoff = now - timedelta(seconds=down_window_seconds)
    up = down = desired_replicas
    expired = None
    for index, rec in enumerate(recommendations):
        if rec.timestamp > up_cutoff:
            up = min(rec.replicas, up)
        if rec.timestamp > down_cutoff:
            down = max(rec.replicas, down)
        if rec.timestamp < up_cutoff and rec.timestamp < down_cutoff:
            expired = index
    recommendation = min(max(current_replicas, up), down)
    _record(recommendations, expired, Recommendation(desired_replicas, now))
    if desired_replicas >= current_replicas:
        return Limited(
            recommendation,
            "ScaleUpStabilized",
            "recent recommendations were lower than current one, applying the lowest recent recommendation",
        )
    return Limited(
        recommendation,
        "ScaleDownStabilized",
        "recent recommendations were higher than current one, applying the highest recent recommendation",
    )


def _changed_within(period_seconds: int, events: Sequence[ScaleEvent], now: datetime) -> int:
    cutoff = now - timedelta(seconds=period_seconds)
    return sum(event.change for event in events if event.timestamp > cutoff)


def scale_up_limit_with_rules(
    *,
    current_replicas: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: Mapping[str, Any],
    now: datetime,
) -> int:
    """``calculateScaleUpLimitWithScalingRules``: the most replicas the policies allow now."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current_replicas
    result = MAX_INT32 if select == "Min" else MIN_INT32
    for policy in rules.get("policies") or ():
        period = int(policy.get("periodSeconds") or 0)
        start = (
            current_replicas
            - _changed_within(period, up_events, now)
            + _changed_within(period, down_events, now)
        )
        value = int(policy.get("value") or 0)
        proposed = start + value if policy.get("type") == "Pods" else math.ceil(start * (1 + value / 100))
        result = min(result, proposed) if select == "Min" else max(result, proposed)
    return result


def scale_down_limit_with_rules(
    *,
    current_replicas: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: Mapping[str, Any],
    now: datetime,
) -> int:
    """``calculateScaleDownLimitWithBehaviors``: the fewest replicas the policies allow now."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current_replicas
    result = MIN_INT32 if select == "Min" else MAX_INT32
    for policy in rules.get("policies") or ():
        period = int(policy.get("periodSeconds") or 0)
        start = (
            current_replicas
            - _changed_within(period, up_events, now)
            + _changed_within(period, down_events, now)
        )
        value = int(policy.get("value") or 0)
        proposed = start - value if policy.get("type") == "Pods" else int(start * (1 - value / 100))
        result = max(result, proposed) if select == "Min" else min(result, proposed)
    return result


def convert_desired_replicas_with_behavior_rate(
    *,
    current_replicas: int,
    desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Mapping[str, Any],
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    now: datetime,
) -> Limited:
    """``convertDesiredReplicasWithBehaviorRate``: bound by the bounds and the rate policies."""
    events = {"up_events": up_events, "down_events": down_events, "now": now}
    if desired_replicas > current_replicas:
        limit = max(
            scale_up_limit_with_rules(current_replicas=current_replicas, rules=behavior["scaleUp"], **events),
            current_replicas,
        )
        maximum, limiting = (limit, SCALE_UP_LIMIT) if max_replicas > limit else (max_replicas, TOO_MANY)
        if desired_replicas > maximum:
            return Limited(maximum, *limiting)
    elif desired_replicas < current_replicas:
        limit = min(
            scale_down_limit_with_rules(
                current_replicas=current_replicas, rules=behavior["scaleDown"], **events
            ),
            current_replicas,
        )
        minimum, limiting = (limit, SCALE_DOWN_LIMIT) if min_replicas < limit else (min_replicas, TOO_FEW)
        if desired_replicas < minimum:
            return Limited(minimum, *limiting)
    return Limited(desired_replicas, *WITHIN_RANGE)


def longest_policy_period(rules: Mapping[str, Any]) -> int:
    return max((int(policy.get("periodSeconds") or 0) for policy in rules.get("policies") or ()), default=0)


def store_scale_event(events: list[ScaleEvent], *, change: int, longest_period: int, now: datetime) -> None:
    """``storeScaleEvent``: record ``change``, reusing the slot of an event older than every policy."""
    cutoff = now - timedelta(seconds=longest_period)
    expired = None
    for index, event in enumerate(events):
        if event.timestamp < cutoff:
            expired = index
    if expired is None:
        events.append(ScaleEvent(change, now))
    else:
        events[expired] = ScaleEvent(change, now)
