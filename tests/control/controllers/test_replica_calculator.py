"""The HPA's arithmetic on plain values: replica proposals from pod samples (upstream's
``replica_calculator_test.go`` cases), and the bounds, policies and stabilization windows that
turn a proposal into the replica count written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control.controllers import replica_calculator as calc
from control.controllers.replica_calculator import PodMetric, Recommendation, ScaleEvent

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(hours=1)
DEFAULT_BEHAVIOR: dict[str, Any] = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ],
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 300,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    },
}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    name: str,
    *,
    cpu: str | None = "1",
    phase: str = "Running",
    ready: bool = True,
    started: datetime = LONG_AGO,
    transition: datetime = LONG_AGO,
    deleting: bool = False,
) -> dict[str, Any]:
    resources = {"requests": {"cpu": cpu}} if cpu is not None else {}
    metadata: dict[str, Any] = {"name": name}
    if deleting:
        metadata["deletionTimestamp"] = stamp(NOW)
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": "app", "resources": resources}]},
        "status": {
            "phase": phase,
            "startTime": stamp(started),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": stamp(transition),
                }
            ],
        },
    }


def samples(**values: int) -> dict[str, PodMetric]:
    return {
        name: PodMetric(value=value, timestamp=NOW - timedelta(seconds=30)) for name, value in values.items()
    }


def cpu_replicas(pods: list[dict[str, Any]], metrics: dict[str, PodMetric], *, current: int, target: int):
    return calc.resource_replicas(
        current_replicas=current,
        target_utilization=target,
        resource="cpu",
        pods=pods,
        metrics=metrics,
        now=NOW,
    )


# --------------------------------------------------------------------------- utilization targets


def test_scale_up_by_utilization():
    pods = [pod("a"), pod("b"), pod("c")]
    proposal = cpu_replicas(pods, samples(a=300, b=500, c=700), current=3, target=30)
    assert (proposal.replicas, proposal.utilization, proposal.usage) == (5, 50, 500)


def test_scale_down_by_utilization():
    pods = [pod(name) for name in "abcde"]
    proposal = cpu_replicas(pods, samples(a=100, b=300, c=500, d=250, e=250), current=5, target=50)
    assert (proposal.replicas, proposal.utilization) == (3, 28)


def test_within_tolerance_keeps_the_current_count():
    pods = [pod("a"), pod("b")]
    assert cpu_replicas(pods, samples(a=520, b=530), current=2, target=50).replicas == 2


def test_unready_pods_count_as_zero_on_a_scale_up():
    pods = [pod("a", ready=False, started=NOW - timedelta(minutes=1)), pod("b"), pod("c")]
    proposal = cpu_replicas(pods, samples(a=300, b=500, c=700), current=3, target=30)
    # ready pods use 60 % (ratio 2); with the unready one at 0: 40 %, ratio 1.33 -> ceil(4.0)
    assert (proposal.replicas, proposal.utilization) == (4, 60)


def test_missing_pods_count_as_their_full_request_on_a_scale_down():
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    proposal = cpu_replicas(pods, samples(a=100, b=100, c=100), current=4, target=50)
    # 10 % -> with d at 100 %: 1300/4000 = 32 % -> ratio 0.64 -> ceil(2.56)
    assert (proposal.replicas, proposal.utilization) == (3, 10)


def test_missing_pods_that_would_reverse_the_direction_keep_the_count():
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    # 60 % of 50 % is a scale-up; with d at 0 % it becomes 45 %: a scale-down, so nothing changes
    assert cpu_replicas(pods, samples(a=600, b=600, c=600), current=4, target=50).replicas == 4


def test_deleted_failed_and_pending_pods_are_left_out():
    pods = [pod("a"), pod("b", deleting=True), pod("c", phase="Failed"), pod("d", phase="Pending")]
    proposal = cpu_replicas(pods, samples(a=1000, b=5000, c=5000), current=2, target=50)
    # only a counts (100 % of request, ratio 2); pending d counts 0 on a scale-up: 1000/2000 = 50 %,
    # ratio 1 -> within tolerance
    assert proposal.replicas == 2
    assert proposal.utilization == 100


def test_a_sample_taken_before_a_full_window_after_readiness_is_unready():
    started = NOW - timedelta(minutes=2)
    pods = [pod("a", started=started, transition=NOW - timedelta(seconds=40)), pod("b")]
    # a became ready 40 s ago and its 60 s window started 30 s ago: within the CPU initialisation
    # period, that sample is not trusted
    groups = calc.group_pods(pods, samples(a=900, b=100), resource="cpu", now=NOW)
    assert groups.unready == {"a"}
    assert groups.ready_count == 1
    # memory has no initialisation period
    assert calc.group_pods(pods, samples(a=900, b=100), resource="memory", now=NOW).ready_count == 2


def test_a_pod_never_ready_after_start_is_unready_past_the_initialisation_period():
    never = pod("a", ready=False, started=LONG_AGO, transition=LONG_AGO + timedelta(seconds=10))
    once = pod("b", ready=False, started=LONG_AGO, transition=LONG_AGO + timedelta(minutes=10))
    groups = calc.group_pods([never, once], samples(a=1, b=1), resource="cpu", now=NOW)
    assert groups.unready == {"a"}  # b was ready once (its transition came after the 30 s delay)


def test_no_pods_and_no_usable_samples_are_errors():
    with pytest.raises(calc.MetricComputationError, match=r"^no pods returned by selector"):
        cpu_replicas([], samples(a=1), current=1, target=50)
    with pytest.raises(
        calc.MetricComputationError, match=r"^did not receive metrics for targeted pods \(pods"
    ):
        cpu_replicas([pod("a", phase="Pending")], samples(a=1), current=1, target=50)


def test_requests_are_summed_over_containers_and_sidecars_and_must_exist():
    sidecar = pod("a")
    sidecar["spec"]["initContainers"] = [
        {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "250m"}}},
        {"name": "init", "resources": {}},
    ]
    assert calc.pod_requests([sidecar], resource="cpu") == {"a": 1250}
    assert calc.pod_requests([sidecar], resource="cpu", container="side") == {"a": 250}
    with pytest.raises(
        calc.MetricComputationError, match=r"^missing request for cpu in container app of Pod b$"
    ):
        calc.pod_requests([pod("b", cpu=None)], resource="cpu")
    with pytest.raises(calc.MetricComputationError, match=r"^container web not found in Pod a$"):
        calc.pod_requests([sidecar], resource="cpu", container="web")


def test_samples_matching_no_pod_are_an_error():
    with pytest.raises(calc.MetricComputationError, match=r"^no metrics returned matched known pods$"):
        calc.resource_utilization_ratio(samples(x=100), {"a": 1000}, target_utilization=50)


# --------------------------------------------------------------------------- value targets


def test_average_value_targets():
    pods = [pod("a"), pod("b")]
    proposal = calc.plain_metric_replicas(
        current_replicas=2,
        target_usage=10_000,
        resource="",
        pods=pods,
        metrics=samples(a=25_000, b=15_000),
        now=NOW,
    )
    assert (proposal.replicas, proposal.usage) == (4, 20_000)


def test_missing_pods_use_exactly_the_target_on_a_scale_down():
    pods = [pod("a"), pod("b"), pod("c")]
    proposal = calc.plain_metric_replicas(
        current_replicas=3,
        target_usage=10_000,
        resource="",
        pods=pods,
        metrics=samples(a=1000, b=1000),
        now=NOW,
    )
    # 0.1 -> with c at the target: 12000/3 = 4000 -> ratio 0.4 -> ceil(1.2)
    assert proposal.replicas == 2


def test_per_pod_targets_divide_the_total_by_the_target():
    proposal = calc.per_pod_replicas(status_replicas=2, usage=10_000, target_average=2_000)
    assert (proposal.replicas, proposal.usage) == (5, 5_000)
    assert calc.per_pod_replicas(status_replicas=5, usage=10_000, target_average=2_100).replicas == 5
    assert calc.per_pod_replicas(status_replicas=0, usage=3_000, target_average=1_000).replicas == 3


def test_value_targets_scale_by_ready_pods_and_from_zero_by_the_ratio():
    pods = [pod("a"), pod("b", ready=False), pod("c", phase="Pending")]
    assert calc.usage_ratio_replicas(current_replicas=3, usage_ratio=2.0, pods=pods) == 2
    assert calc.usage_ratio_replicas(current_replicas=3, usage_ratio=1.05, pods=pods) == 3
    assert calc.usage_ratio_replicas(current_replicas=0, usage_ratio=2.5, pods=[]) == 3
    with pytest.raises(calc.MetricComputationError, match=r"^unable to calculate ready pods: no pods"):
        calc.usage_ratio_replicas(current_replicas=1, usage_ratio=2.0, pods=[])


# --------------------------------------------------------------------------- bounds without behavior


def test_without_behavior_scale_up_is_limited_to_double_or_four():
    limited = calc.convert_desired_replicas_with_rules(
        current_replicas=1, desired_replicas=10, min_replicas=1, max_replicas=20
    )
    assert limited == calc.Limited(4, *calc.SCALE_UP_LIMIT)
    limited = calc.convert_desired_replicas_with_rules(
        current_replicas=10, desired_replicas=30, min_replicas=1, max_replicas=15
    )
    assert limited == calc.Limited(15, *calc.TOO_MANY)
    assert calc.convert_desired_replicas_with_rules(
        current_replicas=3, desired_replicas=0, min_replicas=2, max_replicas=5
    ) == calc.Limited(2, *calc.TOO_FEW)
    assert calc.convert_desired_replicas_with_rules(
        current_replicas=3, desired_replicas=5, min_replicas=2, max_replicas=5
    ) == calc.Limited(5, "DesiredWithinRange", "the desired count is within the acceptable range")


def test_the_downscale_window_keeps_the_highest_recent_recommendation():
    recs = [Recommendation(5, NOW - timedelta(seconds=100)), Recommendation(9, NOW - timedelta(seconds=400))]
    window = calc.DOWNSCALE_STABILIZATION_WINDOW
    assert calc.stabilize_recommendation(recs, desired_replicas=2, now=NOW, window=window) == 5
    # the expired recommendation's slot was reused for the new one
    assert recs == [Recommendation(5, NOW - timedelta(seconds=100)), Recommendation(2, NOW)]
    later = NOW + timedelta(seconds=250)
    assert calc.stabilize_recommendation(recs, desired_replicas=1, now=later, window=window) == 2


# --------------------------------------------------------------------------- behavior


def test_behavior_stabilization_holds_a_scale_down_for_the_window():
    recs = [Recommendation(4, NOW - timedelta(seconds=10))]
    held = calc.stabilize_recommendation_with_behaviors(
        recs, current_replicas=5, desired_replicas=2, up_window_seconds=0, down_window_seconds=300, now=NOW
    )
    assert held == calc.Limited(
        4,
        "ScaleDownStabilized",
        "recent recommendations were higher than current one, applying the highest recent recommendation",
    )
    assert recs[-1] == Recommendation(2, NOW)


def test_behavior_stabilization_holds_a_scale_up_for_an_up_window():
    recs = [Recommendation(3, NOW - timedelta(seconds=10))]
    held = calc.stabilize_recommendation_with_behaviors(
        recs, current_replicas=2, desired_replicas=6, up_window_seconds=60, down_window_seconds=300, now=NOW
    )
    assert (held.replicas, held.reason) == (3, "ScaleUpStabilized")


@pytest.mark.parametrize(("select", "expected"), [("Max", 20), ("Min", 14), ("Disabled", 10)])
def test_scale_up_policies_and_select_policy(select: str, expected: int):
    rules = {**DEFAULT_BEHAVIOR["scaleUp"], "selectPolicy": select}
    limit = calc.scale_up_limit_with_rules(
        current_replicas=10, up_events=[], down_events=[], rules=rules, now=NOW
    )
    assert limit == expected


def test_scale_up_policies_count_from_the_start_of_their_period():
    events = [ScaleEvent(5, NOW - timedelta(seconds=5)), ScaleEvent(7, NOW - timedelta(seconds=60))]
    limit = calc.scale_up_limit_with_rules(
        current_replicas=10, up_events=events, down_events=[], rules=DEFAULT_BEHAVIOR["scaleUp"], now=NOW
    )
    assert limit == 10  # the period started at 5: +4 -> 9, +100 % -> 10


@pytest.mark.parametrize(("select", "expected"), [("Max", 6), ("Min", 8), ("Disabled", 10)])
def test_scale_down_policies_and_select_policy(select: str, expected: int):
    rules = {
        "selectPolicy": select,
        "policies": [
            {"type": "Pods", "value": 2, "periodSeconds": 60},
            {"type": "Percent", "value": 40, "periodSeconds": 60},
        ],
    }
    limit = calc.scale_down_limit_with_rules(
        current_replicas=10, up_events=[], down_events=[], rules=rules, now=NOW
    )
    assert limit == expected


def test_behavior_rate_limits_name_the_limiting_rule():
    def convert(current: int, desired: int, *, low: int = 1, high: int = 100, behavior=DEFAULT_BEHAVIOR):
        return calc.convert_desired_replicas_with_behavior_rate(
            current_replicas=current,
            desired_replicas=desired,
            min_replicas=low,
            max_replicas=high,
            behavior=behavior,
            up_events=[],
            down_events=[],
            now=NOW,
        )

    assert convert(10, 30, high=25) == calc.Limited(20, *calc.SCALE_UP_LIMIT)
    assert convert(10, 30, high=15) == calc.Limited(15, *calc.TOO_MANY)
    assert convert(10, 1, low=2) == calc.Limited(2, *calc.TOO_FEW)
    slow_down = {
        **DEFAULT_BEHAVIOR,
        "scaleDown": {"selectPolicy": "Max", "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
    }
    assert convert(10, 1, behavior=slow_down) == calc.Limited(9, *calc.SCALE_DOWN_LIMIT)
    assert convert(10, 12) == calc.Limited(12, *calc.WITHIN_RANGE)


def test_scale_events_reuse_the_slot_of_an_event_older_than_every_policy():
    events = [ScaleEvent(2, NOW - timedelta(seconds=100)), ScaleEvent(3, NOW - timedelta(seconds=5))]
    calc.store_scale_event(events, change=4, longest_period=15, now=NOW)
    assert events == [ScaleEvent(4, NOW), ScaleEvent(3, NOW - timedelta(seconds=5))]
    calc.store_scale_event(events, change=1, longest_period=15, now=NOW)
    assert len(events) == 3
    assert calc.longest_policy_period(DEFAULT_BEHAVIOR["scaleUp"]) == 15
