"""The funnel from ``funnel_days`` (``server.core.rollups``): for every range, the same counts as
the funnel's definition counted from the rows themselves, on random histories written in random
order, after changes after the fact, and after a rebuild."""
from __future__ import annotations

import random
import secrets
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from server.core import rollups
from server.core.models import Checkout, Event, FunnelDay, Order, Subscription, Visitor, VisitorDay
from server.reports.stats import DateRange, funnel
from tests.factories import browser_keys, make_shop

START = date(2026, 3, 1)
DAYS = 40


def _at(day: int, hour: int = 12) -> datetime:
    return datetime.combine(START + timedelta(days=day), time(hour), tzinfo=timezone.utc)


def _subscription(visitor: Visitor, day: int, status: str = "active") -> Subscription:
    endpoint = f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(12)}"
    keys = browser_keys()
    return Subscription(shop_id=visitor.shop_id, visitor_id=visitor.id, endpoint=endpoint,
                        endpoint_hash=secrets.token_hex(32), p256dh=keys["p256dh"], auth=keys["auth"],
                        status=status, created_at=_at(day), last_seen_at=_at(day))


def _seed(session, rng: random.Random, visitors: int = 30):
    """A shop whose visitors came, shopped, subscribed and paid on random days, written in a random
    order (so days arrive before, between and after the ones already counted)."""
    shop = make_shop(session, _at(0)).shop
    people = []
    for n in range(visitors):
        people.append(Visitor(shop_id=shop.id, visitor_key=f"v{n}", first_seen_at=_at(rng.randrange(DAYS)),
                              last_event_at=_at(DAYS)))
    session.add_all(people)
    session.flush()
    rows = []
    for person in people:
        for _ in range(rng.randrange(6)):
            kind = rng.choice(("page_view", "page_view", "product_view", "add_to_cart", "checkout_started"))
            rows.append(Event(shop_id=shop.id, visitor_id=person.id, type=kind,
                              occurred_at=_at(rng.randrange(DAYS), rng.randrange(24))))
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2, 3))):
            rows.append(Order(shop_id=shop.id, order_ref=secrets.token_hex(6), visitor_id=person.id,
                              status="paid", total=Decimal("10.00"), currency="USD",
                              paid_at=_at(rng.randrange(DAYS), rng.randrange(24))))
        if rng.random() < 0.2:
            rows.append(Checkout(shop_id=shop.id, token=secrets.token_hex(6), visitor_id=person.id,
                                 started_at=_at(rng.randrange(DAYS))))
        if rng.random() < 0.4:
            rows.append(_subscription(person, rng.randrange(DAYS)))
        if rng.random() < 0.1:
            rows.append(_subscription(person, rng.randrange(DAYS), status="test"))  # counts nowhere
    rng.shuffle(rows)
    for start in range(0, len(rows), 7):
        session.add_all(rows[start:start + 7])
        session.flush()
    session.commit()
    return shop


def _utc_day(at: datetime) -> date:
    return (at.astimezone(timezone.utc) if at.tzinfo else at).date()


def _by_definition(session, shop_id: int, rng: DateRange) -> dict[str, int]:
    """The funnel of ``stats.funnel``'s docstring, counted from the rows."""
    def days(model, column, *where):
        found: dict[int, list[date]] = {}
        for vid, at in session.execute(sa.select(model.visitor_id, column).where(model.shop_id == shop_id, *where)):
            if vid is not None:
                found.setdefault(vid, []).append(_utc_day(at))
        return found

    def within(found, vid):
        return [d for d in found.get(vid, []) if rng.first <= d <= rng.last]

    seen = {vid: [_utc_day(at)] for vid, at in session.execute(
        sa.select(Visitor.id, Visitor.first_seen_at).where(Visitor.shop_id == shop_id))}
    events = days(Event, Event.occurred_at)
    carts = days(Event, Event.occurred_at, Event.type.in_(("add_to_cart", "checkout_started")))
    checkouts = days(Checkout, Checkout.started_at)
    paid = days(Order, Order.paid_at, Order.status == "paid")
    subscribed = days(Subscription, Subscription.created_at, Subscription.status != "test")
    counts = dict.fromkeys(("visitors", "subscribers", "shoppers", "buyers", "repeat_buyers"), 0)
    for vid in seen:
        active = any(within(found, vid) for found in (seen, events, checkouts, paid, subscribed))
        if not active:
            continue
        shopper = bool(within(carts, vid) or within(checkouts, vid) or within(paid, vid))
        subscriber = shopper or any(d <= rng.last for d in subscribed.get(vid, []))
        orders = len(within(paid, vid))
        counts["visitors"] += 1
        counts["subscribers"] += subscriber
        counts["shoppers"] += shopper
        counts["buyers"] += orders >= 1
        counts["repeat_buyers"] += orders >= 2
    return counts


def _ranges(rng: random.Random) -> list[DateRange]:
    ranges = [DateRange(START, START + timedelta(days=DAYS - 1)), DateRange(START - timedelta(days=5), START),
              DateRange(START + timedelta(days=DAYS - 1), START + timedelta(days=DAYS + 30))]
    for _ in range(40):
        first = rng.randrange(-3, DAYS)
        ranges.append(DateRange(START + timedelta(days=first), START + timedelta(days=first + rng.randrange(12))))
    return ranges


def _assert_every_range(session, shop_id: int, ranges: list[DateRange]) -> None:
    for each in ranges:
        assert funnel(session, shop_id, each) == _by_definition(session, shop_id, each), each


def _snapshot(session, shop_id: int):
    days = session.execute(sa.select(VisitorDay.visitor_id, VisitorDay.day, *(getattr(VisitorDay, c) for c in
                                                                            rollups.GAP_COLUMNS))
                           .where(VisitorDay.shop_id == shop_id).order_by(VisitorDay.visitor_id, VisitorDay.day)).all()
    counts = session.execute(sa.select(FunnelDay.stage, FunnelDay.day, FunnelDay.prev_gap, FunnelDay.next_gap,
                                       FunnelDay.n).where(FunnelDay.shop_id == shop_id, FunnelDay.n != 0)
                             .order_by(FunnelDay.stage, FunnelDay.day, FunnelDay.prev_gap, FunnelDay.next_gap)).all()
    counted = [tuple(map(str, row)) for row in days if any(v is not None for v in row[2:])]
    return counted, [tuple(map(str, row)) for row in counts]


@pytest.mark.parametrize("seed", [7, 2026])
def test_the_funnel_of_every_range_is_its_definition_counted_from_the_rows(session, seed):
    rng = random.Random(seed)
    shop = _seed(session, rng)
    ranges = _ranges(rng)
    _assert_every_range(session, shop.id, ranges)

    # After the fact: refunds, an order moved to another day, subscriptions gone or expired, a
    # checkout deleted, late events on old days, a visitor erased.
    orders = session.scalars(sa.select(Order).where(Order.shop_id == shop.id).order_by(Order.id)).all()
    orders[0].status = "refunded"
    orders[1].paid_at = orders[1].paid_at + timedelta(days=rng.randrange(1, 9))
    subscriptions = session.scalars(sa.select(Subscription).where(Subscription.shop_id == shop.id,
                                                                  Subscription.status == "active")
                                    .order_by(Subscription.id)).all()
    session.delete(subscriptions[0])
    subscriptions[1].status = "expired"
    subscriptions[1].ended_at = subscriptions[1].created_at + timedelta(days=3)
    checkout = session.scalars(sa.select(Checkout).where(Checkout.shop_id == shop.id)).first()
    if checkout is not None:
        session.delete(checkout)
    people = session.scalars(sa.select(Visitor).where(Visitor.shop_id == shop.id).order_by(Visitor.id)).all()
    for person in rng.sample(people, 5):
        session.add(Event(shop_id=shop.id, visitor_id=person.id, type="add_to_cart", occurred_at=_at(rng.randrange(DAYS))))
    session.delete(people[-1])
    session.commit()
    _assert_every_range(session, shop.id, ranges)

    kept = _snapshot(session, shop.id)
    assert kept[1]
    rollups.rebuild(session.connection(), shop.id)
    session.commit()
    assert _snapshot(session, shop.id) == kept
    # The rebuild put the triggers back: a visit after it counts.
    late = people[0]
    session.add(Order(shop_id=shop.id, order_ref=secrets.token_hex(6), visitor_id=late.id, status="paid",
                      total=Decimal("5.00"), currency="USD", paid_at=_at(DAYS - 1)))
    session.commit()
    assert _snapshot(session, shop.id) != kept
    _assert_every_range(session, shop.id, ranges)
