"""The platform baseline and what every workload shares: labels, pod pieces, the resource plan."""
