"""Credentials, certificates, network flows and the verify ServiceAccount."""
