"""The mass 404/410 guard against the programmable fake push service: a push service's bad
day (404 to everything for a while, then 201 again) costs no subscriber, while a burst of a few
per cent of 404s still expires those subscriptions at once."""
from __future__ import annotations

import html
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.core.models import Push, PushHost, Subscription
from server.delivery.storm import HostWindows, StormSettings
from tests.factories import make_push, make_subscription, make_visitor
from tests.fakepush import FakePushService, Reply
from tests.hardening.test_ops import scrape
from tests.integration.merchant.test_dashboard import log_in

SUBSCRIBERS = 120


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True, PUSH_READ_TIMEOUT=10.0, PUSH_CONNECT_TIMEOUT=5.0,
                      DISPATCH_BATCH_SIZE=50, DISPATCH_MAX_ATTEMPTS=3, PUSH_STORM_RETRY_SECONDS=1800)
    return app_config


def subscribers(session, new_shop, clock, fake, n=SUBSCRIBERS, ttl=86400):
    """``n`` subscribers on the fake service, each with one transactional push due now."""
    subs = []
    for i in range(n):
        visitor = make_visitor(session, new_shop.id, clock.now())
        sub = make_subscription(session, visitor, clock.now(), endpoint=fake.endpoint(f"s{i}"), keys=fake.keys())
        make_push(session, sub, clock.now(), kind="shipped", ttl=ttl)
        subs.append(sub)
    session.commit()
    return subs


def statuses(session, model, column="status"):
    session.expire_all()
    rows = session.execute(sa.select(getattr(model, column), sa.func.count()).group_by(getattr(model, column)))
    return dict(rows.all())


def test_a_push_service_answering_404_to_everything_loses_no_subscriber(
        app, session, clock, fake, dispatcher, new_shop, client):
    subscribers(session, new_shop.shop, clock, fake)
    fake.default = Reply(404)

    counts = dispatcher.run_pass()

    assert (counts.sent, counts.expired, counts.failed) == (0, 0, 0)
    assert len(fake.requests) == SUBSCRIBERS
    assert statuses(session, Subscription) == {"active": SUBSCRIBERS}
    assert statuses(session, Subscription, "suspect_host") == {fake.origin: SUBSCRIBERS}
    assert statuses(session, Push) == {"pending": SUBSCRIBERS}  # held, not lost
    host = session.get(PushHost, fake.origin)
    assert host.storm_since == clock.now()
    health = client.get("/healthz").get_json()
    assert health["status"] == "degraded"
    assert health["push_storms"] == [{"host": fake.origin, "since": clock.now().isoformat(),
                                      "suspect_subscriptions": SUBSCRIBERS}]

    clock.advance(seconds=600)  # still down, and the held pushes are not due again yet
    assert not any(dispatcher.run_pass().as_json().values())

    fake.default = Reply(201)
    clock.advance(seconds=1200)  # the slow retry
    counts = dispatcher.run_pass()

    assert (counts.sent, counts.expired) == (SUBSCRIBERS, 0)
    assert statuses(session, Subscription) == {"active": SUBSCRIBERS}
    assert statuses(session, Subscription, "suspect_host") == {None: SUBSCRIBERS}
    assert statuses(session, Push) == {"sent": SUBSCRIBERS}
    assert sorted(fake.push_id_counts().values()) == [1] * SUBSCRIBERS
    session.expire_all()
    host = session.get(PushHost, fake.origin)
    assert (host.storm_since, host.storm_until) == (None, clock.now())
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["push_storms"] == []


def test_a_burst_of_a_few_percent_of_404s_still_expires_at_once(session, clock, fake, dispatcher, new_shop):
    subs = subscribers(session, new_shop.shop, clock, fake, n=100)
    for i in range(4):
        fake.script(f"s{i}", Reply(404))

    counts = dispatcher.run_pass()

    assert (counts.sent, counts.expired) == (96, 4)
    assert statuses(session, Subscription) == {"active": 96, "expired": 4}
    assert statuses(session, Subscription, "suspect_host") == {None: 100}
    assert {s.id for s in subs[:4]} == set(session.scalars(
        sa.select(Subscription.id).where(Subscription.status == "expired")))
    assert session.get(PushHost, fake.origin).storm_since is None


def test_a_held_push_whose_ttl_runs_out_is_missed_and_its_subscriber_kept(session, clock, fake, dispatcher, new_shop):
    subscribers(session, new_shop.shop, clock, fake, n=60, ttl=3600)
    fake.default = Reply(410)
    dispatcher.run_pass()
    clock.advance(seconds=1800)
    counts = dispatcher.run_pass()  # within its TTL: retried, still gone, held again
    assert (counts.expired, counts.skipped) == (0, 0) and len(fake.requests) == 120
    clock.advance(seconds=1801)  # the next retry falls after the TTL

    dispatcher.run_pass()

    assert statuses(session, Push) == {"missed": 60}  # not sent late
    assert statuses(session, Subscription) == {"active": 60}
    assert statuses(session, Subscription, "suspect_host") == {fake.origin: 60}


def test_metrics_show_the_storm_and_the_suspects_per_host(session, clock, fake, dispatcher, new_shop, client):
    subscribers(session, new_shop.shop, clock, fake, n=60)
    fake.default = Reply(404)
    dispatcher.run_pass()

    samples = scrape(client)

    assert samples[("pushcart_push_storm", (("host", fake.origin),))] == 1
    assert samples[("pushcart_suspect_subscriptions", (("host", fake.origin),))] == 60


def test_the_operator_lists_restores_and_confirms_the_suspects(runner, session, clock, fake, dispatcher, new_shop):
    # Two push services share the batches: the second one's first 40 answers (under the 50 a
    # window needs to judge) come in a batch with the first one's; they are held, not expired.
    with FakePushService() as other:
        subscribers(session, new_shop.shop, clock, fake, n=60)
        gone_subs = subscribers(session, new_shop.shop, clock, other, n=60)
        fake.default = other.default = Reply(404)
        dispatcher.run_pass()

        listed = json.loads(runner.invoke(args=["subscriptions", "suspect"]).output)
        assert {(h["host"], h["suspect_subscriptions"], h["storm_since"]) for h in listed["hosts"]} == {
            (fake.origin, 60, clock.now().isoformat()), (other.origin, 60, clock.now().isoformat())}

        result = runner.invoke(args=["subscriptions", "restore", "--host", fake.origin])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"restored": 60, "hosts": {fake.origin: 60}}
        result = runner.invoke(args=["subscriptions", "confirm", "--host", other.origin])
        assert json.loads(result.output) == {"expired": 60, "hosts": {other.origin: 60}}

        fake.default = Reply(201)
        counts = dispatcher.run_pass()  # the restored ones' held pushes are due at once

        assert counts.sent == 60 and len(other.requests) == 60
        assert statuses(session, Subscription) == {"active": 60, "expired": 60}
        assert statuses(session, Subscription, "suspect_host") == {None: 120}
        assert {s.id for s in gone_subs} == set(session.scalars(
            sa.select(Subscription.id).where(Subscription.status == "expired")))
        assert statuses(session, Push) == {"sent": 60, "cancelled": 60}  # the confirmed ones' held pushes
        assert json.loads(runner.invoke(args=["subscriptions", "suspect"]).output) == {"hosts": []}
        assert runner.invoke(args=["subscriptions", "restore", "--host", "https://nowhere"]).exit_code == 1


def test_the_overview_says_in_plain_words_that_subscribers_are_held(session, clock, fake, dispatcher, new_shop, client):
    subscribers(session, new_shop.shop, clock, fake, n=60)
    log_in(client, new_shop.admin_token)
    assert 'data-warning="push_storm"' not in client.get("/admin/").get_data(as_text=True)
    fake.default = Reply(404)
    dispatcher.run_pass()

    page = html.unescape(client.get("/admin/").get_data(as_text=True))

    assert 'data-warning="push_storm"' in page
    assert (f'The push service {fake.origin.partition("://")[2]} has been answering "subscription gone" to most '
            f'pushes since {clock.now():%Y-%m-%d %H:%M} UTC') in page
    assert "keeps the 60 subscribers it concerns instead of removing them" in page


def test_calm_answers_are_written_once_a_second_and_a_storm_at_once(app, session, clock):
    seconds = [100.0]
    windows = HostWindows(StormSettings(), monotonic=lambda: seconds[0])
    host = "https://fcm.googleapis.com"

    assert windows.judge(session, {host: (200, 3)}, clock.now()) == {}  # calm: kept in the process
    session.commit()
    assert session.get(PushHost, host) is None
    seconds[0] = 100.5
    assert windows.judge(session, {host: (200, 2)}, clock.now()) == {}  # half a second later: still kept
    session.commit()
    assert session.get(PushHost, host) is None

    seconds[0] = 101.2
    assert windows.judge(session, {host: (10, 0)}, clock.now()) == {}  # over a second: written
    session.commit()
    row = session.get(PushHost, host)
    assert (row.answers, row.gone, row.storm_since) == (410, 5, None)

    assert windows.judge(session, {host: (200, 190)}, clock.now()) == {host: "storm"}  # written at once
    session.commit()
    session.expire_all()
    row = session.get(PushHost, host)
    assert (row.answers, row.gone, row.storm_since) == (610, 195, clock.now())
    assert not windows.unwritten
