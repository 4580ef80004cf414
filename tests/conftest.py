"""Shared fixtures: the dev and prod stacks rendered once per session under Pulumi's mocks."""

import pytest

from render import Rendered, render

STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def rendered_stacks() -> dict[str, Rendered]:
    """Both shipped stacks, rendered once."""
    return {name: render(name) for name in STACKS}


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, rendered_stacks: dict[str, Rendered]) -> Rendered:
    """Each shipped stack in turn."""
    return rendered_stacks[request.param]
