"""kubelab's service proxy: each node agent's kube-proxy, in userspace mode.

It listens on every Service's ClusterIP:port (TCP and UDP) and on the node's NodePorts, and
relays each connection (or UDP flow) to a ready endpoint, round-robin, with ClientIP session
affinity — following Service and EndpointSlice changes without touching established
connections. docs/proxy.md describes the behaviour and its limits.

One concept per module:

- ``state`` — a Service and its EndpointSlices → listeners and routes (pure, no sockets);
- ``balancer`` — round-robin and session affinity over one pool of backends;
- ``sockets`` — listening (shared ClusterIPs via ``SO_REUSEPORT``) and outgoing sockets, bind errors;
- ``tcp`` and ``udp`` — forwarding; ``proxier`` — listeners kept equal to the routes;
- ``metrics`` — kube-proxy's sync metrics and the proxy's own;
- ``run`` — informers + work queue around the proxier, and :func:`run_proxy` for the node agent.
"""

from control.proxy.proxier import Proxier, SyncError
from control.proxy.run import ServiceProxy, run_proxy
from control.proxy.sockets import ListenError

__all__ = ["ListenError", "Proxier", "ServiceProxy", "SyncError", "run_proxy"]
