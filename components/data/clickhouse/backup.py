"""Backups of ClickHouse to S3-compatible object storage: the backup tool's config and the scheduled job's script.

The tool is Altinity's clickhouse-backup, run as a server beside each ClickHouse server (it reads the
server's data directory) and driven over its REST API by the scheduled job. The deployed tool is
altinity/clickhouse-backup 2.6.3; the tests build v1.6.2, the only version the Go module proxy serves,
against ClickHouse 18.16. Both files use only the config keys and API endpoints the two versions share
(SHARED_CONFIG_KEYS, SHARED_ENDPOINTS). Secrets are never in the config file: the tool
reads S3_ACCESS_KEY, S3_SECRET_KEY, CLICKHOUSE_PASSWORD, API_USERNAME and API_PASSWORD from its environment.
"""

import shlex
from dataclasses import dataclass

import yaml

from components import names
from components.data.clickhouse.config import ADMIN

ACCESS_KEY_ENV = "S3_ACCESS_KEY"
SECRET_KEY_ENV = "S3_SECRET_KEY"
CLICKHOUSE_PASSWORD_ENV = "CLICKHOUSE_PASSWORD"
API_USERNAME_ENV = "API_USERNAME"
API_PASSWORD_ENV = "API_PASSWORD"
"""The environment variables the tool (and the job, for the API login) read their secrets from."""
API_USER = "backup"
"""The login of the tool's API (its password is a credential): the API can restore and delete, so it asks."""
SHARD_PATH = "shard-{shard}"
"""Each shard's backups under the prefix: the tool fills {shard} from the server's macros, so any replica of a
shard writes to and reads from the same place, and one shard's retention never counts another's backups."""
FULL, INCREMENTAL = "full", "incr"
NAME_PREFIX = "events"
"""Backups are named events-<UTC time>-full|incr: sorted by name they are in time order, and the suffix says
which is a full one, so the job needs no state of its own."""


@dataclass(frozen=True, kw_only=True)
class ObjectStore:
    """Where the backups go: an S3-compatible bucket."""

    endpoint: str
    """The S3 API's URL, http:// or https:// (e.g. https://s3.eu-west-1.amazonaws.com)."""
    bucket: str
    prefix: str
    """Key prefix of this stack's backups in the bucket (no leading or trailing '/')."""
    region: str
    path_style: bool
    """Address the bucket in the URL's path (most self-hosted stores) rather than as a host name (AWS)."""


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """What each scheduled run does and how much is kept."""

    keep_full: int
    """Full backups kept in the store, each with the incrementals taken after it."""
    full_every: int
    """Every full_every-th backup is full, the others incremental against the latest full one (1: all full)."""
    deletes: bool = True
    """False (restore mode, on another stack's store): the tool never deletes a backup in the store."""

    @property
    def keep_remote(self) -> int:
        """backups_to_keep_remote: keep_full chains of one full and full_every - 1 incrementals; 0 keeps every one."""
        return self.keep_full * self.full_every if self.deletes else 0


SHARED_CONFIG_KEYS = {
    "general": ("remote_storage", "backups_to_keep_local", "backups_to_keep_remote", "log_level"),
    "clickhouse": ("host", "port", "username", "timeout"),
    "s3": ("endpoint", "bucket", "path", "region", "force_path_style", "disable_ssl", "compression_format"),
    "api": ("listen", "enable_metrics", "allow_parallel", "create_integration_tables"),
}
"""The config keys tool_config may use: read alike by v1.6.2 (the tests') and 2.6.3 (the pods'), per their source."""
SHARED_ENDPOINTS = ("/backup/create", "/backup/upload/", "/backup/list/remote", "/backup/actions")
"""The API the job may call, alike in both versions (v1.6.2 cannot delete the local copy after an upload, so
backups_to_keep_local is 1 rather than 2.x's -1: the newest local backup, hard links of the parts, stays)."""


def tool_config(store: ObjectStore, schedule: Schedule, *, clickhouse_port: int, listen: str) -> str:
    """The tool's config.yml: the server it backs up, the bucket, retention and its API (no secret in it)."""
    document = {
        "general": {
            "remote_storage": "s3",
            # The newest local backup stays (hard links: no copy of the data), the older ones are removed.
            "backups_to_keep_local": 1,
            # The store keeps keep_full chains; the tool never deletes a backup a kept one still needs.
            "backups_to_keep_remote": schedule.keep_remote,
            "log_level": "info",
        },
        "clickhouse": {
            # The server in the same pod, as its admin (FREEZE and ATTACH need it); the password from env.
            "host": "localhost",
            "port": clickhouse_port,
            "username": ADMIN,
            "timeout": "5m",
        },
        "s3": {
            "endpoint": store.endpoint,
            "bucket": store.bucket,
            "path": f"{store.prefix}/{SHARD_PATH}" if store.prefix else SHARD_PATH,
            "region": store.region,
            "force_path_style": store.path_style,
            "disable_ssl": store.endpoint.startswith("http://"),
            # Parts are already compressed by ClickHouse: a plain tar spends no CPU compressing them again.
            "compression_format": "tar",
        },
        "api": {
            "listen": listen,
            "enable_metrics": True,
            # One operation at a time: a scheduled run that meets a restore fails instead of racing it.
            "allow_parallel": False,
            "create_integration_tables": False,
        },
    }
    return yaml.safe_dump(document, sort_keys=False)


def job_script(shards: list[list[str]], schedule: Schedule, *, port: int = names.CLICKHOUSE_BACKUP_PORT) -> str:
    """The scheduled job: on each shard, create a backup through the first replica's tool that answers, then upload it.

    A shard's run is full when it has no full backup yet or full_every - 1 incrementals followed its latest
    full one; otherwise it is incremental against that full one (diff-from-remote), so restoring any backup
    needs at most two. Every shard is tried; the job fails, naming each failed shard and the API's error, if
    any one failed. POSIX sh and wget: what the ClickHouse image (the job's) has.
    """
    shard_lines = "\n".join(
        f'backup_shard {index + 1} {" ".join(shlex.quote(host) for host in hosts)} || failed="$failed {index + 1}"'
        for index, hosts in enumerate(shards)
    )
    return f"""set -u
port={port}
full_every={schedule.full_every}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
# wget reads the API login from a file only this job sees, never from its command line.
WGETRC=$(mktemp)
export WGETRC
trap 'rm -f "$WGETRC"' EXIT
printf 'auth_no_challenge = on\\nhttp_user = %s\\nhttp_password = %s\\n' \\
  "${API_USERNAME_ENV}" "${API_PASSWORD_ENV}" >"$WGETRC"

say() {{ echo "clickhouse-backup job: $*" >&2; }}

# call METHOD URL: the response; on an HTTP error, the API's answer and a failure.
call() {{
  if [ "$1" = POST ]; then
    wget -q -O- --content-on-error --timeout=60 --post-data= "$2"
  else
    wget -q -O- --content-on-error --timeout=60 "$2"
  fi
}}

# finish API OPERATION NAME: wait until the tool's last action on NAME is done; fail with its error.
finish() {{
  while :; do
    row=$(call GET "$1/backup/actions?filter=$3&last=1") || {{ say "$1: reading the $2 status of $3: $row"; return 1; }}
    case $row in
      *'"status":"in progress"'*) sleep 2 ;;
      *'"status":"success"'*) return 0 ;;
      *) say "$1: $2 $3 failed: $row"; return 1 ;;
    esac
  done
}}

# backup_shard SHARD HOST...: a full or incremental backup of one shard, through the first replica that answers.
backup_shard() {{
  shard=$1
  shift
  api=
  for host in "$@"; do
    if call GET "http://$host:$port/backup/actions?last=1" >/dev/null 2>&1; then
      api=http://$host:$port
      break
    fi
  done
  [ -n "$api" ] || {{ say "shard $shard: no backup tool answers on $*"; return 1; }}
  listing=$(call GET "$api/backup/list/remote") ||
    {{ say "shard $shard: $api: listing the store: $listing"; return 1; }}
  backups=$(printf '%s\\n' "$listing" | sed -n 's/.*"name":"\\({NAME_PREFIX}-[0-9TZ]*-[a-z]*\\)".*/\\1/p' | sort)
  full=$(printf '%s\\n' "$backups" | grep -e '-{FULL}$' | tail -n 1)
  since=0
  [ -n "$full" ] && since=$(printf '%s\\n' "$backups" | sed -n "/^$full\\$/,\\$p" | grep -c -e '-{INCREMENTAL}$')
  if [ -z "$full" ] || [ "$since" -ge $((full_every - 1)) ]; then
    name={NAME_PREFIX}-$stamp-{FULL}
    upload=$api/backup/upload/$name
    base=
  else
    name={NAME_PREFIX}-$stamp-{INCREMENTAL}
    upload="$api/backup/upload/$name?diff-from-remote=$full"
    base=$full
  fi
  answer=$(call POST "$api/backup/create?name=$name") ||
    {{ say "shard $shard: $api: create $name refused: $answer"; return 1; }}
  finish "$api" create "$name" || return 1
  answer=$(call POST "$upload") || {{ say "shard $shard: $api: upload $name refused: $answer"; return 1; }}
  finish "$api" upload "$name" || return 1
  say "shard $shard: $name uploaded through $api${{base:+, incremental against $base}}"
}}

failed=
{shard_lines}
[ -z "$failed" ] || {{ say "failed on shard(s):$failed"; exit 1; }}
"""
