"""Migrations applied to an empty database give exactly the model's schema."""
from __future__ import annotations

import secrets

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from server.cli import alembic_config
from server.core.models import Base
from tests.conftest import BACKENDS, PG_URL, with_schema


@pytest.fixture(params=BACKENDS)
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    schema = f"m_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield with_schema(PG_URL, schema)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_upgrade_head_matches_models(app, empty_url):
    cfg = alembic_config(app)
    cfg.attributes["database_url"] = empty_url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "head")
    engine = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert diff == [], f"migrations and models differ: {diff}"
    assert {"shops", "pushes", "subscriptions", "events", "clicks", "journal_marks"} <= tables


HEAD = "0070"  # the newest migration: a new one must move this (and be applied by the command)


def test_head_is_the_newest_migration(app):
    assert ScriptDirectory.from_config(alembic_config(app)).get_current_head() == HEAD


def test_db_upgrade_command(runner, app, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    app.config["DATABASE_URL"] = url
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar() == HEAD
    engine.dispose()


def test_the_newest_migration_downgrades_and_upgrades_again(app, empty_url):
    """Downgrading through the newest migrations (to 0060's parent) drops what each added and gives
    back the previous indexes; upgrading again gives the models'."""
    cfg = alembic_config(app)
    cfg.attributes["database_url"] = empty_url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "head")
    previous = ScriptDirectory.from_config(cfg).get_revision("0060").down_revision
    command.downgrade(cfg, previous)
    engine = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        tables = set(inspector.get_table_names())
        columns = {c["name"] for c in inspector.get_columns("subscriptions")}
        visitors = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("visitors")}
        pushes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("pushes")}
    assert not {"vapid_keys", "refused_origins", "webhook_status", "push_hosts", "sweep_cursors"} & tables
    assert not {"vapid_key_id", "suspect_since", "suspect_host"} & columns
    assert visitors["ix_visitors_engaged_last_event"] == ["engaged_since", "last_event_at"]
    assert visitors["ix_visitors_shop_id"] == ["shop_id"]
    assert not {"ix_visitors_engaged", "ix_visitors_shop_first_seen"} & set(visitors)
    assert pushes["ix_pushes_status_due"] == ["status", "due_at"] and "ix_pushes_shop_due" not in pushes
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        inspector = sa.inspect(conn)
        columns = {c["name"] for c in inspector.get_columns("subscriptions")}
        indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("subscriptions")}
        tables = set(inspector.get_table_names())
    engine.dispose()
    assert diff == [], f"migrations and models differ: {diff}"
    assert "vapid_key_id" in columns and "sweep_cursors" in tables
    assert indexes["ix_subscriptions_suspect_host"] == ["suspect_host"]


def test_the_rollups_migration_backfills_the_figures_of_rows_already_there(app, empty_url):
    """Rows stored before 0069 (no triggers then) give, once it and 0070 (the funnel's days) ran,
    the stats the hand count of ``test_admin_stats`` expects, funnel included."""
    from datetime import date

    from server.reports.stats import DateRange, compute_stats
    from tests.dashboard_seed import seed_stats_scenario
    from tests.integration.merchant.test_admin_stats import EXPECTED_A

    cfg = alembic_config(app)
    cfg.attributes["database_url"] = empty_url
    cfg.attributes["skip_logging"] = True
    # The revision just before the rollups: the ORM seeds with today's models, so every table and
    # column they have must be there (a later migration that adds one moves this to before it).
    command.upgrade(cfg, ScriptDirectory.from_config(cfg).get_revision("0069").down_revision)
    engine = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    with sa.orm.Session(engine) as session:
        a, _ = seed_stats_scenario(session)
        shop_id = a.shop.id
    command.upgrade(cfg, "head")
    with sa.orm.Session(engine) as session:
        figures = compute_stats(session, shop_id, DateRange(date(2026, 1, 5), date(2026, 1, 7)))
    engine.dispose()
    expected = {k: v for k, v in EXPECTED_A.items() if k != "currency"}
    assert {k: v for k, v in figures.items() if k in expected} == expected
