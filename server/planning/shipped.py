"""``shipped``: once per shipment, at once, linking to the tracking page (transactional)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import orm

from server.core.models import Order, Shipment, Shop
from server.planning import recipients, rendering

KIND = "shipped"


def plan(session: orm.Session, shop: Shop, shipment: Shipment, order: Order | None,
         now: datetime) -> int:
    """Plan the shipped push to every active subscription of the order's visitor; return rows planned."""
    audience = recipients.order_audience(session, shop, KIND, order)
    if audience is None:
        return 0
    setting, subscriptions = audience.setting, audience.subscriptions
    context = {
        **audience.context(shop, order),
        "tracking_url": rendering.safe_url(shipment.tracking_url) or "",
        "carrier": shipment.carrier or "",
    }
    rendered = rendering.render(setting, context, fallback_url=context["shop_url"])
    delay = setting.delays[0] if setting.delays else 0
    return recipients.plan_rows(
        session, shop=shop, kind=KIND, subscriptions=subscriptions, key=f"{KIND}:{shipment.id}",
        group_key=f"{KIND}:{shipment.id}", due_at=now + timedelta(seconds=delay),
        rendered=rendered, now=now,
    )
