"""The seam between what arrives (collect API, webhooks) and the preset planners.

The collect API and the webhooks call these after storing what arrived, in the same session,
with the server's ``now``. Each hook asks the preset modules what to plan or cancel.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from decimal import Decimal
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import orm

from server.core.vapid_keys import retire_unused
from server.core.models import Checkout, Order, Shipment, Shop, Subscription, Visitor
from server.outbox import plan as outbox
from server.planning.expiry import expire_stale_subscriptions, idle_expiry
from server.planning.retention import age_out_events, retention_age
from server.planning import alerts, browse_abandonment, campaigns, checkout_recovery, experiments, rendering, repurchase, shipped, welcome

log = logging.getLogger(__name__)

MAX_TOTAL = Decimal("999999999999.99")
MAX_ITEMS = 50
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


def on_subscription_created(session: orm.Session, shop: Shop, visitor: Visitor,
                            subscription: Subscription, now: datetime) -> None:
    """A new subscription was stored (not called for one already known): plan the welcome."""
    welcome.plan(session, shop, visitor, subscription, now)


class StoredEvent(Protocol):
    """What the hooks read of a stored event (an ``Event`` row has it too)."""

    type: str
    occurred_at: datetime
    cart: dict[str, Any] | None


def on_events(session: orm.Session, visitor: Visitor, events: Sequence[StoredEvent], now: datetime) -> None:
    """Events were stored for ``visitor`` (new ones only, in arrival order)."""
    returned = False
    for event in events:
        if event.type == "leave":
            browse_abandonment.on_leave_event(visitor, event.occurred_at or now)
            continue
        # One cancel per batch is enough: the first later event has already cancelled the
        # pending reminder, and the rest of the batch only keeps the visitor engaged.
        browse_abandonment.on_activity(session, visitor, event.type, event.occurred_at or now,
                                       cancel=not returned)
        returned = True
        if event.type == "checkout_started" and isinstance(event.cart, dict):
            data = checkout_from_cart(event.cart)
            if data is not None:
                shop = session.get(Shop, visitor.shop_id)  # from the identity map when already loaded
                if shop is not None:
                    checkout_recovery.record(session, shop, data, visitor, now)


def checkout_from_cart(cart: dict[str, Any]) -> checkout_recovery.CheckoutData | None:
    """A widget cart as checkout data (odd fields dropped), or None without a usable token."""
    token = cart.get("token")
    if not isinstance(token, str) or not token.strip() or len(token) > 128:
        return None
    total = rendering.to_decimal(cart.get("total"))
    if total is not None and not (0 <= total <= MAX_TOTAL):
        total = None
    currency = cart.get("currency")
    count = cart.get("item_count")
    items = cart.get("items")
    return checkout_recovery.CheckoutData(
        token=token.strip(),
        total=total.quantize(Decimal("0.01")) if total is not None else None,
        currency=currency.upper() if isinstance(currency, str) and _CURRENCY.match(currency) else None,
        item_count=count if isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= 10000 else None,
        checkout_url=rendering.safe_url(cart.get("checkout_url")),
        items=[i for i in items if isinstance(i, dict)][:MAX_ITEMS] if isinstance(items, list) else None,
    )


def on_checkout(session: orm.Session, shop: Shop, data: checkout_recovery.CheckoutData,
                visitor: Visitor | None, now: datetime) -> Checkout:
    """A checkout arrived from the shop's back end: record it and plan its recovery series."""
    return checkout_recovery.record(session, shop, data, visitor, now)


def on_order_paid(session: orm.Session, shop: Shop, order: Order, checkout: Checkout | None,
                  now: datetime) -> None:
    """A paid order was stored: stop the checkout series and plan the repurchase (the caller
    attributes it to a click: ``clicks.attribution``)."""
    if checkout is not None:
        checkout_recovery.mark_paid(session, shop, checkout, now)
    elif order.visitor_id is not None:
        # No checkout token: the visitor just paid, so no pending "finish your checkout" makes sense.
        outbox.cancel_kind(session, shop.id, checkout_recovery.KIND, reason="order_paid",
                           visitor_id=order.visitor_id)
    if order.visitor_id is not None:
        outbox.cancel_group(session, shop.id, browse_abandonment.group_key(order.visitor_id),
                            reason="order_paid")
    repurchase.plan(session, shop, order, now)


def on_shipment(session: orm.Session, shop: Shop, shipment: Shipment, order: Order | None,
                now: datetime) -> None:
    """A shipment was stored: plan the shipped push."""
    shipped.plan(session, shop, shipment, order, now)


def on_product_updated(session: orm.Session, shop: Shop, before: Any, after: Any, now: datetime) -> None:
    """A product or variant was stored (``before`` is None for a new one; both are
    ``webhooks.products.ProductData``): plan the back-in-stock and price-drop alerts the change
    calls for (``alerts``)."""
    alerts.on_product_updated(session, shop, before, after, now)


def run_sweeps(session: orm.Session, now: datetime, config: Any = None) -> int:
    """Plan what has no event of its own (30 minutes of silence counts as leaving); return rows planned.

    Subscriptions idle for ``SUBSCRIPTION_IDLE_DAYS`` (not seen, delivered to nor clicked) are
    expired first (privacy; not counted as planned). Running A/B tests set to apply their
    winner automatically are checked (each at most every 10 minutes) before anything is planned;
    campaigns due for planning get their next batch of rows (``campaigns.sweep``). Shops' retiring
    VAPID keys no live subscription uses any more are retired. Raw events older than
    ``EVENT_RETENTION_DAYS`` are deleted, a slice of one shop's per pass (``retention``).
    """
    expire_stale_subscriptions(session, now, idle_expiry(config or {}))
    age_out_events(session, now, retention_age(config or {}))
    retire_unused(session, now)
    experiments.auto_apply(session, now)
    return browse_abandonment.sweep(session, now) + campaigns.sweep(session, now, config)
