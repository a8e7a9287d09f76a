"""Engagement guardrails: the send-time pause for unengaged subscriptions (a hand-counted
scenario through ``dispatch --once``, and its queries per batch), the stats' guardrails block
and the Overview's warnings; on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from server.core.db import get_db
from server.core.models import Push, Shop
from server.delivery import policy
from tests.factories import dispatch, make_push, make_shop, make_subscription, make_visitor
from tests.integration.merchant.test_dashboard import log_in


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config




def history(session, sub, now, clicked=(), count=4, kind="browse_abandonment", test_ones=(), days_ago=2):
    """``count`` pushes sent to ``sub`` before ``now``, newest first: number 1 is the latest.
    ``clicked`` and ``test_ones`` name which of them were clicked, or were test pushes."""
    for n in range(1, count + 1):
        sent = now - timedelta(days=days_ago, hours=n)
        make_push(session, sub, sent, kind="test" if n in test_ones else kind, status="sent", sent_at=sent,
                  clicked_at=sent + timedelta(minutes=1) if n in clicked else None)


@pytest.fixture
def scenario(session, clock, fake):
    """Shop A pauses after 4 ignored pushes; shop B has no pause. Their histories, hand-counted:

    - a: 4 sent, none clicked                  -> unengaged
    - b: 4 sent, the oldest (4th latest) clicked -> engaged (a click among its last 4)
    - c: 3 sent, none clicked                  -> too few to judge
    - d: 5 sent, only the 5th latest clicked   -> unengaged (its last 4 ignored)
    - e: 4 sent, none clicked, one a test push -> 3 that count: too few
    - f: 4 sent, none clicked                  -> the shipped push to it is never paused
    - g (shop B): 4 sent, none clicked         -> shop B does not pause
    """
    now = clock.now()
    a_shop = make_shop(session, now, name="A").shop
    a_shop.pause_unengaged_after = 4
    b_shop = make_shop(session, now, name="B").shop
    subs = {}
    for name, shop in (("a", a_shop), ("b", a_shop), ("c", a_shop), ("d", a_shop), ("e", a_shop), ("f", a_shop),
                       ("g", b_shop)):
        subs[name] = make_subscription(session, make_visitor(session, shop.id, now), now,
                                       endpoint=fake.endpoint(name), keys=fake.keys())
    history(session, subs["a"], now)
    history(session, subs["b"], now, clicked={4})
    history(session, subs["c"], now, count=3)
    history(session, subs["d"], now, count=5, clicked={5})
    history(session, subs["e"], now, test_ones={2})
    history(session, subs["f"], now, kind="shipped")
    history(session, subs["g"], now)
    due = {name: make_push(session, sub, now, kind="price_drop", dedupe_key=f"due:{name}")
           for name, sub in subs.items()}
    due["f-shipped"] = make_push(session, subs["f"], now, kind="shipped", dedupe_key="due:f-shipped")
    due["a-test"] = make_push(session, subs["a"], now, kind="test", dedupe_key="due:a-test")
    session.commit()
    return due


def test_unengaged_subscriptions_get_no_marketing_pushes(app, session, clock, scenario):
    counts = dispatch(app, clock.now())
    session.expire_all()
    outcome = {name: (session.get(Push, p.id).status, session.get(Push, p.id).error) for name, p in scenario.items()}
    assert outcome == {
        "a": ("skipped", "unengaged"),
        "b": ("sent", None),
        "c": ("sent", None),
        "d": ("skipped", "unengaged"),
        "e": ("sent", None),
        "f": ("skipped", "unengaged"),
        "g": ("sent", None),
        "f-shipped": ("sent", None),  # transactional: never paused
        "a-test": ("sent", None),  # the merchant's own test push: never paused
    }
    assert counts == {"planned": 0, "sent": 6, "failed": 0, "expired": 0, "skipped": 3}


def test_without_a_pause_nobody_is_skipped(app, session, clock, scenario):
    session.get(Shop, scenario["a"].shop_id).pause_unengaged_after = 0
    session.commit()
    assert dispatch(app, clock.now()) == {"planned": 0, "sent": 9, "failed": 0, "expired": 0, "skipped": 0}


def test_the_pause_costs_the_same_queries_for_one_row_or_a_batch(app, session, clock, scenario):
    engine = get_db(app).engine
    statements = []

    def count(*_args):
        statements.append(1)

    def gate(names):
        session.expire_all()
        pushes = [session.get(Push, scenario[name].id) for name in names]
        statements.clear()
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            decisions = policy.gate_many(session, pushes, clock.now())
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        return decisions, len(statements)

    few, few_queries = gate(["a", "g"])
    everything, many_queries = gate(list(scenario))
    assert [d.reason for d in few] == ["unengaged", None]
    assert [d.reason for d in everything].count("unengaged") == 3
    assert many_queries == few_queries


# -- the stats' guardrails block and the Overview ------------------------------------------------


def bulk(session, sub, kind, n, clicks, start):
    session.add_all([Push(shop_id=sub.shop_id, visitor_id=sub.visitor_id, subscription_id=sub.id, kind=kind,
                          dedupe_key=f"bulk:{kind}:{i}", title="t", body="b", url="https://shop.example/",
                          status="sent", due_at=start - timedelta(minutes=i), sent_at=start - timedelta(minutes=i),
                          clicked_at=start - timedelta(minutes=i - 1) if i < clicks else None,
                          created_at=start - timedelta(minutes=i))
                     for i in range(n)])


@pytest.fixture
def busy_shop(session, clock):
    """Hand-counted (now = 2026-01-05 12:00, the default stats range the last 30 days):

    - s1, s2, s3 (active): 10 browse reminders each in the last 7 days, none clicked: unengaged
    - s4 (active): 10 sent 8 days ago, one clicked: engaged, and outside the 7 days
    - s5 (unsubscribed): 200 repurchase with 1 click (0.5 %: warned), 200 checkout recovery with
      2 clicks (1.0 %: not under 1 %), 199 shipped with none (under 200 sends: not judged), 9 days ago
    - a test push (kind ``test``) to s1 half an hour ago, clicked: counts nowhere
    Active 4, unengaged 3 (> half); sent in 7 days 30, 7.5 per active subscriber.
    """
    now = clock.now()
    new = make_shop(session, now, name="Busy")
    subs = [make_subscription(session, make_visitor(session, new.shop.id, now), now) for _ in range(5)]
    subs[4].status = "unsubscribed"
    for sub in subs[:3]:
        history(session, sub, now, count=10, days_ago=0)
    history(session, subs[3], now, count=10, days_ago=8, clicked={3})
    bulk(session, subs[4], "repurchase", 200, 1, now - timedelta(days=9))
    bulk(session, subs[4], "checkout_recovery", 200, 2, now - timedelta(days=9))
    bulk(session, subs[4], "shipped", 199, 0, now - timedelta(days=9))
    make_push(session, subs[0], now, kind="test", group_key="devices:1", status="sent",
              sent_at=now - timedelta(minutes=30), clicked_at=now - timedelta(minutes=29))
    session.commit()
    return new


def test_guardrails_in_the_stats_match_a_hand_count(client, busy_shop):
    stats = client.get("/v1/admin/stats", headers={"Authorization": f"Bearer {busy_shop.admin_token}"}).json
    assert stats["by_kind"]["repurchase"]["ctr"] == 0.005 and stats["by_kind"]["checkout_recovery"]["ctr"] == 0.01
    guard = stats["guardrails"]
    assert {k: v for k, v in guard.items() if k != "warnings"} == {
        "window_days": 7, "pushes_sent": 30, "sent_per_subscriber": 7.5,
        "sent_per_subscriber_by_kind": {"browse_abandonment": 7.5},
        "active_subscriptions": 4, "last_n": 10, "unengaged_subscriptions": 3, "unengaged_share": 0.75,
        "pause_unengaged_after": 0,
    }
    assert [(w["code"], w.get("kind")) for w in guard["warnings"]] == [("low_ctr", "repurchase"), ("unengaged", None)]
    assert guard["warnings"][0]["message"].startswith("Repurchase: only 0.5 % of its 200 pushes were clicked.")
    assert guard["warnings"][1]["message"].startswith("3 of your 4 subscribers clicked none of their last 10 pushes.")


def test_no_warning_when_half_or_fewer_are_unengaged(client, session, busy_shop):
    # With the pause set to 11, nobody has 11 pushes: nobody is judged unengaged.
    busy_shop.shop.pause_unengaged_after = 11
    session.commit()
    guard = client.get("/v1/admin/stats", headers={"Authorization": f"Bearer {busy_shop.admin_token}"}).json["guardrails"]
    assert (guard["last_n"], guard["unengaged_subscriptions"]) == (11, 0)
    assert [w["code"] for w in guard["warnings"]] == ["low_ctr"]


def test_the_overview_shows_the_warnings_in_plain_words(client, busy_shop):
    log_in(client, busy_shop.admin_token)
    page = client.get("/admin/").get_data(as_text=True)
    assert 'data-warning="low_ctr" data-kind="repurchase"' in page
    assert "3 of your 4 subscribers clicked none of their last 10 pushes." in page
    assert 'data-guard="sent_per_subscriber">7.50<' in page
    assert 'data-kind="price_drop"' in page and "Back in stock" in page  # the by-kind table has the alerts


# -- the 7 days' sends: stat_days for the whole days, rows for the first hours ---------------------


def raw_sent_by_kind(session, shop_id, since):
    """The figure as it was counted before ``stat_days``: every sent row after ``since``."""
    return dict(session.execute(
        sa.select(Push.kind, sa.func.count())
        .where(Push.shop_id == shop_id, Push.status == "sent", Push.sent_at > since, Push.kind != "test")
        .group_by(Push.kind)).all())


def test_the_7_days_sends_are_the_rows_count_at_every_edge(session, clock):
    """Pushes just before, at and just after the window's start, at the end of its first (partial)
    UTC day and at the next midnight, now and after now; test pushes and failed ones on both
    sides; another shop's. The figure is the rows' count for windows starting mid-day and at
    midnight, and the whole days come from ``stat_days`` (a change there moves it)."""
    from server.core.models import StatDay
    from server.reports.guardrails import sent_by_kind

    now = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
    since = now - timedelta(days=7)
    midnight = datetime(2025, 12, 30, tzinfo=timezone.utc)
    shop = make_shop(session, now, name="Edges").shop
    other = make_shop(session, now, name="Other").shop
    sub = make_subscription(session, make_visitor(session, shop.id, now), now)
    other_sub = make_subscription(session, make_visitor(session, other.id, now), now)
    micro = timedelta(microseconds=1)
    times = [since - micro, since, since + micro, midnight - micro, midnight, midnight + micro,
             now, now + timedelta(hours=1), datetime(2025, 12, 29, tzinfo=timezone.utc)]
    for i, at in enumerate(times):
        for kind, status in (("welcome", "sent"), ("shipped" if i % 2 else "welcome", "sent"),
                             ("test", "sent"), ("welcome", "failed")):
            make_push(session, sub, at, kind=kind, status=status, sent_at=at)
        make_push(session, other_sub, at, kind="welcome", status="sent", sent_at=at)
    session.commit()

    expected = raw_sent_by_kind(session, shop.id, since)
    assert expected == {"welcome": 9, "shipped": 3}  # hand count: 6 times after since, 3 of them odd
    assert sent_by_kind(session, shop.id, since) == expected
    for start in (midnight, midnight - micro, since + micro, since - micro, midnight + timedelta(hours=5)):
        assert sent_by_kind(session, shop.id, start) == raw_sent_by_kind(session, shop.id, start), start

    # The whole days are read from the rollup: a push sent there by hand, without its row, is not seen.
    session.execute(sa.update(StatDay).where(StatDay.shop_id == shop.id, StatDay.kind == "welcome",
                                             StatDay.day == midnight.date()).values(sent=StatDay.sent + 100))
    assert sent_by_kind(session, shop.id, since) == {"welcome": 109, "shipped": 3}
    session.rollback()
