"""The schema's migrations as the schema Job ships them: numbered in order, checksummed, ON CLUSTER where replicated."""

import hashlib
import re
from pathlib import Path

import pytest

from components import names
from components.data.clickhouse import config
from components.data.clickhouse.config import MIGRATE_SCRIPT, legacy_form, migration_files, migrations
from components.data.kafka.component import bootstrap_address
from components.settings.model import Settings
from tests.support.render import Rendered, settings_of

SECTION = re.compile(r"^-- migrate: (once|on every server)$", re.MULTILINE)


def rendered(settings: Settings) -> tuple[config.Migration, ...]:
    """The stack's migrations as its schema Job gets them."""
    return migrations(settings, bootstrap_address(settings.namespace))


def parts(sql: str) -> list[tuple[str, list[str]]]:
    """Each part of a migration, by where the runner applies it ('once' or 'on every server'), as statements."""
    pieces = SECTION.split(sql)
    found = [("once", pieces[0]), *list(zip(pieces[1::2], pieces[2::2], strict=True))]
    return [(where, config.statements(text)) for where, text in found]


def test_migrations_are_numbered_from_one_without_a_gap_and_the_runner_is_shipped(stack: Rendered) -> None:
    found = rendered(settings_of(stack))
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert [m.name for m in found] == sorted(path.name for path in config.MIGRATIONS.glob("*.sql"))
    assert found[0].name == "0001_initial.sql" and len(found) >= 2, "a migration beyond the initial schema"
    files = migration_files(settings_of(stack), bootstrap_address(settings_of(stack).namespace))
    assert list(files) == [*(m.name for m in found), MIGRATE_SCRIPT]


def test_the_checksum_is_the_sources_so_settings_do_not_change_it(rendered_stacks: dict[str, Rendered]) -> None:
    dev, prod = (rendered(settings_of(rendered_stacks[name])) for name in ("dev", "prod"))
    for ours, theirs in zip(dev, prod, strict=True):
        source = (config.MIGRATIONS / ours.name).read_text()
        assert ours.checksum == theirs.checksum == hashlib.sha256(source.encode()).hexdigest()
        assert ours.sql.splitlines()[0] == f"-- checksum: {ours.checksum}", "the runner reads it from line 1"
        assert legacy_form(ours.sql).splitlines()[0] == ours.sql.splitlines()[0]
    assert dev[0].sql != prod[0].sql, "the rendered text follows the settings"


def test_replicated_stacks_apply_each_statement_once_on_cluster(stack: Rendered) -> None:
    settings = settings_of(stack)
    for migration in rendered(settings):
        assert "$" not in migration.sql, f"{migration.name}: every placeholder filled"
        for where, statements in parts(migration.sql):
            for statement in statements:
                on_cluster = f" ON CLUSTER {names.CLICKHOUSE_CLUSTER}" in statement
                assert on_cluster == (settings.clickhouse.replicated and where == "once"), (
                    f"{migration.name} ({where}): {statement.splitlines()[0]}"
                )


def test_the_view_is_replaced_beside_the_old_one_and_fills_the_new_column(stack: Rendered) -> None:
    initial, payload_bytes = rendered(settings_of(stack))[:2]
    statements = [s for _, found in parts(payload_bytes.sql) for s in found]
    create = next(i for i, s in enumerate(statements) if "CREATE MATERIALIZED VIEW" in s)
    drop = next(i for i, s in enumerate(statements) if s.startswith("DROP TABLE IF EXISTS analytics.events_mv"))
    assert create < drop, "the Kafka engine is never left without a view"
    assert "analytics.events_mv_0002" in statements[create] and "AS payload_bytes" in statements[create]
    alters = [s for s in statements if s.startswith("ALTER TABLE")]
    assert [s.split()[2] for s in alters] == ["analytics.events_local", "analytics.events"], "shards first"
    assert "analytics.events_mv" in initial.sql


def test_a_misnamed_migration_or_a_version_used_twice_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MIGRATIONS", tmp_path)
    (tmp_path / "0001_initial.sql").write_text("SELECT 1;\n")
    (tmp_path / "0001_again.sql").write_text("SELECT 2;\n")
    with pytest.raises(ValueError, match="share a version"):
        config.migration_sources()
    (tmp_path / "0001_again.sql").unlink()
    (tmp_path / "2_Added.sql").write_text("SELECT 3;\n")
    with pytest.raises(ValueError, match=r"\['2_Added.sql'\] are not named NNNN_lowercase_words.sql"):
        config.migration_sources()


def test_the_single_server_move_drops_every_view_the_migrations_made(stack: Rendered) -> None:
    sql = "".join(m.sql for m in rendered(settings_of(stack)))
    made = re.findall(r"CREATE MATERIALIZED VIEW IF NOT EXISTS analytics\.(\w+)", sql)
    assert tuple(made) == config.VIEWS
    park = config.park_single_server_sql()
    assert [f"DROP TABLE IF EXISTS analytics.{view}" for view in made] == park[: len(made)]
    assert park[-1] == f"DROP TABLE IF EXISTS analytics.{config.MIGRATIONS_TABLE}", "server 0 gets the schema again"
