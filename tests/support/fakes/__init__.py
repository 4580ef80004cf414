"""Stand-ins for what cannot run here: the Kubernetes API, Chaos Mesh's API, a local injector."""
