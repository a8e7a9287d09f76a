"""``repurchase``: 7 days (the shop's delay) after a paid order, once per order."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import orm

from server.core.models import Order, Shop
from server.planning import recipients, rendering

KIND = "repurchase"


def _first_item(order: Order) -> dict:
    for item in order.items or []:
        if isinstance(item, dict):
            return item
    return {}


def plan(session: orm.Session, shop: Shop, order: Order, now: datetime) -> int:
    """Plan the repurchase reminder of a paid order; return rows planned."""
    audience = recipients.order_audience(session, shop, KIND, order)
    if audience is None:
        return 0
    setting, subscriptions = audience.setting, audience.subscriptions
    item = _first_item(order)
    context = {
        **audience.context(shop, order),
        "product_title": str(item.get("title") or ""),
        "product_url": rendering.safe_url(item.get("url")) or "",
        "product_image": rendering.safe_url(item.get("image")) or "",
    }
    rendered = rendering.render(setting, context, fallback_url=context["shop_url"])
    delay = setting.delays[0] if setting.delays else 7 * 86400
    return recipients.plan_rows(
        session, shop=shop, kind=KIND, subscriptions=subscriptions, key=f"{KIND}:{order.id}",
        group_key=f"{KIND}:{order.id}", due_at=order.paid_at + timedelta(seconds=delay),
        rendered=rendered, now=now, topic=KIND,
    )
