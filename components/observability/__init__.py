"""Metrics and alerting: Prometheus, Alertmanager, Grafana and the exporters."""
