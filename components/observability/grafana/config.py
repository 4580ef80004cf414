"""Grafana's files as pure functions: grafana.ini and the provisioning of its datasource and dashboards."""

import configparser
import io
from dataclasses import dataclass

import yaml

from components import names
from components.observability.grafana.dashboards import DATASOURCE_UID, FOLDER
from components.settings.model import Settings

GRAFANA_PORT = names.GRAFANA_PORT
ADMIN_USER = "admin"


@dataclass(frozen=True)
class Paths:
    """Where the pod mounts what Grafana reads."""

    provisioning: str = "/etc/grafana/provisioning"
    dashboards: str = "/var/lib/grafana-dashboards"
    data: str = "/var/lib/grafana"
    admin_password_file: str = "/etc/grafana-secrets/admin-password"


def grafana_ini(paths: Paths = Paths()) -> str:
    """grafana.ini: no anonymous access, no sign-up, the admin password read from a mounted Secret, no phoning home."""
    config = configparser.ConfigParser(interpolation=None)
    config.read_dict(
        {
            "server": {"http_port": str(GRAFANA_PORT)},
            "paths": {"data": paths.data, "provisioning": paths.provisioning},
            # Read at the first start of an empty database; the database is an emptyDir, so every pod start.
            "security": {
                "admin_user": ADMIN_USER,
                "admin_password": f"$__file{{{paths.admin_password_file}}}",
                "disable_gravatar": "true",
            },
            "auth.anonymous": {"enabled": "false"},
            "users": {"allow_sign_up": "false", "allow_org_create": "false"},
            # The cluster may have no way out: no update checks, no usage reports, no news feed.
            "analytics": {
                "reporting_enabled": "false",
                "check_for_updates": "false",
                "check_for_plugin_updates": "false",
            },
            "news": {"news_feed_enabled": "false"},
            "log": {"mode": "console"},
        }
    )
    text = io.StringIO()
    config.write(text)
    return text.getvalue()


def datasources(settings: Settings, prometheus_url: str) -> str:
    """Provisioned datasources: the stack's Prometheus, the default, not editable in the UI."""
    source = {
        "name": "Prometheus",
        "type": "prometheus",
        "uid": DATASOURCE_UID,
        "access": "proxy",
        "url": prometheus_url,
        "isDefault": True,
        "editable": False,
        "jsonData": {"timeInterval": settings.monitoring.prometheus.scrape_interval, "httpMethod": "POST"},
    }
    return yaml.safe_dump({"apiVersion": 1, "datasources": [source]}, sort_keys=False)


def dashboard_providers(paths: Paths = Paths()) -> str:
    """Provisioned dashboards: the JSON files in one folder, which the UI can neither delete nor overwrite."""
    provider = {
        "name": "query-engine-stack",
        "type": "file",
        "folder": FOLDER,
        "disableDeletion": True,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 30,
        "options": {"path": paths.dashboards},
    }
    return yaml.safe_dump({"apiVersion": 1, "providers": [provider]}, sort_keys=False)
