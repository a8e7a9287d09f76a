"""Looking up a shop's visitor by the widget's ``visitor_id``: one place, always scoped to the shop."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.errors import NotFound
from server.core.models import Shop, Visitor


def visitor_by_key(session: orm.Session, shop_id: int, visitor_key: str) -> Visitor | None:
    """The shop's visitor with this widget ``visitor_id``, or None."""
    return session.scalars(
        sa.select(Visitor).where(Visitor.shop_id == shop_id, Visitor.visitor_key == visitor_key)
    ).one_or_none()


def find_visitor(session: orm.Session, shop: Shop, visitor_key: str) -> Visitor:
    """The shop's visitor with this widget ``visitor_id``; raises NotFound."""
    key = (visitor_key or "").strip()
    visitor = visitor_by_key(session, shop.id, key) if key and len(key) <= 64 else None
    if visitor is None:
        raise NotFound("unknown visitor: no visitor with this id has been seen on your shop",
                       code="unknown_visitor")
    return visitor


VISITOR_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"


def platform_cart_token(token: Any) -> str | None:
    """A platform cart token as checkouts name it: Shopify's ``/cart.js`` token without its ``?key=`` part."""
    if not isinstance(token, str):
        return None
    token = token.split("?", 1)[0].strip()
    return token[:128] or None
