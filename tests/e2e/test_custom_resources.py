"""kubectl with a CustomResourceDefinition: establish, use the new kind, delete the CRD."""

from __future__ import annotations

import json

from tests.e2e.conftest import Lab

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.lab.example.com
spec:
  group: lab.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What a widget should be.
            properties:
              size: {type: integer, description: How big the widget is.}
"""

WIDGET = """\
apiVersion: lab.example.com/v1
kind: Widget
metadata: {name: w1, namespace: default}
spec: {size: 3}
"""


def test_crd_lifecycle_with_kubectl(lab: Lab) -> None:
    lab.kubectl("apply", "-f", "-", input=CRD)
    lab.kubectl("wait", "--for=condition=Established", "crd/widgets.lab.example.com", "--timeout=30s")
    lab.kubectl("apply", "-f", "-", input=WIDGET)
    table = lab.kubectl("get", "wd", "-n", "default").stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE"] and table[1].split() == ["w1", "3"]
    lab.kubectl("apply", "-f", "-", input=WIDGET.replace("size: 3", "size: 4"))
    assert json.loads(lab.kubectl("get", "widget", "w1", "-o", "json").stdout)["spec"] == {"size": 4}
    explained = lab.kubectl("explain", "widget.spec.size").stdout
    assert "How big the widget is." in explained
    lab.kubectl("delete", "crd", "widgets.lab.example.com", "--timeout=30s")
    missing = lab.kubectl("get", "crd", "widgets.lab.example.com", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
