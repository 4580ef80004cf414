"""Launchers of the real servers the integration tests run, from the stack's own configs."""
