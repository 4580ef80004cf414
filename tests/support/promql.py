"""Every PromQL expression the stack ships (rules and dashboard panels), and what each one reads."""

from dataclasses import dataclass

import promql_parser

from components.observability.grafana.dashboards import dashboards
from components.observability.prometheus.alert_rules import alerts, recordings
from components.settings.model import Settings


@dataclass(frozen=True)
class Expression:
    """One expression and where it comes from (for failure messages)."""

    where: str
    expr: str


def expressions(settings: Settings) -> list[Expression]:
    """The recording rules', the alerts' and every dashboard panel's expressions."""
    found = [Expression(f"recording rule {r.record}", r.expr) for r in recordings(settings)]
    found += [Expression(f"alert {a.name}", a.expr) for a in alerts(settings)]
    for model in dashboards(settings):
        for panel in model.panels or []:
            for target in getattr(panel, "targets", None) or []:
                found.append(Expression(f"dashboard {model.uid}, panel {panel.title!r}", target.expr))
    return found


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    """Every vector selector of an expression (inside range vectors and subqueries too)."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads."""
    names = {selector.name for selector in selectors(expr)}
    assert None not in names, f"{expr}: a selector without a metric name"
    return names  # type: ignore[return-value]


def label_values(expr: str, label: str) -> set[str]:
    """The values an expression's selectors require of a label (equality matchers)."""
    return {
        matcher.value
        for selector in selectors(expr)
        for matcher in selector.matchers.matchers
        if matcher.name == label and matcher.op == promql_parser.MatchOp.Equal
    }
