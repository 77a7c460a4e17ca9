"""Smoke tests that `kubelab smoke <name>` runs against a live cluster: each builds a few
objects through the public API, checks what a user would check, and cleans up."""
