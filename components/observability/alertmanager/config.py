"""alertmanager.yml as a pure function: route by severity to the configured webhooks.

The safe default: a severity with no webhook goes to a receiver with no integration, so its alerts
are kept and shown in Alertmanager (and checked by verify) but sent nowhere; nothing is sent to an
address nobody configured.
"""

import yaml

from components.settings.model import Settings

SEVERITIES = ("critical", "warning")


def alertmanager_config(settings: Settings) -> str:
    """Route critical and warning alerts to their receivers; a critical silences the warning of the same alert."""
    receivers = settings.monitoring.alertmanager.receivers
    routes = []
    configs: list[dict] = [{"name": "unrouted"}]
    for severity in SEVERITIES:
        url = getattr(receivers, severity)
        receiver: dict = {"name": severity}
        if url:
            receiver["webhook_configs"] = [{"url": url, "send_resolved": True}]
        configs.append(receiver)
        routes.append(
            {
                "receiver": severity,
                "matchers": [f'severity="{severity}"'],
                "repeat_interval": "1h" if severity == "critical" else "12h",
            }
        )
    config = {
        "route": {
            "receiver": "unrouted",
            "group_by": ["alertname", "namespace"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["alertname", "namespace"],
            }
        ],
        "receivers": configs,
    }
    return yaml.safe_dump(config, sort_keys=False)
