"""Grafana smoke checks: healthy, its Prometheus datasource answering, every provisioned dashboard there."""

import requests

from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets

TIMEOUT = 10
ADMIN = "admin"
PASSWORD = "grafanaAdminPassword"
DATASOURCE_UID = "prometheus"


def get(context: Context, path: str) -> requests.Response:
    """GET a Grafana API path as the admin."""
    targets = context.targets
    return requests.get(
        f"{targets.endpoints.grafana}{path}", auth=(ADMIN, targets.credentials[PASSWORD]), timeout=TIMEOUT
    )


def health(context: Context) -> Figures:
    """/api/health: the database is ok."""
    answer = requests.get(f"{context.targets.endpoints.grafana}/api/health", timeout=TIMEOUT)
    body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
    if answer.status_code != 200 or body.get("database") != "ok":
        raise CheckFailedError(f"/api/health answered {answer.status_code} {answer.text[:200]!r}")
    return {"version": body.get("version", "?")}


def datasource(context: Context) -> Figures:
    """The provisioned Prometheus datasource passes Grafana's own health check."""
    answer = get(context, f"/api/datasources/uid/{DATASOURCE_UID}/health")
    body = answer.json()
    if answer.status_code != 200 or body.get("status") != "OK":
        raise CheckFailedError(f"datasource {DATASOURCE_UID}: {answer.status_code} {body.get('message', '')}")
    return {"status": body["status"]}


def dashboards(context: Context) -> Figures:
    """Every dashboard the stack provisions is there, by uid."""
    answer = get(context, "/api/search?type=dash-db&limit=5000")
    answer.raise_for_status()
    found = {board["uid"] for board in answer.json()}
    missing = sorted(set(context.targets.expected.dashboards) - found)
    if missing:
        raise CheckFailedError(f"dashboards missing: {', '.join(missing)}")
    return {"dashboards": len(found)}


def checks(targets: Targets) -> list[Check]:
    """The Grafana smoke checks."""
    where = targets.endpoints.grafana
    tags = frozenset({"grafana", "monitoring"})
    return [
        Check(name="grafana.health", scenario="smoke", target=where, probe=health, deadline=10, tags=tags),
        Check(name="grafana.datasource", scenario="smoke", target=where, probe=datasource, deadline=15, tags=tags),
        Check(name="grafana.dashboards", scenario="smoke", target=where, probe=dashboards, deadline=15, tags=tags),
    ]
