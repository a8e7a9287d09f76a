"""Rows the dashboard tests need (pushes, clicks, orders, events), as plain functions."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import orm

from server.core.models import Checkout, Click, Event, Order, Push, Visitor
from server.clicks.attribution import attribute_order
from server.merchant.shop_admin import NewShop
from tests.factories import make_shop, make_subscription, make_visitor


def make_push(session: orm.Session, visitor: Visitor, kind: str, now: datetime, **overrides: Any) -> Push:
    """An outbox row of ``kind`` for ``visitor`` (sent at ``now`` unless told otherwise)."""
    values: dict[str, Any] = {
        "shop_id": visitor.shop_id, "kind": kind, "visitor_id": visitor.id,
        "dedupe_key": f"test:{kind}:{secrets.token_hex(6)}", "group_key": None,
        "status": "sent", "due_at": now, "sent_at": now, "http_status": 201,
        "title": f"{kind} title", "body": f"{kind} body", "url": "https://shop.example/p/1",
        "created_at": now,
    }
    values.update(overrides)
    push = Push(**values)
    session.add(push)
    session.flush()
    return push


def make_click(session: orm.Session, push: Push, now: datetime) -> Click:
    """A click on ``push`` at ``now`` (sets the push's first click too)."""
    click = Click(shop_id=push.shop_id, push_id=push.id, visitor_id=push.visitor_id, kind=push.kind,
                  clicked_at=now)
    session.add(click)
    if push.clicked_at is None:
        push.clicked_at = now
    session.flush()
    return click


def make_order(session: orm.Session, visitor: Visitor | None, shop_id: int, total: str, paid_at: datetime,
               attributed: Push | None = None, **overrides: Any) -> Order:
    """A paid order, credited to ``attributed`` when given."""
    order = Order(shop_id=shop_id, order_ref=overrides.pop("order_ref", secrets.token_hex(6)),
                  visitor_id=visitor.id if visitor else None, status="paid", total=Decimal(total),
                  currency="USD", paid_at=paid_at,
                  attributed_push_id=attributed.id if attributed else None,
                  attributed_kind=attributed.kind if attributed else None, **overrides)
    session.add(order)
    session.flush()
    return order


def make_event(session: orm.Session, visitor: Visitor, type_: str, now: datetime, **overrides: Any) -> Event:
    """A stored widget event of ``type_``."""
    event = Event(shop_id=visitor.shop_id, visitor_id=visitor.id, type=type_, occurred_at=now, **overrides)
    session.add(event)
    session.flush()
    return event


def make_checkout(session: orm.Session, visitor: Visitor, now: datetime, **overrides: Any) -> Checkout:
    """A started checkout of ``visitor``."""
    checkout = Checkout(shop_id=visitor.shop_id, token=overrides.pop("token", secrets.token_hex(6)),
                        visitor_id=visitor.id, started_at=now, **overrides)
    session.add(checkout)
    session.flush()
    return checkout


UTC = timezone.utc
D0 = datetime(2026, 1, 4, 10, 0, tzinfo=UTC)  # the day before the range
D1 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # range: 2026-01-05 .. 2026-01-07
D2 = datetime(2026, 1, 6, 10, 0, tzinfo=UTC)
D3 = datetime(2026, 1, 7, 10, 0, tzinfo=UTC)
END = datetime(2026, 1, 8, 0, 0, tzinfo=UTC)  # the first instant after the range
D4 = datetime(2026, 1, 8, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)


def seed_stats_scenario(session: orm.Session) -> tuple[NewShop, NewShop]:
    """Two shops; shop A gets the scenario below (range Jan 5 to 7, 2026), shop B one push of its own.

    ``tests/integration/merchant/test_admin_stats.py`` counts its figures by hand.
    """
    a = make_shop(session, D0, name="Shop A")
    b = make_shop(session, D0, name="Shop B")
    shop = a.shop

    # v1: seen before the range, shops in it, buys twice with a clicked checkout push.
    v1 = make_visitor(session, shop.id, D0)
    make_event(session, v1, "product_view", D1, product={"id": "p1", "title": "Linen Shirt"})
    make_event(session, v1, "add_to_cart", D1 + H)
    make_subscription(session, v1, D0)
    make_push(session, v1, "welcome", D0)                                  # sent before the range
    browse = make_push(session, v1, "browse_abandonment", D1)
    make_click(session, browse, D1 + H)
    make_click(session, browse, D1 + 2 * H)                                # a repeat click
    checkout_push = make_push(session, v1, "checkout_recovery", D2)
    make_click(session, checkout_push, D2 + H / 2)
    make_push(session, v1, "browse_abandonment", D3)                       # sent, never clicked
    o1 = make_order(session, v1, shop.id, "100.10", D2 + 2 * H)
    o2 = make_order(session, v1, shop.id, "20.05", D3 + 2 * H)
    o6 = make_order(session, v1, shop.id, "999.99", D4)                    # paid after the range

    # v2: new in the range, subscribes, a failed push, checks out and pays without a click.
    v2 = make_visitor(session, shop.id, D2)
    make_subscription(session, v2, D2)
    make_push(session, v2, "welcome", D2)
    make_push(session, v2, "browse_abandonment", D3, status="failed", http_status=400)
    make_push(session, v2, "shipped", END)                                 # the first instant after
    make_checkout(session, v2, D3)
    o3 = make_order(session, v2, shop.id, "55.00", D3 + H)

    # v3: seen in the range, never subscribes, buys.
    v3 = make_visitor(session, shop.id, D1)
    make_event(session, v3, "product_view", D1)
    o4 = make_order(session, v3, shop.id, "9.99", D1 + H)

    # v4: seen only before the range; subscription expired inside it; a clicked shipped push.
    v4 = make_visitor(session, shop.id, D0)
    make_subscription(session, v4, D0, status="expired", ended_at=D2)
    shipped = make_push(session, v4, "shipped", D1)
    make_click(session, shipped, D1 + H)
    o5 = make_order(session, v4, shop.id, "30.00", D1 + 3 * H)

    # v5: first seen in the range, subscribes only after it.
    v5 = make_visitor(session, shop.id, D1)
    make_subscription(session, v5, D4)

    # v6: an old visitor back in the range; subscribed in it, unsubscribed after it.
    v6 = make_visitor(session, shop.id, D0)
    make_event(session, v6, "page_view", D3)
    make_subscription(session, v6, D1, status="unsubscribed", ended_at=D4)
    make_push(session, v6, "repurchase", D2, status="expired", http_status=410)
    make_push(session, v6, "welcome", D3, status="pending", sent_at=None, http_status=None)

    for order in (o1, o2, o3, o4, o5, o6):
        attribute_order(session, shop, order)

    # Shop B: one clicked, attributed push, which shop A must never see.
    w = make_visitor(session, b.shop.id, D1)
    make_subscription(session, w, D1)
    other = make_push(session, w, "welcome", D1, title="Shop B only")
    make_click(session, other, D1 + H)
    attribute_order(session, b.shop, make_order(session, w, b.shop.id, "500.00", D1 + 2 * H))
    session.commit()
    return a, b
