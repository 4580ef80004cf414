"""The stack as the Kubernetes API shows it: preflight, Kubernetes checks and port-forwards."""
