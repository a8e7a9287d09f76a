"""Products: a shop's products and variants with their latest price and stock.

Shopify's ``products/update``, WooCommerce's ``product.updated`` and the native ``products``
webhook all end in ``upsert``, which returns the state before and after, and tells
``hooks.on_product_updated`` (where back-in-stock and price-drop alerts will be planned).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import exc, orm

from server.core.models import Product, Shop
from server.planning import hooks


@dataclass(frozen=True, slots=True)
class ProductData:
    """What a platform says of one product or variant (``variant_ref`` is ``""`` for none)."""

    product_ref: str
    variant_ref: str
    title: str
    price: Decimal | None
    currency: str
    available: bool
    inventory: int | None = None
    url: str | None = None
    image: str | None = None


_STATE = tuple(f.name for f in fields(ProductData))


def state_of(product: Product) -> ProductData:
    """A stored product's state, detached from the row (safe to keep after the row changes)."""
    return ProductData(**{name: getattr(product, name) for name in _STATE})


def find(session: orm.Session, shop_id: int, product_ref: str, variant_ref: str) -> Product | None:
    """The shop's product row for this product and variant, or None."""
    return session.scalars(
        sa.select(Product).where(Product.shop_id == shop_id, Product.product_ref == product_ref,
                                 Product.variant_ref == variant_ref)
    ).one_or_none()


def upsert(session: orm.Session, shop: Shop, data: ProductData,
           now: datetime) -> tuple[ProductData | None, ProductData]:
    """Create or update one product row; return its state before (None when new) and after."""
    row = find(session, shop.id, data.product_ref, data.variant_ref)
    if row is None:
        row = Product(shop_id=shop.id, **{name: getattr(data, name) for name in _STATE}, updated_at=now)
        try:
            with session.begin_nested():
                session.add(row)
            before = None
        except exc.IntegrityError:
            # The same product arrived twice at once: update the stored one.
            row = find(session, shop.id, data.product_ref, data.variant_ref)
            if row is None:
                raise
            before = state_of(row)
    else:
        before = state_of(row)
    if before is not None:
        for name in _STATE:
            setattr(row, name, getattr(data, name))
        row.updated_at = now
    session.flush()
    after = state_of(row)
    hooks.on_product_updated(session, shop, before, after, now)
    return before, after
