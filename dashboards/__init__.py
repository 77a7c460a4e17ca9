"""Grafana and Kibana dashboards for kubelab's add-ons, as code."""
