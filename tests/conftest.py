"""Fixtures: ``app``, ``client``, ``runner``, ``session``, ``clock``, on SQLite and PostgreSQL.

Database tests run once per backend: SQLite always, PostgreSQL when ``TEST_DATABASE_URL`` is
set. Each pytest process gets its own PostgreSQL schema (so parallel runs never collide) and
each test starts from empty tables.
"""
from __future__ import annotations

pytest_plugins = ["tests.pushservice"]  # the web-push-testing mock push service fixtures

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.test import TestResponse

from server import create_app
from server.core.clock import FrozenClock
from server.core.db import get_db
from server.delivery.runtime import close_delivery, get_dispatcher
from server.collect.journal import EXTENSION as JOURNAL
from server.core.models import Base, Shop
from server.merchant.shop_admin import NewShop
from tests.factories import make_shop
from tests.fakepush import FakePushService
from server.delivery.push.vapid import init_keys

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def with_schema(url: str, schema: str) -> str:
    """A PostgreSQL URL whose connections use ``schema`` (works for subprocesses too)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str | None]:
    """A private PostgreSQL schema for this test process, with the model's tables."""
    if not PG_URL:
        yield None
        return
    schema = f"t_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(with_schema(PG_URL, schema), poolclass=sa.pool.NullPool)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield schema
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def vapid_key_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("vapid") / "vapid_private.pem"
    init_keys(path)
    return str(path)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, pg_schema: str | None) -> Iterator[str]:
    """An empty database with the model's tables, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        engine = sa.create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url
        return
    assert pg_schema is not None
    url = with_schema(PG_URL, pg_schema)
    yield url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def close(application: Flask) -> None:
    """Stop the app's journal drainer if it started, and close its database connections."""
    journal = application.extensions.get(JOURNAL)
    if journal is not None:
        journal.close()
    get_db(application).dispose()


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock tests move by hand."""
    return FrozenClock()


@pytest.fixture
def app_config(database_url: str, tmp_path: Path, vapid_key_file: str, clock: FrozenClock) -> dict[str, Any]:
    """The test configuration; a test may change it before asking for ``app``."""
    instance = tmp_path / "instance"
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "VAPID_PRIVATE_KEY_FILE": vapid_key_file,
        "VAPID_SUBJECT": "mailto:ops@pushcart.test",
        "PUBLIC_URL": "http://pushcart.test",
        "RUN_SCHEDULER": False,
        "CLOCK": clock,
    }


class DrainingClient(FlaskClient):
    """The test client, waiting after each request until the app's events journal has been
    drained into the database by its own drainer thread: the path production runs (answer from
    the journal, store just after), made deterministic, so a test reads what it posted."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        journal = self.application.extensions.get(JOURNAL)
        drainer = journal.started() if journal is not None else None
        if drainer is not None:
            assert drainer.flush(timeout=20), f"the events journal was not drained: {journal.status()}"
        return response


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    application = create_app(app_config)
    application.test_client_class = DrainingClient
    yield application
    close(application)


@pytest.fixture
def make_app() -> Iterator[Callable[[dict[str, Any]], Flask]]:
    """Apps made from other configurations (or several, standing for separate processes),
    each closed at the end of the test; their test clients wait for the journal's drain unless
    ``draining=False``."""
    made: list[Flask] = []

    def make(config: dict[str, Any], draining: bool = True) -> Flask:
        made.append(create_app(config))
        if draining:
            made[-1].test_client_class = DrainingClient
        return made[-1]

    yield make
    for application in made:
        close(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[sa.orm.Session]:
    """A session on the test database (commit to make rows visible to requests)."""
    s = get_db(app).sessionmaker()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def fake() -> Iterator[FakePushService]:
    """A programmable push service on a free port (``tests/fakepush.py``)."""
    with FakePushService() as service:
        yield service


@pytest.fixture
def dispatcher(app: Flask) -> Iterator[Any]:
    """The app's dispatcher with its real sender, closed after the test."""
    yield get_dispatcher(app)
    close_delivery(app)


@pytest.fixture
def new_shop(request: pytest.FixtureRequest, session: Any, clock: FrozenClock) -> NewShop:
    """A shop (origin ``https://shop.example``) with its one-time secrets (``.shop``, ``.secret``,
    ``.admin_token``); a module or test marked ``@pytest.mark.shop(name=..., origins=[...])``
    gets that name and those origins."""
    marker = request.node.get_closest_marker("shop")
    created = make_shop(session, clock.now(), **(marker.kwargs if marker else {}))
    session.commit()
    return created


@pytest.fixture
def shop(new_shop: NewShop) -> Shop:
    """The ``new_shop``'s shop row."""
    return new_shop.shop
