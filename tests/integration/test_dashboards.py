"""The dashboards' PromQL through the real promtool of the Prometheus image's version."""

from pathlib import Path

import yaml

from tests.support.promql import expressions
from tests.support.render import Rendered, settings_of
from tests.support.servers.prometheus import PROMTOOL_2_53, run_tool


def test_every_expression_parses_with_promtool(stack: Rendered, tmp_path: Path) -> None:
    """The image's promtool parses an expression when it checks a rule that records it."""
    found = expressions(settings_of(stack))
    rules = [{"record": f"qestack_expression_{i}", "expr": e.expr} for i, e in enumerate(found)]
    (tmp_path / "expressions.yml").write_text(yaml.safe_dump({"groups": [{"name": "all", "rules": rules}]}))
    checked = run_tool(PROMTOOL_2_53, "check", "rules", "expressions.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(found)} rules found" in checked.stdout
