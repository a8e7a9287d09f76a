"""On-site messages on the storefront: which message a visitor sees now, and what they did with it.

The widget's config says whether the on-site script is worth loading on a page (``could_load``:
an active message whose page rule can match the page's kind); the on-site script then asks
``which message now?`` (``decide``) with the page's URL, the seconds the visitor has stayed
(``dwell``) and whether the pointer left the window at the top (exit intent). The server
decides from what it already knows:

- the page kind from the URL (``page_kind``): checkout pages never show a message;
- visits to that kind (or that product) from the ``page_view``/``product_view`` events already
  collected in the last ``VISIT_DAYS`` days, the current visit counted once: the events before
  the current page started (``now - dwell``) plus one;
- the cart from the visitor's latest cart event; subscribed from the visitor's subscriptions;
- at most once per visitor per ``once_per_days`` days per message, and at most the shop's
  ``onsite_daily_cap`` messages per visitor in 24 hours across all messages.

The first active message (oldest first) whose rule matches is shown: its coupon code is taken
as pushes take theirs (``server.planning.coupons.coupon_for``: a list's single-use code in one
atomic statement, in this request's transaction) and the impression is recorded with a random
token the widget reports the close, click or quick reply with. When a message would match but
for the dwell, the answer names the dwell at which to ask again (``next``); when only the exit
intent is missing, it says to ask again on exit (``exit``). A running experiment on the message
(kind ``onsite:{id}``, ``server.planning.experiments``) gives each visitor a stable variant of its
texts within its slice; the showing records which.

A **preview** (the dashboard's "Send a test to my devices" on a message): the test push opens
the shop's page with ``?pushcart_preview=<token>``, a token signed with the app's secret naming
the shop, the message and its end (``PREVIEW_SECONDS`` after it was made). With a valid token
for this shop the config answers ``onsite`` on that page and the ask returns the message at
once, whatever its status, rule, caps and once-per-days: its coupon as a preview shows it (the
fixed code, ``TEST-COUPON`` for a list: none is taken), no impression recorded (its showing
token is ``PREVIEW_SHOWING``, which no report call finds), so a preview counts nowhere. A token
invalid, expired or of another shop is ignored: the page behaves as without it.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from itsdangerous import BadData, URLSafeSerializer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql, sqlite

from server.core.errors import NotFound
from server.core.models import (Event, OnsiteImpression, OnsiteMessage, Shop, Subscription, SubscriptionStatus,
                                Visitor, VisitorTag)
from server.core.visitors import VISITOR_ID_PATTERN, visitor_by_key
from server.planning import experiments
from server.planning.coupons import coupon_for, get_source, sample_code
from server.planning.experiments import ONSITE_FIELDS

PAGE_KINDS = ("product", "cart", "collection", "any", "prefix")
VISIT_DAYS = 30  # visits to a kind count over this many days
MAX_VISIT_EVENTS = 1000  # the newest events read per ask (a visitor with more counts as many)
CART_EVENTS = ("add_to_cart", "remove_from_cart", "cart_update", "checkout_started")
ACTIVE = "active"
PREVIEW_PARAM = "pushcart_preview"
PREVIEW_SECONDS = 3600  # a preview link works this long after the test push was sent
PREVIEW_SHOWING = "preview"  # the showing token of a preview: no impression has it
_PREVIEW_SALT = "pushcart-onsite-preview"
_PREVIEW_IN = re.compile(rf"[?&]{PREVIEW_PARAM}=([A-Za-z0-9_.-]{{1,300}})")

_CHECKOUT = re.compile(r"(^|/)checkouts?(/|$)", re.I)
_CART = re.compile(r"(^|/)(cart|basket)(/|$)", re.I)
_PRODUCT = re.compile(r"(^|/)products?/[^/]", re.I)
_COLLECTION = re.compile(r"(^|/)(collections?|product-category|category)(/|$)", re.I)


def page_kind(path: str, has_product: bool = False) -> str:
    """The kind of a shop page from its URL path: ``checkout``, ``cart``, ``product`` (also any page
    with schema.org Product markup), ``collection`` or ``other``. Shopify's, WooCommerce's and
    the demo shop's paths follow these patterns (``/checkouts/..``, ``/cart``, ``/products/x``,
    ``/collections/x``, ``/product-category/x``)."""
    if _CHECKOUT.search(path):
        return "checkout"
    if _CART.search(path):
        return "cart"
    if has_product or _PRODUCT.search(path):
        return "product"
    if _COLLECTION.search(path):
        return "collection"
    return "other"


def path_of(url: str | None) -> str:
    """The path of a URL (``/`` for none or a malformed one)."""
    if not url:
        return "/"
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return "/"


def page_matches(rule: dict[str, Any], kind: str, path: str) -> bool:
    """Whether a rule's page condition holds for a page of ``kind`` at ``path`` (never on checkout)."""
    if kind == "checkout":
        return False
    page = rule.get("page", "any")
    if page == "any":
        return True
    if page == "prefix":
        return path.startswith(rule.get("path_prefix") or "/")
    return page == kind


def could_load(pages: tuple[tuple[str, str | None], ...], path: str) -> bool:
    """Whether one of the shop's active messages' page rules ``(page, path_prefix)`` can match
    the page at ``path``.

    The widget's config answers this (from the shop cache: no query) so the on-site script loads
    only where it may show something. A page the URL does not classify may still be a product
    page (the widget finds schema.org Product markup in the page), so product rules count there too.
    """
    kind = page_kind(path)
    return kind != "checkout" and any(
        page_matches({"page": page, "path_prefix": prefix}, kind, path) or (kind == "other" and page == "product")
        for page, prefix in pages)


def _preview_serializer(secret: str | bytes) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=_PREVIEW_SALT)


def preview_token(secret: str | bytes, shop_key: str, message_id: int, now: datetime) -> str:
    """A signed token naming the shop (its public key) and the message, valid ``PREVIEW_SECONDS``."""
    return str(_preview_serializer(secret).dumps(
        {"s": shop_key, "m": message_id, "e": int(now.timestamp()) + PREVIEW_SECONDS}))


def preview_message_id(secret: str | bytes | None, shop_key: str, url: str | None, now: datetime) -> int | None:
    """The message id a URL's ``pushcart_preview`` token names, when it is signed with ``secret``,
    names this shop and has not expired; None otherwise (the page behaves as without it)."""
    found = _PREVIEW_IN.search(url or "") if secret else None
    if found is None:
        return None
    try:
        data = _preview_serializer(secret).loads(found.group(1))  # type: ignore[arg-type]
    except BadData:
        return None
    if (not isinstance(data, dict) or data.get("s") != shop_key or not isinstance(data.get("m"), int)
            or not isinstance(data.get("e"), int) or data["e"] <= now.timestamp()):
        return None
    return int(data["m"])


def without_preview(page: str) -> str:
    """The page the widget named with its preview marker (if any) taken out."""
    return _PREVIEW_IN.sub("", page)


class AskIn(BaseModel):
    """The on-site script's question: who, where, how long on the page, exit intent."""

    model_config = ConfigDict(extra="ignore")
    visitor_id: str = Field(pattern=VISITOR_ID_PATTERN)
    url: str = Field(default="/", max_length=2048)
    product: bool = False  # the page has schema.org Product markup
    dwell: float = Field(default=0, ge=0, le=86400)
    exit: bool = False


class ReportIn(BaseModel):
    """A close, click or reply on a shown message (``reply`` is the quick reply's index from 0)."""

    model_config = ConfigDict(extra="ignore")
    visitor_id: str = Field(pattern=VISITOR_ID_PATTERN)
    reply: int | None = Field(default=None, ge=0, le=2)


@dataclass
class Facts:
    """What the server knows about the visitor for one ask (read once, lazily)."""

    session: orm.Session
    shop: Shop
    visitor: Visitor
    now: datetime
    page_started: datetime
    path: str
    kind: str
    _views: list[tuple[str, str | None]] | None = None
    _cart: tuple[Decimal | None, int | None] | None = None
    _subscribed: bool | None = None

    def views(self) -> list[tuple[str, str | None]]:
        """(type, url) of the visitor's view events before this page, newest first."""
        if self._views is None:
            self._views = [tuple(row) for row in self.session.execute(
                sa.select(Event.type, Event.url)
                .where(Event.shop_id == self.shop.id, Event.visitor_id == self.visitor.id,
                       Event.type.in_(("page_view", "product_view")),
                       Event.occurred_at >= self.now - timedelta(days=VISIT_DAYS),
                       Event.occurred_at < self.page_started)
                .order_by(Event.occurred_at.desc()).limit(MAX_VISIT_EVENTS)).all()]
        return self._views

    def visits(self, rule: dict[str, Any]) -> int:
        """Visits to the rule's page kind (or this product, or this prefix), this one included."""
        page = rule.get("page", "any")
        if page == "product":
            wanted = [url for type_, url in self.views() if type_ == "product_view"]
            if rule.get("visits_scope") == "product":
                wanted = [url for url in wanted if path_of(url) == self.path]
            return len(wanted) + 1
        pages = [path_of(url) for type_, url in self.views() if type_ == "page_view"]
        if page == "prefix":
            prefix = rule.get("path_prefix") or "/"
            return sum(1 for p in pages if p.startswith(prefix)) + 1
        if page == "any":
            return len(pages) + 1
        return sum(1 for p in pages if page_kind(p) == page) + 1

    def cart(self) -> tuple[Decimal | None, int | None]:
        """The total and item count of the visitor's latest cart event (None, None without one)."""
        if self._cart is None:
            cart = self.session.scalar(
                sa.select(Event.cart).where(Event.shop_id == self.shop.id, Event.visitor_id == self.visitor.id,
                                            Event.type.in_(CART_EVENTS), Event.cart.is_not(None))
                .order_by(Event.occurred_at.desc(), Event.id.desc()).limit(1))
            total = count = None
            if isinstance(cart, dict):
                try:
                    total = Decimal(str(cart.get("total")))
                except ArithmeticError:
                    total = None
                count = cart.get("item_count") if isinstance(cart.get("item_count"), int) else None
            self._cart = (total, count)
        return self._cart

    def subscribed(self) -> bool:
        """Whether the visitor has an active push subscription."""
        if self._subscribed is None:
            self._subscribed = self.session.scalar(sa.select(sa.exists().where(
                Subscription.shop_id == self.shop.id, Subscription.visitor_id == self.visitor.id,
                Subscription.status == SubscriptionStatus.ACTIVE.value))) or False
        return bool(self._subscribed)


def _cart_holds(rule: dict[str, Any], facts: Facts) -> bool:
    bounds = [rule.get(k) for k in ("cart_min", "cart_max", "items_min", "items_max")]
    if all(b is None for b in bounds):
        return True
    total, count = facts.cart()
    total = total if total is not None else Decimal(0)
    count = count if count is not None else 0
    cart_min, cart_max, items_min, items_max = bounds
    return ((cart_min is None or total >= Decimal(str(cart_min))) and (cart_max is None or total <= Decimal(str(cart_max)))
            and (items_min is None or count >= items_min) and (items_max is None or count <= items_max))


def _shown_recently(facts: Facts, message_id: int | None, since: datetime) -> int:
    query = sa.select(sa.func.count()).select_from(OnsiteImpression).where(
        OnsiteImpression.shop_id == facts.shop.id, OnsiteImpression.visitor_id == facts.visitor.id,
        OnsiteImpression.shown_at >= since)
    if message_id is not None:
        query = query.where(OnsiteImpression.message_id == message_id)
    return int(facts.session.scalar(query) or 0)


def _all_but_timing(message: OnsiteMessage, facts: Facts) -> bool:
    """Every condition of the message's rule but dwell and exit intent."""
    rule = message.rule or {}
    if not page_matches(rule, facts.kind, facts.path):
        return False
    if facts.visits(rule) < int(rule.get("min_visits") or 0):
        return False
    subscribed = rule.get("subscribed", "any")
    if subscribed != "any" and facts.subscribed() != (subscribed == "yes"):
        return False
    if not _cart_holds(rule, facts):
        return False
    days = int(rule.get("once_per_days") or 1)
    return _shown_recently(facts, message.id, facts.now - timedelta(days=days)) == 0


def public_content(message: OnsiteMessage, code: str, token: str,
                   variant: dict[str, str] | None = None) -> dict[str, Any]:
    """What the on-site script shows: texts, image, code, call to action, quick replies (labels
    only); an A/B variant's non-empty fields replace the message's."""
    content = dict(message.content or {})
    for name, field in (variant and ONSITE_FIELDS.items()) or ():
        if variant.get(name):
            content[field] = variant[name]
            if field == "cta_url":
                content["optin"] = False
    return {
        "token": token, "title": content.get("title", ""), "text": content.get("text", ""),
        "image": content.get("image") or None, "code": code or None,
        "cta": ({"label": content.get("cta_label") or "Shop now", "url": content["cta_url"]}
                if content.get("cta_url") else None),
        "optin": bool(content.get("optin")),
        "optin_label": content.get("cta_label") or "Notify me" if content.get("optin") else None,
        "replies": [r["label"] for r in content.get("replies") or []],
        "close_label": content.get("close_label") or "Close",
    }


def decide(session: orm.Session, shop: Shop, ask: AskIn, now: datetime,
           secret: str | bytes | None = None) -> dict[str, Any]:
    """Answer the on-site script: ``{"message": {...}}`` when a message is shown now (its coupon
    taken and its impression recorded), else ``{"message": null, "next"?: seconds, "exit"?: true}``.
    With a valid preview token (signed with ``secret``) in the URL: that message at once, counted nowhere."""
    path = path_of(ask.url)
    kind = page_kind(path, ask.product)
    nothing: dict[str, Any] = {"message": None}
    if kind == "checkout":
        return nothing
    message_id = preview_message_id(secret, shop.public_key, ask.url, now)
    if message_id is not None and (shown := preview(session, shop, message_id)) is not None:
        return {"message": shown, "preview": True}
    visitor = visitor_by_key(session, shop.id, ask.visitor_id)
    if visitor is None:  # no event of theirs stored yet: nothing is known to match
        return nothing
    messages = session.scalars(sa.select(OnsiteMessage).where(
        OnsiteMessage.shop_id == shop.id, OnsiteMessage.status == ACTIVE).order_by(OnsiteMessage.id)).all()
    if not messages:
        return nothing
    facts = Facts(session=session, shop=shop, visitor=visitor, now=now,
                  page_started=now - timedelta(seconds=ask.dwell), path=path, kind=kind)
    if _shown_recently(facts, None, now - timedelta(hours=24)) >= shop.onsite_daily_cap:
        return nothing
    waits: list[float] = []
    on_exit = False
    for message in messages:
        rule = message.rule or {}
        if not _all_but_timing(message, facts):
            continue
        dwell = float(rule.get("min_dwell_seconds") or 0)
        if ask.dwell < dwell:
            waits.append(dwell)
            continue
        if rule.get("exit_intent") and not ask.exit:
            on_exit = True
            continue
        return {"message": show(session, shop, message, visitor, now)}
    if waits:
        nothing["next"] = min(waits)
    if on_exit:
        nothing["exit"] = True
    return nothing


def preview(session: orm.Session, shop: Shop, message_id: int) -> dict[str, Any] | None:
    """The shop's message as a preview shows it: its coupon's sample code, nothing taken or
    recorded (None for no such message of this shop)."""
    message = session.scalars(sa.select(OnsiteMessage).where(
        OnsiteMessage.shop_id == shop.id, OnsiteMessage.id == message_id)).one_or_none()
    if message is None:
        return None
    coupon_kind = (message.content or {}).get("coupon_kind")
    code = sample_code(get_source(session, shop.id, coupon_kind)) if coupon_kind else ""
    return public_content(message, code, PREVIEW_SHOWING)


def show(session: orm.Session, shop: Shop, message: OnsiteMessage, visitor: Visitor, now: datetime) -> dict[str, Any]:
    """Record an impression of ``message`` for ``visitor`` with its coupon code taken now."""
    content = message.content or {}
    coupon_kind = content.get("coupon_kind")
    coupon = coupon_for(session, shop.id, coupon_kind, None, now) if coupon_kind else None
    token = secrets.token_urlsafe(16)
    experiment = experiments.audience(session, shop.id, experiments.onsite_kind(message.id), now).experiment
    variant = experiments.choose_variant(experiment, visitor.id) if experiment is not None else None
    session.add(OnsiteImpression(shop_id=shop.id, message_id=message.id, visitor_id=visitor.id, token=token,
                                 code=coupon.code or None if coupon else None,
                                 code_id=coupon.code_id if coupon else None, shown_at=now,
                                 experiment_id=experiment.id if variant else None,
                                 variant=variant["key"] if variant else None))
    session.flush()
    return public_content(message, coupon.code if coupon else "", token, variant)


def _impression(session: orm.Session, shop: Shop, token: str, visitor_key: str) -> OnsiteImpression:
    row = session.execute(
        sa.select(OnsiteImpression).join(Visitor, Visitor.id == OnsiteImpression.visitor_id)
        .where(OnsiteImpression.shop_id == shop.id, OnsiteImpression.token == token[:32],
               Visitor.visitor_key == visitor_key)).scalar_one_or_none()
    if row is None:
        raise NotFound("unknown on-site message showing", code="unknown_impression")
    return row


def record(session: orm.Session, shop: Shop, token: str, what: str, report: ReportIn, now: datetime) -> dict[str, Any]:
    """Record a ``close``, ``click`` or ``reply`` on a showing (the first of each counts); a reply
    tags the visitor with the quick reply's tag. Raises NotFound for another visitor's token or
    a reply the message does not have."""
    impression = _impression(session, shop, token, report.visitor_id)
    if what == "close":
        impression.closed_at = impression.closed_at or now
        return {"recorded": "close"}
    if what == "click":
        impression.clicked_at = impression.clicked_at or now
        return {"recorded": "click"}
    message = session.get(OnsiteMessage, impression.message_id)
    replies = ((message.content or {}).get("replies") or []) if message else []
    if report.reply is None or report.reply >= len(replies):
        raise NotFound("this message has no such quick reply", code="unknown_reply")
    tag = replies[report.reply]["tag"]
    if impression.reply_tag is None:
        impression.reply_tag, impression.replied_at = tag, now
    add_tag(session, shop.id, impression.visitor_id, tag, "onsite", now)
    return {"recorded": "reply", "tag": tag}


def add_tag(session: orm.Session, shop_id: int, visitor_id: int, tag: str, source: str, now: datetime) -> None:
    """Tag a visitor (a tag already there stays as it was)."""
    insert = (postgresql.insert(VisitorTag) if session.get_bind().dialect.name == "postgresql"
              else sqlite.insert(VisitorTag))
    session.execute(insert.values(shop_id=shop_id, visitor_id=visitor_id, tag=tag, source=source, created_at=now)
                    .on_conflict_do_nothing(index_elements=["visitor_id", "tag"]))
