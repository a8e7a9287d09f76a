"""Order attribution: the latest click on a push by the same visitor within the shop's window."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.models import Click, Order, Shop


def attribute_order(session: orm.Session, shop: Shop, order: Order) -> Click | None:
    """Credit ``order`` to the latest click by its visitor in the attribution window before payment."""
    if order.visitor_id is None:
        return None
    since = order.paid_at - timedelta(hours=shop.attribution_hours)
    click = session.scalars(
        sa.select(Click)
        .where(Click.shop_id == shop.id, Click.visitor_id == order.visitor_id,
               Click.clicked_at >= since, Click.clicked_at <= order.paid_at)
        .order_by(Click.clicked_at.desc(), Click.id.desc())
        .limit(1)
    ).first()
    order.attributed_push_id = click.push_id if click else None
    order.attributed_kind = click.kind if click else None
    return click
