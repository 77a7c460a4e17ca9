"""kubelab's control plane: store, registry of kinds, API server, client library, CLI."""
