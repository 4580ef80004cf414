"""The Chaos Mesh chart the deploy loop installs: every generator in its templates is one the component replaces.

No registry here serves the chart at chaos.chartVersion (2.7.2): scripts/engine/install fetches helm/chaos-mesh
from a development commit the Go module proxy serves (its header says which and how it differs from 2.7.2), and
these tests read that copy. So they say whether any generator is left unreplaced in that commit's templates; for
2.7.2 itself they stand only as far as its templates are the same.
"""

import re

import pulumi
import pytest

from components.chaos.certificates import WEBHOOK_SECRET, Issued, chart_certificates, webhook_values
from components.chaos.component import CHART, REPOSITORY
from components.settings.model import ChaosSettings
from tests.support.engine import CHART_TYPE, LocalChart, local_charts

GENERATORS = re.compile(
    r"\b(genCA|genSignedCert|genSelfSignedCert|genPrivateKey|randAlphaNum|randAlpha|randNumeric|randAscii|randBytes|uuidv4|now|lookup)\b"
)
"""Sprig and Helm functions whose result changes from one render to the next."""


def test_the_fetched_chart_stands_in_for_the_version_the_stack_pins(chaos_chart: LocalChart) -> None:
    pinned = ChaosSettings().chart_version
    assert chaos_chart.stands_for == pinned, f"{chaos_chart.source}: re-pin it in scripts/engine/install"


def test_every_generator_in_the_charts_templates_is_one_the_component_replaces(chaos_chart: LocalChart) -> None:
    templates = chaos_chart.directory / "templates"
    calls = {
        path.name: [line.strip() for line in path.read_text().splitlines() if GENERATORS.search(line)]
        for path in sorted(templates.iterdir())
    }
    calls = {name: lines for name, lines in calls.items() if lines}
    assert set(calls) == {
        "_certs.tpl",
        "secrets-configuration.yaml",
        "controller-manager-deployment.yaml",
        "chaos-daemon-daemonset.yaml",
    }, calls
    for name in ("controller-manager-deployment.yaml", "chaos-daemon-daemonset.yaml"):
        assert calls[name] == ["rollme: {{ randAlphaNum 5 | quote }}"], f"{name}: {calls[name]}"
    helpers = (templates / "_helpers.tpl").read_text()
    secret_names = dict(re.findall(r'define "([^"]+)" -}}\s*{{- printf "([^"]+)"', helpers))
    in_secrets = re.findall(
        r'name: {{ template "([^"]+)" \. }}', (templates / "secrets-configuration.yaml").read_text()
    )
    assert {secret_names[t] for t in in_secrets} == {c.secret for c in chart_certificates("chaos-mesh")}
    certs = (templates / "_certs.tpl").read_text()
    pem = pulumi.Output.from_input("")
    given = webhook_values({WEBHOOK_SECRET: Issued(ca=pem, certificate=pem, key=pem, ca_key=None)})
    unread = [value for value in given if f".Values.webhook.{value}" not in certs]
    assert not unread, f"_certs.tpl reads no webhook.{unread}: the chart would generate the webhook's certificate"


def chart_args(version: str) -> pulumi.ResourceTransformArgs:
    """The component's Chart as the engine hands it to a transform."""
    return pulumi.ResourceTransformArgs(
        custom=False,
        type_=CHART_TYPE,
        name="chaos-chart",
        props={"chart": CHART, "version": version, "repositoryOpts": {"repo": REPOSITORY}, "namespace": "chaos-mesh"},
        opts=pulumi.ResourceOptions(),
    )


def test_the_loop_installs_the_fetched_chart_for_the_version_it_stands_for_and_refuses_another(
    chaos_chart: LocalChart,
) -> None:
    result = local_charts(chart_args(chaos_chart.stands_for))
    assert isinstance(result, pulumi.ResourceTransformResult)
    assert result.props == {"chart": str(chaos_chart.directory), "namespace": "chaos-mesh"}
    with pytest.raises(ValueError, match=f"stands in for {re.escape(chaos_chart.stands_for)} only"):
        local_charts(chart_args("9.9.9"))
