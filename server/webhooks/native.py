"""Merchant webhooks: signature check, validation and the effects of checkouts, orders, shipments.

A webhook is signed ``X-Pushcart-Signature: t=<unix seconds>,v1=<hex>`` with
``HMAC-SHA256(shop secret, "<t>.<raw body>")``. A delivery whose ``id`` was seen before (per
shop and topic) changes nothing. The visitor is found by ``visitor_id``, then by the
checkout's token, then by the platform cart token the widget reported, then by an identified
email.

The platform adapters (``server.webhooks.platforms``) translate Shopify's and WooCommerce's
deliveries into these same models and apply them with the same functions.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql, sqlite

from server.clicks.attribution import attribute_order
from server.core.errors import NotFound, Unauthorized
from server.core.fields import Currency, Email, Ref, Url
from server.core.models import Checkout, Order, Shipment, Shop, Visitor, WebhookReceipt
from server.core.shops import webhook_secrets
from server.planning import checkout_recovery, hooks
from server.core.validation import decode_json, parse
from server.webhooks import products
from server.core.visitors import platform_cart_token
from server.core.visitors import visitor_by_key

log = logging.getLogger(__name__)

TOPICS = ("checkouts", "orders", "shipments", "products")
TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "X-Pushcart-Signature"


# Exact decimals (the body is parsed with Decimal floats), two places at most, never negative.
Total = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False)]


class Item(BaseModel):
    """A line of a checkout or order; unknown fields are dropped."""

    model_config = ConfigDict(extra="ignore")
    id: Annotated[str, StringConstraints(max_length=128)] | StrictInt | None = None
    title: Annotated[str, StringConstraints(max_length=300)] | None = None
    price: Total | None = None
    quantity: Annotated[StrictInt, Field(ge=0, le=10000)] | None = None
    url: Url | None = None
    image: Url | None = None


class _Hook(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: Ref


VisitorRef = Annotated[str, StringConstraints(max_length=64)]
CartToken = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
FirstName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class CheckoutHook(_Hook):
    checkout_token: Ref
    visitor_id: VisitorRef | None = None
    # The platform cart token the widget reported with ``cart_update`` (Shopify's cart_token).
    cart_token: CartToken | None = None
    email: Email | None = None
    first_name: FirstName | None = None
    total: Total
    currency: Currency
    item_count: Annotated[StrictInt, Field(ge=0, le=10000)]
    checkout_url: Url
    items: Annotated[list[Item], Field(max_length=100)] | None = None


class OrderHook(_Hook):
    order_id: Ref
    status: Literal["paid"]
    checkout_token: Ref | None = None
    visitor_id: VisitorRef | None = None
    cart_token: CartToken | None = None
    email: Email | None = None
    total: Total
    currency: Currency
    items: Annotated[list[Item], Field(max_length=100)] | None = None


class ShipmentHook(_Hook):
    order_id: Ref
    tracking_url: Url | None = None
    carrier: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None


class ProductHook(_Hook):
    """A product (or one variant of it) with its price and stock, as the shop reports it."""

    product_id: Ref
    variant_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)] | StrictInt | None = None
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    price: Total | None = None
    currency: Currency
    available: bool
    inventory: Annotated[StrictInt, Field(ge=-1_000_000, le=1_000_000_000)] | None = None
    url: Url | None = None
    image: Url | None = None


MODELS: dict[str, type[_Hook]] = {"checkouts": CheckoutHook, "orders": OrderHook, "shipments": ShipmentHook,
                                  "products": ProductHook}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Pushcart-Signature`` header value for ``body`` (what a shop's back end sends)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(keys: Sequence[str], header: str | None, body: bytes, now: datetime) -> None:
    """Check the signature header against ``body`` with any of ``keys`` (several during a secret
    rotation); raises Unauthorized (bad, missing or stale)."""
    if not header or len(header) > 1000:
        raise Unauthorized(f"the {SIGNATURE_HEADER} header is missing", code="bad_signature")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and value:
            candidates.append(value.strip().lower())
    if timestamp is None or not candidates:
        raise Unauthorized(f"the {SIGNATURE_HEADER} header must be t=<unix seconds>,v1=<hex>",
                           code="bad_signature")
    expected = [hmac.new(key.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()
                for key in keys]
    # Compare every candidate with every key in constant time (several v1 values and keys allow
    # rotating secrets).
    matched = False
    for candidate in candidates:
        for value in expected:
            matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), value.encode("ascii"))
    if not matched:
        raise Unauthorized("the signature does not match", code="bad_signature")
    if abs(now.timestamp() - timestamp) > TOLERANCE_SECONDS:
        raise Unauthorized(f"the signature timestamp is more than {TOLERANCE_SECONDS} s off",
                           code="stale_signature")


def parse_body(topic: str, body: bytes) -> _Hook:
    """Parse and validate a webhook body; raises Malformed (not JSON) or Invalid (a field)."""
    # decode_json keeps the request limits (depth, string length, no NUL or NaN) of every JSON body.
    data = decode_json(body, parse_float=Decimal)
    return parse(MODELS[topic], data)


def _insert(session: orm.Session, model: Any) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(model)


def first_receipt(session: orm.Session, shop: Shop, topic: str, webhook_id: str, now: datetime) -> bool:
    """Record the delivery ``id`` under ``topic`` (16 characters at most); False when it was seen
    before (the unique key decides)."""
    result = session.execute(
        _insert(session, WebhookReceipt)
        .values(shop_id=shop.id, topic=topic, webhook_id=webhook_id, received_at=now)
        .on_conflict_do_nothing(index_elements=["shop_id", "topic", "webhook_id"])
        .returning(WebhookReceipt.id)
    )
    # RETURNING, not rowcount: drivers report rowcount -1 for some ORM inserts.
    return result.first() is not None


def link_visitor(session: orm.Session, shop: Shop, visitor_key: str | None,
                 checkout: Checkout | None, email: str | None, cart_token: str | None = None) -> Visitor | None:
    """The visitor by widget id, then by the checkout's visitor, then by the platform cart token
    the widget reported (``cart_update``), then by an identified email."""
    if visitor_key:
        visitor = visitor_by_key(session, shop.id, visitor_key)
        if visitor is not None:
            return visitor
    if checkout is not None and checkout.visitor_id is not None:
        visitor = session.get(Visitor, checkout.visitor_id)
        if visitor is not None:
            return visitor
    token = platform_cart_token(cart_token)
    if token:
        visitor = session.scalars(
            sa.select(Visitor)
            .where(Visitor.shop_id == shop.id, Visitor.cart_token == token)
            .order_by(Visitor.last_event_at.desc().nulls_last(), Visitor.id.desc())
            .limit(1)
        ).first()
        if visitor is not None:
            return visitor
    if email:
        return session.scalars(
            sa.select(Visitor)
            # The collect API stores identified emails in lower case, so the index on email serves.
            .where(Visitor.shop_id == shop.id, Visitor.email == email.lower())
            .order_by(Visitor.last_event_at.desc().nulls_last(), Visitor.id.desc())
            .limit(1)
        ).first()
    return None


def _items(items: list[Item] | None) -> list[dict[str, Any]] | None:
    return [i.model_dump(mode="json", exclude_none=True) for i in items] if items is not None else None


def handle(session: orm.Session, shop: Shop, topic: str, body: bytes, signature: str | None,
           now: datetime) -> dict[str, Any]:
    """Verify, validate and apply one webhook; return the response body.

    Raises NotFound (unknown topic), Unauthorized (signature), Malformed/Invalid (body).
    Nothing is stored before every check has passed.
    """
    if topic not in TOPICS:
        raise NotFound(f"unknown webhook topic {topic!r}; use one of {', '.join(TOPICS)}", code="unknown_topic")
    verify_signature(webhook_secrets(shop, now), signature, body, now)
    payload = parse_body(topic, body)
    if not first_receipt(session, shop, topic, payload.id, now):
        log.info("webhook %s %s for shop %s already received", topic, payload.id, shop.id)
        return {"received": True, "duplicate": True}
    apply(session, shop, payload, now)
    log.info("webhook %s %s for shop %s applied", topic, payload.id, shop.id)
    return {"received": True, "duplicate": False}


def apply(session: orm.Session, shop: Shop, payload: _Hook, now: datetime) -> None:
    """Apply one validated webhook (native, or translated from a platform's delivery)."""
    if isinstance(payload, CheckoutHook):
        _apply_checkout(session, shop, payload, now)
    elif isinstance(payload, OrderHook):
        _apply_order(session, shop, payload, now)
    elif isinstance(payload, ShipmentHook):
        _apply_shipment(session, shop, payload, now)
    elif isinstance(payload, ProductHook):
        _apply_product(session, shop, payload, now)
    session.flush()


def _apply_checkout(session: orm.Session, shop: Shop, hook: CheckoutHook, now: datetime) -> None:
    existing = checkout_recovery.find(session, shop.id, hook.checkout_token)
    visitor = link_visitor(session, shop, hook.visitor_id, existing, hook.email, hook.cart_token)
    if visitor is not None and hook.first_name and not visitor.first_name:
        visitor.first_name = hook.first_name
    data = checkout_recovery.CheckoutData(
        token=hook.checkout_token, total=hook.total, currency=hook.currency,
        item_count=hook.item_count, checkout_url=hook.checkout_url, items=_items(hook.items),
        email=hook.email,
    )
    hooks.on_checkout(session, shop, data, visitor, now)


def _apply_order(session: orm.Session, shop: Shop, hook: OrderHook, now: datetime) -> None:
    order = session.scalars(
        sa.select(Order).where(Order.shop_id == shop.id, Order.order_ref == hook.order_id)
    ).one_or_none()
    if order is not None:
        # The same order paid again under a new delivery id: already planned for.
        log.info("order %s already recorded for shop %s", order.id, shop.id)
        return
    checkout = checkout_recovery.find(session, shop.id, hook.checkout_token) if hook.checkout_token else None
    visitor = link_visitor(session, shop, hook.visitor_id, checkout, hook.email, hook.cart_token)
    if checkout is not None and checkout.visitor_id is None and visitor is not None:
        checkout.visitor_id = visitor.id
    order = Order(
        shop_id=shop.id, order_ref=hook.order_id, visitor_id=visitor.id if visitor else None,
        checkout_id=checkout.id if checkout else None, email=hook.email, status=hook.status,
        total=hook.total, currency=hook.currency, items=_items(hook.items), paid_at=now,
    )
    session.add(order)
    session.flush()
    hooks.on_order_paid(session, shop, order, checkout, now)
    attribute_order(session, shop, order)


def _apply_shipment(session: orm.Session, shop: Shop, hook: ShipmentHook, now: datetime) -> None:
    known = session.scalars(
        sa.select(Shipment.id).where(Shipment.shop_id == shop.id, Shipment.shipment_ref == hook.id)
    ).first()
    if known is not None:
        # The same shipment again under a new delivery id (a platform names it by its own id).
        log.info("shipment %s already recorded for shop %s", known, shop.id)
        return
    order = session.scalars(
        sa.select(Order).where(Order.shop_id == shop.id, Order.order_ref == hook.order_id)
    ).one_or_none()
    shipment = Shipment(
        shop_id=shop.id, shipment_ref=hook.id, order_id=order.id if order else None,
        order_ref=hook.order_id, tracking_url=hook.tracking_url, carrier=hook.carrier, created_at=now,
    )
    session.add(shipment)
    session.flush()
    hooks.on_shipment(session, shop, shipment, order, now)



def _apply_product(session: orm.Session, shop: Shop, hook: ProductHook, now: datetime) -> None:
    variant = "" if hook.variant_id is None else str(hook.variant_id)
    products.upsert(session, shop, products.ProductData(
        product_ref=hook.product_id, variant_ref=variant, title=hook.title, price=hook.price,
        currency=hook.currency, available=hook.available, inventory=hook.inventory, url=hook.url,
        image=hook.image,
    ), now)
