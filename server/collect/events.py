"""What the widget reports: visitors and their events.

Visitors are created on first contact, keyed by the widget's random ``visitor_id``. Events are
stamped with the server's ``now`` (a client's clock is never trusted) and stored once per
client event id, then handed to the preset hooks.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from sqlalchemy import exc, orm

from server.core.db import in_ids, insert_ignoring_duplicates
from server.core.fields import Currency, Money, Ref
from server.core import fields
from server.core.models import Shop, Visitor
from server.planning import hooks
from server.core.visitors import VISITOR_ID_PATTERN, platform_cart_token, visitor_by_key

log = logging.getLogger(__name__)

MAX_EVENTS_PER_BATCH = 50
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "remove_from_cart", "checkout_started",
               "leave", "identify", "cart_update")


def _blank_as_none(value: Any) -> Any:
    return None if value == "" else value


# The widget sends "" for a link it does not have (no image on the page).
Url = Annotated[fields.Url | None, BeforeValidator(_blank_as_none)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


def _number_as_text(value: Any) -> Any:
    """A whole-number id (Shopify's variant and product ids are numbers in /cart.js) as text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# A product or cart item id: text, or a whole number kept as its text.
ItemRef = Annotated[str, BeforeValidator(_number_as_text),
                    StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
VisitorKey = Annotated[str, StringConstraints(pattern=VISITOR_ID_PATTERN)]


class _Loose(BaseModel):
    # Unknown fields are dropped, not refused, so an older server accepts a newer widget.
    model_config = ConfigDict(extra="ignore")


class ProductIn(_Loose):
    id: ItemRef
    title: Text
    price: Money | None = None
    currency: Currency | None = None
    url: Url = None
    image: Url = None


class CartItemIn(_Loose):
    id: ItemRef
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


def _fill_source(visitor: Visitor, event: StoredEvent) -> None:
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


def _identify(visitor: Visitor, event: StoredEvent) -> None:
    if event.email:
        visitor.email = event.email.lower()
    if event.customer_id:
        visitor.customer_id = event.customer_id
    if event.first_name:
        visitor.first_name = event.first_name


def _note_cart(visitor: Visitor, event: StoredEvent) -> None:
    """A ``cart_update`` (the widget read the platform's cart): keep its token on the visitor."""
    token = platform_cart_token(event.cart.get("token") if event.cart else None)
    if token is not None:
        visitor.cart_token = token


@dataclass(slots=True)
class StoredEvent:
    """An event in its stored form: validated when it arrived (``EventIn``) and kept as
    ``EventBatch.model_dump_json(exclude_none=True)`` wrote it, so product and cart are already
    the JSON documents stored with it. The preset hooks read it as they read an ``Event`` row
    (its ``occurred_at`` is the batch's ``received_at``)."""

    type: str
    occurred_at: datetime
    id: str | None = None
    url: str | None = None
    referrer: str | None = None
    product: dict[str, Any] | None = None
    cart: dict[str, Any] | None = None
    email: str | None = None
    customer_id: str | None = None
    first_name: str | None = None


@dataclass(slots=True)
class StoredBatch:
    """One request's ``EventBatch`` in its stored form, as the events journal hands it back to
    ``store_batches`` (no second validation): the shop, the server's time of arrival, and the
    journal's JSON text of the batch, which the database expands into event rows itself."""

    shop_id: int
    received_at: datetime
    visitor_id: str
    events: list[StoredEvent]
    text: str

    @classmethod
    def from_json(cls, shop_id: int, received_at: datetime, text: str) -> StoredBatch:
        data = json.loads(text)
        events = [StoredEvent(**event, occurred_at=received_at) for event in data["events"]]
        return cls(shop_id, received_at, data["visitor_id"], events, text)


def _lock_visitors(session: orm.Session, shop_id: int, keys: Iterable[str]) -> dict[str, Visitor]:
    """The shop's visitors with these keys, locked for this transaction (PostgreSQL), in id order."""
    # One array parameter on PostgreSQL (``in_ids``): a long IN list would be parsed anew by the
    # driver for every group.
    query = (sa.select(Visitor)
             .where(Visitor.shop_id == shop_id, in_ids(Visitor.visitor_key, sorted(keys), session, sa.String))
             .order_by(Visitor.id))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {v.visitor_key: v for v in session.scalars(query)}


def _visitors(session: orm.Session, items: Sequence[StoredBatch]) -> dict[tuple[int, str], Visitor]:
    """Every visitor the items name, created on first contact: a select, and for new ones an insert.

    Shops in id order, new keys in sorted order: two processes writing overlapping groups take
    their locks in the same order.
    """
    wanted: dict[int, dict[str, datetime]] = {}
    for item in items:
        wanted.setdefault(item.shop_id, {}).setdefault(item.visitor_id, item.received_at)
    found: dict[tuple[int, str], Visitor] = {}
    for shop_id in sorted(wanted):
        keys = wanted[shop_id]
        visitors = _lock_visitors(session, shop_id, keys)
        missing = sorted(set(keys) - set(visitors))
        if missing:
            session.execute(insert_ignoring_duplicates(session, Visitor.__table__, ["shop_id", "visitor_key"]),
                            [{"shop_id": shop_id, "visitor_key": key, "first_seen_at": keys[key]} for key in missing])
            visitors.update(_lock_visitors(session, shop_id, missing))
        found.update({(shop_id, key): visitor for key, visitor in visitors.items()})
    return found


# The group's batches as one JSON document, each as the JSON text its events arrived in
# (``StoredBatch.text``), expanded into event rows by the database itself. The statement's text is the
# same whatever the group's size (parsed and planned once per connection, not once per group),
# and the events are not built into rows and serialized again on this side: that cost more than
# the insert costs the database. One statement per dialect, the same rows from both.
_INSERT_EVENTS = {
    # PostgreSQL answers with one row: how many were stored, and which only when not all were
    # (a group's thousand returned rows cost this side more than the insert costs the database).
    "postgresql": sa.text(
        "WITH stored AS ("
        "INSERT INTO events (shop_id, visitor_id, type, client_event_id, occurred_at, url, referrer, product, cart) "
        "SELECT r.shop_id, r.visitor_id, e->>'type', e->>'id', r.received_at, e->>'url', e->>'referrer', "
        "e->'product', e->'cart' "
        "FROM jsonb_to_recordset(CAST(:batches AS jsonb)) AS r(shop_id bigint, visitor_id bigint, "
        "received_at timestamptz, batch jsonb) "
        "CROSS JOIN LATERAL jsonb_array_elements(r.batch->'events') AS e "
        "ON CONFLICT (shop_id, client_event_id) DO NOTHING RETURNING shop_id, client_event_id) "
        "SELECT count(*), CASE WHEN count(*) < :rows "
        "THEN CAST(json_agg(json_build_array(shop_id, client_event_id)) AS text) END FROM stored"),
    # SQLite (3.38+): json_each walks the batches and their events in order; "WHERE true" lets
    # the parser tell the upsert's ON CONFLICT from a join's ON.
    "sqlite": sa.text(
        "INSERT INTO events (shop_id, visitor_id, type, client_event_id, occurred_at, url, referrer, product, cart) "
        "SELECT r.value->>'shop_id', r.value->>'visitor_id', e.value->>'type', e.value->>'id', "
        "r.value->>'received_at', e.value->>'url', e.value->>'referrer', e.value->'product', e.value->'cart' "
        "FROM json_each(:batches) AS r, json_each(r.value, '$.batch.events') AS e WHERE true "
        "ON CONFLICT (shop_id, client_event_id) DO NOTHING RETURNING shop_id, client_event_id"),
}


def _time_text(dialect: str, value: datetime) -> str:
    """A timestamp as the dialect's column holds it: ISO with its offset for PostgreSQL's
    timestamptz, naive UTC text for SQLite (the format SQLAlchemy writes, so ``UTCDateTime``
    reads it back)."""
    if dialect == "postgresql":
        return value.isoformat()
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_event_rows(session: orm.Session, items: Sequence[StoredBatch],
                       visitors: dict[tuple[int, str], Visitor]) -> set[tuple[int, str]] | None:
    """Insert the items' events in one statement; return the ``(shop_id, event id)`` stored
    new, or None when every event was.

    An id seen twice in the group is stored once (the first time: the rows keep the group's
    order), as ``ON CONFLICT DO NOTHING`` skips a row that conflicts with one the same
    statement inserted.
    """
    dialect = session.get_bind().dialect.name
    parts = [f'{{"shop_id":{item.shop_id},"visitor_id":{visitors[(item.shop_id, item.visitor_id)].id},'
             f'"received_at":"{_time_text(dialect, item.received_at)}","batch":{item.text}}}'
             for item in items]
    rows = sum(len(item.events) for item in items)
    result = session.execute(_INSERT_EVENTS[dialect], {"batches": "[" + ",".join(parts) + "]", "rows": rows})
    if dialect == "postgresql":
        count, stored = result.one()
        return None if count == rows else {(shop_id, event_id) for shop_id, event_id in json.loads(stored or "[]")}
    inserted = [tuple(row) for row in result]
    return None if len(inserted) == rows else set(inserted)


def _insert_events(session: orm.Session, items: Sequence[StoredBatch],
                   visitors: dict[tuple[int, str], Visitor]) -> list[list[StoredEvent]]:
    """Insert the items' events in one statement; return, per item, the events stored new.

    An event id already stored, or seen earlier in the group, is skipped: the database's
    unique ``(shop_id, client_event_id)`` decides between requests in flight at once.
    """
    candidates: list[tuple[int, StoredBatch, StoredEvent]] = []
    seen: set[tuple[int, str]] = set()
    for index, item in enumerate(items):
        for event in item.events:
            if event.id:
                if (item.shop_id, event.id) in seen:
                    continue
                seen.add((item.shop_id, event.id))
            candidates.append((index, item, event))
    stored: list[list[StoredEvent]] = [[] for _ in items]
    if not candidates:
        return stored
    inserted = _insert_event_rows(session, items, visitors)
    for index, item, event in candidates:
        # No id: never a conflict, always stored. With an id: stored when the insert returned it.
        if inserted is None or event.id is None or (item.shop_id, event.id) in inserted:
            stored[index].append(event)
    return stored


# The visitors' new state in one statement from one JSON document (the unit of work would send
# one parameter set per visitor, which cost more than the rest of the group's write).
_VISITOR_STATE = {
    "last_event_at": "timestamptz", "engaged_since": "timestamptz", "left_at": "timestamptz",
    "email": "varchar", "customer_id": "varchar", "first_name": "varchar", "referrer": "text",
    "utm_source": "varchar", "utm_medium": "varchar", "utm_campaign": "varchar", "landing_url": "text",
    "cart_token": "varchar",
}
_UPDATE_VISITORS = {
    "postgresql": sa.text(
        "UPDATE visitors AS v SET " + ", ".join(f"{name} = r.{name}" for name in _VISITOR_STATE)
        + " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, "
        + ", ".join(f"{name} {kind}" for name, kind in _VISITOR_STATE.items()) + ") WHERE v.id = r.id"),
    "sqlite": sa.text(
        "UPDATE visitors SET " + ", ".join(f"{name} = r.value->>'{name}'" for name in _VISITOR_STATE)
        + " FROM json_each(:rows) AS r WHERE visitors.id = r.value->>'id'"),
}
_VISITOR_ATTRIBUTES = frozenset(sa.inspect(Visitor).attrs.keys())


def _write_visitors(session: orm.Session, visitors: Iterable[Visitor]) -> None:
    """Write the visitors changed only in ``_VISITOR_STATE`` in one statement and let the
    session forget them (so its flush does not write them again); any other change is left to
    the flush."""
    dialect = session.get_bind().dialect.name
    rows: list[dict[str, Any]] = []
    written: list[Visitor] = []
    for visitor in visitors:
        state = sa.inspect(visitor)
        changed = _VISITOR_ATTRIBUTES - state.unmodified
        if not changed or not state.persistent or not changed <= _VISITOR_STATE.keys():
            continue
        row: dict[str, Any] = {"id": visitor.id}
        for name in _VISITOR_STATE:
            value = getattr(visitor, name)
            row[name] = _time_text(dialect, value) if isinstance(value, datetime) else value
        rows.append(row)
        written.append(visitor)
    if rows:
        with session.no_autoflush:  # (a flush first would write them the slow way)
            session.execute(_UPDATE_VISITORS[dialect], {"rows": json.dumps(rows, separators=(",", ":"))})
        for visitor in written:
            session.expunge(visitor)


def store_batches(session: orm.Session, items: Sequence[StoredBatch]) -> list[int]:
    """Store the batches of several requests in this session; return how many events each stored new.

    A few statements for the whole group, however many requests it holds: the visitors are
    locked (and the new ones inserted), the events inserted in one statement, the visitors'
    source, identity and preset state updated, and the preset hooks told of each request's
    new events in arrival order. The caller commits.
    """
    visitors = _visitors(session, items)
    stored = _insert_events(session, items, visitors)
    for item, new in zip(items, stored):
        visitor = visitors[(item.shop_id, item.visitor_id)]
        for event in item.events:
            if event.type == "page_view":
                _fill_source(visitor, event)
            elif event.type == "identify":
                _identify(visitor, event)
            elif event.type == "cart_update":
                _note_cart(visitor, event)
        visitor.last_event_at = item.received_at
        if new:
            hooks.on_events(session, visitor, new, item.received_at)
    _write_visitors(session, visitors.values())
    session.flush()
    counts = [len(new) for new in stored]
    log.info("%d request(s): %d event(s) stored of %d", len(items), sum(counts),
             sum(len(item.events) for item in items))
    return counts

