"""Every credential the stack uses: which Kubernetes Secret holds it, under which key."""

import re
from dataclasses import dataclass

PRESTO_USERS_SECRET = "presto-users"
PRESTO_INTERNAL_SECRET = "presto-internal"
CLICKHOUSE_USERS_SECRET = "clickhouse-users"
GRAFANA_ADMIN_SECRET = "grafana-admin"
KAFKA_USERS_SECRET = "kafka-users"
CLICKHOUSE_BACKUP_SECRET = "clickhouse-backup"


@dataclass(frozen=True, kw_only=True)
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
    """What it is for, for docs/settings.md and error messages."""
    generated: bool = True
    """False: issued elsewhere (an object store's key), never generated; in its Secret only when configured."""


CREDENTIALS: tuple[Credential, ...] = (
    Credential(
        name="prestoAdminPassword",
        secret=PRESTO_USERS_SECRET,
        key="admin",
        length=32,
        purpose="Presto user admin (all privileges)",
    ),
    Credential(
        name="prestoAnalystPassword",
        secret=PRESTO_USERS_SECRET,
        key="analyst",
        length=32,
        purpose="Presto user analyst (read-only)",
    ),
    Credential(
        name="prestoIngestPassword",
        secret=PRESTO_USERS_SECRET,
        key="ingest",
        length=32,
        purpose="Presto user ingest (writes)",
    ),
    Credential(
        name="prestoSharedSecret",
        secret=PRESTO_INTERNAL_SECRET,
        key="shared-secret",
        length=64,
        purpose="Presto internal-communication shared secret",
    ),
    Credential(
        name="clickhouseAdminPassword",
        secret=CLICKHOUSE_USERS_SECRET,
        key="admin",
        length=32,
        purpose="ClickHouse user admin",
    ),
    Credential(
        name="clickhouseIngestPassword",
        secret=CLICKHOUSE_USERS_SECRET,
        key="ingest",
        length=32,
        purpose="ClickHouse user ingest (Kafka engine, schema)",
    ),
    Credential(
        name="clickhousePrestoPassword",
        secret=CLICKHOUSE_USERS_SECRET,
        key="presto",
        length=32,
        purpose="ClickHouse user presto (read-only)",
    ),
    Credential(
        name="clickhouseInterserverPassword",
        secret=CLICKHOUSE_USERS_SECRET,
        key="interserver",
        length=32,
        purpose="ClickHouse user interserver (Distributed queries between servers) and replicas' part fetches",
    ),
    Credential(
        name="grafanaAdminPassword",
        secret=GRAFANA_ADMIN_SECRET,
        key="admin-password",
        length=32,
        purpose="Grafana admin",
    ),
    Credential(
        name="kafkaBrokerPassword",
        secret=KAFKA_USERS_SECRET,
        key="broker",
        length=32,
        purpose="Kafka principal broker (scram only: brokers, controllers and the topic Job; super user)",
    ),
    Credential(
        name="kafkaClickhousePassword",
        secret=KAFKA_USERS_SECRET,
        key="clickhouse",
        length=32,
        purpose="Kafka user clickhouse (scram only: the Kafka engine reads the events topic)",
    ),
    Credential(
        name="kafkaVerifyPassword",
        secret=KAFKA_USERS_SECRET,
        key="verify",
        length=32,
        purpose="Kafka user verify (scram only: writes and reads the events topic and its own verify-* topics)",
    ),
    Credential(
        name="kafkaMirrorPassword",
        secret=KAFKA_USERS_SECRET,
        key="mirror",
        length=32,
        purpose="Kafka user mirror (scram only): on a DR stack MirrorMaker 2 writes this site's mirrored topics with "
        "it; on a primary with kafka.mirrorCidrs, the DR site's mirror reads with it",
    ),
    Credential(
        name="kafkaMirrorSourcePassword",
        secret=KAFKA_USERS_SECRET,
        key="mirror-source",
        length=0,
        generated=False,
        purpose="the primary's kafkaMirrorPassword, which MirrorMaker 2 reads the primary with (required when mirror "
        "is set; copied from the primary's outputs, never generated)",
    ),
    Credential(
        name="clickhouseBackupApiPassword",
        secret=CLICKHOUSE_BACKUP_SECRET,
        key="api-password",
        length=32,
        purpose="the backup tool's API, user backup (the backup CronJob and Prometheus sign in with it)",
    ),
    Credential(
        name="clickhouseBackupAccessKey",
        secret=CLICKHOUSE_BACKUP_SECRET,
        key="s3-access-key",
        length=0,
        generated=False,
        purpose="the object store's access key id for ClickHouse's backups (required when clickhouse.backup.enabled; "
        "issued by the store, never generated)",
    ),
    Credential(
        name="clickhouseBackupSecretKey",
        secret=CLICKHOUSE_BACKUP_SECRET,
        key="s3-secret-key",
        length=0,
        generated=False,
        purpose="the object store's secret key for ClickHouse's backups (required when clickhouse.backup.enabled; "
        "issued by the store, never generated)",
    ),
)

MIN_OVERRIDE_LENGTH = 16
OVERRIDE_ALPHABET = re.compile(rf"[A-Za-z0-9._~-]{{{MIN_OVERRIDE_LENGTH},}}")
"""What a configured credential may be: it ends up unescaped in properties files, XML, JAAS and URLs."""
STORE_KEY_ALPHABET = re.compile(r"[A-Za-z0-9+/=._~-]{3,128}")
"""What an object store's key may be (an AWS secret key holds '+' and '/'): it only reaches environment variables."""
