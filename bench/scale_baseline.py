"""The previous code of the Overview, of its guardrails and of two segment conditions: the same run's baseline.

``bench/scale_bench.py`` times these beside the product's own (the rollups of
``server.core.rollups``, the streaks of ``server.core.streaks``) on the same database, and
checks both give the same figures. This is the Overview as it was before the rollups
(aggregates over the raw pushes, clicks, orders, subscriptions and events), the guardrails'
figures as they were before the streak (the 7 days' sends counted from the pushes, the
unengaged count by ranking every sent push of the shop) and the "viewed" segment conditions as
probes of the events; nothing in the product calls it.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.models import (ALL_KINDS, Checkout, Click, Event, Order, Push, PushStatus, Shop, Subscription,
                                SubscriptionStatus, Visitor)
from server.planning import segments
from server.reports.stats import DateRange, money, ratio

FAILED_STATUSES = (PushStatus.FAILED.value, PushStatus.EXPIRED.value)
SHOPPING_EVENTS = ("add_to_cart", "checkout_started")


def viewed_product_count(session: orm.Session, shop: Shop, product_id: str, days: int, ref: datetime) -> int:
    """The audience of ``[{"type": "viewed_product", ...}]`` as it was counted: a probe of the
    events of each active subscriber."""
    viewed = (sa.select(sa.literal(1)).select_from(Event)
              .where(Event.shop_id == shop.id, Event.visitor_id == Visitor.id, Event.type == "product_view",
                     Event.occurred_at >= ref - timedelta(days=days), Event.product["id"].as_string() == product_id)
              .exists())
    return int(session.scalar(segments.audience(shop, [], ref, sa.func.count(Subscription.id)).where(viewed)) or 0)


def viewed_collection_count(session: orm.Session, shop: Shop, path_prefix: str, days: int, ref: datetime) -> int:
    """The audience of ``[{"type": "viewed_collection", ...}]`` as it was counted: a probe of the
    page and product views of each active subscriber."""
    prefixes = [origin.rstrip("/") + path_prefix for origin in (shop.origins or [])]
    viewed = (sa.select(sa.literal(1)).select_from(Event)
              .where(Event.shop_id == shop.id, Event.visitor_id == Visitor.id,
                     Event.type.in_(("page_view", "product_view")), Event.occurred_at >= ref - timedelta(days=days),
                     sa.or_(*(Event.url.startswith(p, autoescape=True) for p in prefixes)))
              .exists())
    return int(session.scalar(segments.audience(shop, [], ref, sa.func.count(Subscription.id)).where(viewed)) or 0)


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
        ).where(Subscription.shop_id == shop_id)
    ).one()

    sent_by_kind = dict(session.execute(
        sa.select(Push.kind, sa.func.count())
        .where(Push.shop_id == shop_id, Push.status == PushStatus.SENT.value, _in(Push.sent_at, rng))
        .group_by(Push.kind)
    ).all())
    # Unique clicks: sent pushes whose first click fell in the range (repeat clicks excluded).
    clicked_by_kind = dict(session.execute(
        sa.select(Push.kind, sa.func.count())
        .where(Push.shop_id == shop_id, _in(Push.clicked_at, rng))
        .group_by(Push.kind)
    ).all())
    failed = session.scalar(
        sa.select(sa.func.count()).where(
            Push.shop_id == shop_id, Push.status.in_(FAILED_STATUSES),
            _in(sa.func.coalesce(Push.sent_at, Push.due_at), rng))
    )
    clicks_by_kind = dict(session.execute(
        sa.select(Click.kind, sa.func.count())
        .where(Click.shop_id == shop_id, _in(Click.clicked_at, rng)).group_by(Click.kind)
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
            .where(Click.shop_id == shop_id, Click.action.is_not(None), _in(Click.clicked_at, rng))
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
        sa.select(Visitor.id.label("vid")).where(Visitor.shop_id == shop_id, _in(Visitor.first_seen_at, rng)),
        sa.select(Event.visitor_id).where(Event.shop_id == shop_id, _in(Event.occurred_at, rng)),
        sa.select(paid.c.vid),
    ).subquery("seen")
    subscribed = (sa.select(Subscription.visitor_id.label("vid"))
                  .where(Subscription.shop_id == shop_id, Subscription.created_at < rng.end)
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
        .where(Push.shop_id == shop_id, Push.status == PushStatus.SENT.value, _in(Push.sent_at, rng))
        .group_by(sent_day)
    ).all()}
    click_day = _day(session, Click.clicked_at)
    clicks = {_day_key(d): n for d, n in session.execute(
        sa.select(click_day, sa.func.count())
        .where(Click.shop_id == shop_id, _in(Click.clicked_at, rng)).group_by(click_day)
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


def guardrail_figures(session: orm.Session, shop: Shop, now: datetime, n: int) -> dict[str, Any]:
    """The guardrails' counts as they were counted: the shop's sent pushes of the last 7 days by
    kind from the rows, and the active subscriptions unengaged over ``n`` by a window function
    that ranks every sent push of the shop per subscription."""
    not_a_test = Push.kind != "test"
    sent = dict(session.execute(
        sa.select(Push.kind, sa.func.count())
        .where(Push.shop_id == shop.id, Push.status == PushStatus.SENT.value, Push.sent_at > now - timedelta(days=7),
               not_a_test)
        .group_by(Push.kind)).all())
    ranked = (sa.select(Push.subscription_id.label("sid"), Push.clicked_at.label("clicked_at"),
                        sa.func.row_number().over(partition_by=Push.subscription_id,
                                                  order_by=(Push.sent_at.desc(), Push.id.desc())).label("rn"))
              .where(Push.status == PushStatus.SENT.value, Push.subscription_id.is_not(None), not_a_test,
                     Push.shop_id == shop.id)
              .subquery("ranked"))
    last = (sa.select(ranked.c.sid, sa.func.count().label("received"), sa.func.count(ranked.c.clicked_at).label("clicked"))
            .where(ranked.c.rn <= n).group_by(ranked.c.sid).subquery("last"))
    active, unengaged = session.execute(
        sa.select(sa.func.count(), sa.func.count().filter(last.c.received >= n, last.c.clicked == 0))
        .select_from(Subscription).outerjoin(last, last.c.sid == Subscription.id)
        .where(Subscription.shop_id == shop.id, Subscription.status == SubscriptionStatus.ACTIVE.value)).one()
    return {"sent": sent, "active": int(active or 0), "unengaged": int(unengaged or 0)}
