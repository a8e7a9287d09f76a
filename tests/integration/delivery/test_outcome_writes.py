"""A batch's outcomes survive a database that goes away while they are written (issue 21).

The worker knows what it sent: when writing the outcomes fails because the database is away
(PostgreSQL: the dispatcher's connection is ended with ``pg_terminate_backend`` from another
connection; SQLite: another connection holds the write lock), the dispatcher keeps the outcomes,
claims nothing more and writes them once the database answers again. Nothing is sent twice.
Only a stop requested while the database is still away gives up, leaving that one batch to its
lease, as a killed worker would.
"""
from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa

from server.core.db import get_db
from server.core.models import Push
from server.delivery.dispatcher import Dispatcher
from server.delivery.runtime import close_delivery, get_dispatcher, get_sender
from server.delivery.scheduler import dispatch_tick
from tests.conftest import PG_URL
from tests.factories import make_push, make_shop, make_subscription, make_visitor

BATCH = 5
LEASE = 60


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True, DISPATCH_BATCH_SIZE=BATCH, DISPATCH_LEASE_SECONDS=LEASE,
                      DISPATCH_RECORD_RETRY_SECONDS=0.02, DISPATCH_RECORD_RETRY_CAP_SECONDS=0.1)
    if app_config["DATABASE_URL"].startswith("sqlite"):
        # A locked database answers "database is locked" after this wait, not after 30 s.
        app_config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 0.1, "check_same_thread": False}}
    return app_config


@pytest.fixture
def pushes(session, clock, fake):
    """Twelve due pushes, each to its own subscription: three batches."""
    shop = make_shop(session, clock.now()).shop
    rows = []
    for i in range(12):
        visitor = make_visitor(session, shop.id, clock.now())
        sub = make_subscription(session, visitor, clock.now(), endpoint=fake.endpoint(f"s{i}"), keys=fake.keys())
        rows.append(make_push(session, sub, clock.now(), kind="shipped"))
    session.commit()
    return [row.id for row in rows]


class DatabaseAway:
    """Makes writes of outcomes fail as a database that went away makes them fail.

    The first ``failures`` outcome writes fail (``None``: every one, until ``back()``), then the
    database answers again. On PostgreSQL the writing connection is ended from another
    connection just before its statement (``where="statement"``) or just before its commit
    (``where="commit"``); on SQLite another connection takes the write lock at the first
    failing write and holds it until the database is back.
    """

    def __init__(self, app: Any, fake: Any, failures: int | None, where: str = "statement") -> None:
        self.engine = get_db(app).engine
        self.fake = fake
        self.failures = failures
        self.where = where
        self.attempts = 0
        self.seen: list[dict[str, Any]] = []  # what was true at each failing attempt
        self.on_failure: Any = None  # called with the attempt number, at each failing attempt
        self._away = True
        self._locker: sqlite3.Connection | None = None
        self._writing: set[int] = set()  # connections (ids) that wrote outcomes in this transaction
        self.pg = self.engine.dialect.name == "postgresql"
        if self.pg:
            self._admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
        sa.event.listen(self.engine, "before_cursor_execute", self._before_statement)
        if where == "commit":
            sa.event.listen(self.engine, "commit", self._before_commit)

    def close(self) -> None:
        """Bring the database back and stop interfering."""
        self.back()
        sa.event.remove(self.engine, "before_cursor_execute", self._before_statement)
        if self.where == "commit":
            sa.event.remove(self.engine, "commit", self._before_commit)
        if self.pg:
            self._admin.dispose()

    def back(self) -> None:
        """The database answers again."""
        self._away = False
        if self._locker is not None:
            self._locker.rollback()
            self._locker.close()
            self._locker = None

    @staticmethod
    def is_outcome_write(statement: str) -> bool:
        text = statement.lstrip()
        return text.startswith("UPDATE pushes SET status") and "RETURNING" not in text

    def _before_statement(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not self.is_outcome_write(statement):
            return
        if self.where == "commit":
            self._writing.add(id(conn.connection.dbapi_connection))
            return
        self._interrupt(conn)

    def _before_commit(self, conn: Any) -> None:
        key = id(conn.connection.dbapi_connection)
        if key in self._writing:
            self._writing.discard(key)
            self._interrupt(conn)

    def _interrupt(self, conn: Any) -> None:
        self.attempts += 1
        if not self._away or (self.failures is not None and self.attempts > self.failures):
            self.back()
            return
        self.seen.append({"deliveries": len(self.fake.requests), "sending": self._sending()})
        if self.on_failure is not None:
            self.on_failure(self.attempts)
        if self.pg:
            pid = conn.connection.dbapi_connection.info.backend_pid
            with self._admin.connect() as admin:  # waits (up to 5 s) until the backend is gone
                assert admin.scalar(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        elif self._locker is None:
            self._locker = sqlite3.connect(self.engine.url.database, isolation_level=None,
                                           check_same_thread=False)
            self._locker.execute("BEGIN IMMEDIATE")

    def _sending(self) -> int:
        """Rows in ``sending``, read on a connection of its own."""
        if self.pg:
            url = self.engine.url.render_as_string(hide_password=False)
            reader = sa.create_engine(url, poolclass=sa.pool.NullPool)
            try:
                with reader.connect() as conn:
                    return int(conn.scalar(sa.text("SELECT count(*) FROM pushes WHERE status = 'sending'")))
            finally:
                reader.dispose()
        with sqlite3.connect(self.engine.url.database) as reader:
            return int(reader.execute("SELECT count(*) FROM pushes WHERE status = 'sending'").fetchone()[0])


@pytest.fixture
def away(app, fake):
    """``away(failures, where)``: a ``DatabaseAway`` on the app's engine, undone after the test."""
    made: list[DatabaseAway] = []

    def make(failures: int | None, where: str = "statement") -> DatabaseAway:
        made.append(DatabaseAway(app, fake, failures, where))
        return made[-1]

    yield make
    for fault in made:
        fault.close()


def rows(session, ids):
    session.expire_all()
    return [session.get(Push, i) for i in ids]


@pytest.mark.parametrize("where", ["statement", "commit"])
def test_outcomes_are_written_once_the_database_answers_again_and_nothing_is_sent_twice(
        app, session, clock, fake, dispatcher, pushes, away, where, caplog):
    fault = away(failures=3, where=where)
    if where == "commit" and not fault.pg:
        pytest.skip("on SQLite a writer that holds the write lock commits without waiting for it")
    sent_at = clock.now()
    dispatch_tick(app)  # as the worker's scheduler runs a pass
    clock.advance(seconds=LEASE + 1)  # any row left `sending` would be claimed and sent again now
    dispatch_tick(app)

    assert fake.push_id_counts() == {push_id: 1 for push_id in pushes}
    assert fake.violations == []
    assert fault.attempts == 3 + 3  # three failed writes of the first batch, then one per batch
    for row in rows(session, pushes):
        assert (row.status, row.attempts, row.http_status, row.sent_at, row.lease_until) == \
            ("sent", 1, 201, sent_at, None)
    # While the first batch's outcomes waited, nothing more went out and at most one more batch
    # was claimed: the worker held only what it already had.
    assert [seen["deliveries"] for seen in fault.seen] == [BATCH] * 3
    assert all(seen["sending"] <= 2 * BATCH for seen in fault.seen)
    assert "dispatch pass failed" not in caplog.text
    assert "holding them" in caplog.text
    assert fake.origin not in caplog.text  # endpoints are never logged


def test_a_stop_while_the_database_is_away_leaves_that_one_batch_to_its_lease(
        app, session, clock, fake, dispatcher, pushes, away, caplog):
    fault = away(failures=None)  # away until told otherwise
    fault.on_failure = lambda attempt: attempt == 2 and dispatcher.request_stop()  # SIGTERM meanwhile
    dispatch_tick(app)  # as the worker's scheduler runs a pass
    assert fault.attempts == 2  # the try under way when the stop came failed: it gave up
    assert len(fake.requests) == BATCH  # the next batch was never sent
    assert f"gave up writing the outcomes of {BATCH} sent pushes" in caplog.text
    assert "dispatch pass failed" not in caplog.text  # said once, as what it is

    fault.back()
    clock.advance(seconds=LEASE + 1)
    later = Dispatcher(get_db(app), get_sender(app), app.config, clock)  # the worker started again
    while later.run_pass().sent:
        pass
    counts = fake.push_id_counts()
    assert set(counts) == set(pushes)
    assert sum(n - 1 for n in counts.values()) == BATCH  # at most the one batch, as after kill -9
    assert {row.status for row in rows(session, pushes)} == {"sent"}


def test_no_other_worker_sends_the_batch_again_while_its_outcomes_wait_past_the_lease(
        app, app_config, make_app, session, clock, fake, dispatcher, pushes, away):
    if get_db(app).dialect != "postgresql":
        pytest.skip("several workers share the outbox on PostgreSQL (SKIP LOCKED); SQLite's lock stops them all")
    other = make_app(dict(app_config))  # a second worker process, reaching the database meanwhile
    fault = away(failures=3)

    def time_passes_and_the_other_worker_runs(_attempt: int) -> None:
        clock.advance(seconds=LEASE * 0.6)  # three failures: well past the first batch's lease
        get_dispatcher(other).run_pass()

    fault.on_failure = time_passes_and_the_other_worker_runs
    try:
        dispatcher.run_pass()
        clock.advance(seconds=LEASE + 1)
        while get_dispatcher(other).run_pass().sent or dispatcher.run_pass().sent:
            pass
    finally:
        close_delivery(other)
    assert fake.push_id_counts() == {push_id: 1 for push_id in pushes}
    assert {row.status for row in rows(session, pushes)} == {"sent"}


def test_the_metrics_show_outcomes_waiting_for_the_database(app, session, clock, fake, dispatcher, pushes, away):
    fault = away(failures=2)
    scraped: list[str] = []

    def scrape(attempt: int) -> None:
        if attempt == 2:  # after the first failure: the batch's outcomes are held
            scraped.append(app.test_client().get("/metrics").get_data(as_text=True))

    fault.on_failure = scrape  # the dispatcher fixture is the app's, as in a web process that sends
    dispatcher.run_pass()
    assert f"pushcart_dispatch_outcomes_unwritten {float(BATCH)}" in scraped[0]
    after = app.test_client().get("/metrics").get_data(as_text=True)
    assert "pushcart_dispatch_outcomes_unwritten 0.0" in after
