"""The controllers process of a real `kubelab up` serves its health and metrics on
https://127.0.0.1:10257: health for anyone, /metrics for the admin (401 without credentials),
with the workqueues of the running controllers and the scheduler's metrics."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request

from tests.e2e.conftest import Lab

URL = "https://127.0.0.1:10257"
WAIT = 60.0


def fetch(lab: Lab, path: str, *, admin: bool = False) -> tuple[int, str]:
    pki = lab.data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if admin:
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        with urllib.request.urlopen(URL + path, context=context, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_controllers_serve_health_and_metrics(lab: Lab) -> None:
    assert "health and metrics on https://127.0.0.1:10257" in lab.up_output
    deadline = time.monotonic() + WAIT
    while (answer := fetch(lab, "/readyz?verbose"))[0] != 200:
        assert time.monotonic() < deadline, f"the controllers never became ready: {answer}"
        time.sleep(0.2)
    assert "[+]informer-sync ok" in answer[1]
    assert fetch(lab, "/healthz") == (200, "ok")
    status, _ = fetch(lab, "/metrics")
    assert status == 401
    status, body = fetch(lab, "/metrics", admin=True)
    assert status == 200
    for series in (
        'workqueue_adds_total{name="replicaset"}',
        'workqueue_depth{name="deployment"}',
        'workqueue_retries_total{name="endpoint_slice"}',
        "rest_client_requests_total{",
        'scheduler_pending_pods{queue="active"}',
        "process_resident_memory_bytes",
    ):
        assert series in body, series
