"""Chaos Mesh, installed for verify's failover scenarios."""
