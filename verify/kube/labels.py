"""The labels on every object verify creates, so that its cleanup (and an operator) can find them."""

RUN_LABEL = "verify.query-engine-stack/run"
"""The run id on every object verify creates."""


def run_labels(run_id: str) -> dict[str, str]:
    """Who made an object, and in which run."""
    return {"app.kubernetes.io/managed-by": "verify", RUN_LABEL: run_id}
