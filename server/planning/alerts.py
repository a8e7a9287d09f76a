"""Back-in-stock and price-drop alerts: pushes a visitor asked for with a "notify me" button.

The collect API stores an ``Interest`` per (visitor, product, variant, kind); the products
webhooks call ``on_product_updated`` with a variant's state before and after. The rules:

- ``back_in_stock``: the variant was stored unavailable and is now available. A product never
  seen before plans nothing (its earlier stock is unknown, and the widget registers both kinds
  by default, also on products in stock).
- ``price_drop``: this update lowered the variant's price (or reported a new product, or a
  price where the stored one was unknown, e.g. after an unusable platform price), the variant is
  available, and the new price is at least ``shop.alert_min_drop_percent`` (default
  10) below the reference: the price the visitor saw when registering (or when last alerted
  about it), else the previous price. After a price-drop alert the reference becomes the
  alerted price, so the next alert needs a further drop.
- An interest in the product as a whole (``variant_ref`` ``""``) matches each of its variants.
- At most one alert per product and kind per subscription within ``shop.alert_window_days``
  (default 7): a dedupe key per window period, and a check of the rows planned or sent in the
  last window days (which also covers the edge between two periods).
- A kind switched off plans nothing; the send-time policy then applies the frequency cap, the
  quiet hours and the engagement pause, as for every marketing push.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.db import in_ids
from server.core.models import (Interest, Product, Push, PushKind, PushStatus, Shop, Subscription, SubscriptionStatus, Visitor)
from server.planning import defaults, recipients, rendering

log = logging.getLogger(__name__)

BACK_IN_STOCK = PushKind.BACK_IN_STOCK.value
PRICE_DROP = PushKind.PRICE_DROP.value
DEFAULT_MIN_DROP_PERCENT = 10
DEFAULT_WINDOW_DAYS = 7
# Rows that count as "already alerted" within the window: planned, going out or delivered.
ALERTED_STATUSES = (PushStatus.PENDING.value, PushStatus.SENDING.value, PushStatus.SENT.value)


def group_key(kind: str, product_ref: str) -> str:
    """The plan name of one product's alerts of one kind (the window check looks it up)."""
    return f"{kind}:{recipients.short_hash(product_ref, 16)}"


def threshold(reference: Decimal, percent: int) -> Decimal:
    """The highest price that is a drop of at least ``percent`` % below ``reference``."""
    return reference * (Decimal(100) - Decimal(percent)) / Decimal(100)


def price_dropped(new: Decimal | None, reference: Decimal | None, percent: int) -> bool:
    """Whether ``new`` is at least ``percent`` % below ``reference`` (False when either is unknown)."""
    if new is None or reference is None or reference <= 0:
        return False
    return new <= threshold(reference, percent)


def on_product_updated(session: orm.Session, shop: Shop, before: Any, after: Any, now: datetime) -> int:
    """Plan the alerts one product update calls for; return how many rows were planned."""
    planned = 0
    if before is not None and not before.available and after.available:
        planned += _plan(session, shop, BACK_IN_STOCK, after, now, reference=lambda interest: None)
    # An unknown stored price (a new product, or the platform's last price was unusable and so
    # dropped) cannot prove the price went down; the reference (the price the visitor saw) decides.
    lowered = before is None or before.price is None or (after.price is not None and after.price < before.price)
    if after.available and after.price is not None and lowered:
        percent = shop.alert_min_drop_percent or DEFAULT_MIN_DROP_PERCENT
        previous = before.price if before is not None else None

        def reference(interest: Interest) -> Decimal | None:
            return interest.seen_price if interest.seen_price is not None else previous

        planned += _plan(session, shop, PRICE_DROP, after, now, reference=reference,
                         only=lambda interest: price_dropped(after.price, reference(interest), percent))
    return planned


def _plan(session: orm.Session, shop: Shop, kind: str, after: Any, now: datetime, *,
          reference: Callable[[Interest], Decimal | None],
          only: Callable[[Interest], bool] | None = None) -> int:
    """Plan ``kind`` for every interest in ``after`` that passes ``only``; return rows planned.
    ``reference`` gives an interest's ``old_price`` (None for back in stock)."""
    setting = defaults.get_setting(session, shop, kind)
    if not setting.enabled:
        return 0
    interests = [i for i in _interests(session, shop.id, kind, after.product_ref, after.variant_ref)
                 if only is None or only(i)]
    if not interests:
        return 0
    # One interest per visitor (a variant's and the product's may both match): the closest one.
    by_visitor: dict[int, Interest] = {}
    for interest in interests:
        known = by_visitor.get(interest.visitor_id)
        if known is None or (interest.variant_ref and not known.variant_ref):
            by_visitor[interest.visitor_id] = interest
    subscriptions = _active_subscriptions(session, set(by_visitor))
    window_days = shop.alert_window_days or DEFAULT_WINDOW_DAYS
    window = timedelta(days=window_days)
    group = group_key(kind, after.product_ref)
    recent = _recently_alerted(session, shop.id, group, [s.id for s in subscriptions], now - window)
    period = int(now.timestamp() // window.total_seconds())
    base = {**rendering.base_context(shop, None),
            "product_title": after.title, "product_price": rendering.format_money(after.price, after.currency),
            "product_url": rendering.safe_url(after.url) or "", "product_image": rendering.safe_url(after.image) or ""}
    fallback = base["product_url"] or base["shop_url"]
    visitors = {v.id: v for v in session.scalars(
        sa.select(Visitor).where(in_ids(Visitor.id, set(by_visitor), session)))} if by_visitor else {}
    stored = 0
    for subscription in subscriptions:
        if subscription.id in recent:
            continue
        interest = by_visitor[subscription.visitor_id]
        old = reference(interest)
        context = {**base, **rendering.base_context(shop, visitors.get(subscription.visitor_id)),
                   "old_price": rendering.format_money(old, after.currency) if old is not None else ""}
        rendered = rendering.render(setting, context, fallback_url=fallback)
        delay = setting.delays[0] if setting.delays else 0
        planned = recipients.plan_rows(
            session, shop=shop, kind=kind, subscriptions=[subscription],
            key=f"{group}:{period}", group_key=group, due_at=now + timedelta(seconds=delay),
            rendered=rendered, now=now, topic=f"a{recipients.short_hash(group, 20)}",
            context={"product_ref": after.product_ref, "variant_ref": after.variant_ref,
                     "interest_id": interest.id},
        )
        if planned:
            stored += planned
            interest.notified_at = now
            if kind == PRICE_DROP:
                interest.seen_price = after.price  # the next alert needs a further drop
    if stored:
        log.info("planned %d %s alert(s) in shop %s", stored, kind, shop.id)
    session.flush()
    return stored


def _interests(session: orm.Session, shop_id: int, kind: str, product_ref: str, variant_ref: str) -> list[Interest]:
    """The interests of ``kind`` in this variant or in the product as a whole."""
    return list(session.scalars(
        sa.select(Interest)
        .where(Interest.shop_id == shop_id, Interest.kind == kind, Interest.product_ref == product_ref,
               Interest.variant_ref.in_({variant_ref, ""}))
        .order_by(Interest.id)
    ))


def _active_subscriptions(session: orm.Session, visitor_ids: set[int]) -> list[Subscription]:
    if not visitor_ids:
        return []
    return list(session.scalars(
        sa.select(Subscription)
        .where(in_ids(Subscription.visitor_id, visitor_ids, session),
               Subscription.status == SubscriptionStatus.ACTIVE.value)
        .order_by(Subscription.id)
    ))


def _recently_alerted(session: orm.Session, shop_id: int, group: str, subscription_ids: list[int],
                      since: datetime) -> set[int]:
    """Subscriptions that got (or have pending) an alert of this product and kind since ``since``."""
    if not subscription_ids:
        return set()
    return set(session.scalars(
        sa.select(Push.subscription_id).distinct()
        .where(Push.shop_id == shop_id, Push.group_key == group, Push.status.in_(ALERTED_STATUSES),
               Push.created_at > since, in_ids(Push.subscription_id, set(subscription_ids), session))
    ))


def seen_price(session: orm.Session, shop_id: int, product_ref: str, variant_ref: str) -> Decimal | None:
    """The product's current stored price (the variant's; for the whole product, its own row or
    else its lowest variant price), or None when the shop has not reported it."""
    rows = list(session.execute(
        sa.select(Product.variant_ref, Product.price)
        .where(Product.shop_id == shop_id, Product.product_ref == product_ref)
    ))
    exact = [price for ref, price in rows if ref == variant_ref]
    if exact:
        return exact[0]
    if variant_ref == "":
        prices = [price for _, price in rows if price is not None]
        return min(prices) if prices else None
    return None
