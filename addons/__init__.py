"""kubelab's add-ons: each watches the API server through control.client and runs as pods."""
