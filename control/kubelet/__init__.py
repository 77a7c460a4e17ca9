"""The node agent's kubelet: registers the Node, runs the pods bound to it, serves its API."""
