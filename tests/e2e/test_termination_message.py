"""Termination messages and the container's user on a real lab, seen through the real kubectl:
what a container writes to /dev/termination-log is its terminated state's message (in
`-o jsonpath` and as `Message:` in `kubectl describe`), FallbackToLogsOnError gives the log's
tail, and `containerStatuses[].user` shows the identity the process ran with.

Runs on the session's lab (3 nodes); skips itself on a lab without node agents, or when the
lab does not run as root (no mount namespaces: the termination-log file is not bound)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Lab

NS = "termination-message"
MANIFEST = f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {NS}
---
apiVersion: v1
kind: Pod
metadata:
  name: goodbye
  namespace: {NS}
spec:
  restartPolicy: Never
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    supplementalGroups: [4000]
    supplementalGroupsPolicy: Strict
  containers:
  - name: writer
    image: busybox
    command: ["sh", "-c", "printf 'Sleep expired' > /dev/termination-log; exit 4"]
  - name: from-logs
    image: busybox
    command: ["sh", "-c", "echo 'out of cheese'; exit 1"]
    terminationMessagePolicy: FallbackToLogsOnError
"""


@pytest.fixture(scope="module")
def finished(lab: Lab) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab's node agents are not root: no mount namespace binds the termination log")
    lab.kubectl("apply", "-f", "-", input=MANIFEST)
    try:
        lab.kubectl(
            "wait",
            "-n",
            NS,
            "--for=jsonpath={.status.phase}=Failed",
            "pod/goodbye",
            "--timeout=120s",
            timeout=150,
        )
        yield lab
    finally:
        lab.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def test_the_message_is_in_the_terminated_state(finished: Lab) -> None:
    jsonpath = "{.status.containerStatuses[0].state.terminated.message}"
    output = finished.kubectl("get", "-n", NS, "pod/goodbye", "-o", f"jsonpath={jsonpath}").stdout
    assert output == "Sleep expired"
    statuses = json.loads(finished.kubectl("get", "-n", NS, "pod/goodbye", "-o", "json").stdout)["status"]
    by_name = {status["name"]: status for status in statuses["containerStatuses"]}
    assert by_name["writer"]["state"]["terminated"]["exitCode"] == 4
    assert by_name["from-logs"]["state"]["terminated"]["message"] == "out of cheese\n"


def test_describe_shows_the_message(finished: Lab) -> None:
    described = finished.kubectl("describe", "-n", NS, "pod/goodbye").stdout
    lines = [line.strip() for line in described.splitlines()]
    messages = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Message:")]
    assert "Sleep expired" in messages and "out of cheese" in messages, described
    assert any(line.startswith("Exit Code:") and line.endswith("4") for line in lines), described


def test_the_user_the_process_ran_as(finished: Lab) -> None:
    jsonpath = "{.status.containerStatuses[0].user.linux}"
    user = json.loads(finished.kubectl("get", "-n", NS, "pod/goodbye", "-o", f"jsonpath={jsonpath}").stdout)
    assert user == {"uid": 1000, "gid": 3000, "supplementalGroups": [3000, 4000]}
