"""Resource identity is stable: the (type, name, parent) of every resource of the shipped stacks matches a golden list.

A change here means `pulumi up` on an existing stack would create, delete or replace resources. Regenerate the
golden files only for a change meant to do so: `python -m tests.unit.test_urns` (writes tests/unit/golden/).
"""

import json
from pathlib import Path

import pytest

from tests.support.render import STACK_SECRETS, Rendered, render

GOLDEN = Path(__file__).parent / "golden"


def identities(rendered: Rendered) -> list[list[str]]:
    """Every declared resource as [type, name, parent URN], sorted."""
    return sorted([r.type, r.name, r.parent] for r in rendered.resources)


def golden_path(stack: str) -> Path:
    """The golden file of one stack."""
    return GOLDEN / f"urns-{stack}.json"


@pytest.mark.parametrize("name", ["dev", "prod", "dr"])
def test_resource_identities_match_the_golden_list(name: str, rendered_stacks: dict[str, Rendered]) -> None:
    """No resource of a shipped stack changed its type, name or parent."""
    want = json.loads(golden_path(name).read_text())
    got = identities(rendered_stacks[name])
    assert got == want, "\n".join(
        [f"- {row}" for row in want if row not in got] + [f"+ {row}" for row in got if row not in want]
    )


if __name__ == "__main__":
    for stack in ("dev", "prod", "dr"):
        rows = ",\n".join(json.dumps(row) for row in identities(render(stack, secrets=STACK_SECRETS.get(stack))))
        golden_path(stack).write_text(f"[\n{rows}\n]\n")
