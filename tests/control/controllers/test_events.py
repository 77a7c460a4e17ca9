"""The EventRecorder against the real API server: the Event it writes names its source as
client-go's recorder does, and repeats bump the count."""

from __future__ import annotations

from typing import Any

import pytest

from control.client.config import load_kubeconfig
from control.client.rest import RESTClient
from control.controllers.events import EventRecorder
from control.controllers.kinds import EVENTS
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)

OBJECT = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "nightly", "namespace": "default", "uid": "job-uid"},
}


@pytest.fixture
async def client(apiserver) -> Any:  # noqa: F811
    rest = RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    yield rest
    await rest.close()


async def test_a_controllers_event_has_no_reporting_instance(client: RESTClient) -> None:
    recorder = EventRecorder(client=client, component="job-controller")
    await recorder.event(OBJECT, type="Normal", reason="SuccessfulCreate", message="Created pod: nightly-x")
    (event,) = (await client.list(EVENTS, namespace="default"))["items"]
    assert event["source"] == {"component": "job-controller"}
    assert (event["reportingComponent"], event["reportingInstance"]) == ("job-controller", "")
    answer = await client.request(
        "GET", EVENTS.path(namespace="default"), accept="application/json;as=Table;v=v1;g=meta.k8s.io"
    )
    table = answer.json()
    names = [column["name"] for column in table["columnDefinitions"]]
    assert table["rows"][0]["cells"][names.index("Source")] == "job-controller"
    await recorder.event(OBJECT, type="Normal", reason="SuccessfulCreate", message="Created pod: nightly-x")
    (repeated,) = (await client.list(EVENTS, namespace="default"))["items"]
    assert repeated["count"] == 2


async def test_a_kubelets_event_names_its_node(client: RESTClient) -> None:
    recorder = EventRecorder(client=client, component="kubelet", host="node-1")
    await recorder.event(OBJECT, type="Warning", reason="BackOff", message="Back-off restarting")
    (event,) = (await client.list(EVENTS, namespace="default"))["items"]
    assert event["source"] == {"component": "kubelet", "host": "node-1"}
    assert (event["reportingComponent"], event["reportingInstance"]) == ("kubelet", "node-1")
