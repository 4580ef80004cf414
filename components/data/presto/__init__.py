"""Presto: the coordinator and workers component and its configuration files."""
