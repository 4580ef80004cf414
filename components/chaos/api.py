"""Chaos Mesh's API as this stack uses it: what the verify Role grants and what verify's experiments are."""

GROUP = "chaos-mesh.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURALS = {"PodChaos": "podchaos", "NetworkChaos": "networkchaos", "StressChaos": "stresschaos"}
"""Each experiment kind verify creates, and its resource name in the API."""
