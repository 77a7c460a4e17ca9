"""The pod workers' pure parts: crash-loop back-off arithmetic and update filtering."""

from __future__ import annotations

import copy

import pytest

from control.kubelet.pods import Backoff, _format_duration, _meaningful_change


def test_backoff_restarts_at_once_then_doubles_up_to_the_maximum() -> None:
    backoff = Backoff(initial=10, maximum=300, reset=600)
    key = "uid/app"
    assert backoff.remaining(key, since=100, now=100) == 0, "the first failure restarts at once"
    backoff.next(key, at=100)
    assert backoff.delay(key) == 10
    assert backoff.remaining(key, since=105, now=107) == 8, "a failure 5 s later waits 10 s from that failure"
    assert backoff.remaining(key, since=105, now=115) == 0
    delays = []
    at = 115.0
    for _ in range(8):
        backoff.next(key, at=at)
        delays.append(backoff.delay(key))
        at += 1
    assert delays == [20, 40, 80, 160, 300, 300, 300, 300]


def test_backoff_starts_afresh_after_a_long_run() -> None:
    backoff = Backoff(initial=10, maximum=300, reset=600)
    backoff.next("k", at=0)
    backoff.next("k", at=1)
    assert backoff.delay("k") == 20
    assert backoff.remaining("k", since=700, now=700) == 0, "ran longer than the reset window"
    backoff.next("k", at=700)
    assert backoff.delay("k") == 10
    backoff.forget_prefix("k")
    assert backoff.delay("k") == 10 and backoff.remaining("k", since=701, now=701) == 0


@pytest.mark.parametrize(
    ("seconds", "text"), [(10, "10s"), (59.6, "1m0s"), (80, "1m20s"), (300, "5m0s"), (3725, "1h2m5s")]
)
def test_durations_read_as_go_prints_them(seconds: float, text: str) -> None:
    assert _format_duration(seconds) == text


def test_only_meaningful_pod_updates_wake_a_worker() -> None:
    base = {
        "metadata": {"name": "p", "resourceVersion": "1", "labels": {"a": "1"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    own_write = copy.deepcopy(base)
    own_write["metadata"]["resourceVersion"] = "2"
    own_write["status"]["conditions"][0]["status"] = "False"
    assert not _meaningful_change(base, own_write), "our own status write coming back"
    relabelled = copy.deepcopy(base)
    relabelled["metadata"]["labels"]["b"] = "2"
    assert _meaningful_change(base, relabelled)
    gated = copy.deepcopy(base)
    gated["status"]["conditions"].append({"type": "example.com/gate", "status": "True"})
    assert _meaningful_change(base, gated), "a readiness gate set by someone else"
    failed = copy.deepcopy(base)
    failed["status"]["phase"] = "Failed"
    assert _meaningful_change(base, failed), "made terminal by someone else"
    new_image = copy.deepcopy(base)
    new_image["spec"]["containers"][0]["image"] = "busybox:2"
    assert _meaningful_change(base, new_image)
