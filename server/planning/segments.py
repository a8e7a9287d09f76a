"""Campaign segments: who a campaign reaches, as one set-based SQL query on both databases.

A segment is a list of conditions, all of which must hold (AND); an empty list is every
active subscription. Each condition becomes one SQL predicate on the subscription (and its
visitor): columns compared directly, or a correlated ``EXISTS`` on the visitor's summaries (when
it last viewed a product, last carted: ``server.core.rollups``, kept by triggers on events),
or orders (all indexed by visitor). No condition reads the raw events. Nothing loops over visitors in Python: the count is one
``SELECT count(*)`` and the planner reads the audience in id-ordered pages of the same query.

Conditions (``type`` and its fields):

- ``all``: every active subscription;
- ``viewed_product`` ``product_id``, ``days``: a ``product_view`` of that product id;
- ``viewed_collection`` ``path_prefix``, ``days``: a ``page_view`` or ``product_view`` whose URL,
  on one of the shop's origins, starts with that path (``/collections/shirts``);
- ``carted_not_bought`` ``days``: carted (``add_to_cart``, ``cart_update``, ``checkout_started``)
  within the days and no paid order within them;
- ``bought`` ``days`` (optional): a paid order, ever or within the days;
- ``last_seen`` ``days``: the visitor's latest event within the days;
- ``not_seen`` ``days``: no event within the days (lapsed);
- ``locale`` ``prefix``: the browser's language, ``de`` matching ``de``, ``de-DE``, ``de_AT``;
- ``country`` ``code``: the country of the subscriber's time zone (``server.planning.countries``);
- ``has_tag`` ``tag``: the visitor has the tag (an on-site quick reply sets one, ``visitor_tags``);
- ``browser`` ``name``: from the push service of the endpoint: ``chrome`` (FCM: Chrome, Edge,
  Android), ``firefox`` (Mozilla), ``safari`` (Apple), ``edge_legacy`` (WNS).

"Within N days" counts back from the reference time the caller passes (the campaign's send
time), so a plan made in batches judges every batch by the same clock.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Union

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from sqlalchemy import orm

from server.core.errors import Invalid
from server.core.models import (Order, Shop, Subscription, SubscriptionStatus, Visitor, VisitorPage, VisitorProduct,
                                VisitorSummary, VisitorTag)
from server.planning import countries

MAX_CONDITIONS = 10
Days = Annotated[int, Field(ge=1, le=3650)]

# Push-service hosts by browser: (exact hosts, host suffixes).
BROWSER_HOSTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "chrome": (("fcm.googleapis.com", "android.googleapis.com"), ()),
    "firefox": (("updates.push.services.mozilla.com",), (".push.services.mozilla.com",)),
    "safari": ((), (".push.apple.com",)),
    "edge_legacy": ((), (".notify.windows.com",)),
}


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")


class All(_Condition):
    type: Literal["all"]


class ViewedProduct(_Condition):
    type: Literal["viewed_product"]
    product_id: str = Field(min_length=1, max_length=128)
    days: Days = 30


class ViewedCollection(_Condition):
    type: Literal["viewed_collection"]
    path_prefix: str = Field(min_length=1, max_length=500, pattern=r"^/[^\s?#]*$")
    days: Days = 30


class CartedNotBought(_Condition):
    type: Literal["carted_not_bought"]
    days: Days = 7


class Bought(_Condition):
    type: Literal["bought"]
    days: Days | None = None


class LastSeen(_Condition):
    type: Literal["last_seen"]
    days: Days


class NotSeen(_Condition):
    type: Literal["not_seen"]
    days: Days


class Locale(_Condition):
    type: Literal["locale"]
    prefix: str = Field(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$")


class Country(_Condition):
    type: Literal["country"]
    code: str = Field(pattern=r"^[A-Za-z]{2}$")

    @field_validator("code")
    @classmethod
    def _known(cls, value: str) -> str:
        if value.upper() not in countries.known_countries():
            raise ValueError(f"no time zone is known for country {value.upper()}")
        return value.upper()


class Browser(_Condition):
    type: Literal["browser"]
    name: Literal["chrome", "firefox", "safari", "edge_legacy"]


class HasTag(_Condition):
    type: Literal["has_tag"]
    tag: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")


Condition = Annotated[Union[All, ViewedProduct, ViewedCollection, CartedNotBought, Bought, LastSeen, NotSeen,
                            Locale, Country, Browser, HasTag], Field(discriminator="type")]
_SEGMENT = TypeAdapter(list[Condition])
CONDITION_TYPES = ("all", "viewed_product", "viewed_collection", "carted_not_bought", "bought", "last_seen",
                   "not_seen", "locale", "country", "browser", "has_tag")


def parse_segment(raw: Any) -> list[Any]:
    """Validate a segment (a list of conditions); raises Invalid naming the bad condition."""
    if not isinstance(raw, list):
        raise Invalid("segment: a list of conditions, e.g. [{\"type\": \"all\"}]", code="invalid_field")
    if len(raw) > MAX_CONDITIONS:
        raise Invalid(f"segment: at most {MAX_CONDITIONS} conditions", code="invalid_field")
    try:
        return list(_SEGMENT.validate_python(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = first.get("msg", "invalid")
        if first.get("type") == "union_tag_invalid":
            message = f"type must be one of {', '.join(CONDITION_TYPES)}"
        raise Invalid(f"segment.{where}: {message}", code="invalid_field") from None


def as_json(conditions: list[Any]) -> list[dict[str, Any]]:
    """Parsed conditions back as the JSON stored on the campaign."""
    return [c.model_dump(exclude_none=True) for c in conditions]


def effective_zone(shop: Shop) -> sa.ColumnElement[str]:
    """The subscriber's time zone as SQL: the subscription's, else the visitor's, else the shop's."""
    return sa.func.coalesce(sa.func.nullif(Subscription.timezone, ""), sa.func.nullif(Visitor.timezone, ""),
                            sa.literal(shop.timezone or "UTC"))


def _paid_orders(shop_id: int, since: datetime | None) -> Any:
    query = (sa.select(sa.literal(1)).select_from(Order)
             .where(Order.shop_id == shop_id, Order.visitor_id == Visitor.id, Order.status == "paid"))
    return query.where(Order.paid_at >= since) if since is not None else query


def _endpoint_on(hosts: tuple[str, ...], suffixes: tuple[str, ...]) -> sa.ColumnElement[bool]:
    tests = [Subscription.endpoint.startswith(f"https://{host}/", autoescape=True) for host in hosts]
    # ``https://<anything>.<suffix>/``: the endpoint policy already refused odd hosts at subscribe time.
    tests += [Subscription.endpoint.like(f"https://%{suffix}/%") for suffix in suffixes]
    return sa.or_(*tests)


def predicate(condition: Any, shop: Shop, ref: datetime) -> sa.ColumnElement[bool]:
    """One condition as a SQL predicate over ``subscriptions`` joined to ``visitors``."""
    since = ref - timedelta(days=condition.days) if getattr(condition, "days", None) else None
    kind = condition.type
    if kind == "all":
        return sa.true()
    if kind == "viewed_product":
        return (sa.select(sa.literal(1)).select_from(VisitorProduct)
                .where(VisitorProduct.visitor_id == Visitor.id, VisitorProduct.product_ref == condition.product_id,
                       VisitorProduct.last_viewed_at >= since).exists())
    if kind == "viewed_collection":
        prefixes = [origin.rstrip("/") + condition.path_prefix for origin in (shop.origins or [])]
        if not prefixes:
            return sa.false()
        return (sa.select(sa.literal(1)).select_from(VisitorPage)
                .where(VisitorPage.visitor_id == Visitor.id, VisitorPage.last_viewed_at >= since,
                       sa.or_(*(VisitorPage.page.startswith(p, autoescape=True) for p in prefixes))).exists())
    if kind == "carted_not_bought":
        carted = (sa.select(sa.literal(1)).select_from(VisitorSummary)
                  .where(VisitorSummary.visitor_id == Visitor.id, VisitorSummary.last_carted_at >= since).exists())
        return sa.and_(carted, ~_paid_orders(shop.id, since).exists())
    if kind == "bought":
        return _paid_orders(shop.id, since).exists()
    last_seen = sa.func.coalesce(Visitor.last_event_at, Visitor.first_seen_at)
    if kind == "last_seen":
        return last_seen >= since
    if kind == "not_seen":
        return last_seen < since
    if kind == "locale":
        locale = sa.func.lower(sa.func.coalesce(Subscription.locale, Visitor.locale, ""))
        prefix = condition.prefix.lower().replace("_", "-")
        normalized = sa.func.replace(locale, "_", "-")
        return sa.or_(normalized == prefix, normalized.startswith(prefix + "-", autoescape=True))
    if kind == "country":
        zones = countries.zones_of(condition.code)
        return effective_zone(shop).in_(zones) if zones else sa.false()
    if kind == "browser":
        return _endpoint_on(*BROWSER_HOSTS[condition.name])
    if kind == "has_tag":
        return (sa.select(sa.literal(1)).select_from(VisitorTag)
                .where(VisitorTag.visitor_id == Visitor.id, VisitorTag.shop_id == shop.id,
                       VisitorTag.tag == condition.tag).exists())
    raise ValueError(f"unknown condition {kind!r}")  # parse_segment lets none through


def audience(shop: Shop, conditions: list[Any], ref: datetime, *columns: Any) -> sa.Select[Any]:
    """``SELECT columns`` of the shop's active subscriptions matching every condition."""
    return (sa.select(*columns).select_from(Subscription)
            .join(Visitor, Visitor.id == Subscription.visitor_id)
            .where(Subscription.shop_id == shop.id, Subscription.status == SubscriptionStatus.ACTIVE.value,
                   *(predicate(c, shop, ref) for c in conditions)))


def count(session: orm.Session, shop: Shop, conditions: list[Any], ref: datetime,
          max_id: int | None = None) -> int:
    """How many active subscriptions the segment reaches (up to subscription ``max_id``)."""
    query = audience(shop, conditions, ref, sa.func.count(Subscription.id))
    if max_id is not None:
        query = query.where(Subscription.id <= max_id)
    return int(session.scalar(query) or 0)


def page(session: orm.Session, shop: Shop, conditions: list[Any], ref: datetime, *, after_id: int,
         max_id: int | None, limit: int) -> list[Any]:
    """The next ``limit`` audience rows after subscription ``after_id`` (id order):
    ``id``, ``visitor_id``, ``first_name``, ``zone``."""
    query = audience(shop, conditions, ref, Subscription.id, Subscription.visitor_id, Visitor.first_name,
                     effective_zone(shop).label("zone")).where(Subscription.id > after_id)
    if max_id is not None:
        query = query.where(Subscription.id <= max_id)
    return list(session.execute(query.order_by(Subscription.id).limit(limit)).all())
