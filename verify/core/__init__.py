"""verify's framework: checks, the runner, targets, reports, progress and exit codes."""
