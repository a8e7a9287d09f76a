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

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.db import UTCDateTime
from server.core.errors import Invalid
from server.core.models import (CAMPAIGN_KIND, RECORD_KINDS, TEST_DEVICE_PREFIX, Campaign, Checkout, Click, Event, Order, Push, PushStatus, Subscription, SubscriptionStatus, Visitor, VisitorTag)
from server.clicks.service import is_http_url
from server.delivery.policy import is_test_push
from server.planning.campaigns import group_key as campaign_group_key
from server.reports.stats import FIRST_DAY, LAST_DAY, money

PER_PAGE = 50
MAX_PAGE = 10_000
PUSH_STATUSES = tuple(s.value for s in PushStatus)
PRODUCTS_SHOWN = 5
COUNT_CAP = 10_000  # rows counted for ``total``; beyond it the total is a floor
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
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


@dataclass(frozen=True)
class PushFilter:
    """Which push records to show: every field optional, all of them ANDed.

    ``since``/``until`` bound the due time (``[since, until)``, UTC); ``search`` is a visitor id
    (exact) or a piece of the title (any case); ``campaign_id`` keeps one campaign's rows.
    """

    kind: str | None = None
    status: str | None = None
    visitor_key: str | None = None
    campaign_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None

    def as_args(self) -> dict[str, str]:
        """The filter as the query string that reads back into it (for links and the export)."""
        args = {"kind": self.kind, "status": self.status, "visitor": self.visitor_key,
                "campaign": str(self.campaign_id) if self.campaign_id else None,
                "from": self.since.date().isoformat() if self.since else None,
                "to": (self.until - timedelta(days=1)).date().isoformat() if self.until else None,
                "q": self.search}
        return {name: value for name, value in args.items() if value}


MAX_SEARCH = 200


def read_push_filter(args: Mapping[str, str]) -> PushFilter:
    """A filter from a query string (``kind``, ``status``, ``visitor``, ``campaign``, ``from``,
    ``to`` as YYYY-MM-DD UTC days, both included, and ``q``); raises Invalid."""
    kind, status = args.get("kind") or None, args.get("status") or None
    if kind and kind not in RECORD_KINDS:
        raise Invalid(f"kind must be one of {', '.join(RECORD_KINDS)}", code="invalid_field")
    if status and status not in PUSH_STATUSES:
        raise Invalid(f"status must be one of {', '.join(PUSH_STATUSES)}", code="invalid_field")
    raw_campaign = (args.get("campaign") or "").strip()
    if raw_campaign and not (raw_campaign.isdigit() and len(raw_campaign) < 10):
        raise Invalid("campaign must be a campaign's id", code="invalid_field")
    since = _day(args.get("from"), "from")
    until = _day(args.get("to"), "to")
    if until is not None:
        until += timedelta(days=1)
    if since and until and since >= until:
        raise Invalid("from must not be after to", code="invalid_field")
    search = (args.get("q") or "").strip()
    if len(search) > MAX_SEARCH:
        raise Invalid(f"q is at most {MAX_SEARCH} characters", code="invalid_field")
    return PushFilter(kind=kind, status=status, visitor_key=(args.get("visitor") or "").strip() or None,
                      campaign_id=int(raw_campaign) if raw_campaign else None, since=since, until=until,
                      search=search or None)


def _day(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw) if _DAY.fullmatch(raw) else None
    except ValueError:
        day = None
    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        raise Invalid(f"{name} must be a date as YYYY-MM-DD", code="invalid_field")
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def _push_conditions(shop_id: int, wanted: PushFilter) -> list[Any]:
    """The WHERE of the shop's push records under ``wanted`` (every one scoped to the shop)."""
    conditions = [Push.shop_id == shop_id]
    if wanted.kind:
        conditions.append(Push.kind == wanted.kind)
    if wanted.status:
        conditions.append(Push.status == wanted.status)
    if wanted.visitor_key:
        conditions.append(Push.visitor_id.in_(
            sa.select(Visitor.id).where(Visitor.shop_id == shop_id, Visitor.visitor_key == wanted.visitor_key)))
    if wanted.campaign_id:
        conditions.append(Push.group_key == campaign_group_key(wanted.campaign_id))
    if wanted.since:
        conditions.append(Push.due_at >= wanted.since)
    if wanted.until:
        conditions.append(Push.due_at < wanted.until)
    if wanted.search:
        conditions.append(sa.or_(
            Push.visitor_id.in_(sa.select(Visitor.id).where(Visitor.shop_id == shop_id,
                                                            Visitor.visitor_key == wanted.search)),
            sa.func.lower(Push.title).contains(wanted.search.lower(), autoescape=True)))
    return conditions


def _campaign_id(push: Push) -> int | None:
    """The campaign a row belongs to (its ``campaign:{id}`` group), or None."""
    prefix, _, rest = (push.group_key or "").partition(":")
    return int(rest) if prefix == CAMPAIGN_KIND and rest.isdigit() else None


def _campaign_names(session: orm.Session, shop_id: int, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {cid: name for cid, name in session.execute(
        sa.select(Campaign.id, Campaign.name).where(Campaign.shop_id == shop_id, Campaign.id.in_(ids)))}


def _push_rows(session: orm.Session, shop_id: int, conditions: list[Any], limit: int, offset: int = 0) -> list[Any]:
    clicks = (sa.select(sa.func.count()).where(Click.push_id == Push.id).correlate(Push).scalar_subquery())
    return list(session.execute(
        sa.select(Push, Visitor.visitor_key, clicks.label("clicks"))
        .outerjoin(Visitor, Visitor.id == Push.visitor_id)
        .where(*conditions)
        .order_by(Push.due_at.desc(), Push.id.desc())
        .limit(limit).offset(offset)
    ).all())


def _push_items(session: orm.Session, shop_id: int, rows: list[Any]) -> list[dict[str, Any]]:
    names = _campaign_names(session, shop_id, {cid for push, _, _ in rows if (cid := _campaign_id(push))})
    return [{
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
        "campaign": ({"id": cid, "name": names.get(cid)} if (cid := _campaign_id(push)) else None),
        "variant": push.variant,
        "test": is_test_push(push),
    } for push, key, n_clicks in rows]


def list_pushes(session: orm.Session, shop_id: int, *, kind: str | None = None, status: str | None = None,
                visitor_key: str | None = None, page: int = 1, per_page: int = PER_PAGE,
                cursor: Cursor | None = None, wanted: PushFilter | None = None) -> Page:
    """The shop's push records under ``wanted`` (or the older ``kind``/``status``/``visitor_key``
    keywords), newest due first (after ``cursor``, else page ``page``); raises Invalid for an
    unknown kind or status."""
    if wanted is None:
        wanted = read_push_filter({"kind": kind or "", "status": status or "", "visitor": visitor_key or ""})
    conditions = _push_conditions(shop_id, wanted)
    total, capped = _count(session, sa.select(Push.id).where(*conditions))
    if cursor is not None:
        conditions.append(_after(Push.due_at, Push.id, cursor))
    rows = _push_rows(session, shop_id, conditions, per_page + 1, 0 if cursor is not None else (page - 1) * per_page)
    more, rows = len(rows) > per_page, rows[:per_page]
    following = str(Cursor(rows[-1][0].due_at, rows[-1][0].id)) if more else None
    return Page(_push_items(session, shop_id, rows), None if cursor is not None else page, per_page, total,
                following, capped)


CSV_COLUMNS = ("id", "time", "kind", "campaign_id", "campaign", "variant", "step", "visitor", "status",
               "http_status", "error", "title", "body", "url", "clicked", "clicks", "test")
CSV_BATCH = 500
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A cell a spreadsheet shows as text: one starting like a formula (= + - @, tab, CR) gets a
    leading apostrophe (OWASP's CSV injection advice); numbers and empty cells as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def export_pushes_csv(session: orm.Session, shop_id: int, wanted: PushFilter) -> Iterator[str]:
    """The shop's push records under ``wanted`` as CSV text, a header then a batch of rows at a
    time (read by keyset, newest first, so memory stays flat however many there are)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    base = _push_conditions(shop_id, wanted)
    cursor: Cursor | None = None
    while True:
        conditions = base + ([_after(Push.due_at, Push.id, cursor)] if cursor is not None else [])
        rows = _push_rows(session, shop_id, conditions, CSV_BATCH)
        for item in _push_items(session, shop_id, rows):
            campaign = item["campaign"] or {}
            writer.writerow([csv_safe(v) for v in (
                item["id"], item["time"], item["kind"], campaign.get("id"), campaign.get("name"), item["variant"],
                item["step"], item["visitor"], item["status"], item["http_status"], item["error"], item["title"],
                item["body"], item["url"], "yes" if item["clicked"] else "no", item["clicks"],
                "yes" if item["test"] else "no")])
        if rows:
            yield flush()
        if len(rows) < CSV_BATCH:
            return
        cursor = Cursor(rows[-1][0].due_at, rows[-1][0].id)


def list_visitors(session: orm.Session, shop_id: int, *, subscribed: bool | None = None, page: int = 1,
                  per_page: int = PER_PAGE, cursor: Cursor | None = None) -> Page:
    """The shop's visitor records, newest first (after ``cursor``, else page ``page``), with their counts."""
    # A test device's own visitor is no visitor of the shop.
    conditions = [Visitor.shop_id == shop_id, Visitor.visitor_key.not_like(TEST_DEVICE_PREFIX + "%")]
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
