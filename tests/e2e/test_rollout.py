"""Deployments driven by the real kubectl against a real `kubelab up`: `rollout status`,
`rollout history`, `rollout undo`, `scale`, `rollout pause|resume|restart` — the controller
manager inside `kubelab server` does the work.

STAND-IN KUBELET: until the node agents run these pods, none ever becomes Running.
:class:`StandInKubelet` plays the kubelet for the test's namespace: it marks *unscheduled* pods
Running and Ready through ``pods/status``, which is what a kubelet reports, so rollouts can
finish. Pods bound to a node are left alone (their kubelet reports for them), so the stand-in
steps aside by itself once nodes run pods; delete it then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from control.client import errors
from control.client.config import load_kubeconfig
from control.client.rest import EventType, RESTClient
from control.controllers.kinds import PODS
from tests.e2e.conftest import Lab

OBSERVED_WITHIN_SECONDS = 20

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  annotations:
    kubernetes.io/change-cause: v1
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: busybox:1.35
        command: ["sh", "-c", "sleep 3600"]
"""


class StandInKubelet:
    """STAND-IN until the kubelet lands: marks the namespace's unscheduled pods Running and Ready.

    Runs its own event loop in a thread (the tests themselves block on kubectl), following the
    pods with a watch.
    """

    def __init__(self, lab: Lab, namespace: str) -> None:
        self._lab = lab
        self._namespace = namespace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stand-in kubelet", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> StandInKubelet:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)  # else it ended already: see .error
        self._thread.join(30)
        assert not self._thread.is_alive(), "the stand-in kubelet did not stop"

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            self._started.set()
            async with RESTClient(load_kubeconfig(self._lab.kubeconfig)) as client:
                await self._follow(client)

        with contextlib.suppress(asyncio.CancelledError):
            try:
                asyncio.run(main())
            except Exception as exc:  # reported by the test that used it
                self.error = exc
        self._started.set()

    async def _follow(self, client: RESTClient) -> None:
        listed = await client.list(PODS, namespace=self._namespace)
        for pod in listed["items"]:
            await self._make_ready(client, pod)
        version = listed["metadata"]["resourceVersion"]
        while True:
            async with await client.watch(
                PODS, namespace=self._namespace, resource_version=version, timeout_seconds=60
            ) as events:
                async for event in events:
                    version = event.object["metadata"]["resourceVersion"]
                    if event.type in (EventType.ADDED, EventType.MODIFIED):
                        await self._make_ready(client, event.object)

    async def _make_ready(self, client: RESTClient, pod: dict[str, Any]) -> None:
        if (pod.get("spec") or {}).get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return  # a real kubelet's pod, or one on its way out
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            return
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            ],
        }
        with contextlib.suppress(errors.NotFoundError):
            await client.patch(
                PODS,
                pod["metadata"]["name"],
                {"status": status},
                namespace=self._namespace,
                subresource="status",
            )


def kubectl_json(lab: Lab, *args: str) -> dict[str, Any]:
    return json.loads(lab.kubectl(*args, "-o", "json").stdout)


def history(lab: Lab, ns: str) -> dict[int, str]:
    """`kubectl rollout history` as {revision: change-cause}."""
    out = lab.kubectl("rollout", "history", "deployment/web", "-n", ns).stdout
    rows = {}
    for line in out.splitlines():
        parts = line.split(None, 1)
        if parts and parts[0].isdigit():
            rows[int(parts[0])] = parts[1].strip() if len(parts) > 1 else "<none>"
    return rows


def rollout_status(lab: Lab, ns: str) -> str:
    result = lab.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=90s", timeout=120)
    return result.stdout


def replica_sets(lab: Lab, ns: str) -> list[dict[str, Any]]:
    return kubectl_json(lab, "get", "replicasets", "-n", ns)["items"]


@pytest.fixture
def ns(lab: Lab, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace with the Deployment applied and observed by the Deployment controller."""
    name = f"rollout-{request.node.name.removeprefix('test_').replace('_', '-')}"[:63]
    lab.kubectl("create", "namespace", name)
    try:
        lab.kubectl("apply", "-f", "-", input=MANIFEST.format(ns=name))
        observed = lab.kubectl(
            "wait",
            "deployment/web",
            "-n",
            name,
            "--for=jsonpath={.status.observedGeneration}=1",
            f"--timeout={OBSERVED_WITHIN_SECONDS}s",
            check=False,
            timeout=OBSERVED_WITHIN_SECONDS + 30,
        )
        if observed.returncode != 0:
            pytest.fail(
                f"no controller observed the Deployment within {OBSERVED_WITHIN_SECONDS}s "
                f"(is the controller manager running in `kubelab server`?): {observed.stderr}",
                pytrace=False,
            )
        yield name
    finally:
        lab.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_rollout_status_history_and_undo(lab: Lab, ns: str) -> None:
    with StandInKubelet(lab, ns) as kubelet:
        assert 'deployment "web" successfully rolled out' in rollout_status(lab, ns)
        assert history(lab, ns) == {1: "v1"}

        # Image first, then the cause: annotating first would also label the current revision
        # (the controller copies the Deployment's annotations to its new ReplicaSet), as upstream.
        lab.kubectl("set", "image", "deployment/web", "-n", ns, "app=busybox:1.36")
        lab.kubectl("annotate", "deployment/web", "-n", ns, "kubernetes.io/change-cause=v2", "--overwrite")
        assert 'deployment "web" successfully rolled out' in rollout_status(lab, ns)
        assert history(lab, ns) == {1: "v1", 2: "v2"}
        revision_one = lab.kubectl("rollout", "history", "deployment/web", "-n", ns, "--revision=1").stdout
        assert "busybox:1.35" in revision_one

        assert "rolled back" in lab.kubectl("rollout", "undo", "deployment/web", "-n", ns).stdout
        assert 'deployment "web" successfully rolled out' in rollout_status(lab, ns)
        assert history(lab, ns) == {2: "v2", 3: "v1"}  # revision 1 came back as 3
        deploy = kubectl_json(lab, "get", "deployment", "web", "-n", ns)
        assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.35"
        assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert len(replica_sets(lab, ns)) == 2  # the old ReplicaSet was reused, not copied
        events = kubectl_json(lab, "get", "events", "-n", ns, "--field-selector", "involvedObject.name=web")
        messages = [f"{event['reason']}: {event['message']}" for event in events["items"]]
        assert any(m.startswith("ScalingReplicaSet: Scaled up replica set web-") for m in messages)
    assert kubelet.error is None


def test_scale_pause_resume_and_restart(lab: Lab, ns: str) -> None:
    with StandInKubelet(lab, ns) as kubelet:
        rollout_status(lab, ns)
        lab.kubectl("scale", "deployment/web", "-n", ns, "--replicas=5")
        assert 'deployment "web" successfully rolled out' in rollout_status(lab, ns)
        status = kubectl_json(lab, "get", "deployment", "web", "-n", ns)["status"]
        assert (status["replicas"], status["availableReplicas"], status["updatedReplicas"]) == (5, 5, 5)

        lab.kubectl("rollout", "pause", "deployment/web", "-n", ns)
        lab.kubectl("set", "image", "deployment/web", "-n", ns, "app=busybox:1.36")
        waiting = lab.kubectl("rollout", "status", "deployment/web", "-n", ns, "--watch=false").stdout
        assert "0 out of 5 new replicas have been updated" in waiting
        assert len(replica_sets(lab, ns)) == 1  # paused: no new ReplicaSet

        lab.kubectl("rollout", "resume", "deployment/web", "-n", ns)
        assert 'deployment "web" successfully rolled out' in rollout_status(lab, ns)
        assert len(replica_sets(lab, ns)) == 2

        lab.kubectl("rollout", "restart", "deployment/web", "-n", ns)
        assert 'deployment "web" successfully rolled out' in rollout_status(lab, ns)
        deploy = kubectl_json(lab, "get", "deployment", "web", "-n", ns)
        assert "kubectl.kubernetes.io/restartedAt" in deploy["spec"]["template"]["metadata"]["annotations"]
        assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        ready = [rs for rs in replica_sets(lab, ns) if rs["spec"]["replicas"]]
        assert len(ready) == 1 and ready[0]["status"].get("availableReplicas") == 5
    assert kubelet.error is None
