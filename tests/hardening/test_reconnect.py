"""A database connection that dies (server restart, failover) is replaced, not reused.

PostgreSQL only: the test ends this process's own connections from the server side, the
way a restart would, and the next request and dispatcher pass must work (``pool_pre_ping``).
"""
from __future__ import annotations

import secrets

import pytest
import sqlalchemy as sa

from server import create_app
from server.core.db import get_db
from server.delivery.runtime import close_delivery, get_dispatcher
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (PostgreSQL)")


def terminate(application_name: str) -> int:
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            return len(conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"),
                {"n": application_name}).all())
    finally:
        admin.dispose()


def test_requests_and_dispatch_survive_killed_connections(app_config, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the SQLite variant has no server to lose")
    name = f"pushcart_reconnect_{secrets.token_hex(4)}"
    app = create_app({**app_config, "DATABASE_URL": f"{database_url}&application_name={name}"})
    try:
        client = app.test_client()
        assert client.get("/healthz").status_code == 200  # the pool now holds a connection
        assert terminate(name) >= 1
        after = client.get("/healthz")
        assert after.status_code == 200 and after.get_json()["database"] == "ok"
        dispatcher = get_dispatcher(app)
        dispatcher.run_pass()
        assert terminate(name) >= 1
        assert dispatcher.run_pass().as_json()["failed"] == 0
    finally:
        close_delivery(app)
        get_db(app).dispose()
