"""Smoke checks per service, and the clients the other commands share."""
