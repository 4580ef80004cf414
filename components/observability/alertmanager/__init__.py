"""Alertmanager: the component and its routing config."""
