"""Push and visitor records for the merchant: paginated, filterable, one shop at a time.

Both lists are read off an index in their own order, so a page costs the same at any shop size:
push records by ``(shop_id, due_at, id)`` (newest due first), visitor records by ``(shop_id,
first_seen_at, id)`` (newest first; the time of a visitor's latest event is kept out of every
index, so an event's update of its visitor stays heap-only, and cannot be the order). A page
carries ``next``, a cursor for the page after it (keyset pagination: ``?cursor=``); ``?page=``
still works, by offset. The total is counted up to ``COUNT_CAP`` rows (``total_capped`` says
there are more).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.db import UTCDateTime
from server.core.errors import Invalid
from server.core.models import (ALL_KINDS, Checkout, Click, Event, Order, Push, PushStatus, Subscription, SubscriptionStatus, Visitor, VisitorTag)
from server.clicks.service import is_http_url
from server.reports.stats import money

PER_PAGE = 50
MAX_PAGE = 10_000
PUSH_STATUSES = tuple(s.value for s in PushStatus)
PRODUCTS_SHOWN = 5
COUNT_CAP = 10_000  # rows counted for ``total``; beyond it the total is a floor
_CURSOR = re.compile(r"^(\d{1,17})-(\d{1,19})$")


@dataclass(frozen=True)
class Page:
    """One page of records and where it sits."""

    items: list[dict[str, Any]]
    page: int | None  # None for a page asked for by cursor
    per_page: int
    total: int
    next: str | None = None  # the cursor of the page after this one
    total_capped: bool = False

    def as_json(self) -> dict[str, Any]:
        """The page in the API's shape."""
        pages = max(1, -(-self.total // self.per_page))
        return {"items": self.items, "page": self.page, "per_page": self.per_page,
                "total": self.total, "total_capped": self.total_capped, "pages": pages,
                "has_more": self.next is not None, "next": self.next}


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after the row with this sort time and id (both descending)."""

    at: datetime
    id: int

    def __str__(self) -> str:
        delta = self.at - datetime(1970, 1, 1, tzinfo=timezone.utc)
        return f"{delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds}-{self.id}"


def read_cursor(raw: str | None) -> Cursor | None:
    """A cursor from a query string (what a page's ``next`` gave); raises Invalid."""
    if raw in (None, ""):
        return None
    match = _CURSOR.match(raw)
    if match is None:
        raise Invalid("cursor must be the next value of a previous page", code="invalid_field")
    micros, row_id = int(match[1]), int(match[2])
    try:
        at = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
    except OverflowError:
        raise Invalid("cursor must be the next value of a previous page", code="invalid_field") from None
    return Cursor(at, row_id)


def _after(time_column: Any, id_column: Any, cursor: Cursor) -> sa.ColumnElement[bool]:
    """Rows after ``cursor`` in ``time DESC, id DESC`` order: a row comparison, which both
    databases read as one range of the ``(shop_id, time, id)`` index (an OR of the two cases
    would be read from the index's start, filtered)."""
    return sa.tuple_(time_column, id_column) < sa.tuple_(sa.literal(cursor.at, UTCDateTime()),
                                                        sa.literal(cursor.id, sa.BigInteger()))


def _count(session: orm.Session, query: sa.Select[Any]) -> tuple[int, bool]:
    """How many rows ``query`` has, counted up to ``COUNT_CAP``; and whether there are more."""
    counted = int(session.scalar(sa.select(sa.func.count()).select_from(query.limit(COUNT_CAP + 1).subquery())) or 0)
    return min(counted, COUNT_CAP), counted > COUNT_CAP


def read_page(raw: str | None) -> int:
    """A 1-based page number from a query string; raises Invalid."""
    if raw in (None, ""):
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise Invalid(f"page must be a number from 1 to {MAX_PAGE}", code="invalid_field")
    return int(raw)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _link(value: str | None) -> str | None:
    """Only http(s) URLs are offered as links."""
    return value if is_http_url(value) else None


def list_pushes(session: orm.Session, shop_id: int, *, kind: str | None = None, status: str | None = None,
                visitor_key: str | None = None, page: int = 1, per_page: int = PER_PAGE,
                cursor: Cursor | None = None) -> Page:
    """The shop's push records, newest due first (after ``cursor``, else page ``page``); raises
    Invalid for an unknown kind or status."""
    if kind and kind not in ALL_KINDS:
        raise Invalid(f"kind must be one of {', '.join(ALL_KINDS)}", code="invalid_field")
    if status and status not in PUSH_STATUSES:
        raise Invalid(f"status must be one of {', '.join(PUSH_STATUSES)}", code="invalid_field")
    conditions = [Push.shop_id == shop_id]
    if kind:
        conditions.append(Push.kind == kind)
    if status:
        conditions.append(Push.status == status)
    if visitor_key:
        conditions.append(Push.visitor_id.in_(
            sa.select(Visitor.id).where(Visitor.shop_id == shop_id, Visitor.visitor_key == visitor_key)))
    total, capped = _count(session, sa.select(Push.id).where(*conditions))
    if cursor is not None:
        conditions.append(_after(Push.due_at, Push.id, cursor))
    clicks = (sa.select(sa.func.count()).where(Click.push_id == Push.id).correlate(Push).scalar_subquery())
    rows = session.execute(
        sa.select(Push, Visitor.visitor_key, clicks.label("clicks"))
        .outerjoin(Visitor, Visitor.id == Push.visitor_id)
        .where(*conditions)
        .order_by(Push.due_at.desc(), Push.id.desc())
        .limit(per_page + 1).offset(0 if cursor is not None else (page - 1) * per_page)
    ).all()
    more, rows = len(rows) > per_page, rows[:per_page]
    following = str(Cursor(rows[-1][0].due_at, rows[-1][0].id)) if more else None
    items = [{
        "id": push.id,
        "kind": push.kind,
        "visitor": key,
        "subscription_id": push.subscription_id,
        # Series steps are stored 1-based (the first checkout step is 1); single pushes have none.
        "step": push.step or None,
        "status": push.status,
        "http_status": push.http_status,
        "error": push.error,
        "title": push.title,
        "body": push.body,
        "url": _link(push.url),
        "icon": _link(push.icon),
        "image": _link(push.image),
        "due_at": _iso(push.due_at),
        "sent_at": _iso(push.sent_at),
        "time": _iso(push.sent_at or push.due_at),
        "clicked": push.clicked_at is not None,
        "clicked_at": _iso(push.clicked_at),
        "clicks": n_clicks,
    } for push, key, n_clicks in rows]
    return Page(items, None if cursor is not None else page, per_page, total, following, capped)


def list_visitors(session: orm.Session, shop_id: int, *, subscribed: bool | None = None, page: int = 1,
                  per_page: int = PER_PAGE, cursor: Cursor | None = None) -> Page:
    """The shop's visitor records, newest first (after ``cursor``, else page ``page``), with their counts."""
    conditions = [Visitor.shop_id == shop_id]
    active_sub = sa.exists().where(Subscription.visitor_id == Visitor.id,
                                   Subscription.status == SubscriptionStatus.ACTIVE.value)
    if subscribed is not None:
        conditions.append(active_sub if subscribed else ~active_sub)
    total, capped = _count(session, sa.select(Visitor.id).where(*conditions))
    if cursor is not None:
        conditions.append(_after(Visitor.first_seen_at, Visitor.id, cursor))

    def count(model: Any, *where: Any) -> Any:
        return sa.select(sa.func.count()).select_from(model).where(*where).correlate(Visitor).scalar_subquery()

    rows = session.execute(
        sa.select(
            Visitor,
            # A probe per row of the page: as a CASE over EXISTS, PostgreSQL hashed every
            # subscription of the instance once per page.
            sa.func.coalesce(sa.select(sa.true()).where(Subscription.visitor_id == Visitor.id,
                                                        Subscription.status == SubscriptionStatus.ACTIVE.value)
                             .limit(1).correlate(Visitor).scalar_subquery(), sa.false()).label("subscribed"),
            count(Event, Event.visitor_id == Visitor.id, Event.type == "product_view").label("views"),
            count(Event, Event.visitor_id == Visitor.id, Event.type == "add_to_cart").label("carts"),
            count(Checkout, Checkout.visitor_id == Visitor.id).label("checkouts"),
            count(Push, Push.visitor_id == Visitor.id, Push.status == PushStatus.SENT.value).label("received"),
            count(Push, Push.visitor_id == Visitor.id, Push.clicked_at.is_not(None)).label("clicked"),
            count(Order, Order.visitor_id == Visitor.id, Order.status == "paid").label("orders"),
            sa.select(sa.func.sum(Order.total)).where(Order.visitor_id == Visitor.id, Order.status == "paid")
            .correlate(Visitor).scalar_subquery().label("spent"),
        )
        .where(*conditions)
        .order_by(Visitor.first_seen_at.desc(), Visitor.id.desc())
        .limit(per_page + 1).offset(0 if cursor is not None else (page - 1) * per_page)
    ).all()
    more, rows = len(rows) > per_page, rows[:per_page]
    following = str(Cursor(rows[-1][0].first_seen_at, rows[-1][0].id)) if more else None
    products = _recent_products(session, [row[0].id for row in rows])
    tags = _tags(session, shop_id, [row[0].id for row in rows])
    items = []
    for visitor, is_subscribed, views, carts, checkouts, received, clicked, orders, spent in rows:
        items.append({
            "id": visitor.visitor_key,
            "first_seen": _iso(visitor.first_seen_at),
            "last_seen": _iso(visitor.last_event_at),
            "email": visitor.email,
            "first_name": visitor.first_name,
            "source": {
                "referrer": visitor.referrer,
                "referrer_link": _link(visitor.referrer),
                "utm_source": visitor.utm_source,
                "utm_medium": visitor.utm_medium,
                "utm_campaign": visitor.utm_campaign,
                "landing_url": visitor.landing_url,
            },
            "subscribed": bool(is_subscribed),
            "products_viewed": views,
            "recent_products": products.get(visitor.id, []),
            "tags": tags.get(visitor.id, []),
            "carted": carts > 0 or checkouts > 0,
            "add_to_carts": carts,
            "checkouts": checkouts,
            "pushes_received": received,
            "pushes_clicked": clicked,
            "orders": orders,
            "spent": money(spent),
        })
    return Page(items, None if cursor is not None else page, per_page, total, following, capped)


def _tags(session: orm.Session, shop_id: int, visitor_ids: list[int]) -> dict[int, list[str]]:
    """The tags of these visitors (on-site quick replies set them), each visitor's in name order."""
    found: dict[int, list[str]] = {}
    if visitor_ids:
        for visitor_id, tag in session.execute(
                sa.select(VisitorTag.visitor_id, VisitorTag.tag)
                .where(VisitorTag.shop_id == shop_id, VisitorTag.visitor_id.in_(visitor_ids))
                .order_by(VisitorTag.tag)):
            found.setdefault(visitor_id, []).append(tag)
    return found


def _recent_products(session: orm.Session, visitor_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The latest distinct products each of these visitors viewed (a page's worth of visitors)."""
    if not visitor_ids:
        return {}
    found: dict[int, list[dict[str, Any]]] = {}
    seen: set[tuple[int, str]] = set()
    # Bounded: only this page's visitors, newest views first, a few hundred rows at most.
    for visitor_id, product in session.execute(
        sa.select(Event.visitor_id, Event.product)
        .where(Event.visitor_id.in_(visitor_ids), Event.type == "product_view", Event.product.is_not(None))
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(len(visitor_ids) * 20)
    ).all():
        if not isinstance(product, dict):
            continue
        title = str(product.get("title") or product.get("id") or "")[:200]
        if not title or (visitor_id, title) in seen or len(found.get(visitor_id, [])) >= PRODUCTS_SHOWN:
            continue
        seen.add((visitor_id, title))
        found.setdefault(visitor_id, []).append({"title": title, "url": _link(product.get("url"))})
    return found
