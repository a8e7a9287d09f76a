"""``checkout_recovery``: a series of 1 to 5 steps after a checkout starts, stopped by payment.

The ``Checkout`` row is created or updated from the widget's ``checkout_started`` event or the
``checkouts`` webhook; each step is planned at ``started_at + offset``. When the order is
paid, every pending step is cancelled. Spacing between steps that were actually sent is kept
at send time by ``policy.gate`` (a late first step shifts the rest instead of bunching them).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc, orm

from server.core.models import Checkout, Shop, Visitor
from server.outbox import plan as outbox
from server.planning import defaults, recipients, rendering

KIND = "checkout_recovery"


@dataclass(frozen=True)
class CheckoutData:
    """What a checkout looks like, from the widget's cart or the webhook."""

    token: str
    total: Decimal | None = None
    currency: str | None = None
    item_count: int | None = None
    checkout_url: str | None = None
    items: list[Any] | None = None
    email: str | None = None


def group_key(checkout: Checkout) -> str:
    """The plan name of a checkout's series."""
    return f"checkout:{checkout.id}"


def find(session: orm.Session, shop_id: int, token: str) -> Checkout | None:
    """The shop's checkout with this token, or None."""
    return session.scalars(
        sa.select(Checkout).where(Checkout.shop_id == shop_id, Checkout.token == token)
    ).one_or_none()


def record(session: orm.Session, shop: Shop, data: CheckoutData, visitor: Visitor | None,
           now: datetime) -> Checkout:
    """Create or update the checkout ``data.token`` (a known visitor is kept) and plan its steps."""
    checkout = find(session, shop.id, data.token)
    if checkout is None:
        checkout = Checkout(shop_id=shop.id, token=data.token, started_at=now)
        try:
            with session.begin_nested():
                session.add(checkout)
        except exc.IntegrityError:
            # The same token arrived through the widget and the webhook at once: use the stored one.
            checkout = find(session, shop.id, data.token)
            if checkout is None:
                raise
    if visitor is not None and checkout.visitor_id is None:
        checkout.visitor_id = visitor.id
    for name in ("email", "total", "currency", "item_count", "checkout_url", "items"):
        value = getattr(data, name)
        if value is not None:
            setattr(checkout, name, value)
    if checkout.checkout_url and rendering.safe_url(checkout.checkout_url) is None:
        checkout.checkout_url = None
    session.flush()
    plan(session, shop, checkout, now)
    return checkout


def _context(shop: Shop, checkout: Checkout, visitor: Visitor | None) -> dict[str, Any]:
    items = [i for i in (checkout.items or []) if isinstance(i, dict)]
    first = items[0] if items else {}
    currency = checkout.currency or shop.currency
    return {
        **rendering.base_context(shop, visitor),
        "cart_total": rendering.format_money(checkout.total, currency),
        "item_count": checkout.item_count if checkout.item_count is not None else len(items),
        "checkout_url": rendering.safe_url(checkout.checkout_url) or "",
        "cart_url": rendering.safe_url(checkout.checkout_url) or "",
        "product_title": str(first.get("title") or ""),
        "product_price": rendering.format_money(first.get("price"), currency),
        "product_url": rendering.safe_url(first.get("url")) or "",
        "product_image": rendering.safe_url(first.get("image")) or "",
    }


def plan(session: orm.Session, shop: Shop, checkout: Checkout, now: datetime) -> int:
    """Plan every step of an unpaid checkout's series (idempotent); return rows planned."""
    if checkout.paid_at is not None or checkout.visitor_id is None:
        return 0
    setting = defaults.get_setting(session, shop, KIND)
    if not setting.enabled or not setting.delays:
        return 0
    subscriptions = recipients.active_subscriptions(session, checkout.visitor_id)
    if not subscriptions:
        return 0
    visitor = session.get(Visitor, checkout.visitor_id)
    context = _context(shop, checkout, visitor)
    fallback_url = context["checkout_url"] or context["shop_url"]
    texts = list(setting.steps or [])
    # A newer step replaces an undelivered older one of the same checkout at the push service.
    topic = f"checkout-{recipients.short_hash(checkout.token)}"
    planned = 0
    previous = None
    for step, offset in enumerate(setting.delays, start=1):  # steps are 1-based
        own = texts[step - 1] if step <= len(texts) else None
        rendered = rendering.render(setting, context, fallback_url=fallback_url, texts=own)
        planned += recipients.plan_rows(
            session, shop=shop, kind=KIND, subscriptions=subscriptions,
            key=f"checkout:{checkout.id}:{step}", group_key=group_key(checkout),
            due_at=checkout.started_at + timedelta(seconds=offset), rendered=rendered, now=now,
            step=step, topic=topic, context={"offset": offset, "previous_offset": previous},
        )
        previous = offset
    return planned


def mark_paid(session: orm.Session, shop: Shop, checkout: Checkout, now: datetime) -> int:
    """The checkout's order is paid: stop the series; return the steps cancelled."""
    if checkout.paid_at is None:
        checkout.paid_at = now
    return outbox.cancel_group(session, shop.id, group_key(checkout), reason="order_paid")
