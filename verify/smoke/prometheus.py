"""Prometheus smoke checks: ready, every expected job scraped and up, every rule group healthy, no critical alert."""

import time

import requests

from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets

TIMEOUT = 10


def get(prometheus: str, path: str, **params: str | float) -> dict:
    """GET a path of the Prometheus API at this URL, with query parameters; its data."""
    answer = requests.get(f"{prometheus}{path}", params=params, timeout=TIMEOUT)
    answer.raise_for_status()
    return answer.json()["data"]


def api(context: Context, path: str) -> dict:
    """GET a path of the stack's Prometheus API; its data."""
    return get(context.targets.endpoints.prometheus, path)


def ready(context: Context) -> Figures:
    """/-/ready answers 200."""
    began = time.monotonic()
    answer = requests.get(f"{context.targets.endpoints.prometheus}/-/ready", timeout=TIMEOUT)
    if answer.status_code != 200:
        raise CheckFailedError(f"/-/ready answered {answer.status_code}")
    return {"latency_ms": round((time.monotonic() - began) * 1000, 1)}


def targets_up(context: Context) -> Figures:
    """Every expected scrape job has targets, all of them up."""
    active = api(context, "/api/v1/targets?state=active")["activeTargets"]
    jobs = {target["labels"]["job"] for target in active}
    missing = sorted(set(context.targets.expected.scrape_jobs) - jobs)
    down = sorted(
        f"{t['labels']['job']}/{t['labels'].get('instance', '?')} ({t.get('lastError') or t['health']})"
        for t in active
        if t["health"] != "up"
    )
    problems = ([f"no targets for jobs {', '.join(missing)}"] if missing else []) + (
        [f"down: {'; '.join(down)}"] if down else []
    )
    if problems:
        raise CheckFailedError(". ".join(problems))
    return {"targets": len(active), "jobs": len(jobs)}


def rules(context: Context) -> Figures:
    """Every expected rule group is loaded and every rule evaluates without error."""
    groups = api(context, "/api/v1/rules")["groups"]
    missing = sorted(set(context.targets.expected.rule_groups) - {g["name"] for g in groups})
    if missing:
        raise CheckFailedError(f"rule groups not loaded: {', '.join(missing)}")
    broken = [f"{r['name']}: {r.get('lastError')}" for g in groups for r in g["rules"] if r["health"] == "err"]
    if broken:
        raise CheckFailedError(f"rules failing: {'; '.join(broken)}")
    return {"groups": len(groups), "rules": sum(len(g["rules"]) for g in groups)}


def no_critical_alert(context: Context) -> Figures:
    """No critical alert is firing."""
    firing = [a for a in api(context, "/api/v1/alerts")["alerts"] if a["state"] == "firing"]
    critical = sorted({a["labels"]["alertname"] for a in firing if a["labels"].get("severity") == "critical"})
    if critical:
        raise CheckFailedError(f"critical alerts firing: {', '.join(critical)}")
    return {"firing": len(firing)}


def checks(targets: Targets) -> list[Check]:
    """The Prometheus smoke checks."""
    where = targets.endpoints.prometheus
    tags = frozenset({"prometheus", "monitoring"})
    return [
        Check(name="prometheus.ready", scenario="smoke", target=where, probe=ready, deadline=10, tags=tags),
        Check(name="prometheus.targets", scenario="smoke", target=where, probe=targets_up, deadline=15, tags=tags),
        Check(name="prometheus.rules", scenario="smoke", target=where, probe=rules, deadline=15, tags=tags),
        Check(
            name="prometheus.alerts", scenario="smoke", target=where, probe=no_critical_alert, deadline=15, tags=tags
        ),
    ]
