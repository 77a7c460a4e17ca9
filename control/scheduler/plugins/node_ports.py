"""NodePorts: a pod's ``hostPort``s must be free on the node.

Two host ports clash when protocol and port are equal and the addresses overlap — the same IP,
or either one is the wildcard ``0.0.0.0`` (the default). Unschedulable: the pods holding the
ports could go away.
"""

from __future__ import annotations

from control.scheduler.cache import NodeInfo
from control.scheduler.framework import CycleState, FilterPlugin
from control.scheduler.status import Code, Status

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
WILDCARD = "0.0.0.0"

_STATUS = Status(Code.UNSCHEDULABLE, (ERR_REASON,), NAME)


def _conflicts(wanted: tuple[str, str, int], node: NodeInfo) -> bool:
    ip, protocol, port = wanted
    for used_ip, used_protocol, used_port in node.used_ports:
        if used_port == port and used_protocol == protocol and (ip == used_ip or WILDCARD in (ip, used_ip)):
            return True
    return False


class NodePorts(FilterPlugin):
    name = NAME

    def pre_filter(self, state: CycleState) -> bool:
        return bool(state.pod.host_ports)

    def filter(self, state: CycleState, node: NodeInfo) -> Status | None:
        if node.used_ports and any(_conflicts(wanted, node) for wanted in state.pod.host_ports):
            return _STATUS
        return None
