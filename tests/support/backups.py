"""A stack with backups on: the settings and secret config it needs (a bucket and the object store's keys)."""

from typing import Any

from components.settings.model import PROJECT, Settings
from components.settings.parse import parse_settings
from components.settings.stack_files import stack_config

STORE = {"endpoint": "https://s3.eu-west-1.amazonaws.com", "bucket": "qestack-backups", "prefix": "clickhouse"}
ACCESS_KEY = "AKIAEXAMPLEKEY000001"
SECRET_KEY = "example/secret+key=00000000000000000000"
"""Stand-ins shaped as AWS issues them (the secret key holds '/' and '+')."""
DEV_QUOTA = {"requests": {"cpu": "4", "memory": "4Gi"}, "limits": {"cpu": "11", "memory": "11Gi"}}
"""dev's quota has no room for a sidecar per server, the backup Job's pod and the restore drill's scratch server:
turning backups on raises it."""


def backup_overrides(stack: str) -> dict[str, Any]:
    """Stack config turning backups on (and, for dev, the quota that holds them)."""
    overrides: dict[str, Any] = {"clickhouse": {"backup": {"enabled": True, "objectStore": STORE}}}
    if stack == "dev":
        overrides["quota"] = DEV_QUOTA
    return overrides


SECRETS = {"credentials": {"clickhouseBackupAccessKey": ACCESS_KEY, "clickhouseBackupSecretKey": SECRET_KEY}}
"""What `pulumi config set --secret --path credentials.NAME` gives the program."""


def backup_settings(stack: str, missing_after: str = "26h") -> Settings:
    """A shipped stack's settings with backups on."""
    overrides = backup_overrides(stack)
    overrides["clickhouse"]["backup"]["missingAfter"] = missing_after
    config = stack_config(stack, {**overrides, **SECRETS})
    return parse_settings(stack, config, secret_keys={f"{PROJECT}:credentials"})
