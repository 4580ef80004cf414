"""Pulumi component resources of query-engine-stack, one module per concern."""
