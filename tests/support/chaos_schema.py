"""The vendored subset of Chaos Mesh's CRD schemas, and validation against it (as the API server validates a CR)."""

import json
from pathlib import Path

from jsonschema import Draft202012Validator

SCHEMAS = json.loads((Path(__file__).parent / "data" / "chaos-mesh-crds.json").read_text())


def problems(manifest: dict) -> list[str]:
    """Every way the object breaks its kind's schema."""
    schema = {"$defs": SCHEMAS["$defs"], **SCHEMAS[manifest["kind"]]}
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(manifest)
    ]
