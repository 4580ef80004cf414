"""Prometheus: the component, its scrape config and the alert rules."""
