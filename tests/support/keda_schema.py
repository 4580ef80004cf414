"""KEDA's ScaledObject CRD schema (vendored), validated strictly, as the API server validates a CR.

The API server prunes a field its structural schema does not name; with strict field validation (what
`kubectl apply --validate=strict` and the tests of the built-in kinds ask for) it refuses it. So every
object of the schema that names its properties is closed here to any other.
"""

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

CRD = json.loads((Path(__file__).parent / "data" / "keda-scaledobject-crd.json").read_text())


def _strict(schema: Any) -> Any:
    """The schema with every object that lists its properties refusing the others."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _strict(value) for key, value in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        closed["additionalProperties"] = False
    return closed


SCHEMA = _strict(CRD["ScaledObject"])


def problems(manifest: dict) -> list[str]:
    """Every way a ScaledObject breaks its CRD's schema."""
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft202012Validator(SCHEMA).iter_errors(manifest)
    ]
