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


HEAD = "0072"  # the newest migration: a new one must move this (and be applied by the command)


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


def _seeded_then_downgraded(app, url, seed, revision):
    """Seed the database at head with the ORM (today's models need every table and column), then
    downgrade to before ``revision``: what it adds and its triggers are gone, the rows stay."""
    cfg = alembic_config(app)
    cfg.attributes["database_url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "head")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with sa.orm.Session(engine) as session:
        seeded = seed(session)
        session.commit()
    command.downgrade(cfg, ScriptDirectory.from_config(cfg).get_revision(revision).down_revision)
    return cfg, engine, seeded


def test_the_rollups_migration_backfills_the_figures_of_rows_already_there(app, empty_url):
    """Rows stored before 0069 (no triggers then) give, once it and 0072 (the funnel's days) ran,
    the stats the hand count of ``test_admin_stats`` expects, funnel included."""
    from datetime import date

    from server.reports.stats import DateRange, compute_stats
    from tests.dashboard_seed import seed_stats_scenario
    from tests.integration.merchant.test_admin_stats import EXPECTED_A

    cfg, engine, shop_id = _seeded_then_downgraded(app, empty_url, lambda s: seed_stats_scenario(s)[0].shop.id,
                                                   "0069")
    command.upgrade(cfg, "head")
    with sa.orm.Session(engine) as session:
        figures = compute_stats(session, shop_id, DateRange(date(2026, 1, 5), date(2026, 1, 7)))
    engine.dispose()
    expected = {k: v for k, v in EXPECTED_A.items() if k != "currency"}
    assert {k: v for k, v in figures.items() if k in expected} == expected


def _streak_scenario(session):
    """One shop's subscriptions and their pushes, hand-counted (sent pushes after the latest
    clicked one; test pushes aside):

    - a: 3 sent, none clicked                                       -> 3
    - b: 4 sent, the 2nd latest clicked                             -> 1
    - c: 2 sent, the latest clicked; then a test push, sent         -> 0
    - d: 2 sent at the same time, the lower id clicked; a failed one,
      a pending one                                                 -> 1 (the higher id comes after)
    - e: no push                                                    -> 0
    - f: 2 sent, then a test push clicked                           -> 2 (a test click is no click)
    """
    from datetime import datetime, timedelta, timezone

    from tests.factories import make_push, make_shop, make_subscription, make_visitor

    t0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
    shop = make_shop(session, t0).shop
    subs = {name: make_subscription(session, make_visitor(session, shop.id, t0), t0) for name in "abcdef"}

    def sent(name, hours, clicked=False, **extra):
        at = t0 + timedelta(hours=hours)
        return make_push(session, subs[name], at, status="sent", sent_at=at,
                         clicked_at=at + timedelta(minutes=5) if clicked else None, **extra)

    for h in (1, 2, 3):
        sent("a", h)
    for h in (1, 2, 3, 4):
        sent("b", h, clicked=h == 3)
    sent("c", 1), sent("c", 2, clicked=True), sent("c", 3, kind="test")
    sent("d", 1, clicked=True), sent("d", 1)
    make_push(session, subs["d"], t0, status="failed")
    make_push(session, subs["d"], t0 + timedelta(hours=9))
    sent("f", 1), sent("f", 2), sent("f", 3, clicked=True, kind="test")
    return {name: sub.id for name, sub in subs.items()}


def _streaks(engine, ids):
    with engine.connect() as conn:
        found = dict(conn.execute(sa.text("SELECT id, unclicked_streak FROM subscriptions")).all())
    return {name: found[sid] for name, sid in ids.items()}


def _trigger_names(engine):
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = to_regclass('subscriptions')"
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'subscriptions'"
        return set(conn.execute(sa.text(sql)).scalars())


def test_the_streak_migration_backfills_every_subscription_from_its_pushes(app, empty_url):
    """Pushes stored before 0070 give, once it ran, the hand-counted streaks (and a push sent
    while there was no trigger counts too); its triggers keep them from then on. Its downgrade
    leaves the rollups' triggers on subscriptions in place (no copy of the table)."""
    cfg, engine, ids = _seeded_then_downgraded(app, empty_url, _streak_scenario, "0070")
    rollup_triggers = _trigger_names(engine)
    assert "rollup_subscriptions_update" in rollup_triggers
    with engine.begin() as conn:
        assert "unclicked_streak" not in {c["name"] for c in sa.inspect(conn).get_columns("subscriptions")}
        # d's pending push goes out while no trigger is there to count it.
        conn.execute(sa.text("UPDATE pushes SET status = 'sent', sent_at = due_at WHERE status = 'pending'"))
    command.upgrade(cfg, "0070")
    assert _streaks(engine, ids) == {"a": 3, "b": 1, "c": 0, "d": 2, "e": 0, "f": 2}
    assert _trigger_names(engine) == rollup_triggers
    with engine.begin() as conn:  # the triggers work from then on: a click on d's latest
        conn.execute(sa.text("UPDATE pushes SET clicked_at = sent_at WHERE subscription_id = :d AND status = 'sent' "
                             "AND sent_at = (SELECT max(sent_at) FROM pushes WHERE subscription_id = :d)"),
                     {"d": ids["d"]})
    assert _streaks(engine, ids)["d"] == 0
    engine.dispose()
