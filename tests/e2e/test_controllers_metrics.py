"""The controllers process of a real `kubelab up` serves each component's health and metrics on its
own port, as upstream does: the controller manager on https://127.0.0.1:10257 (its workqueues), the
scheduler on https://127.0.0.1:10259 (its scheduling attempts). Health is open to anyone, /metrics to
the admin (401 without credentials), and neither port shows the other component's metrics."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Lab

CONTROLLER_MANAGER = "https://127.0.0.1:10257"
SCHEDULER = "https://127.0.0.1:10259"
WAIT = 60.0


def fetch(lab: Lab, url: str, *, admin: bool = False) -> tuple[int, str]:
    pki = lab.data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if admin:
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def names(body: str) -> set[str]:
    """The sample names of a scrape."""
    return {sample.name for family in text_string_to_metric_families(body) for sample in family.samples}


def has_sample(body: str, metric: str, /, **labels: str) -> bool:
    """Whether the scrape has a sample of ``metric`` with (at least) ``labels``."""
    return any(
        sample.name == metric and labels.items() <= sample.labels.items()
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    )


def ready(lab: Lab, base: str) -> str:
    """``/readyz?verbose`` of ``base`` once it answers 200."""
    deadline = time.monotonic() + WAIT
    while (answer := fetch(lab, base + "/readyz?verbose"))[0] != 200:
        assert time.monotonic() < deadline, f"{base} never became ready: {answer}"
        time.sleep(0.2)
    return answer[1]


def test_up_says_where_each_component_serves(lab: Lab) -> None:
    assert (
        f"health and metrics on {CONTROLLER_MANAGER} for the controller manager, {SCHEDULER} for the scheduler"
        in lab.up_output
    )


def test_each_component_serves_its_own_health_behind_open_paths(lab: Lab) -> None:
    assert "[+]informer-sync ok" in ready(lab, CONTROLLER_MANAGER)
    scheduler_ready = ready(lab, SCHEDULER)
    assert "[+]sched-handler-sync ok" in scheduler_ready
    assert "[+]informer-sync" not in scheduler_ready
    for base in (CONTROLLER_MANAGER, SCHEDULER):
        assert fetch(lab, base + "/healthz") == (200, "ok")
        assert fetch(lab, base + "/livez") == (200, "ok")
        assert fetch(lab, base + "/readyz/shutdown") == (200, "ok")
        status, body = fetch(lab, base + "/metrics")
        assert status == 401, base
        assert json.loads(body)["reason"] == "Unauthorized"


def test_each_port_has_its_own_component_s_metrics_only(lab: Lab) -> None:
    # A pod no node can take: the scheduler tries it at once and counts an unschedulable attempt.
    unschedulable = {"spec": {"nodeSelector": {"kubelab.test/no-such-node": "true"}}}
    with lab.namespace("scheduler-metrics"):
        lab.kubectl(
            "run",
            "nowhere",
            "--namespace=scheduler-metrics",
            "--image=kubelab",
            "--restart=Never",
            f"--overrides={json.dumps(unschedulable)}",
        )
        deadline = time.monotonic() + WAIT
        while True:
            status, scheduler = fetch(lab, SCHEDULER + "/metrics", admin=True)
            assert status == 200, scheduler
            if has_sample(scheduler, "scheduler_schedule_attempts_total", result="unschedulable"):
                break
            assert time.monotonic() < deadline, f"no unschedulable attempt on {SCHEDULER}/metrics"
            time.sleep(0.2)
    status, manager = fetch(lab, CONTROLLER_MANAGER + "/metrics", admin=True)
    assert status == 200
    assert has_sample(manager, "workqueue_adds_total", name="replicaset")
    assert has_sample(manager, "workqueue_depth", name="deployment")
    assert has_sample(manager, "workqueue_retries_total", name="endpoint_slice")
    # The pod garbage collector's counters (upstream's names) are exposed before any deletion.
    families = {family.name for family in text_string_to_metric_families(manager)}
    assert {"pod_gc_collector_force_delete_pods", "pod_gc_collector_force_delete_pod_errors"} <= families
    on_manager, on_scheduler = names(manager), names(scheduler)
    for on in (on_manager, on_scheduler):
        assert {"rest_client_requests_total", "process_resident_memory_bytes"} <= on
    assert has_sample(scheduler, "scheduler_pending_pods", queue="active")
    assert not {name for name in on_manager if name.startswith("scheduler_")}
    assert not {name for name in on_scheduler if name.startswith("workqueue_")}
