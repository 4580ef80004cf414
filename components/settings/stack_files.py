"""Read Pulumi.<stack>.yaml and give its config as the Pulumi CLI hands it to the program."""

import json
from pathlib import Path
from typing import Any

import yaml

from components.settings.model import PROJECT

REPO = Path(__file__).resolve().parents[2]


def stack_values(stack: str, repo: Path = REPO) -> dict[str, Any]:
    """The config mapping of Pulumi.<stack>.yaml, values as YAML gives them."""
    document = yaml.safe_load((repo / f"Pulumi.{stack}.yaml").read_text()) or {}
    return dict(document.get("config") or {})


def stack_config(stack: str, overrides: dict[str, Any] | None = None, repo: Path = REPO) -> dict[str, str]:
    """A stack's config as the CLI passes it (all strings), with top-level project keys deep-merged."""
    values = stack_values(stack, repo)
    for key, value in (overrides or {}).items():
        full_key = f"{PROJECT}:{key}"
        values[full_key] = merged(values.get(full_key), value)
    return {key: as_config_text(value) for key, value in values.items()}


def merged(base: Any, change: Any) -> Any:
    """Deep-merge change into base where both are mappings; otherwise change wins."""
    if isinstance(base, dict) and isinstance(change, dict):
        return {**base, **{key: merged(base.get(key), value) for key, value in change.items()}}
    return change


def as_config_text(value: Any) -> str:
    """Encode one config value as the CLI does: text as is, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)
