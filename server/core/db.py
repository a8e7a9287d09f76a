"""Database engine and sessions, kept on ``app.extensions`` (nothing at import time).

A request gets one session (``get_session()``); it is committed once after a successful
response and rolled back otherwise. Background jobs use ``session_scope(app)``.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, current_app, g
from sqlalchemy import event, orm
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

EXTENSION = "pushcart.db"


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back aware (SQLite drops tzinfo)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def in_ids(column: sa.ColumnElement[Any], ids: Iterable[Any], session: orm.Session,
           element_type: type[sa.types.TypeEngine[Any]] = sa.BigInteger) -> sa.ColumnElement[bool]:
    """``column IN (ids)``; on PostgreSQL ``column = ANY(<one array parameter>)``, so the
    statement's text (and the plan the driver prepares for it) is the same for any number of ids.
    ``element_type`` is the array's element type (``sa.String`` for keys)."""
    ids = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, ids, type_=postgresql.ARRAY(element_type)))
    return column.in_(ids)


def insert_ignoring_duplicates(session: orm.Session, table: sa.Table, index: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (index) DO NOTHING`` in the session's dialect."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=index)


def upsert(session: orm.Session, table: Any, index: list[str], key: dict[str, Any], changes: dict[str, Any]) -> Any:
    """``INSERT (key + changes) ... ON CONFLICT (index) DO UPDATE SET changes`` in the session's
    dialect: one statement, whichever of two writers comes first."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).values(**key, **changes).on_conflict_do_update(index_elements=index, set_=changes)


class Base(orm.DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints stably."""

    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Database:
    """The engine and session factory of one app."""

    def __init__(self, url: str, engine_options: dict[str, Any] | None = None) -> None:
        self.url = url
        # hide_parameters: a database error's message (logged with its traceback) must not carry
        # the statement's values, which may be endpoints, keys or personal data.
        options: dict[str, Any] = {"pool_pre_ping": True, "future": True, "hide_parameters": True}
        if url.startswith("sqlite"):
            # One file shared by the web threads and the dispatcher: wait for locks
            # instead of failing, and let connections cross threads. No ping before each
            # checkout: a connection to a file does not go stale (the dispatcher checks one out
            # twice per batch, and the ``SELECT 1`` was about 1% of its CPU).
            options["connect_args"] = {"timeout": 30, "check_same_thread": False}
            options["pool_pre_ping"] = False
        options.update(engine_options or {})
        self.engine: Engine = sa.create_engine(url, **options)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessionmaker = orm.sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """The dialect name: ``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_app(app: Flask) -> Database:
    """Create the app's ``Database`` and the per-request session lifecycle."""
    database = Database(app.config["DATABASE_URL"], app.config.get("SQLALCHEMY_ENGINE_OPTIONS"))
    app.extensions[EXTENSION] = database

    @app.after_request
    def _commit(response: Response) -> Response:
        session = g.pop("db_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()

    return database


def get_db(app: Flask | None = None) -> Database:
    """Return the ``Database`` of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION]


def get_session() -> orm.Session:
    """Return the request's session, opening it on first use."""
    session = g.get("db_session")
    if session is None:
        session = get_db().sessionmaker()
        g.db_session = session
    return session


@contextlib.contextmanager
def session_scope(app: Flask | None = None) -> Iterator[orm.Session]:
    """A session for a job or command: committed on success, rolled back on error."""
    session = get_db(app).sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
