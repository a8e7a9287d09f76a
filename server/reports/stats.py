"""The merchant's figures over a date range, from aggregate SQL (SQLite and PostgreSQL).

Days are UTC calendar days; ``from`` and ``to`` are both included. Money is returned as a
string with two decimals (``"123.40"``), summed exactly in the database's NUMERIC and never
passed through a float; GMV is in the shop's one currency.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.errors import Invalid
from server.core.kinds import TEST_KIND
from server.core.models import (ALL_KINDS, TEST_DEVICE_PREFIX, Checkout, Click, Event, Order, Push, PushStatus, Subscription, SubscriptionStatus, Visitor)

MAX_DAYS = 366
# The days a range may name. The calendar's own ends overflow the range arithmetic (the day after
# ``to``, 29 days before it, an attribution window of up to 90 days past the end), and no push
# predates 1970: both ends leave a wide margin rather than one exact to that arithmetic.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FAILED_STATUSES = (PushStatus.FAILED.value, PushStatus.EXPIRED.value)
SHOPPING_EVENTS = ("add_to_cart", "checkout_started")
CENT = Decimal("0.01")
# Test pushes (kind ``test``, sent to the merchant's own devices) and their clicks count nowhere.
COUNTED_PUSH = Push.kind != TEST_KIND
COUNTED_CLICK = Click.kind != TEST_KIND


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days ``first`` to ``last`` (both included), as the half-open ``[start, end)``."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=timezone.utc)

    def days(self) -> list[date]:
        """Every day of the range, in order."""
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def _parse_day(raw: str) -> date:
    if not _DAY.fullmatch(raw):
        raise ValueError(raw)
    day = date.fromisoformat(raw)
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(raw)
    return day


def parse_range(raw_from: str | None, raw_to: str | None, now: datetime) -> DateRange:
    """Read ``from``/``to`` (YYYY-MM-DD, FIRST_DAY to LAST_DAY); default the last 30 days to
    today (never before FIRST_DAY). Raises Invalid (``invalid_field``) for anything else."""
    try:
        last = _parse_day(raw_to) if raw_to else now.astimezone(timezone.utc).date()
        first = _parse_day(raw_from) if raw_from else max(last - timedelta(days=29), FIRST_DAY)
    except ValueError:
        raise Invalid(f"from and to must be dates as YYYY-MM-DD between {FIRST_DAY.isoformat()} "
                      f"and {LAST_DAY.isoformat()}", code="invalid_field") from None
    if first > last:
        raise Invalid("from must not be after to", code="invalid_field")
    if (last - first).days + 1 > MAX_DAYS:
        raise Invalid(f"a range is at most {MAX_DAYS} days", code="invalid_field")
    return DateRange(first, last)


def money(value: Any) -> str:
    """An exact amount as a two-decimal string (``None`` is zero)."""
    return str(Decimal(value if value is not None else 0).quantize(CENT))


def ratio(part: int, whole: int) -> float:
    """``part / whole`` rounded to 4 places, 0 when ``whole`` is 0, never above 1."""
    return round(min(part / whole, 1.0), 4) if whole else 0.0


def _in(column: Any, rng: DateRange) -> Any:
    return sa.and_(column >= rng.start, column < rng.end)


def _day(session: orm.Session, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, as SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    return sa.func.date(column)  # SQLite stores UTC text already


def _day_key(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def compute_stats(session: orm.Session, shop_id: int, rng: DateRange) -> dict[str, Any]:
    """Every figure of ``GET /v1/admin/stats`` for one shop over ``rng`` (see the module doc)."""
    subs = session.execute(
        sa.select(
            # Active at the end of the range: created before it and not ended by then.
            sa.func.count().filter(
                Subscription.created_at < rng.end,
                sa.or_(sa.and_(Subscription.ended_at.is_(None),
                               Subscription.status == SubscriptionStatus.ACTIVE.value),
                       Subscription.ended_at >= rng.end)),
            sa.func.count().filter(_in(Subscription.created_at, rng)),
        ).where(Subscription.shop_id == shop_id, Subscription.status != SubscriptionStatus.TEST.value)
    ).one()

    sent_by_kind = dict(session.execute(
        sa.select(Push.kind, sa.func.count())
        .where(Push.shop_id == shop_id, Push.status == PushStatus.SENT.value, _in(Push.sent_at, rng), COUNTED_PUSH)
        .group_by(Push.kind)
    ).all())
    # Unique clicks: sent pushes whose first click fell in the range (repeat clicks excluded).
    clicked_by_kind = dict(session.execute(
        sa.select(Push.kind, sa.func.count())
        .where(Push.shop_id == shop_id, _in(Push.clicked_at, rng), COUNTED_PUSH)
        .group_by(Push.kind)
    ).all())
    failed = session.scalar(
        sa.select(sa.func.count()).where(
            Push.shop_id == shop_id, Push.status.in_(FAILED_STATUSES),
            _in(sa.func.coalesce(Push.sent_at, Push.due_at), rng), COUNTED_PUSH)
    )
    clicks_by_kind = dict(session.execute(
        sa.select(Click.kind, sa.func.count())
        .where(Click.shop_id == shop_id, _in(Click.clicked_at, rng), COUNTED_CLICK).group_by(Click.kind)
    ).all())
    paid = sa.and_(Order.shop_id == shop_id, Order.status == "paid", _in(Order.paid_at, rng))
    orders_by_kind = {kind: (n, total) for kind, n, total in session.execute(
        sa.select(Order.attributed_kind, sa.func.count(), sa.func.sum(Order.total))
        .where(paid, Order.attributed_kind.is_not(None)).group_by(Order.attributed_kind)
    ).all()}
    all_orders, all_gmv = session.execute(
        sa.select(sa.func.count(), sa.func.sum(Order.total)).where(paid)
    ).one()

    pushes_sent = sum(sent_by_kind.values())
    unique_clicks = sum(clicked_by_kind.values())
    by_kind = {}
    for kind in ALL_KINDS:
        sent = sent_by_kind.get(kind, 0)
        n_orders, gmv = orders_by_kind.get(kind, (0, None))
        by_kind[kind] = {"sent": sent, "clicks": clicks_by_kind.get(kind, 0),
                         "unique_clicks": clicked_by_kind.get(kind, 0),
                         "ctr": ratio(clicked_by_kind.get(kind, 0), sent),
                         "orders": n_orders, "gmv": money(gmv)}
    for kind, per_action in action_clicks(session, shop_id, rng).items():
        if kind in by_kind:
            by_kind[kind]["actions"] = per_action
    return {
        "from": rng.first.isoformat(),
        "to": rng.last.isoformat(),
        "currency": None,  # filled in by the caller, which knows the shop
        "subscribers": subs[0],
        "new_subscribers": subs[1],
        "pushes_sent": pushes_sent,
        "pushes_failed": failed or 0,
        "clicks": sum(clicks_by_kind.values()),
        "unique_clicks": unique_clicks,
        "ctr": ratio(unique_clicks, pushes_sent),
        "orders": sum(n for n, _ in orders_by_kind.values()),
        "gmv": money(sum((Decimal(t) for _, t in orders_by_kind.values() if t is not None), Decimal(0))),
        "all_orders": all_orders,
        "all_gmv": money(all_gmv),
        "by_kind": by_kind,
        "funnel": funnel(session, shop_id, rng),
        "daily": daily(session, shop_id, rng),
    }


def action_clicks(session: orm.Session, shop_id: int, rng: DateRange) -> dict[str, dict[str, int]]:
    """Clicks on action buttons in the range, per kind: ``{kind: {"a1": n, "a2": n}}`` (only kinds
    with such clicks; a click on the notification itself is in ``clicks`` only)."""
    result: dict[str, dict[str, int]] = {}
    for kind, action, count in session.execute(
            sa.select(Click.kind, Click.action, sa.func.count())
            .where(Click.shop_id == shop_id, Click.action.is_not(None), _in(Click.clicked_at, rng), COUNTED_CLICK)
            .group_by(Click.kind, Click.action)).all():
        result.setdefault(kind, {"a1": 0, "a2": 0})[f"a{action}"] = count
    return result


def funnel(session: orm.Session, shop_id: int, rng: DateRange) -> dict[str, int]:
    """Visitors in the range, and how far each got: subscriber, shopper, buyer, repeat buyer.

    Each step counts the visitors who reached it *or a later one*, so the funnel is nested
    (visitors ⊇ subscribers ⊇ shoppers ⊇ buyers ⊇ repeat buyers) without dropping anyone: a
    visitor who paid (the orders webhook) is a buyer and a shopper even when the widget never
    saw a cart, and counts as a visitor of the range. A subscriber has a subscription by the
    end of the range; a shopper carted or started a checkout in the range; a buyer paid an
    order in the range; a repeat buyer paid two or more. Set-based: each step is one indexed
    scan grouped by visitor, outer-joined to the visitors seen.
    """
    paid = (sa.select(Order.visitor_id.label("vid"), sa.func.count().label("n"))
            .where(Order.shop_id == shop_id, Order.status == "paid", Order.visitor_id.is_not(None),
                   _in(Order.paid_at, rng))
            .group_by(Order.visitor_id).subquery("paid"))
    seen = sa.union(
        sa.select(Visitor.id.label("vid")).where(Visitor.shop_id == shop_id, _in(Visitor.first_seen_at, rng),
                                                 Visitor.visitor_key.not_like(TEST_DEVICE_PREFIX + "%")),
        sa.select(Event.visitor_id).where(Event.shop_id == shop_id, _in(Event.occurred_at, rng)),
        sa.select(paid.c.vid),
    ).subquery("seen")
    subscribed = (sa.select(Subscription.visitor_id.label("vid"))
                  .where(Subscription.shop_id == shop_id, Subscription.created_at < rng.end,
                         Subscription.status != SubscriptionStatus.TEST.value)
                  .group_by(Subscription.visitor_id).subquery("subscribed"))
    shopping = sa.union(
        sa.select(Event.visitor_id.label("vid")).where(Event.shop_id == shop_id, Event.type.in_(SHOPPING_EVENTS),
                                                      _in(Event.occurred_at, rng)),
        sa.select(Checkout.visitor_id).where(Checkout.shop_id == shop_id, Checkout.visitor_id.is_not(None),
                                             _in(Checkout.started_at, rng)),
    ).subquery("shopping")
    buyer = paid.c.n >= 1
    shopper = sa.or_(shopping.c.vid.is_not(None), buyer)
    row = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(sa.or_(subscribed.c.vid.is_not(None), shopper)),
            sa.func.count().filter(shopper),
            sa.func.count().filter(buyer),
            sa.func.count().filter(paid.c.n >= 2),
        ).select_from(seen)
        .outerjoin(subscribed, subscribed.c.vid == seen.c.vid)
        .outerjoin(shopping, shopping.c.vid == seen.c.vid)
        .outerjoin(paid, paid.c.vid == seen.c.vid)
    ).one()
    return dict(zip(("visitors", "subscribers", "shoppers", "buyers", "repeat_buyers"), row))


def daily(session: orm.Session, shop_id: int, rng: DateRange) -> list[dict[str, Any]]:
    """One entry per day of the range: pushes sent, clicks, attributed orders and GMV."""
    sent_day = _day(session, Push.sent_at)
    sent = {_day_key(d): n for d, n in session.execute(
        sa.select(sent_day, sa.func.count())
        .where(Push.shop_id == shop_id, Push.status == PushStatus.SENT.value, _in(Push.sent_at, rng), COUNTED_PUSH)
        .group_by(sent_day)
    ).all()}
    click_day = _day(session, Click.clicked_at)
    clicks = {_day_key(d): n for d, n in session.execute(
        sa.select(click_day, sa.func.count())
        .where(Click.shop_id == shop_id, _in(Click.clicked_at, rng), COUNTED_CLICK).group_by(click_day)
    ).all()}
    order_day = _day(session, Order.paid_at)
    orders = {_day_key(d): (n, t) for d, n, t in session.execute(
        sa.select(order_day, sa.func.count(), sa.func.sum(Order.total))
        .where(Order.shop_id == shop_id, Order.status == "paid", Order.attributed_kind.is_not(None),
               _in(Order.paid_at, rng))
        .group_by(order_day)
    ).all()}
    series = []
    for day in rng.days():
        key = day.isoformat()
        n_orders, gmv = orders.get(key, (0, None))
        series.append({"date": key, "sent": sent.get(key, 0), "clicks": clicks.get(key, 0),
                       "orders": n_orders, "gmv": money(gmv)})
    return series
