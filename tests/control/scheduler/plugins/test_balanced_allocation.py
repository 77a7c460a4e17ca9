"""NodeResourcesBalancedAllocation: prefer even CPU/memory use; skip best-effort pods."""

from __future__ import annotations

from control.scheduler.plugins.balanced_allocation import BalancedAllocation
from tests.control.scheduler.support import node, node_info, pod, run_score


def test_prefers_the_node_left_balanced():
    memory_heavy = node_info(node("memory-heavy", cpu="4", memory="4Gi"), pod("m", cpu="0", memory="2Gi"))
    cpu_heavy = node_info(node("cpu-heavy", cpu="4", memory="4Gi"), pod("c", cpu="2", memory="0"))
    # adding 1 CPU: memory-heavy → cpu 0.25 / mem 0.5 (std 0.125 → 87); cpu-heavy → 0.75 / 0 (std 0.375 → 62)
    assert run_score(BalancedAllocation(), pod("p", cpu="1"), nodes=[memory_heavy, cpu_heavy]) == [87, 62]


def test_fractions_are_capped_and_missing_allocatable_is_skipped():
    over = node_info(node("over", cpu="1", memory="1Gi"))
    assert run_score(BalancedAllocation(), pod("p", cpu="2", memory="512Mi"), nodes=[over]) == [75]
    cpu_only = node_info(node("cpu-only", cpu="2", memory="0"))
    assert run_score(BalancedAllocation(), pod("p", cpu="1"), nodes=[cpu_only]) == [100]


def test_best_effort_pods_are_not_scored():
    assert run_score(BalancedAllocation(), pod("p"), nodes=[node_info(node("n1"))]) is None
