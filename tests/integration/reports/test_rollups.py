"""The daily rollups (``server.core.rollups``): the triggers keep what a rebuild from the rows
computes, through updates and deletes; raw events aged out leave the Overview and the segments
as they were."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from server.core import rollups
from server.core.models import (Click, Event, FunnelDay, Order, Push, StatDay, Subscription, VisitorDay,
                                VisitorPage, VisitorProduct, VisitorSummary)
from server.planning import segments
from server.planning.retention import age_out_events
from server.reports.stats import DateRange, compute_stats
from tests.dashboard_seed import D0, D3, seed_stats_scenario

RANGE = DateRange(date(2026, 1, 5), date(2026, 1, 7))
WIDE = DateRange(date(2026, 1, 1), date(2026, 1, 31))
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)  # 180 days after the scenario: its events age out
TABLES = (StatDay, VisitorDay, FunnelDay, VisitorProduct, VisitorPage, VisitorSummary)


def _snapshot(session):
    """Every rollup row with something in it, as comparable tuples."""
    rows = {}
    for model in TABLES:
        table = model.__table__
        counters = [c for c in table.c if not c.primary_key and c.name != "shop_id"]
        found = session.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
        rows[table.name] = sorted(
            tuple(str(v) for v in row) for row in found if any(getattr(row, c.name) for c in counters))
    return rows


def _rebuild(session, shop_id=None, since=None):
    rollups.rebuild(session.connection(), shop_id, since)
    session.commit()


def _changes_after_the_fact(session, a):
    """Updates and deletes the triggers must follow: a refund, a push that failed after all, a
    deleted click, a moved event, a deleted subscription, an order moved to another day."""
    shop_id = a.shop.id
    paid = session.scalars(sa.select(Order).where(Order.shop_id == shop_id).order_by(Order.id)).all()
    paid[0].status = "refunded"
    paid[1].paid_at = paid[1].paid_at + timedelta(days=1)
    paid[2].total = Decimal("1.10")
    push = session.scalars(sa.select(Push).where(Push.shop_id == shop_id, Push.status == "sent")
                           .order_by(Push.id)).first()
    push.status = "failed"
    session.delete(session.scalars(sa.select(Click).where(Click.shop_id == shop_id).order_by(Click.id)).first())
    event = session.scalars(sa.select(Event).where(Event.shop_id == shop_id, Event.type == "add_to_cart")).first()
    event.occurred_at = D3
    session.delete(session.scalars(sa.select(Subscription).where(Subscription.shop_id == shop_id)
                                   .order_by(Subscription.id.desc())).first())
    session.commit()


def _raw_figures(session, shop_id, rng):
    """A few figures counted from the rows themselves."""
    def within(column):
        return sa.and_(column >= rng.start, column < rng.end)

    def count(model, *where):
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(model.shop_id == shop_id, *where))

    paid = (Order.status == "paid", within(Order.paid_at))
    gmv = sum((o.total for o in session.scalars(sa.select(Order).where(Order.shop_id == shop_id, *paid))), Decimal(0))
    return (count(Order, *paid), str(Decimal(gmv).quantize(Decimal("0.01"))),
            count(Push, Push.status == "sent", within(Push.sent_at)),
            count(Push, Push.status.in_(("failed", "expired")), within(sa.func.coalesce(Push.sent_at, Push.due_at))),
            count(Click, within(Click.clicked_at)))


def test_the_triggers_keep_what_a_rebuild_from_the_rows_computes(session):
    a, _ = seed_stats_scenario(session)
    before = _snapshot(session)
    assert before["stat_days"] and before["visitor_days"] and before["visitor_products"]
    _rebuild(session)
    assert _snapshot(session) == before

    figures = compute_stats(session, a.shop.id, RANGE)
    _changes_after_the_fact(session, a)
    changed = _snapshot(session)
    assert changed != before
    after = compute_stats(session, a.shop.id, RANGE)
    assert after != figures
    assert (after["all_orders"], after["all_gmv"], after["pushes_sent"], after["pushes_failed"], after["clicks"]) == (
        _raw_figures(session, a.shop.id, RANGE))
    _rebuild(session)
    assert _snapshot(session) == changed
    _rebuild(session, a.shop.id)  # one shop's rebuild leaves the others' rows as they are
    assert _snapshot(session) == changed
    assert compute_stats(session, a.shop.id, RANGE) == after


def _segment_counts(session, shop):
    found = {}
    for condition in ({"type": "viewed_product", "product_id": "p1", "days": 3650},
                      {"type": "viewed_collection", "path_prefix": "/collections/shirts", "days": 3650},
                      {"type": "carted_not_bought", "days": 3650}, {"type": "bought"}):
        parsed = segments.parse_segment([condition])
        found[condition["type"]] = segments.count(session, shop, parsed, NOW)
    return found


def test_events_aged_out_leave_the_overview_and_the_segments_as_they_were(session, runner, clock):
    a, b = seed_stats_scenario(session)
    # One event of a visitor of the scenario inside the retention age.
    v1 = session.scalars(sa.select(Event.visitor_id).where(Event.shop_id == a.shop.id)).first()
    recent = Event(shop_id=a.shop.id, visitor_id=v1, type="page_view", occurred_at=NOW - timedelta(days=1))
    # An old view of a collection page (its query and fragment are no part of the path).
    session.add_all([recent, Event(shop_id=a.shop.id, visitor_id=v1, type="page_view", occurred_at=D3,
                                   url="https://shop.example/collections/shirts?page=2#top")])
    session.commit()
    stats = {rng: compute_stats(session, a.shop.id, rng) for rng in (RANGE, WIDE)}
    counts = _segment_counts(session, a.shop)
    assert counts["viewed_product"] == counts["viewed_collection"] == 1
    assert stats[RANGE]["funnel"]["visitors"] == 6

    cutoff = NOW - timedelta(days=180)
    old = session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.occurred_at < cutoff))
    deleted, passes = [], 0
    while passes < 60:
        deleted.append(age_out_events(session, NOW, timedelta(days=180), slice_size=2))
        session.commit()
        passes += 1
        if passes > 3 and not any(deleted[-3:]):
            break
    assert old >= 4 and sum(deleted) == old and max(deleted) == 2  # in slices of two
    assert session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.occurred_at < cutoff)) == 0
    assert session.get(Event, recent.id) is not None  # a recent event stays
    assert {rng: compute_stats(session, a.shop.id, rng) for rng in (RANGE, WIDE)} == stats
    assert _segment_counts(session, a.shop) == counts

    # A rebuild after the aging out keeps the visitor-days counted before it.
    clock.set(NOW)
    result = runner.invoke(args=["stats", "rebuild", "--shop", a.shop.public_key])
    assert result.exit_code == 0, result.output
    unknown = runner.invoke(args=["stats", "rebuild", "--shop", "pk_nobody"])  # named, not a traceback
    assert unknown.exit_code == 1 and "Error: unknown shop" in unknown.output, unknown.output
    assert json.loads(result.output)["visitor_days_since"] == (cutoff.date() + timedelta(days=1)).isoformat()
    session.expire_all()
    assert {rng: compute_stats(session, a.shop.id, rng) for rng in (RANGE, WIDE)} == stats
    assert _segment_counts(session, a.shop) == counts


def test_no_retention_age_keeps_every_event(session):
    seed_stats_scenario(session)
    total = session.scalar(sa.select(sa.func.count()).select_from(Event))
    assert age_out_events(session, NOW, None) == 0
    assert age_out_events(session, D0, timedelta(days=180)) == 0  # nothing that old yet
    assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == total


def test_forgetting_a_visitor_removes_its_rows_from_the_visitor_rollups(session, clock):
    from server.core.models import Visitor
    from server.merchant.privacy import forget_visitor

    a, _ = seed_stats_scenario(session)
    before = compute_stats(session, a.shop.id, RANGE)["funnel"]
    viewer = session.scalars(sa.select(VisitorProduct.visitor_id)).first()
    assert all(session.scalar(sa.select(sa.func.count()).select_from(model).where(model.visitor_id == viewer))
               for model in (VisitorDay, VisitorProduct))
    forget_visitor(session, a.shop, session.get(Visitor, viewer), clock.now())
    session.commit()
    for model in (VisitorDay, VisitorProduct, VisitorPage, VisitorSummary):
        assert session.scalar(sa.select(sa.func.count()).select_from(model).where(model.visitor_id == viewer)) == 0
    assert compute_stats(session, a.shop.id, RANGE)["funnel"]["visitors"] == before["visitors"] - 1
