"""Interests: a visitor's "notify me" on a product, stored for the alert planner.

The widget posts one after the visitor subscribed (``pushcart.notifyMe`` or a
``[data-pushcart-notify]`` button). Each kind is one row, unique per (shop, visitor, product,
variant, kind), so posting again changes nothing. The product's current price (when the shop
has reported it through the products webhooks) is kept as the price the visitor saw: a price
drop is measured from it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import exc, orm

from server.collect.events import ItemRef, VisitorKey, get_or_create_visitor
from server.core.errors import Invalid
from server.core.models import ALERT_KINDS, Interest, Shop
from server.planning.alerts import seen_price

log = logging.getLogger(__name__)

# A visitor's open interests: far above what a shopper clicks, low enough that a script
# posting ids in a loop cannot fill the table through one visitor id.
MAX_INTERESTS_PER_VISITOR = 200


class InterestIn(BaseModel):
    """``{"visitor_id", "product_id", "variant_id"?, "kinds"}`` as the widget posts it."""

    model_config = ConfigDict(extra="ignore")
    visitor_id: VisitorKey
    product_id: ItemRef
    variant_id: ItemRef | None = None
    kinds: list[Literal["back_in_stock", "price_drop"]] = Field(min_length=1, max_length=len(ALERT_KINDS))

    @field_validator("kinds")
    @classmethod
    def _distinct(cls, kinds: list[str]) -> list[str]:
        return list(dict.fromkeys(kinds))  # a kind named twice is one interest


@dataclass(frozen=True)
class Registered:
    """The stored interests, and whether this call created any of them."""

    interests: list[Interest]
    created: bool


def _find(session: orm.Session, shop_id: int, visitor_id: int, product_ref: str, variant_ref: str,
          kind: str) -> Interest | None:
    return session.scalars(sa.select(Interest).where(
        Interest.shop_id == shop_id, Interest.visitor_id == visitor_id, Interest.product_ref == product_ref,
        Interest.variant_ref == variant_ref, Interest.kind == kind)).one_or_none()


def register_interest(session: orm.Session, shop: Shop, data: InterestIn, now: datetime) -> Registered:
    """Store the visitor's interest in each kind of ``data``; raises Invalid past the per-visitor limit."""
    visitor = get_or_create_visitor(session, shop, data.visitor_id, now)
    session.flush()
    variant_ref = data.variant_id or ""
    price = seen_price(session, shop.id, data.product_id, variant_ref)
    stored, created = [], False
    for kind in data.kinds:
        interest = _find(session, shop.id, visitor.id, data.product_id, variant_ref, kind)
        if interest is None:
            count = session.scalar(sa.select(sa.func.count()).select_from(Interest).where(
                Interest.shop_id == shop.id, Interest.visitor_id == visitor.id))
            if (count or 0) >= MAX_INTERESTS_PER_VISITOR:
                raise Invalid(f"a visitor may follow at most {MAX_INTERESTS_PER_VISITOR} products",
                              code="too_many_interests")
            interest = Interest(shop_id=shop.id, visitor_id=visitor.id, product_ref=data.product_id,
                                variant_ref=variant_ref, kind=kind, seen_price=price, created_at=now)
            try:
                with session.begin_nested():
                    session.add(interest)
                created = True
            except exc.IntegrityError:
                # The same interest arrived through a concurrent request: it is known.
                interest = _find(session, shop.id, visitor.id, data.product_id, variant_ref, kind)
                if interest is None:
                    raise
        stored.append(interest)
    session.flush()
    if created:
        log.info("shop %s visitor %s: interest in a product (%s)", shop.id, visitor.id, ", ".join(data.kinds))
    return Registered(interests=stored, created=created)
