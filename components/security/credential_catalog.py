"""Every credential the stack uses: which Kubernetes Secret holds it, under which key."""

import re
from dataclasses import dataclass

PRESTO_USERS_SECRET = "presto-users"
PRESTO_INTERNAL_SECRET = "presto-internal"
CLICKHOUSE_USERS_SECRET = "clickhouse-users"
GRAFANA_ADMIN_SECRET = "grafana-admin"
KAFKA_USERS_SECRET = "kafka-users"


@dataclass(frozen=True)
class Credential:
    """One credential: its config name, where it is stored and how it is generated."""

    name: str
    """Key under `credentials.` in stack config and under `credentials` in the stack outputs."""
    secret: str
    """metadata.name of the Kubernetes Secret that stores it."""
    key: str
    """Key inside that Secret."""
    length: int
    """Length when generated."""
    purpose: str
    """What it is for, for the README and error messages."""


CREDENTIALS: tuple[Credential, ...] = (
    Credential("prestoAdminPassword", PRESTO_USERS_SECRET, "admin", 32, "Presto user admin (all privileges)"),
    Credential("prestoAnalystPassword", PRESTO_USERS_SECRET, "analyst", 32, "Presto user analyst (read-only)"),
    Credential("prestoIngestPassword", PRESTO_USERS_SECRET, "ingest", 32, "Presto user ingest (writes)"),
    Credential(
        "prestoSharedSecret", PRESTO_INTERNAL_SECRET, "shared-secret", 64, "Presto internal-communication shared secret"
    ),
    Credential("clickhouseAdminPassword", CLICKHOUSE_USERS_SECRET, "admin", 32, "ClickHouse user admin"),
    Credential(
        "clickhouseIngestPassword",
        CLICKHOUSE_USERS_SECRET,
        "ingest",
        32,
        "ClickHouse user ingest (Kafka engine, schema)",
    ),
    Credential("clickhousePrestoPassword", CLICKHOUSE_USERS_SECRET, "presto", 32, "ClickHouse user presto (read-only)"),
    Credential("grafanaAdminPassword", GRAFANA_ADMIN_SECRET, "admin-password", 32, "Grafana admin"),
    Credential(
        "kafkaBrokerPassword",
        KAFKA_USERS_SECRET,
        "broker",
        32,
        "Kafka principal broker (scram only: brokers, controllers and the topic Job; super user)",
    ),
    Credential(
        "kafkaClickhousePassword",
        KAFKA_USERS_SECRET,
        "clickhouse",
        32,
        "Kafka user clickhouse (scram only: the Kafka engine reads the events topic)",
    ),
    Credential(
        "kafkaVerifyPassword",
        KAFKA_USERS_SECRET,
        "verify",
        32,
        "Kafka user verify (scram only: writes and reads the events topic and its own verify-* topics)",
    ),
)

MIN_OVERRIDE_LENGTH = 16
OVERRIDE_ALPHABET = re.compile(rf"[A-Za-z0-9._~-]{{{MIN_OVERRIDE_LENGTH},}}")
"""What a configured credential may be: it ends up unescaped in properties files, XML, JAAS and URLs."""
