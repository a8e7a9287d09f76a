"""``dispatch --once [--at]`` and the scheduler that ticks the dispatcher in the web process."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from server import create_app
from server.core.db import get_db
from server.delivery.runtime import SENDER
from server.core.models import Push
from server.delivery.scheduler import EXTENSION, JOB_ID, stop_scheduler
from tests.factories import make_push, make_shop, make_subscription, make_visitor


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def plan(session, clock, fake, **overrides):
    shop = make_shop(session, clock.now()).shop
    visitor = make_visitor(session, shop.id, clock.now())
    sub = make_subscription(session, visitor, clock.now(), endpoint=fake.endpoint("a"), keys=fake.keys())
    push = make_push(session, sub, clock.now(), kind="shipped", **overrides)
    session.commit()
    return push


def test_dispatch_once_prints_exactly_the_contract_counts(runner, session, clock, fake):
    push = plan(session, clock, fake)
    result = runner.invoke(args=["dispatch", "--once"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"planned": 0, "sent": 1, "failed": 0, "expired": 0, "skipped": 0}
    assert list(json.loads(result.output)) == ["planned", "sent", "failed", "expired", "skipped"]
    assert [p["push_id"] for p in fake.payloads()] == [push.id]


def test_dispatch_at_runs_the_pass_at_that_time(runner, session, clock, fake):
    push = plan(session, clock, fake, due_at=clock.now() + timedelta(hours=2))
    assert json.loads(runner.invoke(args=["dispatch", "--once"]).output)["sent"] == 0
    later = (clock.now() + timedelta(hours=3)).astimezone().isoformat()
    assert later[-6] in "+-" and later[-3] == ":"  # an offset, not Z: both must work
    result = runner.invoke(args=["dispatch", "--once", "--at", later])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sent"] == 1
    session.expire_all()
    assert session.get(Push, push.id).sent_at == clock.now() + timedelta(hours=3)


def test_dispatch_at_refuses_a_naive_time(runner, session, clock, fake):
    plan(session, clock, fake)
    result = runner.invoke(args=["dispatch", "--once", "--at", "2026-01-05T15:00:00"])
    assert result.exit_code == 2
    assert "Z or an offset" in result.output and fake.requests == []


def test_dispatch_without_once_is_a_usage_error(runner):
    result = runner.invoke(args=["dispatch"])
    assert result.exit_code == 2 and "--once" in result.output


def test_the_web_process_runs_the_scheduler_only_when_asked(app, app_config, session, clock, fake):
    assert EXTENSION not in app.extensions  # RUN_SCHEDULER off (the gunicorn default)
    push = plan(session, clock, fake)
    web = create_app({**app_config, "RUN_SCHEDULER": True, "DISPATCH_INTERVAL_SECONDS": 0.2})
    try:
        scheduler = web.extensions[EXTENSION]
        job = scheduler.get_job(JOB_ID)
        assert scheduler.running and job.max_instances == 1 and job.coalesce is True
        deadline = time.monotonic() + 15
        while fake.push_id_counts()[push.id] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop_scheduler(web)
        get_db(web).dispose()
    assert fake.push_id_counts()[push.id] == 1
    assert not scheduler.running and SENDER not in web.extensions
    session.expire_all()
    assert session.scalar(sa.select(Push.status).where(Push.id == push.id)) == "sent"
