"""PodTemplates and RuntimeClasses through real kubectl against the in-process API server:
``api-resources`` lists them as upstream 1.33 does, a manifest with both applies, ``kubectl get``
prints upstream's columns, stored objects carry their defaults, and bad objects are refused with
upstream's 422 causes. The rule corners are in
tests/control/resources/test_pod_templates_and_runtime_classes.py."""

from __future__ import annotations

import json
from pathlib import Path

from tests.control.apiserver.conftest import RunningServer

MANIFEST = """\
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: gvisor}
handler: runsc
overhead:
  podFixed: {cpu: 250m, memory: 64Mi}
scheduling:
  nodeSelector: {runtime: gvisor}
---
apiVersion: v1
kind: PodTemplate
metadata: {name: web-template, namespace: default}
template:
  metadata:
    labels: {app: web}
  spec:
    containers:
    - {name: web, image: nginx}
    - {name: sidecar, image: busybox}
"""


async def apply(apiserver: RunningServer, tmp_path: Path, text: str) -> tuple[int, str, str]:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(text)
    return await apiserver.kubectl("apply", "-f", str(manifest))


async def test_api_resources_lists_both_kinds(apiserver: RunningServer) -> None:
    code, out, err = await apiserver.kubectl("api-resources", "--no-headers")
    assert code == 0, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert rows["podtemplates"] == ["v1", "true", "PodTemplate"]
    assert rows["runtimeclasses"] == ["node.k8s.io/v1", "false", "RuntimeClass"]


async def test_a_manifest_with_both_applies_and_gets_upstreams_columns(
    apiserver: RunningServer, tmp_path: Path
) -> None:
    code, out, err = await apply(apiserver, tmp_path, MANIFEST)
    assert code == 0, err
    assert "runtimeclass.node.k8s.io/gvisor created" in out
    assert "podtemplate/web-template created" in out

    code, out, err = await apiserver.kubectl("get", "runtimeclasses")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["NAME", "HANDLER", "AGE"]
    assert row.split()[:2] == ["gvisor", "runsc"]

    code, out, err = await apiserver.kubectl("get", "podtemplates", "-n", "default")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["NAME", "CONTAINERS", "IMAGES", "POD", "LABELS"]
    assert row.split() == ["web-template", "web,sidecar", "nginx,busybox", "app=web"]

    code, out, err = await apiserver.kubectl("get", "podtemplate", "web-template", "-o", "json")
    assert code == 0, err
    stored = json.loads(out)
    assert stored["template"]["spec"]["restartPolicy"] == "Always"
    assert stored["template"]["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"

    code, out, err = await apply(apiserver, tmp_path, MANIFEST)  # a second apply changes nothing
    assert code == 0, err
    assert "runtimeclass.node.k8s.io/gvisor unchanged" in out and "podtemplate/web-template unchanged" in out


async def test_a_bad_runtime_class_is_refused_and_its_handler_is_immutable(
    apiserver: RunningServer, tmp_path: Path
) -> None:
    code, _, err = await apply(
        apiserver,
        tmp_path,
        "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: bad}\nhandler: Run_C\n",
    )
    assert code != 0
    assert (
        'The RuntimeClass "bad" is invalid: handler: Invalid value: "Run_C": a lowercase RFC 1123 label'
        in err
    )

    code, _, err = await apply(apiserver, tmp_path, MANIFEST)
    assert code == 0, err
    code, _, err = await apiserver.kubectl(
        "patch", "runtimeclass", "gvisor", "--type=merge", "-p", '{"handler": "runc"}'
    )
    assert code != 0
    assert 'The RuntimeClass "gvisor" is invalid: handler: Invalid value: "runc": field is immutable' in err


async def test_a_pod_template_without_containers_is_refused(apiserver: RunningServer, tmp_path: Path) -> None:
    code, _, err = await apply(
        apiserver,
        tmp_path,
        "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: empty, namespace: default}\ntemplate: {}\n",
    )
    assert code != 0
    assert 'The PodTemplate "empty" is invalid: template.spec.containers: Required value' in err
