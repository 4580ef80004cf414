"""Grafana: the component, its provisioning files and the dashboards."""
