"""A shop's on-site messages: create, change, activate, pause, delete; the seed template; the daily cap.

A message is a rule (when it shows) and content (what it says). The widget shows it on the
shop's pages when its rule matches (``server.collect.onsite`` decides, per ask); the read side
(impressions, closes, clicks, replies, codes, orders) is ``server.reports.onsite``.

Rule: ``page`` (``product``, ``cart``, ``collection``, ``any``, ``prefix`` with ``path_prefix``),
``min_visits`` to that kind (``visits_scope: "product"``: to that product page), ``min_dwell_seconds``,
``cart_min``/``cart_max`` (money) and ``items_min``/``items_max``, ``subscribed`` (``any``,
``yes``, ``no``), ``exit_intent`` (desktop), ``once_per_days``. Checkout pages never show one.

Content: ``title``, ``text``, ``image`` (http(s) URL), ``coupon_kind`` (a coupon source of the
Coupons page or API: its fixed code, or a single-use code from its list per showing),
``cta_label`` + ``cta_url``, up to three ``replies`` ``{"label", "tag"}`` (a reply tags the
visitor), or ``optin`` (the button asks for push permission instead of opening a link).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import orm

from server.core.errors import Invalid, NotFound
from server.core.fields import Money, Url
from server.core.models import CouponSource, OnsiteMessage, Shop
from server.merchant.coupon_admin import KIND

TAG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
STATUSES = ("active", "paused")
MAX_MESSAGES = 50
MAX_DAILY_CAP = 20
ONSITE_COUPON_KIND = "onsite"  # the Coupons page's source for on-site messages


class Rule(BaseModel):
    """When a message shows (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid")
    page: Literal["product", "cart", "collection", "any", "prefix"] = "any"
    path_prefix: str | None = Field(default=None, max_length=500, pattern=r"^/[^\s?#]*$")
    min_visits: int = Field(default=0, ge=0, le=1000)
    visits_scope: Literal["kind", "product"] = "kind"
    min_dwell_seconds: int = Field(default=0, ge=0, le=3600)
    cart_min: Money | None = None
    cart_max: Money | None = None
    items_min: int | None = Field(default=None, ge=0, le=10000)
    items_max: int | None = Field(default=None, ge=0, le=10000)
    subscribed: Literal["any", "yes", "no"] = "any"
    exit_intent: bool = False
    once_per_days: int = Field(default=1, ge=1, le=365)

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.page == "prefix" and not self.path_prefix:
            raise ValueError("path_prefix: a page rule 'prefix' needs a path such as /collections/sale")
        if self.page != "prefix":
            self.path_prefix = None
        if self.visits_scope == "product" and self.page != "product":
            raise ValueError("visits_scope: 'product' counts visits to one product page: page must be 'product'")
        if self.cart_min is not None and self.cart_max is not None and self.cart_min > self.cart_max:
            raise ValueError("cart_min: must not be above cart_max")
        if self.items_min is not None and self.items_max is not None and self.items_min > self.items_max:
            raise ValueError("items_min: must not be above items_max")
        return self


class Reply(BaseModel):
    """A quick-reply button: its label, and the tag it sets on the visitor."""

    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=40)
    tag: str = Field(pattern=TAG_PATTERN)


class Content(BaseModel):
    """What a message says (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=100)
    text: str = Field(default="", max_length=500)
    image: Url | None = None
    coupon_kind: str | None = Field(default=None, max_length=32)
    cta_label: str | None = Field(default=None, max_length=40)
    cta_url: Url | None = None
    optin: bool = False
    replies: list[Reply] = Field(default_factory=list, max_length=3)

    @model_validator(mode="after")
    def _one_action(self) -> Content:
        if self.optin and self.cta_url:
            raise ValueError("optin: a message either offers the push opt-in or links to cta_url, not both")
        if self.coupon_kind is not None and not KIND.match(self.coupon_kind):
            raise ValueError("coupon_kind: the kind of a coupon source (the Coupons page), e.g. checkout_recovery")
        tags = [r.tag for r in self.replies]
        if len(set(tags)) != len(tags):
            raise ValueError("replies: each quick reply sets its own tag")
        return self


class MessageIn(BaseModel):
    """A message as the API and the form send it."""

    model_config = ConfigDict(extra="forbid")
    id: int | None = None  # as GET gave it; ignored
    name: str = Field(min_length=1, max_length=200)
    status: Literal["active", "paused"] = "paused"
    rule: Rule
    content: Content


def parse_message(raw: Any) -> MessageIn:
    """Validate a message; raises Invalid naming the first bad field."""
    try:
        return MessageIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise Invalid(f"{where}: {message}" if where else message, code="invalid_field") from None


def seed_template(session: orm.Session, shop: Shop) -> dict[str, Any]:
    """The funnel playbook's cart rule as a message to start from: on the cart page, from the
    third visit, after more than 10 seconds, with a coupon: the on-site messages' source on the
    Coupons page when it is set, else the first code list the shop has."""
    coupon_kind = session.scalar(sa.select(CouponSource.kind).where(
        CouponSource.shop_id == shop.id, CouponSource.mode.in_(("fixed", "list")))
        .order_by((CouponSource.kind == ONSITE_COUPON_KIND).desc(), (CouponSource.mode == "list").desc(),
                  CouponSource.id).limit(1))
    return {
        "name": "Cart: third visit, more than 10 s",
        "status": "paused",
        "rule": Rule(page="cart", min_visits=3, min_dwell_seconds=11, once_per_days=7).model_dump(mode="json"),
        "content": Content(title="Still thinking it over?",
                           text="Here is a code for your cart, just for you. It works once.",
                           coupon_kind=coupon_kind).model_dump(mode="json"),
    }


def as_json(message: OnsiteMessage) -> dict[str, Any]:
    """A message as the API shows it."""
    return {"id": message.id, "name": message.name, "status": message.status, "rule": message.rule,
            "content": message.content, "created_at": message.created_at.isoformat(),
            "updated_at": message.updated_at.isoformat()}


def list_messages(session: orm.Session, shop: Shop) -> list[OnsiteMessage]:
    """The shop's messages, oldest first (the order in which a page picks one)."""
    return list(session.scalars(sa.select(OnsiteMessage).where(OnsiteMessage.shop_id == shop.id)
                                .order_by(OnsiteMessage.id)))


def get_message(session: orm.Session, shop: Shop, message_id: int) -> OnsiteMessage:
    """The shop's message; raises NotFound (another shop's id too)."""
    message = session.scalars(sa.select(OnsiteMessage).where(
        OnsiteMessage.shop_id == shop.id, OnsiteMessage.id == message_id)).one_or_none()
    if message is None:
        raise NotFound("no such on-site message", code="unknown_message")
    return message


def _check_coupon(session: orm.Session, shop: Shop, data: MessageIn) -> None:
    kind = data.content.coupon_kind
    if kind is None:
        return
    mode = session.scalar(sa.select(CouponSource.mode).where(CouponSource.shop_id == shop.id,
                                                             CouponSource.kind == kind))
    if mode not in ("fixed", "list"):
        raise Invalid(f"content.coupon_kind: the shop has no fixed code or code list for {kind!r} "
                      "(set one on the Coupons page)", code="invalid_field")


def _stored(data: MessageIn) -> tuple[dict[str, Any], dict[str, Any]]:
    return data.rule.model_dump(mode="json"), data.content.model_dump(mode="json")


def create_message(session: orm.Session, shop: Shop, data: MessageIn, now: datetime) -> OnsiteMessage:
    """Store a new message; raises Invalid (an unknown coupon source, too many messages)."""
    _check_coupon(session, shop, data)
    if session.scalar(sa.select(sa.func.count()).where(OnsiteMessage.shop_id == shop.id)) >= MAX_MESSAGES:
        raise Invalid(f"a shop has at most {MAX_MESSAGES} on-site messages", code="too_many_messages")
    rule, content = _stored(data)
    message = OnsiteMessage(shop_id=shop.id, name=data.name.strip(), status=data.status, rule=rule,
                            content=content, created_at=now, updated_at=now)
    session.add(message)
    session.flush()
    return message


def update_message(session: orm.Session, shop: Shop, message_id: int, data: MessageIn,
                   now: datetime) -> OnsiteMessage:
    """Replace a message's name, status, rule and content; raises NotFound, Invalid."""
    message = get_message(session, shop, message_id)
    _check_coupon(session, shop, data)
    message.rule, message.content = _stored(data)
    message.name, message.status, message.updated_at = data.name.strip(), data.status, now
    session.flush()
    return message


def set_status(session: orm.Session, shop: Shop, message_id: int, status: str, now: datetime) -> OnsiteMessage:
    """Activate or pause a message; raises NotFound."""
    message = get_message(session, shop, message_id)
    if status not in STATUSES:
        raise Invalid("status: active or paused", code="invalid_field")
    message.status, message.updated_at = status, now
    session.flush()
    return message


def delete_message(session: orm.Session, shop: Shop, message_id: int) -> None:
    """Delete a message with its impressions; raises NotFound."""
    session.delete(get_message(session, shop, message_id))
    session.flush()


def set_daily_cap(shop: Shop, raw: Any) -> int:
    """Set the shop's cap on on-site messages per visitor a day (0 to ``MAX_DAILY_CAP``); raises Invalid."""
    try:
        cap = int(str(raw).strip())
    except ValueError:
        cap = -1
    if not re.fullmatch(r"\d{1,3}", str(raw).strip()) or not 0 <= cap <= MAX_DAILY_CAP:
        raise Invalid(f"daily_cap: a whole number from 0 to {MAX_DAILY_CAP}", code="invalid_field")
    shop.onsite_daily_cap = cap
    return cap
