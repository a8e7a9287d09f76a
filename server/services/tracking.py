"""What the widget reports: visitors and their events.

Visitors are created on first contact, keyed by the widget's random ``visitor_id``. Events are
stamped with the server's ``now`` (a client's clock is never trusted) and stored once per
client event id, then handed to the preset hooks.
"""
from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import exc, orm

from ..models import Event, Shop, Visitor
from ..presets import hooks
from .visitors import visitor_by_key

log = logging.getLogger(__name__)

MAX_EVENTS_PER_BATCH = 50
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "remove_from_cart", "checkout_started",
               "leave", "identify")
VISITOR_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"


def _http_url(value: str | None) -> str | None:
    """Accept only absolute http(s) URLs (no javascript:, data:, or credentials)."""
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if parts.username is not None or any(ord(ch) < 0x20 for ch in value):
        raise ValueError("must be a plain http(s) URL")
    return value


def _money(value: Decimal) -> Decimal:
    """A non-negative amount with at most two decimals, kept exact."""
    if not value.is_finite() or value < 0 or value >= Decimal("1e12"):
        raise ValueError("must be a non-negative amount below 10^12")
    cents = value.quantize(Decimal("0.01"))
    if cents != value:
        raise ValueError("must have at most two decimal places")
    return cents


Url = Annotated[str | None, StringConstraints(max_length=2048), AfterValidator(_http_url)]
Money = Annotated[Decimal, AfterValidator(_money)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Ref = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
VisitorKey = Annotated[str, StringConstraints(pattern=VISITOR_ID_PATTERN)]


class _Loose(BaseModel):
    # Unknown fields are dropped, not refused, so an older server accepts a newer widget.
    model_config = ConfigDict(extra="ignore")


class ProductIn(_Loose):
    id: Ref
    title: Text
    price: Money | None = None
    currency: Currency | None = None
    url: Url = None
    image: Url = None


class CartItemIn(_Loose):
    id: Ref
    title: Text | None = None
    price: Money | None = None
    quantity: int = Field(default=1, ge=0, le=10_000)
    url: Url = None
    image: Url = None


class CartIn(_Loose):
    token: Ref
    total: Money
    currency: Currency
    item_count: int = Field(ge=0, le=10_000)
    checkout_url: Url = None
    items: list[CartItemIn] | None = Field(default=None, max_length=100)


class EventIn(_Loose):
    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] | None = None
    url: Url = None
    referrer: Url = None
    product: ProductIn | None = None
    cart: CartIn | None = None
    # identify only
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320,
                                            pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    customer_id: Ref | None = None
    first_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None


class EventBatch(_Loose):
    visitor_id: VisitorKey
    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


def get_or_create_visitor(session: orm.Session, shop: Shop, visitor_key: str, now: datetime) -> Visitor:
    """The shop's visitor with this key, created on first contact (safe under concurrent requests)."""
    visitor = visitor_by_key(session, shop.id, visitor_key)
    if visitor is not None:
        return visitor
    visitor = Visitor(shop_id=shop.id, visitor_key=visitor_key, first_seen_at=now)
    try:
        with session.begin_nested():
            session.add(visitor)
    except exc.IntegrityError:
        # Another request created it between our read and our insert.
        visitor = session.scalars(
            sa.select(Visitor).where(Visitor.shop_id == shop.id, Visitor.visitor_key == visitor_key)).one()
    return visitor


def _fill_source(visitor: Visitor, event: EventIn) -> None:
    """The first page view tells where the visitor came from."""
    if visitor.landing_url is not None or event.url is None:
        return
    visitor.landing_url = event.url
    visitor.referrer = event.referrer
    query = parse_qs(urlsplit(event.url).query)
    for field in ("utm_source", "utm_medium", "utm_campaign"):
        values = query.get(field)
        if values and values[0].strip():
            setattr(visitor, field, values[0].strip()[:200])


def _identify(visitor: Visitor, event: EventIn) -> None:
    if event.email:
        visitor.email = event.email.lower()
    if event.customer_id:
        visitor.customer_id = event.customer_id
    if event.first_name:
        visitor.first_name = event.first_name


def _new_rows(session: orm.Session, shop: Shop, visitor: Visitor, batch: list[EventIn], now: datetime) -> list[Event]:
    """Event rows for the events not stored before (ids seen in the database or earlier in the batch)."""
    ids = {e.id for e in batch if e.id}
    seen: set[str] = set()
    if ids:
        seen = set(session.scalars(sa.select(Event.client_event_id)
                                   .where(Event.shop_id == shop.id, Event.client_event_id.in_(ids))))
    rows = []
    for event in batch:
        if event.id:
            if event.id in seen:
                continue
            seen.add(event.id)
        rows.append(Event(
            shop_id=shop.id, visitor_id=visitor.id, type=event.type, client_event_id=event.id,
            occurred_at=now, url=event.url, referrer=event.referrer,
            product=event.product.model_dump(mode="json", exclude_none=True) if event.product else None,
            cart=event.cart.model_dump(mode="json", exclude_none=True) if event.cart else None,
        ))
    return rows


def _insert(session: orm.Session, rows: list[Event]) -> list[Event]:
    """Insert ``rows``; on an id conflict with a concurrent request, keep the ones that fit."""
    try:
        with session.begin_nested():
            session.add_all(rows)
        return rows
    except exc.IntegrityError:
        stored = []
        for row in rows:
            fresh = Event(**{c.key: getattr(row, c.key) for c in sa.inspect(Event).column_attrs if c.key != "id"})
            try:
                with session.begin_nested():
                    session.add(fresh)
                stored.append(fresh)
            except exc.IntegrityError:
                continue  # this id arrived through another request meanwhile
        return stored


def record_events(session: orm.Session, shop: Shop, batch: EventBatch, now: datetime) -> list[Event]:
    """Store a batch from the widget and tell the presets; return the events stored new.

    A repeated event id (a retried beacon) is stored once. The visitor's identity fields
    (``identify``) and source (first page view's referrer and utm parameters) are filled in.
    """
    visitor = get_or_create_visitor(session, shop, batch.visitor_id, now)
    rows = _insert(session, _new_rows(session, shop, visitor, batch.events, now))
    for event in batch.events:
        if event.type == "page_view":
            _fill_source(visitor, event)
        elif event.type == "identify":
            _identify(visitor, event)
    visitor.last_event_at = now
    session.flush()
    if rows:
        hooks.on_events(session, shop, visitor, rows, now)
    log.info("shop %s visitor %s: %d event(s) stored of %d", shop.id, visitor.id, len(rows), len(batch.events))
    return rows
