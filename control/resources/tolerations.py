"""Does a toleration tolerate a taint? ``v1.Toleration.ToleratesTaint``, shared by the scheduler
(TaintToleration, NodeUnschedulable) and the node lifecycle controller (NoExecute eviction).

A toleration with an effect only matches taints of that effect; one with a key only matches that
key (an empty key with ``Exists`` matches every taint); ``Equal`` (the default operator) also
needs the same value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Taint = Mapping[str, Any]
Toleration = Mapping[str, Any]


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    return any(tolerates(toleration, taint) for toleration in tolerations)
