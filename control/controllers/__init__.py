"""kube-controller-manager's controllers, one module each, run by control.controllers.manager."""
