#!/bin/sh
# Applies the numbered migrations of DIR in order, once, and records each in analytics.schema_migrations.
# Usage: migrate.sh DIR HOST:PORT... (every server). Logs in as $CLICKHOUSE_USER with $CLICKHOUSE_PASSWORD.
# Forward-only: an applied migration is never changed, removed or undone. A replicated stack's migrations say
# ON CLUSTER themselves, so the first server applies each and it reaches every server; what follows a line
# "-- migrate: on every server" is applied on each server in turn instead, up to a line "-- migrate: once".
# The record is then written on every server that lacked it.
set -eu
dir=$1
shift
table=analytics.schema_migrations
tab=$(printf '\t')

client() {
    server=$1
    shift
    clickhouse-client --host "${server%:*}" --port "${server##*:}" --user "$CLICKHOUSE_USER" \
        --password "$CLICKHOUSE_PASSWORD" "$@"
}

fail() {
    echo "migrate: $*" >&2
    exit 1
}

# The checksum a migration was rendered with: sha256 of its source, before the stack's settings filled it.
checksum() {
    sed -n 's/^-- checksum: \([0-9a-f]\{64\}\)$/\1/p' "$1" | head -n 1
}

files=$(find "$dir" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]_*.sql' | sort)
[ -n "$files" ] || fail "no migrations in $dir"
duplicates=$(for file in $files; do basename "$file" | cut -c1-4; done | uniq -d)
[ -z "$duplicates" ] || fail "two migrations share version $duplicates"

# Where the records live: a plain table on each server (not a migration: it holds their record).
for server in "$@"; do
    client "$server" --query "CREATE DATABASE IF NOT EXISTS analytics"
    client "$server" --query "CREATE TABLE IF NOT EXISTS $table (version UInt32, name String, checksum String,
        applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version"
done

# apply FILE FIRST SERVER...: each part of the file on FIRST (ON CLUSTER, for a replicated stack), or on each
# SERVER where it says so.
apply() {
    parts=$(mktemp -d)
    csplit -s -z -f "$parts/part" "$1" '/^-- migrate: /' '{*}'
    first=$2
    shift 2
    for part in "$parts"/part*; do
        grep -q -v -e '^--' -e '^[[:space:]]*$' "$part" || continue
        case $(head -n 1 "$part") in
        "-- migrate: on every server") targets="$*" ;;
        *) targets=$first ;;
        esac
        for target in $targets; do
            client "$target" --multiquery <"$part" || return 1
        done
    done
    rm -r "$parts"
}

records() {
    client "$1" --query "SELECT version, name, checksum FROM $table ORDER BY version FORMAT TSV"
}

# Every migration applied anywhere is still here, unchanged (each server's record is checked).
newest=0
applied=$(for server in "$@"; do records "$server"; done | sort -u)
while IFS="$tab" read -r version name sum; do
    [ -n "$version" ] || continue
    file="$dir/$name"
    [ -f "$file" ] || fail "$name was applied but is missing from $dir: migrations are forward-only, restore it"
    [ "$(checksum "$file")" = "$sum" ] ||
        fail "$name was edited after it was applied (checksum applied $sum, now $(checksum "$file")): restore it and put the change in a new migration"
    [ "$version" -lt "$newest" ] || newest=$version
done <<RECORDS
$applied
RECORDS

# A migration is pending on the servers without its record: all of them for a new one; the new servers only
# (a shard added) or the one a failed run left unrecorded for an applied one. Its statements are idempotent
# (IF NOT EXISTS, IF EXISTS), so applying it again changes nothing where it was applied.
pending=0
for file in $files; do
    name=$(basename "$file")
    version=$(echo "$name" | cut -c1-4 | sed 's/^0*//')
    version=${version:-0}
    lacking=""
    for server in "$@"; do
        records "$server" | grep -q "$tab$name$tab" || lacking="$lacking $server"
    done
    [ -n "$lacking" ] || continue
    if echo "$applied" | grep -q "$tab$name$tab"; then
        echo "migrate: applying $name again for the servers without its record:$lacking"
    else
        [ "$version" -gt "$newest" ] ||
            fail "$name is numbered below the newest applied migration ($newest): number it after it"
        echo "migrate: applying $name"
    fi
    sum=$(checksum "$file")
    [ -n "$sum" ] || fail "$name has no checksum line"
    apply "$file" "$1" $lacking || fail "$name failed; nothing of it is recorded (docs/operations.md: a migration that fails midway)"
    for server in $lacking; do
        client "$server" --query "INSERT INTO $table (version, name, checksum) VALUES ($version, '$name', '$sum')" ||
            fail "$name was applied but not recorded on $server (docs/operations.md: a migration that fails midway)"
    done
    pending=$((pending + 1))
done
echo "migrate: $pending applied, $(echo "$files" | wc -l) migrations in all, on $# servers"
